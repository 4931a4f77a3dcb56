// The scenario generator of the differential test (sequence.hpp).
#include "sequence.hpp"

#include <cstdio>
#include <random>

#include "statewall/rules/vocab.hpp"

namespace statewall::kerneltest {
namespace {

using dataplane::Bytes;
using dataplane::ipAddr;

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t below(uint64_t n) { return g_() % n; }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::mt19937_64 g_;
};

Side sideOf(const std::string& addr) {
  return addr.rfind("192.0.2.", 0) == 0 ? kClient : kServer;
}

// --- the policy -----------------------------------------------------------------------------

std::string rulesYaml(Rng& rng, const std::vector<std::string>& pool) {
  std::string out;
  for (const auto& r : pool)
    if (rng.chance(45)) out += "      - " + r + "\n";
  return out.empty() ? " []\n" : "\n" + out;
}

std::string policyYaml(Rng& rng, uint32_t t) {
  std::string y = "version: 1\ntimeouts: {profile: linux";
  for (const char* k :
       {"tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_close_wait",
        "tcp_last_ack", "tcp_time_wait", "tcp_close", "udp", "udp_stream", "icmp", "other"})
    y += std::string(", ") + k + ": " + std::to_string(t);
  y += "}\n";
  y += rng.chance(50) ? "unprotected: allow\n" : "unprotected: deny\n";
  y += "groups:\n  client:\n    inbound:";
  y += rulesYaml(rng, {"{proto: icmp, icmp: {type: 3, code: -1}, from: 198.51.100.0/24}",
                       "{proto: tcp, ports: 1024-65535, from: 198.51.100.10/32}",
                       "{proto: icmp, icmp: {type: 0, code: -1}, from: 198.51.100.0/24}",
                       "{proto: udp, ports: all, from: sg:web}",
                       "{proto: tcp, ports: 22, from: 198.51.100.0/24}"});
  y += "    outbound:";
  y += rulesYaml(rng, {"{proto: tcp, ports: 80, to: 198.51.100.0/24}",
                       "{proto: tcp, ports: 443-5432, to: sg:web}",
                       "{proto: udp, ports: 53, to: 198.51.100.0/24}",
                       "{proto: icmp, icmp: {type: 8, code: -1}, to: 198.51.100.0/24}",
                       "{proto: all, to: 198.51.100.0/25}", "{proto: icmp, to: 198.51.100.0/24}"});
  y += "  web:\n    inbound:";
  y += rulesYaml(rng,
                 {"{proto: tcp, ports: 80, from: 192.0.2.0/24}",
                  "{proto: tcp, ports: 443, from: 192.0.2.10/32}",
                  "{proto: udp, ports: 53, from: 192.0.2.0/24}",
                  "{proto: icmp, icmp: {type: 8, code: -1}, from: 192.0.2.0/24}",
                  "{proto: icmp, from: 192.0.2.0/25}", "{proto: tcp, ports: 5432, from: sg:client}",
                  "{proto: all, from: 192.0.2.20/32}"});
  y += "    outbound:";
  y += rulesYaml(rng,
                 {"{proto: tcp, ports: 1024-65535, to: 192.0.2.0/24}",
                  "{proto: udp, ports: all, to: 192.0.2.10/32}",
                  "{proto: icmp, icmp: {type: 0, code: -1}, to: 192.0.2.0/24}",
                  "{proto: icmp, icmp: {type: 3, code: -1}, to: 192.0.2.0/24}",
                  "{proto: tcp, ports: 22, to: 192.0.2.0/24}", "{proto: all, to: 192.0.2.0/25}"});
  y += "  db:\n    inbound:";
  y += rulesYaml(rng, {"{proto: tcp, ports: 5432, from: sg:client}",
                       "{proto: tcp, ports: 80-443, from: 192.0.2.0/24}",
                       "{proto: udp, ports: 123, from: 192.0.2.0/24}",
                       "{proto: icmp, icmp: {type: 8, code: 0}, from: 192.0.2.0/24}"});
  y += "    outbound:";
  y += rulesYaml(rng, {"{proto: all, to: 192.0.2.10/32}",
                       "{proto: icmp, icmp: {type: 3, code: 3}, to: 192.0.2.0/24}"});
  y += "interfaces:\n";
  if (rng.chance(60)) y += "  client-1: {addresses: [192.0.2.10], groups: [client]}\n";
  y += "  server-1: {addresses: [198.51.100.10], groups: [web]}\n";
  if (rng.chance(50)) y += "  server-2: {addresses: [198.51.100.20], groups: [db]}\n";
  return y;
}

// --- flows ----------------------------------------------------------------------------------

struct Endpoint {
  std::string addr;
  uint16_t port = 0;
  uint32_t isn = 0;
  uint32_t isn0 = 0;  // the first ISN (isn changes when the tuple is reused): printing is relative
  uint32_t nxt = 0;   // next sequence number to send
  uint16_t window = 65535;
  std::optional<uint8_t> wscale;
  bool fin = false;
};

class FlowBuilder {
 public:
  FlowBuilder(Rng& rng, int flow, std::vector<Item>* out) : rng_(rng), flow_(flow), out_(out) {}

