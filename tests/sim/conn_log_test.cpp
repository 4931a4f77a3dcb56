// Zeek conn_state and history letters of ConnRecord, one conversation per state; and the
// attribution of packets to records (sim/src/conn_tracker.hpp) that the connection log is built on.
#include <vector>

#include <gtest/gtest.h>

#include "../sim/src/conn_tracker.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/policy.hpp"
#include "statewall/sim/conn_log.hpp"

namespace statewall::sim {
namespace {

using namespace statewall::dataplane;

// A TCP conversation between a client (C) and a server (S), told one segment at a time.
class Talk {
 public:
  explicit Talk(uint8_t proto = kIpProtoTcp) : proto_(proto) {}

  // A segment from the client (`from_client`) or the server.
  Talk& tcp(bool from_client, uint8_t flags, uint32_t payload = 0, uint16_t window = 1000,
            std::optional<uint32_t> seq = std::nullopt) {
    TcpSpec t;
    t.src = from_client ? client_ : server_;
    t.dst = from_client ? server_ : client_;
    t.sport = from_client ? 40000 : 443;
    t.dport = from_client ? 443 : 40000;
    t.flags = flags;
    uint32_t& next = from_client ? c_seq_ : s_seq_;
    t.seq = seq ? *seq : next;
    t.ack = from_client ? s_seq_ : c_seq_;
    t.window = window;
    t.payload_len = payload;
    if (!seq) next += payload + ((flags & (kSyn | kFin)) ? 1 : 0);
    add(buildTcp(t), from_client);
    return *this;
  }
  Talk& udp(bool from_client, size_t payload) {
    UdpSpec u;
    u.src = from_client ? client_ : server_;
    u.dst = from_client ? server_ : client_;
    u.sport = from_client ? 40000 : 53;
    u.dport = from_client ? 53 : 40000;
    u.payload_len = payload;
    add(buildUdp(u), from_client);
    return *this;
  }
  Talk& ping(bool from_client) {
    IcmpEchoSpec e;
    e.src = from_client ? client_ : server_;
    e.dst = from_client ? server_ : client_;
    e.reply = !from_client;
    add(buildIcmpEcho(e), from_client);
    return *this;
  }
  const ConnRecord& rec() const { return rec_; }
  std::string state() const { return std::string(rec_.connState()); }
  std::string history() const { return std::string(rec_.history_str()); }

 private:
  void add(const Bytes& frame, bool from_client) {
    ParsedPacket p;
    EXPECT_TRUE(
        parsePacket(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::kEthernet, &p));
    // As the replay does for untracked flows: the first packet's sender is the originator.
    if (first_) {
      first_client_ = from_client;
      rec_.begin(p, false);
      first_ = false;
    }
    rec_.observe(p, from_client == first_client_, ts_ += 1000);
  }

