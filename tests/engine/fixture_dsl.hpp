// The fixture table's building blocks (internal to tests/engine/fixtures*.cpp): expectations
// (X and its constructors), the fixture builder (Fx), a TCP conversation (Tcp), the shared
// addresses and policies. Each fixtures_*.cpp file adds one family of scenarios with put().
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/fixtures.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::fixtures::dsl {

using namespace dataplane;
using Bytes = std::vector<uint8_t>;

inline constexpr uint64_t kSec = 1'000'000'000ull;
inline constexpr uint64_t kMs = 1'000'000ull;
// Fixtures start at 1000 s of injected clock (not 0: an engine may treat 0 as "no time").
inline constexpr uint64_t kT0 = 1000 * kSec;

// ---------------------------------------------------------------------------------------------
// Expectations.
// ---------------------------------------------------------------------------------------------

struct X {
  Reason reason;
  std::optional<TcpState> tcp{};
  std::optional<std::string> rule{};
  uint16_t flags = 0;
  std::optional<std::string> where{};
  uint16_t unset = kExclusiveFlags;
  std::optional<TcpState> before{};

  // This flag may or may not be set (docs/design.md does not decide it for this packet).
  X dontCare(uint16_t f) const {
    X x = *this;
    x.unset = static_cast<uint16_t>(x.unset & ~f);
    return x;
  }
  X with(uint16_t f) const {
    X x = *this;
    x.flags = static_cast<uint16_t>(x.flags | f);
    return x;
  }
};

using St = std::optional<TcpState>;
inline constexpr std::nullopt_t kAnyState = std::nullopt;

inline X allowRule(const std::string& rule, St st = kAnyState, uint16_t flags = 0) {
  return X{Reason::kAllowRule, st, rule, flags};
}
inline X tracked(const std::string& rule, St st = kAnyState, uint16_t flags = 0) {
  return X{Reason::kAllowTracked, st, rule, flags};
}
// allow-tracked without a rule check (after a policy swap the opening rule's id belongs to the
// old policy).
inline X trackedAnyRule(St st = kAnyState, uint16_t flags = 0) {
  return X{Reason::kAllowTracked, st, std::nullopt, flags};
}
inline X related(const std::string& rule) {
  return X{Reason::kAllowRelated, kAnyState, rule, 0};
}
inline X untracked(const std::string& rule, uint16_t flags = 0) {
  return X{Reason::kAllowUntracked, kAnyState, rule, static_cast<uint16_t>(flags | kFlagUntracked)};
}
inline X unprotected(uint16_t flags = 0) {
  return X{Reason::kAllowUnprotected, kAnyState, {}, flags};
}
// allow-exempt naming the exemption (in `where`, as denyWhere() prints it).
inline X exempt(rules::Exemption e, uint16_t flags = 0) {
  return X{Reason::kAllowExempt, kAnyState, {}, flags, std::string(rules::exemptionName(e))};
}
inline X exemptControl(rules::Exemption e) {
  return exempt(e, kFlagControl);
}
inline X denySg(const std::string& where, St st = kAnyState, uint16_t flags = 0) {
  return X{Reason::kDenySg, st, {}, flags, where};
}
inline X denyAcl(const std::string& where) {
  return X{Reason::kDenyAcl, kAnyState, {}, 0, where};
}
inline X denyInvalid(St st = kAnyState) {
  return X{Reason::kDenyInvalid, st, {}, kFlagTcpInvalid};
}
inline X denyFull() {
  return X{Reason::kDenyTableFull};
}
// A non-first fragment whose first fragment was never seen. Whether it carries kFlagFragment
// ("a non-first fragment, judged by its first fragment's verdict") is left open: it is one, but
// no first fragment judged it.
inline X orphanFragment() {
  return X{Reason::kDenyMalformed, kAnyState, {}, 0, "fragment"}.dontCare(kFlagFragment);
}
inline X malformed(std::optional<std::string> layer) {
  return X{Reason::kDenyMalformed, kAnyState, {}, 0, std::move(layer)};
}

// ---------------------------------------------------------------------------------------------
// Building fixtures.
// ---------------------------------------------------------------------------------------------

class Fx {
 public:
  Fx(std::string name, std::string description, std::string policy) {
    f_.name = std::move(name);
    f_.description = std::move(description);
    f_.policy_yaml = std::move(policy);
  }
  Fx& capacity(size_t c) {
    f_.table_capacity = c;
    return *this;
  }
  Fx& link(LinkType l) {
    f_.link = l;
    return *this;
  }
  // Advances the injected clock; later packets carry the new time.
  Fx& wait(double seconds) {
    now_ += static_cast<uint64_t>(seconds * static_cast<double>(kSec));
    return *this;
  }
  Fx& waitNs(uint64_t ns) {
    now_ += ns;
    return *this;
  }
  Fx& swap(std::string policy) {
    f_.changes.push_back(PolicyChange{f_.packets.size(), std::move(policy)});
    return *this;
  }
  Fx& add(std::string note, Bytes frame, const X& x) {
    FixturePacket p;
    p.note = std::move(note);
    p.frame = std::move(frame);
    p.at_ns = now_;
    p.reason = x.reason;
    p.tcp_before = x.before;
    p.tcp_after = x.tcp;
    p.rule_text = x.rule;
    p.flags_set = x.flags;
    p.flags_unset = x.unset;
    p.where = x.where;
    f_.packets.push_back(std::move(p));
    return *this;
  }
  const Fixture& fixture() const { return f_; }
  Fixture take() { return std::move(f_); }

 private:
  Fixture f_;
  uint64_t now_ = kT0;
};

// A TCP conversation between a client (the originator, "C") and a server ("S"). c()/s() build the
// next segment of each side with its current sequence number, acknowledging everything the peer
// sent, and advance the sender; cAt()/sAt() build any segment without advancing anything.
class Tcp {
 public:
  Tcp(std::string_view client, uint16_t cport, std::string_view server, uint16_t sport,
      FrameOptions opts = {}, uint32_t c_isn = 1000000, uint32_t s_isn = 7000000)
      : c_ip_(ipAddr(client)),
        s_ip_(ipAddr(server)),
        cport_(cport),
        sport_(sport),
        opts_(std::move(opts)) {
    side_[0].isn = side_[0].nxt = c_isn;
    side_[1].isn = side_[1].nxt = s_isn;
  }

  struct Side {
    uint32_t isn = 0;
    uint32_t nxt = 0;      // next sequence number this side sends
    uint32_t fin = 0;      // sequence number of its FIN, once sent
    uint16_t win = 65535;  // raw window field
    std::optional<uint8_t> wscale{};
  };
  Side& cs() { return side_[0]; }
  Side& ss() { return side_[1]; }
  const Side& cs() const { return side_[0]; }
  const Side& ss() const { return side_[1]; }

  Bytes c(uint8_t flags, size_t len = 0) { return next(0, flags, len, opts_); }
  Bytes s(uint8_t flags, size_t len = 0) { return next(1, flags, len, opts_); }
  Bytes cAt(uint8_t flags, uint32_t seq, uint32_t ack, size_t len = 0) const {
    return buildTcp(spec(0, flags, seq, ack, len), opts_);
  }
  Bytes sAt(uint8_t flags, uint32_t seq, uint32_t ack, size_t len = 0) const {
    return buildTcp(spec(1, flags, seq, ack, len), opts_);
  }
  // The IP packet (no link header) of a segment, for ICMP errors to quote.
  Bytes cIp(uint8_t flags, uint32_t seq, uint32_t ack, size_t len = 0) const {
    return buildTcp(spec(0, flags, seq, ack, len), rawIp());
  }
  Bytes sIp(uint8_t flags, uint32_t seq, uint32_t ack, size_t len = 0) const {
    return buildTcp(spec(1, flags, seq, ack, len), rawIp());
  }

  TcpSpec spec(int from, uint8_t flags, uint32_t seq, uint32_t ack, size_t len) const {
    const Side& me = side_[from];
    TcpSpec t;
    t.src = from == 0 ? c_ip_ : s_ip_;
    t.dst = from == 0 ? s_ip_ : c_ip_;
    t.sport = from == 0 ? cport_ : sport_;
    t.dport = from == 0 ? sport_ : cport_;
    t.flags = flags;
    t.seq = seq;
    t.ack = (flags & kAck) != 0 ? ack : 0;
    t.window = me.win;
    if ((flags & kSyn) != 0) {
      t.mss = 1460;
      t.wscale = me.wscale;
    }
    t.payload_len = len;
    return t;
  }

 private:
  Bytes next(int from, uint8_t flags, size_t len, const FrameOptions& o) {
    Side& me = side_[from];
    const Side& peer = side_[1 - from];
    const uint32_t seq = (flags & kSyn) != 0 ? me.isn : me.nxt;
    Bytes b = buildTcp(spec(from, flags, seq, peer.nxt, len), o);
    if ((flags & kRst) == 0) {
      uint32_t end = seq + static_cast<uint32_t>(len) + ((flags & kSyn) ? 1u : 0u);
      if ((flags & kFin) != 0) {
        me.fin = end;
        end += 1;
      }
      if (static_cast<int32_t>(end - me.nxt) > 0) me.nxt = end;
    }
    return b;
  }

  Side side_[2];
  IpAddr c_ip_, s_ip_;
  uint16_t cport_, sport_;
  FrameOptions opts_;
};

inline constexpr uint8_t kSynAck = kSyn | kAck;
inline constexpr uint8_t kFinAck = kFin | kAck;
inline constexpr uint8_t kRstAck = kRst | kAck;
inline constexpr uint8_t kData = kAck | kPsh;

// ---------------------------------------------------------------------------------------------
// Addresses and policies.
// ---------------------------------------------------------------------------------------------

// Internet hosts (unprotected), routers, and protected interfaces.
inline constexpr const char* kExt4 = "198.51.100.7";
inline constexpr const char* kExt4b = "198.51.100.8";
inline constexpr const char* kExt6 = "2001:db8:ff::7";
inline constexpr const char* kRouter4 = "203.0.113.1";
inline constexpr const char* kRouter6 = "2001:db8:ff::1";
inline constexpr const char* kSrv4 = "10.0.1.10";
inline constexpr const char* kSrv6 = "2001:db8:1::10";
inline constexpr const char* kCli4 = "10.0.2.20";
inline constexpr const char* kCli6 = "2001:db8:2::20";

// The main policy: `srv` only answers (outbound: []), so anything it sends passes only as part of a
// tracked connection (or as an ICMP error about one); `cli` has the default allow-all outbound rule
// and no inbound rules, so only replies reach it. Neither is untracked: the reverse direction of
// their all-address rules does not allow everything.
inline std::string mainPolicy(const std::string& top = "",
                              const std::string& srv_inbound_extra = "", bool with_port_80 = true) {
  std::string p = "version: 1\n" + top;
  p += "groups:\n"
       "  srv:\n"
       "    description: a server that only answers\n"
       "    inbound:\n";
  if (with_port_80) p += "      - {proto: tcp, ports: 80, from: [0.0.0.0/0, \"::/0\"]}\n";
  p += "      - {proto: udp, ports: 53, from: [0.0.0.0/0, \"::/0\"]}\n"
       "      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}\n"
       "      - {proto: icmpv6, icmp: {type: 128, code: -1}, from: \"::/0\"}\n"
       "      - {proto: 47, from: 0.0.0.0/0}\n"
       "      - {proto: 132, from: \"::/0\"}\n" +
       srv_inbound_extra +
       "    outbound: []\n"
       "  cli:\n"
       "    description: a client with the default outbound rule and no inbound rules\n"
       "interfaces:\n"
       "  srv-1: {addresses: [10.0.1.10, \"2001:db8:1::10\"], groups: [srv]}\n"
       "  cli-1: {addresses: [10.0.2.20, \"2001:db8:2::20\"], groups: [cli]}\n";
  return p;
}

inline constexpr const char* kSrv80 = "srv inbound tcp 80 from 0.0.0.0/0, ::/0";
inline constexpr const char* kSrv8080 = "srv inbound tcp 8080 from 0.0.0.0/0, ::/0";
inline constexpr const char* kSrv53 = "srv inbound udp 53 from 0.0.0.0/0, ::/0";
inline constexpr const char* kSrvPing = "srv inbound icmp type 8 code any from 0.0.0.0/0";
inline constexpr const char* kSrvPing6 = "srv inbound icmpv6 type 128 code any from ::/0";
inline constexpr const char* kSrvGre = "srv inbound 47 from 0.0.0.0/0";
inline constexpr const char* kSrvSctp = "srv inbound 132 from ::/0";
inline constexpr const char* kCliOut = "cli outbound all to 0.0.0.0/0, ::/0";
inline constexpr const char* kSrvOut = "srv-1 outbound";
inline constexpr const char* kSrvIn = "srv-1 inbound";
inline constexpr const char* kCliIn = "cli-1 inbound";

// Two interfaces of one group that may open TCP connections to each other in both directions.
inline constexpr const char* kPeerPolicy =
    "version: 1\n"
    "groups:\n"
    "  peer:\n"
    "    inbound:\n"
    "      - {proto: tcp, ports: all, from: sg:peer}\n"
    "interfaces:\n"
    "  peer-1: {addresses: [10.0.5.1], groups: [peer]}\n"
    "  peer-2: {addresses: [10.0.5.2], groups: [peer]}\n";
inline constexpr const char* kPeerRule = "peer inbound tcp all from sg:peer";

// AWS untracked flows (docs/design.md "Untracked"): inbound rules from 0.0.0.0/0 or ::/0 while the
// default outbound rule allows everything.
inline std::string awsPolicy(bool with_ssh = true, bool default_outbound = true) {
  std::string p =
      "version: 1\n"
      "groups:\n"
      "  bastion:\n"
      "    inbound:\n";
  if (with_ssh) p += "      - {proto: tcp, ports: 22, from: 0.0.0.0/0}\n";
  p += "      - {proto: udp, ports: 500, from: \"::/0\"}\n"
       "      - {proto: tcp, ports: 2222, from: 198.51.100.0/24}\n"
       "      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}\n";
  if (!default_outbound) p += "    outbound: [{proto: udp, ports: 123, to: 0.0.0.0/0}]\n";
  p += "interfaces:\n"
       "  bastion-1: {addresses: [10.0.4.40, \"2001:db8:4::40\"], groups: [bastion]}\n";
  return p;
}
inline constexpr const char* kBastionSsh = "bastion inbound tcp 22 from 0.0.0.0/0";
inline constexpr const char* kBastionIke = "bastion inbound udp 500 from ::/0";
inline constexpr const char* kBastion2222 = "bastion inbound tcp 2222 from 198.51.100.0/24";
inline constexpr const char* kBastionPing = "bastion inbound icmp type 8 code any from 0.0.0.0/0";
inline constexpr const char* kBastionOut = "bastion outbound all to 0.0.0.0/0, ::/0";
inline constexpr const char* kBastion4 = "10.0.4.40";
inline constexpr const char* kBastion6 = "2001:db8:4::40";

// Three tiers with group references on both sides.
inline constexpr const char* kTierPolicy =
    "version: 1\n"
    "groups:\n"
    "  web:\n"
    "    inbound:\n"
    "      - {proto: tcp, ports: 443, from: [0.0.0.0/0, \"::/0\"]}\n"
    "    outbound:\n"
    "      - {proto: tcp, ports: 8080, to: sg:app}\n"
    "      - {proto: tcp, ports: 5432, to: 10.0.3.0/24}\n"
    "  app:\n"
    "    inbound:\n"
    "      - {proto: tcp, ports: 8080, from: sg:web}\n"
    "    outbound:\n"
    "      - {proto: tcp, ports: 5432, to: sg:db}\n"
    "  db:\n"
    "    inbound:\n"
    "      - {proto: tcp, ports: 5432, from: sg:app}\n"
    "      - {proto: all, from: sg:db}\n"
    "    outbound:\n"
    "      - {proto: all, to: sg:db}\n"
    "interfaces:\n"
    "  web-1: {addresses: [10.0.1.10, \"2001:db8:1::10\"], groups: [web]}\n"
    "  app-1: {addresses: [10.0.2.10], groups: [app]}\n"
    "  db-1: {addresses: [10.0.3.10], groups: [db]}\n"
    "  db-2: {addresses: [10.0.3.11], groups: [db]}\n";

// Network ACLs at subnet boundaries. srv-1 and srv-2 share the subnet `pub`, whose ACL allows
// neither port 8000 nor anything from 10.0.1.0/24: traffic inside the subnet never meets it.
inline std::string aclPolicy(bool ephemeral_rule = true) {
  std::string p =
      "version: 1\n"
      "groups:\n"
      "  srv:\n"
      "    inbound:\n"
      "      - {proto: tcp, ports: 80, from: [0.0.0.0/0, \"::/0\"]}\n"
      "      - {proto: tcp, ports: 8000, from: sg:srv}\n"
      "    outbound:\n"
      "      - {proto: tcp, ports: 8000, to: sg:srv}\n"
      "      - {proto: udp, ports: 123, to: 0.0.0.0/0}\n"
      "network_acls:\n"
      "  pub-acl:\n"
      "    inbound:\n"
      "      - {rule: 90, action: deny, proto: all, from: 203.0.113.0/24}\n"
      "      - {rule: 100, action: allow, proto: tcp, ports: 80, from: 0.0.0.0/0}\n"
      "      - {rule: 101, action: allow, proto: tcp, ports: 80, from: \"::/0\"}\n"
      "    outbound:\n"
      "      - {rule: 100, action: allow, proto: tcp, ports: 80, to: 0.0.0.0/0}\n";
  if (ephemeral_rule) {
    p += "      - {rule: 110, action: allow, proto: tcp, ports: 1024-65535, to: 198.51.100.0/24}\n"
         "      - {rule: 111, action: allow, proto: tcp, ports: 1024-65535, to: \"::/0\"}\n";
  }
  p += "      - {rule: 200, action: deny, proto: udp, ports: all, to: 0.0.0.0/0}\n"
       "subnets:\n"
       "  pub: {cidr: [10.0.1.0/24, \"2001:db8:1::/64\"], acl: pub-acl}\n"
       "interfaces:\n"
       "  srv-1: {addresses: [10.0.1.10, \"2001:db8:1::10\"], groups: [srv]}\n"
       "  srv-2: {addresses: [10.0.1.11], groups: [srv]}\n";
  return p;
}
inline constexpr const char* kAclSrv80 = "srv inbound tcp 80 from 0.0.0.0/0, ::/0";
inline constexpr const char* kAclSrv8000 = "srv inbound tcp 8000 from sg:srv";
inline constexpr const char* kAclSrvNtp = "srv outbound udp 123 to 0.0.0.0/0";

// ---------------------------------------------------------------------------------------------
// Common packet sequences (append packets with their expectations).
// ---------------------------------------------------------------------------------------------

// SYN, SYN-ACK, ACK of a connection opened by C under `rule`.
inline void handshake(Fx& fx, Tcp& t, const std::string& rule) {
  fx.add("C SYN", t.c(kSyn), allowRule(rule, TcpState::kSynSent, kFlagNewConnection));
  fx.add("S SYN-ACK", t.s(kSynAck), tracked(rule, TcpState::kSynRecv, kFlagReply));
  fx.add("C ACK", t.c(kAck), tracked(rule, TcpState::kEstablished));
}

// A handshake and one data segment each way.
inline void established(Fx& fx, Tcp& t, const std::string& rule) {
  handshake(fx, t, rule);
  fx.add("C data", t.c(kData, 100), tracked(rule, TcpState::kEstablished));
  fx.add("S data", t.s(kData, 200), tracked(rule, TcpState::kEstablished, kFlagReply));
}

inline Bytes udp(std::string_view src, uint16_t sport, std::string_view dst, uint16_t dport,
                 size_t len = 32, const FrameOptions& o = {}) {
  return buildUdp(
      {.src = ipAddr(src), .dst = ipAddr(dst), .sport = sport, .dport = dport, .payload_len = len},
      o);
}
inline Bytes echo(std::string_view src, std::string_view dst, uint16_t id, bool reply,
                  uint16_t seq = 1, size_t len = 32, const FrameOptions& o = {}) {
  return buildIcmpEcho({.src = ipAddr(src),
                        .dst = ipAddr(dst),
                        .id = id,
                        .seq = seq,
                        .reply = reply,
                        .payload_len = len},
                       o);
}
inline Bytes other(std::string_view src, std::string_view dst, uint8_t proto, size_t len = 24,
                   const FrameOptions& o = {}) {
  return buildOtherProto(
      {.src = ipAddr(src), .dst = ipAddr(dst), .proto = proto, .payload_len = len}, o);
}
inline Bytes icmpError(std::string_view src, std::string_view dst, uint8_t type, uint8_t code,
                       const Bytes& quoted, uint32_t rest = 0, size_t max_quote = 0) {
  return buildIcmpError({.src = ipAddr(src),
                         .dst = ipAddr(dst),
                         .type = type,
                         .code = code,
                         .rest = rest,
                         .max_quote = max_quote},
                        quoted);
}

// Appends a finished fixture to the table being built (only during allFixtures()'s first call).
void put(Fx& fx);

// The scenario families, one file each, called by allFixtures() in this order.
void tcpBasics();          // fixtures_tcp.cpp: TCP written by hand
void strictMode();         // fixtures_tcp.cpp: strict mode (deny-invalid)
void udpIcmpOther();       // fixtures_udp_icmp.cpp: UDP, ICMP queries, other protocols
void icmpErrors();         // fixtures_udp_icmp.cpp: ICMP errors and related traffic
void fragmentFixtures();   // fixtures_links.cpp: fragments
void controlAndLinks();    // fixtures_links.cpp: control traffic and link layers
void malformedPackets();   // fixtures_links.cpp: deny-malformed
void untrackedFlows();     // fixtures_untracked_acl.cpp: untracked flows
void tierFixtures();       // fixtures_untracked_acl.cpp: tiers (both sides protected)
void aclFixtures();        // fixtures_untracked_acl.cpp: network ACLs
void timeoutFixtures();    // fixtures_timeouts.cpp: idle timeouts
void tableFull();          // fixtures_timeouts.cpp: table capacity and eviction
void policySwaps();        // fixtures_timeouts.cpp: policy swaps
void tcpTransitionRows();  // fixtures_tcp_transitions.cpp: one per TCP transition-table row
void tcpKernelFindings();  // fixtures_kernel.cpp: cases the kernel differential test found
void bypassFixtures();     // fixtures_bypass.cpp: ICMP, neighbour discovery, exemptions, fragments
void peerFixtures();  // fixtures_peers.cpp: cases ported from peers' test suites (cited per row)

}  // namespace statewall::fixtures::dsl