  void tcp(Endpoint a, Endpoint b) {
    a_ = a;
    b_ = b;
    a_.isn0 = a_.isn;
    b_.isn0 = b_.isn;
    const bool scale = rng_.chance(60);
    if (scale) {
      a_.wscale = static_cast<uint8_t>(rng_.below(9));
      b_.wscale = static_cast<uint8_t>(rng_.below(9));
    }
    syn(true);
    if (rng_.chance(10)) noise();
    const unsigned shape = static_cast<unsigned>(rng_.below(100));
    if (shape < 8) {  // refused
      seg(false, dataplane::kRst | dataplane::kAck, 0, a_.nxt, 0, Kind::kRst);
      after();
      return;
    }
    if (shape < 14) {  // never answered
      retransmitLast();
      return;
    }
    if (shape < 18) {  // simultaneous open
      syn(false);
    }
    synAck();
    if (rng_.chance(8)) synAck();  // retransmitted SYN-ACK (same bytes)
    ack(true);
    const int rounds = 1 + static_cast<int>(rng_.below(3));
    for (int i = 0; i < rounds; ++i) {
      maybeNoise();
      data(true);
      maybeNoise();
      if (rng_.chance(70)) ack(false);
      data(false);
      maybeNoise();
      ack(true);
    }
    switch (rng_.below(6)) {
      case 0:
      case 1:
        fin(true);
        ack(false);
        maybeNoise();
        fin(false);
        ack(true);
        break;
      case 2:
        fin(false);
        maybeNoise();
        ack(true);
        fin(true);
        ack(false);
        break;
      case 3:
        rst(rng_.chance(50), true);
        break;
      case 4:
        fin(rng_.chance(50));
        break;
      default:
        break;  // left open
    }
    after();
  }

  void udp(Endpoint a, Endpoint b) {
    a_ = a;
    b_ = b;
    const int rounds = 1 + static_cast<int>(rng_.below(3));
    for (int i = 0; i < rounds; ++i) {
      datagram(true, a_.port, b_.port);
      if (rng_.chance(75)) datagram(false, b_.port, a_.port);
      if (rng_.chance(15)) datagram(false, static_cast<uint16_t>(b_.port + 1), a_.port);
      if (rng_.chance(10)) datagram(true, a_.port, static_cast<uint16_t>(b_.port + 1));
    }
  }

  void echo(Endpoint a, Endpoint b) {
    a_ = a;
    b_ = b;
    const uint16_t id = a_.port;
    const int rounds = 1 + static_cast<int>(rng_.below(3));
    for (int i = 0; i < rounds; ++i) {
      const uint16_t seq = static_cast<uint16_t>(i + 1);
      icmpEcho(true, id, seq, false);
      if (rng_.chance(75)) icmpEcho(false, id, seq, true);
      if (rng_.chance(12)) icmpEcho(true, id, seq, true);    // a reply in the request's direction
      if (rng_.chance(12)) icmpEcho(false, id, seq, false);  // a request back from the pinged host
      if (rng_.chance(10)) icmpEcho(false, static_cast<uint16_t>(id + 1), seq, true);  // other id
    }
  }

 private:
  Endpoint& ep(bool from_a) { return from_a ? a_ : b_; }
  Endpoint& peer(bool from_a) { return from_a ? b_ : a_; }

  void push(bool from_a, Bytes frame, Kind kind, std::string what) {
    Item it;
    it.kind = kind;
    it.side = sideOf(ep(from_a).addr);
    it.frame = std::move(frame);
    it.flow = flow_;
    it.from_originator = from_a;
    it.what = std::move(what);
    out_->push_back(std::move(it));
  }

  static std::string flagText(uint8_t f) {
    const std::string s = rules::tcpFlagLetters(f);
    return s.empty() ? "none" : s;
  }