  uint8_t proto_;
  IpAddr client_ = ipAddr("198.51.100.7");
  IpAddr server_ = ipAddr("10.0.1.10");
  uint32_t c_seq_ = 1000, s_seq_ = 5000;
  ConnRecord rec_;
  bool first_ = true;
  bool first_client_ = true;
  uint64_t ts_ = 0;
};

constexpr bool C = true;
constexpr bool S = false;

TEST(ConnLog, SfIsAFullConversation) {
  Talk t;
  t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(C, kPsh | kAck, 100);
  t.tcp(S, kAck, 1400).tcp(S, kPsh | kAck, 600).tcp(C, kAck);
  t.tcp(C, kFin | kAck).tcp(S, kFin | kAck).tcp(C, kAck);
  EXPECT_EQ(t.state(), "SF");
  EXPECT_EQ(t.history(), "ShADdFf");  // the server never sent a pure ACK
  EXPECT_EQ(t.rec().orig.pkts, 6u);
  EXPECT_EQ(t.rec().resp.pkts, 4u);
  EXPECT_EQ(t.rec().orig.payload_bytes, 100u);
  EXPECT_EQ(t.rec().resp.payload_bytes, 2000u);
  EXPECT_EQ(t.rec().orig_h.str(), "198.51.100.7");
  EXPECT_EQ(t.rec().resp_p, 443);
  EXPECT_TRUE(t.rec().tcpClosed());
}

TEST(ConnLog, ResetAfterBothSidesClosedIsStillSf) {
  // Zeek's pop3-starttls: ShAadDfFr. The server closes, the client closes, then the server resets.
  Talk t;
  t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(S, kPsh | kAck, 20);
  t.tcp(C, kPsh | kAck, 10).tcp(S, kFin | kAck).tcp(C, kFin | kAck).tcp(S, kRst);
  EXPECT_EQ(t.history(), "ShAdDfFr");
  EXPECT_EQ(t.state(), "SF");
}

TEST(ConnLog, FinThenResetIsClosedWhenThePeerClosesLater) {
  // Zeek's irc-starttls: ShADadFRf. The client sends FIN then RST, then the server's FIN.
  Talk t;
  t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(C, kPsh | kAck, 10);
  t.tcp(S, kPsh | kAck, 20).tcp(C, kFin | kAck).tcp(C, kRst);
  EXPECT_EQ(t.state(), "RSTO");  // until the server closes
  t.tcp(S, kFin | kAck);
  EXPECT_EQ(t.history(), "ShADdFRf");
  EXPECT_EQ(t.state(), "SF");
}

TEST(ConnLog, ResetWithoutAFinOrBeforeThePeerClosedStaysReset) {
  Talk a;  // established, RST and then the peer's FIN: RSTO (a RST without an own FIN stays)
  a.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(C, kRst).tcp(S, kFin | kAck);
  EXPECT_EQ(a.state(), "RSTO");
  Talk b;  // own FIN, then RST while the peer is still open: RSTR
  b.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(S, kFin | kAck).tcp(S, kRst);
  EXPECT_EQ(b.state(), "RSTR");
}

TEST(ConnLog, EveryTcpState) {
  struct Case {
    const char* name;
    std::function<void(Talk&)> talk;
    const char* state;
    const char* history;
  } cases[] = {
      {"attempt, no answer", [](Talk& t) { t.tcp(C, kSyn).tcp(C, kSyn, 0, 1000, 999); }, "S0", "S"},
      {"rejected", [](Talk& t) { t.tcp(C, kSyn).tcp(S, kRst | kAck); }, "REJ", "Sr"},
      {"established", [](Talk& t) { t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck, 10); }, "S1",
       "ShD"},
      {"originator closes, responder silent",
       [](Talk& t) { t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(C, kFin | kAck); }, "S2",
       "ShAF"},
      {"responder closes, originator silent",
       [](Talk& t) { t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(S, kFin | kAck); }, "S3",
       "ShAf"},
      {"originator resets",
       [](Talk& t) { t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck).tcp(C, kRst | kAck); }, "RSTO",
       "ShAR"},
      {"responder resets",
       [](Talk& t) { t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck, 5).tcp(S, kRst | kAck); },
       "RSTR", "ShDr"},
      {"SYN then RST", [](Talk& t) { t.tcp(C, kSyn).tcp(C, kRst); }, "RSTOS0", "SR"},
      {"SYN then FIN", [](Talk& t) { t.tcp(C, kSyn).tcp(C, kFin | kAck); }, "SH", "SF"},
      {"SYN-ACK then RST (roles flipped)", [](Talk& t) { t.tcp(S, kSyn | kAck).tcp(S, kRst); },
       "RSTRH", "^hr"},
      {"SYN-ACK then FIN (roles flipped)",
       [](Talk& t) { t.tcp(S, kSyn | kAck).tcp(S, kFin | kAck); }, "SHR", "^hf"},
      {"mid-stream", [](Talk& t) { t.tcp(C, kAck, 100).tcp(S, kAck, 100); }, "OTH", "Dd"},
      {"SYN with FIN", [](Talk& t) { t.tcp(C, kSyn | kFin); }, "SH", "QF"},
      {"FIN with RST",
       [](Talk& t) { t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kFin | kRst | kAck); }, "RSTO",
       "ShIFR"},
  };
  for (const auto& c : cases) {
    Talk t;
    c.talk(t);
    EXPECT_EQ(t.state(), c.state) << c.name;
    EXPECT_EQ(t.history(), c.history) << c.name;
  }
}

TEST(ConnLog, RetransmissionAndZeroWindowRepeatAtPowersOfTen) {
  Talk t;
  t.tcp(C, kSyn).tcp(S, kSyn | kAck).tcp(C, kAck);
  t.tcp(S, kAck, 100);
  for (int i = 0; i < 12; ++i)
    t.tcp(S, kAck, 100, 1000, 5001);  // the same segment again
  t.tcp(C, kAck, 0, 0);               // zero window
  t.tcp(C, kAck, 0, 0);
  // T at the 1st and 10th retransmission; W once for the client (the 2nd zero window is not a power
  // of ten).
  EXPECT_EQ(t.history(), "ShAdttW");
  EXPECT_EQ(t.rec().resp.retrans, 12u);
}

TEST(ConnLog, UdpAndIcmp) {
  Talk both;
  both.udp(C, 40).udp(S, 120);
  EXPECT_EQ(both.state(), "SF");
  EXPECT_EQ(both.history(), "Dd");
  EXPECT_EQ(both.rec().orig.payload_bytes, 40u);
  EXPECT_EQ(both.rec().resp.payload_bytes, 120u);
  EXPECT_EQ(both.rec().orig.ip_bytes, 20u + 8 + 40);

  Talk one;
  one.udp(C, 40).udp(C, 40);
  EXPECT_EQ(one.state(), "S0");

  Talk ping;
  ping.ping(C).ping(S);
  EXPECT_EQ(ping.state(), "OTH");
  EXPECT_EQ(ping.rec().orig_p, kIcmpEchoRequest);  // Zeek logs ICMP type and code as ports
  EXPECT_EQ(ping.rec().resp_p, 0);
  EXPECT_EQ(ping.rec().orig.pkts, 1u);
  EXPECT_EQ(ping.rec().resp.pkts, 1u);
}

TEST(ConnLog, UidIsStableAndDistinct) {
  ConnRecord a, b;
  a.seq = 1;
  b.seq = 2;
  EXPECT_EQ(a.uid().size(), 18u);
  EXPECT_EQ(a.uid()[0], 'C');
  EXPECT_NE(a.uid(), b.uid());
  ConnRecord a2;
  a2.seq = 1;
  EXPECT_EQ(a.uid(), a2.uid());
}

// The records a ConnTracker ends, in the order it ends them.
struct Collect final : sim::detail::ConnSink {
  void connectionsEnded(const ConnRecord* records, size_t n) override {
    ended.insert(ended.end(), records, records + n);
  }
  std::vector<ConnRecord> ended;
};

ParsedPacket parsed(const Bytes& frame) {
  ParsedPacket p;
  EXPECT_TRUE(
      parsePacket(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::kEthernet, &p));
  return p;
}

Verdict judged(Reason reason, uint64_t conn_id, uint16_t flags) {
  Verdict v;
  v.reason = reason;
  v.conn_id = conn_id;
  v.flags = flags;
  return v;
}