  void seg(bool from_a, uint8_t flags, uint32_t seq, uint32_t ack, size_t len, Kind kind,
           bool options = false) {
    Endpoint& s = ep(from_a);
    Endpoint& d = peer(from_a);
    dataplane::TcpSpec t{.src = ipAddr(s.addr),
                         .dst = ipAddr(d.addr),
                         .sport = s.port,
                         .dport = d.port,
                         .flags = flags,
                         .seq = seq,
                         .ack = ack,
                         .window = s.window,
                         .payload_len = len};
    if (options) {
      t.mss = 1460;
      t.wscale = s.wscale;
    }
    char buf[200];
    // Sequence numbers relative to the sender's first ISN, ACKs to the receiver's.
    const std::string ack_text = (flags & dataplane::kAck)
                                     ? " ack=" + std::to_string(static_cast<int32_t>(ack - d.isn0))
                                     : "";
    const std::string ws_text = options && s.wscale ? " ws=" + std::to_string(*s.wscale) : "";
    std::snprintf(buf, sizeof buf, "tcp %s:%u > %s:%u %s seq=%d%s len=%zu win=%u%s", s.addr.c_str(),
                  s.port, d.addr.c_str(), d.port, flagText(flags).c_str(),
                  static_cast<int32_t>(seq - s.isn0), ack_text.c_str(), len, s.window,
                  ws_text.c_str());
    push(from_a, dataplane::buildTcp(t), kind, buf);
  }

  void syn(bool from_a) {
    Endpoint& s = ep(from_a);
    seg(from_a, dataplane::kSyn, s.isn, 0, 0, Kind::kSyn, true);
    s.nxt = s.isn + 1;
  }
  void synAck() {
    seg(false, dataplane::kSyn | dataplane::kAck, b_.isn, a_.nxt, 0, Kind::kSynAck, true);
    b_.nxt = b_.isn + 1;
  }
  void ack(bool from_a) {
    seg(from_a, dataplane::kAck, ep(from_a).nxt, peer(from_a).nxt, 0, Kind::kAck);
  }
  void data(bool from_a) {
    const size_t len = 1 + rng_.below(1200);
    seg(from_a, dataplane::kAck | dataplane::kPsh, ep(from_a).nxt, peer(from_a).nxt, len,
        Kind::kData);
    ep(from_a).nxt += static_cast<uint32_t>(len);
  }
  void fin(bool from_a) {
    seg(from_a, dataplane::kFin | dataplane::kAck, ep(from_a).nxt, peer(from_a).nxt, 0, Kind::kFin);
    ep(from_a).nxt += 1;
    ep(from_a).fin = true;
  }
  void rst(bool from_a, bool in_window) {
    const uint32_t seq = in_window ? ep(from_a).nxt : ep(from_a).nxt + 0x40000000u;
    seg(from_a, rng_.chance(50) ? dataplane::kRst : (dataplane::kRst | dataplane::kAck), seq,
        peer(from_a).nxt, 0, Kind::kRst);
  }
  void retransmitLast() {
    Item copy = out_->back();
    copy.what += " (again)";
    out_->push_back(std::move(copy));
  }

  void maybeNoise() {
    if (rng_.chance(30)) noise();
  }

  // One packet off the ordinary conversation.
  void noise() {
    const bool from_a = rng_.chance(50);
    Endpoint& s = ep(from_a);
    Endpoint& d = peer(from_a);
    switch (rng_.below(10)) {
      case 0: {  // a retransmission of one of this flow's earlier packets
        std::vector<size_t> mine;
        for (size_t i = 0; i < out_->size(); ++i)
          if ((*out_)[i].flow == flow_) mine.push_back(i);
        if (mine.empty()) return;
        Item copy = (*out_)[rng_.pick(mine)];
        copy.what += " (again)";
        out_->push_back(std::move(copy));
        return;
      }
      case 1:  // data far above the window
        seg(from_a, dataplane::kAck | dataplane::kPsh,
            s.nxt + 0x20000000u + static_cast<uint32_t>(rng_.below(1u << 20)), d.nxt, 100,
            Kind::kData);
        return;
      case 2:  // data far below (old)
        seg(from_a, dataplane::kAck | dataplane::kPsh, s.nxt - 0x20000000u, d.nxt, 100,
            Kind::kData);
        return;
      case 3:  // an ACK of data never sent
        seg(from_a, dataplane::kAck, s.nxt, d.nxt + 0x10000000u, 0, Kind::kAck);
        return;
      case 4: {  // flag combinations no stack sends
        static const uint8_t odd[] = {dataplane::kSyn | dataplane::kFin, dataplane::kFin, 0,
                                      dataplane::kSyn | dataplane::kRst,
                                      dataplane::kFin | dataplane::kPsh | dataplane::kUrg};
        seg(from_a, odd[rng_.below(5)], s.nxt, 0, 0, Kind::kOddFlags);
        return;
      }
      case 5:  // an RST with a sequence number outside the window
        rst(from_a, false);
        return;
      case 6:  // a SYN with another initial sequence number
        seg(true, dataplane::kSyn, a_.isn + 0x1000000u, 0, 0, Kind::kSyn, true);
        return;
      case 7:  // a SYN-ACK again (or for the first time, out of order)
        seg(false, dataplane::kSyn | dataplane::kAck, b_.isn, a_.nxt, 0, Kind::kSynAck, true);
        return;
      case 8:  // data slightly beyond what the peer acknowledged, inside the window
        seg(from_a, dataplane::kAck, s.nxt + 1000, d.nxt, 500, Kind::kData);
        return;
      default:  // an in-window RST: the rest of the conversation comes after it
        rst(from_a, true);
        return;
    }
  }