TEST(ConnTracker, AttributesPacketsToConnectionsAndFlows) {
  Collect sink;
  sim::detail::ConnTracker t(&sink, nullptr);
  const rules::Timeouts timeouts = rules::Timeouts::defaults(rules::TimeoutProfile::kAws);
  t.advance(nullptr, 0, &timeouts, 1024);
  TcpSpec syn;
  syn.src = ipAddr("198.51.100.7");
  syn.dst = ipAddr("10.0.1.10");
  syn.dport = 443;
  syn.flags = kSyn;
  TcpSpec synack = syn;
  std::swap(synack.src, synack.dst);
  std::swap(synack.sport, synack.dport);
  synack.flags = kSyn | kAck;

  // A tracked connection: the reply is the responder's.
  auto a = t.observe(parsed(buildTcp(syn)), judged(Reason::kAllowRule, 7, kFlagNewConnection), 1);
  ASSERT_NE(a.record, nullptr);
  EXPECT_TRUE(a.from_orig);
  const uint64_t first_seq = a.record->seq;
  t.settle();
  a = t.observe(parsed(buildTcp(synack)), judged(Reason::kAllowTracked, 7, kFlagReply), 2);
  ASSERT_NE(a.record, nullptr);
  EXPECT_FALSE(a.from_orig);
  EXPECT_EQ(a.record->seq, first_seq);
  EXPECT_EQ(a.record->resp.pkts, 1u);
  t.settle();

  // An ICMP error about it is counted on it, not as one of its packets.
  IcmpErrorSpec e;
  e.src = ipAddr("10.0.1.1");
  e.dst = syn.src;
  a = t.observe(parsed(buildIcmpError(e, buildTcp(syn, rawIp()))),
                judged(Reason::kAllowRelated, 7, 0), 3);
  ASSERT_NE(a.record, nullptr);
  EXPECT_TRUE(a.icmp_error);
  EXPECT_EQ(a.record->icmp_errors, 1u);
  EXPECT_EQ(a.record->orig.pkts + a.record->resp.pkts, 2u);
  t.settle();

  // The engine reuses the id for a new connection: the old record ends at once.
  a = t.observe(parsed(buildTcp(syn)), judged(Reason::kAllowRule, 7, kFlagNewConnection), 4);
  t.settle();
  ASSERT_EQ(sink.ended.size(), 1u);
  EXPECT_EQ(sink.ended[0].seq, first_seq);
  EXPECT_EQ(sink.ended[0].end, ConnEnd::kTimedOut);
  EXPECT_NE(a.record->seq, first_seq);

  // Denied packets without a connection: both directions of a flow share one record.
  UdpSpec u;
  u.src = ipAddr("203.0.113.9");
  u.dst = ipAddr("10.0.1.10");
  u.dport = 53;
  UdpSpec back = u;
  std::swap(back.src, back.dst);
  std::swap(back.sport, back.dport);
  a = t.observe(parsed(buildUdp(u)), judged(Reason::kDenySg, 0, 0), 5);
  const uint64_t flow_seq = a.record->seq;
  t.settle();
  a = t.observe(parsed(buildUdp(back)), judged(Reason::kDenySg, 0, 0), 6);
  EXPECT_EQ(a.record->seq, flow_seq);
  EXPECT_FALSE(a.from_orig);
  EXPECT_EQ(a.record->denied_pkts, 2u);
  t.settle();

  // Non-IP frames are not attributed.
  ArpSpec arp;
  EXPECT_EQ(t.observe(parsed(buildArp(arp)), judged(Reason::kAllowUnprotected, 0, kFlagControl), 7)
                .record,
            nullptr);

  t.endAll();
  EXPECT_EQ(sink.ended.size(), 3u);  // the reused id's two records and the UDP flow
}

TEST(ConnTracker, TunnelsAreRecordsAndParentsOfWhatTheyCarry) {
  Collect sink;
  sim::detail::ConnTracker t(&sink, nullptr);
  const rules::Timeouts timeouts = rules::Timeouts::defaults(rules::TimeoutProfile::kAws);
  t.advance(nullptr, 0, &timeouts, 1024);
  UdpSpec outer;
  outer.src = ipAddr("192.0.2.1");
  outer.dst = ipAddr("192.0.2.2");
  outer.sport = 49152;
  outer.dport = 4789;
  outer.payload_len = 100;
  UdpSpec nested = outer;  // a second tunnel inside the first
  nested.src = ipAddr("192.0.2.11");
  nested.dst = ipAddr("192.0.2.12");
  sim::detail::ConnTracker::Carrier carriers[2];
  carriers[0].kind = EncapHeader::Kind::kVxlan;
  carriers[0].packet = parsed(buildUdp(outer));
  carriers[1].kind = EncapHeader::Kind::kGeneve;
  carriers[1].packet = parsed(buildUdp(nested));
  TcpSpec syn;
  syn.src = ipAddr("198.51.100.7");
  syn.dst = ipAddr("10.0.1.10");
  syn.flags = kSyn;
  t.observeTunnels(carriers, 2, judged(Reason::kAllowRule, 9, kFlagNewConnection), 1);
  auto a = t.observe(parsed(buildTcp(syn)), judged(Reason::kAllowRule, 9, kFlagNewConnection), 1);
  t.settle();
  ASSERT_NE(a.record, nullptr);
  ASSERT_EQ(a.record->parent_count, 2u);
  const uint64_t inner_seq = a.record->seq;
  // A packet of the same connection through the outer tunnel only adds nothing new.
  t.observeTunnels(carriers, 1, judged(Reason::kDenyInvalid, 9, 0), 2);
  a = t.observe(parsed(buildTcp(syn)), judged(Reason::kAllowTracked, 9, 0), 2);
  t.settle();
  EXPECT_EQ(a.record->parent_count, 2u);
  // Parents are consumed by the next packet only.
  a = t.observe(parsed(buildTcp(syn)), judged(Reason::kAllowTracked, 9, 0), 3);
  t.settle();
  EXPECT_EQ(a.record->parent_count, 2u);

  t.endAll();
  ASSERT_EQ(sink.ended.size(), 3u);
  const ConnRecord* inner = nullptr;
  std::vector<const ConnRecord*> tunnels;
  for (const ConnRecord& r : sink.ended)
    (r.seq == inner_seq ? inner : tunnels.emplace_back()) = &r;
  ASSERT_NE(inner, nullptr);
  ASSERT_EQ(tunnels.size(), 2u);
  EXPECT_FALSE(inner->is_tunnel);
  EXPECT_EQ(inner->parents[0], tunnels[0]->seq);  // outermost first
  EXPECT_EQ(inner->parents[1], tunnels[1]->seq);
  EXPECT_TRUE(tunnels[0]->is_tunnel);
  EXPECT_EQ(tunnels[0]->tunnel, EncapHeader::Kind::kVxlan);
  EXPECT_EQ(tunnels[0]->orig.pkts, 2u);
  EXPECT_EQ(tunnels[0]->first_reason, Reason::kAllowRule);  // its first frame's verdict
  EXPECT_EQ(tunnels[0]->denied_pkts, 1u);
  EXPECT_EQ(tunnels[1]->denied_pkts, 0u);
  EXPECT_EQ(tunnels[0]->orig_h, outer.src);
  EXPECT_EQ(tunnels[0]->resp_p, 4789);
  EXPECT_EQ(tunnels[1]->tunnel, EncapHeader::Kind::kGeneve);
  EXPECT_EQ(tunnels[1]->orig.pkts, 1u);
  EXPECT_EQ(tunnels[0]->parent_count, 0u);
}