  // Packets after the conversation's end, as stacks and attackers send them.
  void after() {
    if (!rng_.chance(40)) return;
    switch (rng_.below(6)) {
      case 0:  // data after FIN (from the side that closed, or not)
        data(rng_.chance(50));
        break;
      case 5: {  // an earlier data segment again, after the close (a late retransmission)
        std::vector<size_t> sent;
        for (size_t i = 0; i < out_->size(); ++i)
          if ((*out_)[i].flow == flow_ && (*out_)[i].kind == Kind::kData) sent.push_back(i);
        if (sent.empty()) break;
        Item copy = (*out_)[rng_.pick(sent)];
        copy.what += " (again, after the close)";
        out_->push_back(std::move(copy));
        break;
      }
      case 1:  // a SYN-ACK after the close
        seg(false, dataplane::kSyn | dataplane::kAck, b_.isn, a_.nxt, 0, Kind::kSynAck, true);
        break;
      case 2:  // the tuple reused: a new SYN with a higher ISN, answered
        a_.isn = a_.nxt + 100000;
        b_.isn = b_.nxt + 300000;
        syn(true);
        synAck();
        ack(true);
        break;
      case 3:
        ack(rng_.chance(50));
        break;
      default:
        rst(rng_.chance(50), true);
        break;
    }
  }

  void datagram(bool from_a, uint16_t sport, uint16_t dport) {
    Endpoint& s = ep(from_a);
    Endpoint& d = peer(from_a);
    const size_t len = 8 + rng_.below(200);
    char buf[160];
    std::snprintf(buf, sizeof buf, "udp %s:%u > %s:%u len=%zu", s.addr.c_str(), sport,
                  d.addr.c_str(), dport, len);
    push(from_a,
         dataplane::buildUdp({.src = ipAddr(s.addr),
                              .dst = ipAddr(d.addr),
                              .sport = sport,
                              .dport = dport,
                              .payload_len = len}),
         Kind::kUdp, buf);
  }

  void icmpEcho(bool from_a, uint16_t id, uint16_t seq, bool reply) {
    Endpoint& s = ep(from_a);
    Endpoint& d = peer(from_a);
    char buf[160];
    std::snprintf(buf, sizeof buf, "icmp %s > %s echo %s id=%u seq=%u", s.addr.c_str(),
                  d.addr.c_str(), reply ? "reply" : "request", id, seq);
    push(from_a,
         dataplane::buildIcmpEcho({.src = ipAddr(s.addr),
                                   .dst = ipAddr(d.addr),
                                   .id = id,
                                   .seq = seq,
                                   .reply = reply,
                                   .payload_len = 16}),
         reply ? Kind::kEchoReply : Kind::kEchoRequest, buf);
  }

  Rng& rng_;
  int flow_;
  std::vector<Item>* out_;
  Endpoint a_, b_;
};

// An ICMP error about `quoted` (an earlier packet): towards its sender (as a host or router on
// the path would send it) or, now and then, towards its destination.
Item icmpError(Rng& rng, const Item& quoted) {
  dataplane::ParsedPacket p;
  dataplane::parsePacket(quoted.frame.data(), static_cast<uint32_t>(quoted.frame.size()),
                         dataplane::LinkType::kEthernet, &p);
  const std::string qsrc = p.src.str(), qdst = p.dst.str();
  const bool to_sender = rng.chance(80);
  const std::string dst = to_sender ? qsrc : qdst;
  const std::string near = to_sender ? qdst : qsrc;  // the other side of the router
  const std::string src =
      rng.chance(60) ? near : (sideOf(near) == kClient ? "192.0.2.99" : "198.51.100.99");
  struct Type {
    uint8_t type, code;
    uint32_t rest;
    const char* name;
  };
  static const Type kTypes[] = {{3, 3, 0, "port unreachable"},
                                {3, 1, 0, "host unreachable"},
                                {3, 4, 1280, "fragmentation needed"},
                                {11, 0, 0, "time exceeded"}};
  const Type& t = kTypes[rng.below(4)];
  Bytes ip(quoted.frame.begin() + 14, quoted.frame.end());
  const size_t quote = rng.chance(50) ? 28 : 0;
  Item it;
  it.kind = Kind::kIcmpError;
  it.side = sideOf(src);
  it.flow = quoted.flow;
  it.from_originator = !quoted.from_originator;
  it.error_to_sender = to_sender;
  it.quoted = quoted.kind;
  it.quoted_from_originator = quoted.from_originator;
  it.frame = dataplane::buildIcmpError({.src = ipAddr(src),
                                        .dst = ipAddr(dst),
                                        .type = t.type,
                                        .code = t.code,
                                        .rest = t.rest,
                                        .max_quote = quote},
                                       ip);
  it.what = "icmp " + src + " > " + dst + " " + t.name + " quoting [" + quoted.what + "]";
  return it;
}

}  // namespace

Scenario generate(uint64_t seed, uint32_t timeout_s) {
  Rng rng(seed);
  Scenario sc;
  sc.policy_yaml = policyYaml(rng, timeout_s);

  // Flows, each built whole, then interleaved at random keeping each flow's own order.
  const int n_flows = 1 + static_cast<int>(rng.below(4));
  std::vector<std::vector<Item>> flows(static_cast<size_t>(n_flows));
  const std::vector<std::string> clients = {"192.0.2.10", "192.0.2.20"};
  const std::vector<std::string> servers = {"198.51.100.10", "198.51.100.20"};
  for (int f = 0; f < n_flows; ++f) {
    FlowBuilder b(rng, f, &flows[static_cast<size_t>(f)]);
    Endpoint c;
    c.addr = rng.pick(clients);
    c.port = static_cast<uint16_t>(32768 + rng.below(28000));
    Endpoint s;
    s.addr = rng.pick(servers);
    c.isn = static_cast<uint32_t>(rng.below(1ull << 32));
    s.isn = static_cast<uint32_t>(rng.below(1ull << 32));
    c.window = static_cast<uint16_t>(rng.chance(50) ? 65535 : 8192 + rng.below(50000));
    s.window = static_cast<uint16_t>(rng.chance(50) ? 65535 : 8192 + rng.below(50000));
    const bool server_first = rng.chance(20);
    const unsigned kind = static_cast<unsigned>(rng.below(100));
    if (kind < 60) {
      s.port = server_first
                   ? (rng.chance(50) ? 22 : c.port)
                   : static_cast<uint16_t>(rng.pick(std::vector<int>{80, 443, 5432, 8080}));
      if (server_first) c.port = static_cast<uint16_t>(1024 + rng.below(30000));
      server_first ? b.tcp(s, c) : b.tcp(c, s);
    } else if (kind < 80) {
      s.port = static_cast<uint16_t>(rng.pick(std::vector<int>{53, 123, 5000}));
      server_first ? b.udp(s, c) : b.udp(c, s);
    } else {
      server_first ? b.echo(s, c) : b.echo(c, s);
    }
  }
  std::vector<size_t> pos(flows.size(), 0);
  size_t left = 0;
  for (const auto& f : flows)
    left += f.size();
  bool gapped = false;
  const bool wants_gap = rng.chance(35);
  while (left > 0) {
    size_t f = rng.below(flows.size());
    while (pos[f] == flows[f].size())
      f = (f + 1) % flows.size();
    sc.items.push_back(flows[f][pos[f]++]);
    --left;
    if (rng.chance(6)) {
      std::vector<size_t> quotable;
      for (size_t i = 0; i < sc.items.size(); ++i)
        if (sc.items[i].kind != Kind::kGap && sc.items[i].kind != Kind::kIcmpError)
          quotable.push_back(i);
      sc.items.push_back(icmpError(rng, sc.items[rng.pick(quotable)]));
    }
    if (wants_gap && !gapped && left > 0 && rng.chance(10)) {
      Item g;
      g.kind = Kind::kGap;
      g.what = "(idle gap longer than every timeout)";
      sc.items.push_back(std::move(g));
      gapped = true;
    }
  }
  return sc;
}

}  // namespace statewall::kerneltest