// Zeek's records for connections seen only as they close (its Teredo.pcap, ports 1576-1578):
// the FIN the engine does not track and the ACK it picks up make one record; Zeek removes a
// connection 5 s after its close completes or a RST, so a later packet starts a new record; a
// first packet from a likely server port names the other side the originator ('^').
TEST(ConnTracker, RecordsOfAConnectionSeenClosingFollowZeek) {
  Collect sink;
  sim::detail::ConnTracker t(&sink, nullptr);
  const rules::Timeouts timeouts = rules::Timeouts::defaults(rules::TimeoutProfile::kAws);
  t.advance(nullptr, 0, &timeouts, 1024);
  TcpSpec from_server;
  from_server.src = ipAddr("203.0.113.80");
  from_server.dst = ipAddr("192.168.2.16");
  from_server.sport = 80;
  from_server.dport = 1576;
  TcpSpec from_client = from_server;
  std::swap(from_client.src, from_client.dst);
  std::swap(from_client.sport, from_client.dport);
  constexpr uint64_t kS = 1'000'000'000;
  auto send = [&](TcpSpec spec, uint8_t flags, Verdict v, uint64_t ts) {
    spec.flags = flags;
    auto a = t.observe(parsed(buildTcp(spec)), v, ts);
    t.settle();
    return a;
  };
  // The server's FIN: no connection. The client's ACK: picked up, a connection (id 9).
  send(from_server, kFin | kAck, judged(Reason::kAllowUnprotected, 0, 0), 1 * kS);
  auto a = send(from_client, kAck, judged(Reason::kAllowUnprotected, 9, kFlagNewConnection),
                1 * kS + 400'000);
  EXPECT_EQ(std::string(a.record->history_str()), "^fA");
  EXPECT_EQ(a.record->conn_id, 9u);
  EXPECT_EQ(std::string(a.record->connState()), "SHR");
  EXPECT_EQ(a.record->orig_p, 1576);
  // 10 s later the client's RST, still on connection 9: a new record (Zeek removed the first).
  a = send(from_client, kRst | kAck, judged(Reason::kAllowUnprotected, 9, 0), 11 * kS);
  ASSERT_EQ(sink.ended.size(), 1u);
  EXPECT_EQ(std::string(sink.ended[0].connState()), "SHR");
  EXPECT_EQ(std::string(a.record->history_str()), "R");
  EXPECT_EQ(std::string(a.record->connState()), "OTH");
  // 16 s later the server's RST, after the engine dropped the connection.
  a = send(from_server, kRst | kAck, judged(Reason::kAllowUnprotected, 0, 0), 27 * kS);
  EXPECT_EQ(std::string(a.record->history_str()), "^r");
  EXPECT_EQ(std::string(a.record->connState()), "RSTRH");
  EXPECT_EQ(a.record->orig_p, 1576);
  t.endAll();
  ASSERT_EQ(sink.ended.size(), 3u);
  EXPECT_EQ(std::string(sink.ended[1].connState()), "OTH");
  EXPECT_EQ(std::string(sink.ended[2].connState()), "RSTRH");
}

TEST(ConnTracker, PacketsWithinZeeksCloseDelayStayInTheRecord) {
  Collect sink;
  sim::detail::ConnTracker t(&sink, nullptr);
  const rules::Timeouts timeouts = rules::Timeouts::defaults(rules::TimeoutProfile::kAws);
  t.advance(nullptr, 0, &timeouts, 1024);
  TcpSpec c;
  c.src = ipAddr("192.168.2.16");
  c.dst = ipAddr("203.0.113.80");
  c.sport = 1577;
  c.dport = 80;
  TcpSpec s = c;
  std::swap(s.src, s.dst);
  std::swap(s.sport, s.dport);
  constexpr uint64_t kS = 1'000'000'000;
  c.flags = kFin | kAck;  // the client closes first: not flipped (1577 is no server port)
  auto a = t.observe(parsed(buildTcp(c)), judged(Reason::kAllowUnprotected, 0, 0), 1 * kS);
  t.settle();
  s.flags = kAck;
  a = t.observe(parsed(buildTcp(s)), judged(Reason::kAllowUnprotected, 0, 0), 5 * kS);
  t.settle();
  EXPECT_EQ(std::string(a.record->history_str()), "Fa");
  EXPECT_EQ(std::string(a.record->connState()), "SH");
  EXPECT_TRUE(sink.ended.empty());
}

// Zeek's ssh.client-side-half-duplex: only the client's side was captured. Zeek gives up on an
// attempt 5 s after its SYN while the responder is silent; what follows is a new record.
TEST(ConnTracker, AOneSidedAttemptEndsAfterZeeksAttemptDelay) {
  Collect sink;
  sim::detail::ConnTracker t(&sink, nullptr);
  const rules::Timeouts timeouts = rules::Timeouts::defaults(rules::TimeoutProfile::kAws);
  t.advance(nullptr, 0, &timeouts, 1024);
  TcpSpec c;
  c.src = ipAddr("192.168.1.79");
  c.dst = ipAddr("203.0.113.1");
  c.sport = 51880;
  c.dport = 22;
  constexpr uint64_t kS = 1'000'000'000;
  auto send = [&](uint8_t flags, uint32_t len, uint64_t ts) {
    c.flags = flags;
    c.payload_len = len;
    auto a = t.observe(parsed(buildTcp(c)), judged(Reason::kAllowUnprotected, 0, 0), ts);
    t.settle();
    return a;
  };
  send(kSyn, 0, 1 * kS);
  send(kAck, 0, 2 * kS);
  auto a = send(kAck | kPsh, 20, 3 * kS);
  EXPECT_EQ(std::string(a.record->history_str()), "SAD");
  EXPECT_EQ(std::string(a.record->connState()), "S0");
  a = send(kAck | kPsh, 20, 7 * kS);  // 6 s after the SYN
  ASSERT_EQ(sink.ended.size(), 1u);
  EXPECT_EQ(std::string(sink.ended[0].history_str()), "SAD");
  a = send(kFin | kAck, 0, 8 * kS);
  EXPECT_EQ(std::string(a.record->history_str()), "DF");
  EXPECT_EQ(std::string(a.record->connState()), "SH");
}

// A flow without a connection, idle beyond its timeout, ends at its next packet, which starts a
// new record (as Zeek's inactivity timer ends a connection): the records do not depend on when a
// scan runs. Before, the record went on until a scan happened to find it idle (the report ended
// it on the next packet, so the two disagreed).
TEST(ConnTracker, AnIdleFlowEndsAtItsNextPacketWhateverTheScans) {
  Collect sink;
  sim::detail::ConnTracker t(&sink, nullptr);
  const rules::Timeouts timeouts = rules::Timeouts::defaults(rules::TimeoutProfile::kAws);
  constexpr uint64_t kS = 1'000'000'000;
  UdpSpec u;
  u.src = ipAddr("203.0.113.9");
  u.dst = ipAddr("10.0.1.10");
  u.dport = 53;
  t.advance(nullptr, 1 * kS, &timeouts, 1024);
  auto a = t.observe(parsed(buildUdp(u)), judged(Reason::kDenySg, 0, 0), 1 * kS);
  const uint64_t first = a.record->seq;
  t.settle();
  t.advance(nullptr, 20 * kS, &timeouts, 1024);  // within udp's 30 s: the same record
  a = t.observe(parsed(buildUdp(u)), judged(Reason::kDenySg, 0, 0), 20 * kS);
  EXPECT_EQ(a.record->seq, first);
  t.settle();
  t.advance(nullptr, 60 * kS, &timeouts, 1024);  // 40 s idle: a new record
  a = t.observe(parsed(buildUdp(u)), judged(Reason::kDenySg, 0, 0), 60 * kS);
  EXPECT_NE(a.record->seq, first);
  ASSERT_EQ(sink.ended.size(), 1u);
  EXPECT_EQ(sink.ended[0].seq, first);
  EXPECT_EQ(sink.ended[0].end, ConnEnd::kTimedOut);
  EXPECT_EQ(sink.ended[0].orig.pkts, 2u);
}

}  // namespace
}  // namespace statewall::sim
