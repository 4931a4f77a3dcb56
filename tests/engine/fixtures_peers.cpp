// Conntrack cases ported from peers' test suites (Linux netfilter selftests, Open vSwitch,
// FreeBSD pf), and the fixtures of the behaviours they led to: overlapping fragments, checks
// before the tracking, per-interface timeouts. Each ported fixture names the case it comes from
// (project, file, case) and what the peer expects; the packets are our own, built from what the
// case tests. docs/semantics.md lists where statewall deliberately differs.
#include "engine/fixture_dsl.hpp"

namespace statewall::fixtures::dsl {

namespace {

// A later fragment opens nothing: it must not carry the new-connection flag.
X opensNothing(X x) {
  x.unset = static_cast<uint16_t>(x.unset | kFlagNewConnection);
  return x;
}
// A fragment denied for repeating or overlapping bytes of its datagram (a later one when
// `later`).
X fragDenied(bool later = true) {
  return opensNothing(X{Reason::kDenyMalformed,
                        kAnyState,
                        {},
                        static_cast<uint16_t>(later ? kFlagFragment : 0),
                        "fragment"});
}
// An ICMPv6 redirect (RFC 4861 4.5) from `router` to `to`: use `target` as the first hop for
// `dest`, with a Redirected Header option quoting `quoted` (an IP packet, cut to a multiple of 8
// bytes). Hop limit 255 as on the link.
Bytes ndRedirect(std::string_view router, std::string_view to, std::string_view target,
                 std::string_view dest, Bytes quoted) {
  const IpAddr s = ipAddr(router), d = ipAddr(to), t = ipAddr(target), g = ipAddr(dest);
  Bytes m = {kIcmpv6Redirect, 0, 0, 0, 0, 0, 0, 0};
  auto putAddr = [&m](const IpAddr& a) {
    uint8_t b[16];
    a.toV6Bytes(b);
    m.insert(m.end(), b, b + 16);
  };
  putAddr(t);
  putAddr(g);
  quoted.resize(quoted.size() / 8 * 8);
  m.push_back(4);  // Redirected Header
  m.push_back(static_cast<uint8_t>(1 + quoted.size() / 8));
  m.resize(m.size() + 6, 0);
  m.insert(m.end(), quoted.begin(), quoted.end());
  const uint16_t sum = transportChecksum(s, d, kIpProtoIcmpv6, m);
  m[2] = static_cast<uint8_t>(sum >> 8);
  m[3] = static_cast<uint8_t>(sum);
  return addLinkHeader(
      buildIpPacket(s, d, kIpProtoIcmpv6, m, {.link = LinkType::kRawIp, .ttl = 255}),
      kEtherTypeIpv6);
}
X denyAclAt(const std::string& where, TcpState st, uint16_t flags = 0) {
  return X{Reason::kDenyAcl, st, {}, flags, where};
}

// ---------------------------------------------------------------------------------------------
// Fragments (docs/design.md "Fragments"; docs/semantics.md "Fragments").
// ---------------------------------------------------------------------------------------------
void fragments() {
  const std::string p = mainPolicy();
  {
    Fx fx("frag4_overlap_rewrites_first",
          "a later fragment that rewrites bytes of the allowed first fragment is deny-malformed, "
          "and so is the rest of its datagram (as Linux IPv4 reassembly drops it)",
          p);
    const Bytes d = udp(kExt4, 8200, kSrv4, 53, 3000, {.ip_id = 0x7001});
    auto a = fragment(d, 1500, {.ip_id = 0x7001});  // [0,1480) [1480,2960) [2960,3008)
    auto b = fragment(d, 1000, {.ip_id = 0x7001});  // [0,976) [976,1952) ...
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("fragment over bytes 976..1952", b[1], fragDenied());
    fx.add("rest of the datagram", a[1], fragDenied());
    fx.add("its last fragment", a[2], fragDenied());
    put(fx);
  }
  {
    Fx fx("frag4_duplicate_fragment",
          "a fragment wholly inside bytes already seen is dropped (deny-malformed); the datagram "
          "goes on, as Linux reassembly ignores duplicates",
          p);
    const Bytes d = udp(kExt4, 8201, kSrv4, 53, 3000, {.ip_id = 0x7002});
    auto a = fragment(d, 1500, {.ip_id = 0x7002});
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("second fragment", a[1], opensNothing(allowRule(kSrv53, kAnyState, kFlagFragment)));
    fx.add("second fragment again", a[1], fragDenied());
    fx.add("last fragment", a[2], opensNothing(allowRule(kSrv53, kAnyState, kFlagFragment)));
    put(fx);
  }
  {
    Fx fx("frag4_first_fragment_rewritten",
          "a second first fragment of the same datagram (other ports) repeats bytes already seen: "
          "denied before any rule sees it; the datagram goes on",
          p);
    const Bytes d = udp(kExt4, 8202, kSrv4, 53, 3000, {.ip_id = 0x7003});
    const Bytes evil = udp(kExt4, 8202, kSrv4, 22, 3000, {.ip_id = 0x7003});
    auto a = fragment(d, 1500, {.ip_id = 0x7003});
    auto e = fragment(evil, 1000, {.ip_id = 0x7003});
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("first fragment rewritten to port 22", e[0], fragDenied(false));
    fx.add("second fragment", a[1], opensNothing(allowRule(kSrv53, kAnyState, kFlagFragment)));
    put(fx);
  }
  {
    Fx fx("frag6_overlap",
          "IPv6: a fragment overlapping bytes already seen drops the whole datagram (RFC 5722)", p);
    const Bytes d = udp(kExt6, 8203, kSrv6, 53, 3000);
    auto a = fragment(d, 1280, {}, 0xbee1);  // [0,1232) [1232,2464) ...
    auto b = fragment(d, 1000, {}, 0xbee1);  // [0,952) [952,1904) ...
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("fragment over bytes 952..1904", b[1], fragDenied());
    fx.add("rest of the datagram", a[1], fragDenied());
    fx.add("its last fragment", a[2], fragDenied());
    put(fx);
  }
  {
    Fx fx("frag4_later_fragments_open_nothing",
          "later fragments follow their first fragment's verdict without its new-connection flag",
          p);
    auto a =
        fragment(udp(kExt4, 8204, kSrv4, 53, 3000, {.ip_id = 0x7005}), 1500, {.ip_id = 0x7005});
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("second fragment", a[1], opensNothing(allowRule(kSrv53, kAnyState, kFlagFragment)));
    fx.add("last fragment", a[2], opensNothing(allowRule(kSrv53, kAnyState, kFlagFragment)));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Checks before the tracking (docs/design.md "Direction" order; docs/semantics.md "Which side's
// tracking sees a packet").
// ---------------------------------------------------------------------------------------------
constexpr const char* kAclOrderPolicy =
    "version: 1\n"
    "groups:\n"
    "  cli:\n"
    "    description: a client with the default outbound rule\n"
    "  a:\n"
    "    inbound: []\n"
    "  b:\n"
    "    inbound:\n"
    "      - {proto: tcp, ports: 8080, from: sg:a}\n"
    "network_acls:\n"
    "  cli-acl:\n"
    "    inbound:\n"
    "      - {rule: 100, action: allow, proto: tcp, ports: 1024-65535, from: 198.51.100.0/24}\n"
    "    outbound:\n"
    "      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}\n"
    "  a-acl:\n"
    "    inbound:\n"
    "      - {rule: 100, action: allow, proto: tcp, ports: 8080, from: 0.0.0.0/0}\n"
    "    outbound:\n"
    "      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}\n"
    "subnets:\n"
    "  cli-net: {cidr: [10.0.2.0/24], acl: cli-acl}\n"
    "  a-net: {cidr: [10.0.6.0/24], acl: a-acl}\n"
    "  b-net: {cidr: [10.0.7.0/24]}\n"
    "interfaces:\n"
    "  cli-1: {addresses: [10.0.2.20], groups: [cli]}\n"
    "  a-1: {addresses: [10.0.6.1], groups: [a]}\n"
    "  b-1: {addresses: [10.0.7.1], groups: [b]}\n";
constexpr const char* kCliOutAll = "cli outbound all to 0.0.0.0/0, ::/0";
constexpr const char* kB8080 = "b inbound tcp 8080 from sg:a";

void checksBeforeTracking() {
  {
    Fx fx("acl_denied_reply_changes_no_state",
          "an inbound SYN-ACK that the client's subnet ACL drops never reaches the client's "
          "tracking: the connection stays SYN_SENT",
          kAclOrderPolicy);
    Tcp t(kCli4, 40200, "203.0.113.9", 443);  // outside the ACL's 198.51.100.0/24
    fx.add("C SYN", t.c(kSyn), allowRule(kCliOutAll, TcpState::kSynSent, kFlagNewConnection));
    const Bytes synack = t.s(kSynAck);
    fx.add("S SYN-ACK, dropped by cli-acl", synack,
           denyAclAt("cli-acl *", TcpState::kSynSent).with(kFlagReply));
    fx.add("S SYN-ACK again", synack, denyAclAt("cli-acl *", TcpState::kSynSent));
    fx.add("C SYN retransmitted", t.cAt(kSyn, t.cs().isn, 0),
           tracked(kCliOutAll, TcpState::kSynSent));
    put(fx);
  }
  {
    Fx fx("acl_allowed_reply_tracked",
          "the same client: a reply its subnet ACL allows is tracked as usual", kAclOrderPolicy);
    Tcp t(kCli4, 40201, kExt4, 443);
    handshake(fx, t, kCliOutAll);
    put(fx);
  }
  {
    Fx fx("acl_sender_tracking_sees_denied_packet",
          "both sides protected and tracked: the sender's tracking sees its packet as it leaves, "
          "before the receiver's subnet ACL denies it (docs/design.md order), so the state moves",
          kAclOrderPolicy);
    Tcp t("10.0.6.1", 40202, "10.0.7.1", 8080);
    fx.add("a SYN", t.c(kSyn), allowRule(kB8080, TcpState::kSynSent, kFlagNewConnection));
    fx.add("b SYN-ACK, denied by a-acl (ports 1024-65535 not allowed in)", t.s(kSynAck),
           denyAclAt("a-acl *", TcpState::kSynRecv).with(kFlagReply));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-interface idle timeouts (docs/design.md "Idle timeouts"; docs/semantics.md "Timeouts").
// ---------------------------------------------------------------------------------------------
std::string timeoutPolicy(const std::string& top, const std::string& srv1,
                          const std::string& cli1) {
  return "version: 1\n" + top +
         "groups:\n"
         "  srv:\n"
         "    inbound:\n"
         "      - {proto: tcp, ports: 80, from: 0.0.0.0/0}\n"
         "      - {proto: udp, ports: 53, from: 0.0.0.0/0}\n"
         "    outbound: []\n"
         "  cli:\n"
         "    description: default outbound rule\n"
         "interfaces:\n"
         "  srv-1: {addresses: [10.0.1.10], groups: [srv]" +
         srv1 +
         "}\n"
         "  srv-2: {addresses: [10.0.1.11], groups: [srv]}\n"
         "  cli-1: {addresses: [10.0.2.20], groups: [cli]" +
         cli1 + "}\n";
}
constexpr const char* kT80 = "srv inbound tcp 80 from 0.0.0.0/0";
constexpr const char* kT53 = "srv inbound udp 53 from 0.0.0.0/0";

void interfaceTimeouts() {
  {
    Fx fx("timeout_iface_tcp_established",
          "an interface's tcp_established overrides the policy's for connections tracked on its "
          "side, longer or shorter",
          timeoutPolicy("timeouts: {tcp_established: 3600}\n",
                        ", timeouts: {tcp_established: 7200}", ""));
    Tcp t1(kExt4, 40300, "10.0.1.10", 80);
    Tcp t2(kExt4, 40301, "10.0.1.11", 80);
    handshake(fx, t1, kT80);
    handshake(fx, t2, kT80);
    fx.wait(3700);
    fx.add("srv-2 data after 3700 s: its connection expired at 3600", t2.s(kData, 10),
           denySg("srv-2 outbound"));
    fx.add("srv-1 data after 3700 s: its interface keeps connections 7200 s", t1.s(kData, 10),
           tracked(kT80, TcpState::kEstablished, kFlagReply));
    fx.wait(7201);
    fx.add("srv-1 data after 7201 s more", t1.s(kData, 10), denySg("srv-1 outbound"));
    put(fx);
  }
  {
    Fx fx("timeout_iface_udp", "an interface's udp timeout (AWS UdpTimeout) for its connections",
          timeoutPolicy("", ", timeouts: {udp: 50}", ""));
    fx.add("request to srv-1", udp(kExt4, 5300, "10.0.1.10", 53),
           allowRule(kT53, kAnyState, kFlagNewConnection));
    fx.add("request to srv-2", udp(kExt4, 5301, "10.0.1.11", 53),
           allowRule(kT53, kAnyState, kFlagNewConnection));
    fx.wait(40);
    fx.add("srv-1 reply after 40 s (its udp: 50)", udp("10.0.1.10", 53, kExt4, 5300),
           tracked(kT53, kAnyState, kFlagReply));
    fx.add("srv-2 reply after 40 s (the policy's udp: 30)", udp("10.0.1.11", 53, kExt4, 5301),
           denySg("srv-2 outbound"));
    put(fx);
  }
  {
    Fx fx("timeout_iface_after_policy_swap",
          "a connection's timeouts follow the interface settings of the policy in force: after a "
          "swap that gives srv-1 tcp_established 7200, its open connection keeps 7200",
          timeoutPolicy("timeouts: {tcp_established: 3600}\n", "", ""));
    Tcp t(kExt4, 40303, "10.0.1.10", 80);
    handshake(fx, t, kT80);
    fx.swap(timeoutPolicy("timeouts: {tcp_established: 3600}\n",
                          ", timeouts: {tcp_established: 7200}", ""));
    fx.add("C data under the new policy", t.c(kData, 10), trackedAnyRule(TcpState::kEstablished));
    fx.wait(3700);
    fx.add("srv-1 data after 3700 s", t.s(kData, 10),
           trackedAnyRule(TcpState::kEstablished, kFlagReply));
    put(fx);
  }
  {
    Fx fx("timeout_iface_both_sides_shorter",
          "a connection tracked on both sides ends when the shorter of their timeouts ends",
          timeoutPolicy("", ", timeouts: {tcp_established: 60}",
                        ", timeouts: {tcp_established: 600}"));
    Tcp t(kCli4, 40302, "10.0.1.10", 80);
    handshake(fx, t, kT80);
    fx.wait(61);
    fx.add("srv-1 data after 61 s", t.s(kData, 10), denySg("srv-1 outbound"));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Ported peer cases.
// ---------------------------------------------------------------------------------------------

// Linux tools/testing/selftests/net/netfilter/packetdrill/*.pkt: the host runs the script's
// socket; here it is cli-1 (default outbound rule, no inbound rules) or srv-1 (answers only), so
// that a packet its tracking does not help is denied, as the scripts' INVALID -> DROP rules do.
void linuxPacketdrill() {
  const std::string p = mainPolicy();
  {
    Fx fx("peer_linux_conntrack_rst_invalid",
          "Linux selftests netfilter/packetdrill/conntrack_rst_invalid.pkt: resets out of window "
          "or below what the receiver acknowledged are INVALID (dropped) and leave ESTABLISHED; "
          "the reset at the exact next sequence closes. Linux expects four INVALID resets; so "
          "do we",
          p);
    Tcp t(kCli4, 40400, kExt4, 8080);
    t.cs().wscale = 8;
    handshake(fx, t, kCliOut);
    for (int i = 0; i < 3; ++i) {
      fx.add("S data 1000", t.s(kData, 1000), tracked(kCliOut, TcpState::kEstablished));
      fx.add("C ACK", t.c(kAck), tracked(kCliOut, TcpState::kEstablished));
    }
    fx.add("C data 1000", t.c(kData, 1000), tracked(kCliOut, TcpState::kEstablished));
    const uint32_t s0 = t.ss().isn + 1;
    const X invalid = denySg(kCliIn, TcpState::kEstablished, kFlagTcpInvalid);
    fx.add("S RST at relative 0", t.sAt(kRst, s0 - 1, 0), invalid);
    fx.add("S RST at 1000000 (out of window)", t.sAt(kRst, s0 + 1000000, 0), invalid);
    fx.add("S RST at 42 (in window, below the acknowledged 3001)", t.sAt(kRst, s0 + 42, 0),
           invalid);
    fx.add("S ACK of C's data", t.s(kAck), tracked(kCliOut, TcpState::kEstablished));
    fx.add("S RST+ACK at 3000", t.sAt(kRstAck, t.ss().nxt - 1, t.cs().nxt), invalid);
    fx.add("S RST+ACK at the exact next sequence", t.sAt(kRstAck, t.ss().nxt, t.cs().nxt),
           tracked(kCliOut, TcpState::kClose, kFlagConnClosed));
    put(fx);
  }
  {
    Fx fx("peer_linux_conntrack_inexact_rst",
          "Linux selftests netfilter/packetdrill/conntrack_inexact_rst.pkt: after the peer's FIN "
          "(CLOSE_WAIT) the host's reset closes, and a later inexact reset from the peer is not "
          "INVALID since the connection is closing (Linux, pf and Open vSwitch agree)",
          p);
    Tcp t(kCli4, 40401, kExt4, 8080);
    t.cs().wscale = 8;
    handshake(fx, t, kCliOut);
    for (int i = 0; i < 3; ++i)
      fx.add("S data 1000", t.s(kData, 1000), tracked(kCliOut, TcpState::kEstablished));
    fx.add("C ACK", t.c(kAck), tracked(kCliOut, TcpState::kEstablished));
    fx.add("C data 1000", t.c(kData, 1000), tracked(kCliOut, TcpState::kEstablished));
    fx.add("S FIN", t.s(kFinAck), tracked(kCliOut, TcpState::kFinWait));
    fx.add("C ACK of the FIN", t.c(kAck), tracked(kCliOut, TcpState::kCloseWait));
    fx.add("C RST+ACK (unread data)", t.cAt(kRstAck, t.cs().nxt, t.ss().nxt),
           tracked(kCliOut, TcpState::kClose, kFlagConnClosed));
    fx.add("S spurious RST at 2001", t.sAt(kRst, t.ss().isn + 1 + 2000, 0),
           tracked(kCliOut, TcpState::kClose, kFlagReply));
    put(fx);
  }
  {
    Fx fx("peer_linux_conntrack_syn_challenge_ack",
          "Linux selftests netfilter/packetdrill/conntrack_syn_challenge_ack.pkt: the peer answers "
          "the SYN with a challenge ACK of an old connection, the host resets that one; the "
          "attempt stays SYN_SENT, its SYN passes again and the handshake completes; nothing is "
          "INVALID",
          p);
    Tcp t(kCli4, 40402, kExt4, 8080);
    t.cs().wscale = 8;
    fx.add("C SYN", t.c(kSyn), allowRule(kCliOut, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S challenge ACK (old incarnation)", t.sAt(kAck, 145824453, 643160523),
           tracked(kCliOut, TcpState::kSynSent, kFlagReply));
    fx.add("C RST of the old connection", t.cAt(kRst, 643160523, 0),
           tracked(kCliOut, TcpState::kSynSent));
    fx.add("C SYN again", t.cAt(kSyn, t.cs().isn, 0), tracked(kCliOut, TcpState::kSynSent));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kCliOut, TcpState::kSynRecv, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kCliOut, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("peer_linux_conntrack_synack_old",
          "Linux selftests netfilter/packetdrill/conntrack_synack_old.pkt: a SYN-ACK of an old "
          "incarnation (wrong ack) is INVALID (dropped) and changes nothing; the SYN passes "
          "again and the right SYN-ACK is tracked",
          p);
    Tcp t(kCli4, 40403, kExt4, 8080);
    t.cs().wscale = 8;
    fx.add("C SYN", t.c(kSyn), allowRule(kCliOut, TcpState::kSynSent, kFlagNewConnection));
    fx.add("S old SYN-ACK", t.sAt(kSynAck, 145824453, 643160523),
           denySg(kCliIn, TcpState::kSynSent, kFlagTcpInvalid));
    fx.add("C SYN again", t.cAt(kSyn, t.cs().isn, 0), tracked(kCliOut, TcpState::kSynSent));
    fx.add("S SYN-ACK", t.s(kSynAck), tracked(kCliOut, TcpState::kSynRecv, kFlagReply));
    fx.add("C data", t.c(kData, 1), tracked(kCliOut, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("peer_linux_conntrack_synack_reuse",
          "Linux selftests netfilter/packetdrill/conntrack_synack_reuse.pkt: a new SYN on an "
          "established connection, the server's challenge ACK, the client's RST, the SYN again: "
          "a new connection whose SYN-ACK is not INVALID. (Linux marks the first new SYN INVALID "
          "and lets it pass; statewall tracks it in window: docs/semantics.md)",
          p);
    Tcp t(kExt4, 40404, kSrv4, 80);
    t.cs().wscale = 7;
    t.ss().wscale = 8;
    handshake(fx, t, kSrv80);
    fx.add("C data 100", t.c(kData, 100), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C new SYN (seq 2000 past the old one)", t.cAt(kSyn, t.cs().nxt + 2000, 0),
           tracked(kSrv80, TcpState::kEstablished));
    fx.add("S challenge ACK", t.sAt(kAck, t.ss().nxt, t.cs().nxt),
           tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C RST at the acknowledged sequence", t.cAt(kRstAck, t.cs().nxt, t.ss().nxt),
           tracked(kSrv80, TcpState::kClose, kFlagConnClosed));
    Tcp n(kExt4, 40404, kSrv4, 80, {}, t.cs().nxt + 2000, 9000000);
    fx.add("C SYN again", n.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagReopened));
    fx.add("S SYN-ACK", n.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    put(fx);
  }
  {
    Fx fx("peer_linux_conntrack_ack_loss_stall",
          "Linux selftests netfilter/packetdrill/conntrack_ack_loss_stall.pkt: a retransmission of "
          "data acknowledged long ago (older than a window). Linux passes it tracked; statewall "
          "marks it INVALID (as pf and Open vSwitch do) and the sender's rule passes it: the same "
          "outcome here (docs/semantics.md)",
          p);
    Tcp t(kExt4, 40405, kSrv4, 80);
    handshake(fx, t, kSrv80);
    const uint32_t first = t.cs().nxt;
    const uint32_t s_ack = t.ss().nxt;
    for (int i = 0; i < 46; ++i) {
      fx.add("C data 1460", t.c(kData, 1460), tracked(kSrv80, TcpState::kEstablished));
      fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    }
    fx.add("C retransmits its first segment", t.cAt(kData, first, s_ack, 1460),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    put(fx);
  }
}

// Open vSwitch tests/ofproto-dpif.at and tests/system-traffic.at.
void openVswitch() {
  const std::string p = mainPolicy();
  {
    Fx fx("peer_ovs_tcp_port_reuse",
          "Open vSwitch tests/ofproto-dpif.at 'ofproto-dpif - conntrack - tcp port reuse': a "
          "connection closed by FINs, then a SYN on the same ports opens a second connection "
          "(OVS counts two new connections)",
          p);
    Tcp t(kExt4, 40500, kSrv4, 80);
    handshake(fx, t, kSrv80);
    fx.add("S data", t.s(kData, 8), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kFinWait, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kCloseWait));
    fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kLastAck));
    fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kTimeWait, kFlagReply));
    Tcp n(kExt4, 40500, kSrv4, 80, {}, t.cs().nxt + 100000, 8000000);
    fx.add("C new SYN", n.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagReopened | kFlagNewConnection));
    fx.add("S SYN-ACK", n.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.add("C ACK", n.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("peer_ovs_tcp_pick_up",
          "Open vSwitch tests/ofproto-dpif.at 'ofproto-dpif - conntrack - tcp pick up': a "
          "connection with window scaling picked up after its handshake; nothing is INVALID and "
          "it reaches ESTABLISHED, then closes",
          p);
    FrameOptions o;
    Tcp t(kCli4, 40501, kExt4, 1, o, 0x396bb35a, 0x8cadbdb4);
    t.cs().win = 10;  // scaled by 2^7 on the wire the SYNs negotiated
    t.ss().win = 10;
    fx.add("C ACK (pickup)", t.c(kAck),
           allowRule(kCliOut, TcpState::kEstablished, kFlagNewConnection | kFlagMidStream));
    fx.add("C data 1", t.c(kData, 1), tracked(kCliOut, TcpState::kEstablished));
    fx.add("S ACK", t.s(kAck), tracked(kCliOut, TcpState::kEstablished, kFlagReply));
    fx.add("C data 514", t.c(kData, 514), tracked(kCliOut, TcpState::kEstablished));
    fx.add("S ACK", t.s(kAck), tracked(kCliOut, TcpState::kEstablished, kFlagReply));
    fx.add("S data 469", t.s(kData, 469), tracked(kCliOut, TcpState::kEstablished, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kCliOut, TcpState::kEstablished));
    fx.add("C FIN", t.c(kFinAck), tracked(kCliOut, TcpState::kFinWait));
    fx.add("S ACK", t.s(kAck), tracked(kCliOut, TcpState::kCloseWait, kFlagReply));
    fx.add("S FIN", t.s(kFinAck), tracked(kCliOut, TcpState::kLastAck, kFlagReply));
    fx.add("C ACK", t.c(kAck), tracked(kCliOut, TcpState::kTimeWait));
    put(fx);
  }
  {
    Fx fx("peer_ovs_frag4_overlap_1_octet",
          "Open vSwitch tests/system-traffic.at 'conntrack - IPv4 fragmentation overlapping "
          "fragments by 1 octet': OVS reassembles and passes nothing; statewall judges the first "
          "fragment on its own (it passes and opens the connection: docs/semantics.md) and denies "
          "the overlapping one",
          p);
    const Bytes d = udp(kExt4, 8300, kSrv4, 53, 412, {.ip_id = 0x7101});
    auto a = fragment(d, 420, {.ip_id = 0x7101});  // [0,400) [400,420)
    auto b = fragment(d, 412, {.ip_id = 0x7101});  // [0,392) [392,420)
    fx.add("first fragment (400 bytes)", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("last fragment at 392, one unit over", b[1], fragDenied());
    put(fx);
  }
  {
    Fx fx("peer_ovs_frag4_overlap_1_octet_out_of_order",
          "Open vSwitch tests/system-traffic.at 'conntrack - IPv4 fragmentation overlapping "
          "fragments by 1 octet out of order': the later fragment first is denied (its first "
          "fragment unseen); the first fragment then passes on its own (OVS passes nothing: "
          "docs/semantics.md)",
          p);
    const Bytes d = udp(kExt4, 8301, kSrv4, 53, 412, {.ip_id = 0x7102});
    auto a = fragment(d, 420, {.ip_id = 0x7102});
    auto b = fragment(d, 412, {.ip_id = 0x7102});
    fx.add("last fragment at 392", b[1], orphanFragment());
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    put(fx);
  }
  {
    Fx fx("peer_ovs_frag4_out_of_order",
          "Open vSwitch tests/system-traffic.at 'conntrack - IPv4 fragmentation out of order': "
          "OVS reassembles the last-then-first fragments into one committed connection; "
          "statewall denies a fragment that comes before its first (docs/semantics.md)",
          p);
    const Bytes d = udp(kExt4, 8302, kSrv4, 53, 412, {.ip_id = 0x7103});
    auto a = fragment(d, 420, {.ip_id = 0x7103});
    fx.add("last fragment first", a[1], orphanFragment());
    fx.add("first fragment", a[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    put(fx);
  }
}

// FreeBSD tests/sys/netpfil/pf.
void freebsdPf() {
  const std::string p = mainPolicy();
  {
    Fx fx("peer_pf_tcp_rst",
          "FreeBSD tests/sys/netpfil/pf/tcp.sh 'rst': a reset forged by a third host with a "
          "sequence number outside the window leaves the connection ESTABLISHED",
          p);
    Tcp t(kCli4, 4321, kExt4, 1234);
    handshake(fx, t, kCliOut);
    fx.add("S data", t.s(kData, 4), tracked(kCliOut, TcpState::kEstablished, kFlagReply));
    fx.add("forged RST", t.sAt(kRst, t.ss().nxt + 0x40000000, 0),
           denySg(kCliIn, TcpState::kEstablished, kFlagTcpInvalid));
    fx.add("C data still tracked", t.c(kData, 4), tracked(kCliOut, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("peer_pf_frag_overreplace",
          "FreeBSD tests/sys/netpfil/pf/frag-overreplace.py: a fragment overlapping the tail of "
          "one already seen. pf trims the overlap and delivers the echo; statewall drops the "
          "datagram as Linux does (RFC 5722; docs/semantics.md)",
          p);
    const Bytes d = echo(kExt4, kSrv4, 0x0bee, false, 1, 5120 - 8, {.ip_id = 0x7201});
    auto a = fragment(d, 1044, {.ip_id = 0x7201});   // 1024-byte pieces
    auto tiny = fragment(d, 28, {.ip_id = 0x7201});  // 8-byte pieces
    fx.add("fragment 0", a[0], allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("fragment 1", a[1], opensNothing(allowRule(kSrvPing, kAnyState, kFlagFragment)));
    fx.add("fragment 2", a[2], opensNothing(allowRule(kSrvPing, kAnyState, kFlagFragment)));
    fx.add("8 bytes at 4088", tiny[511],
           opensNothing(allowRule(kSrvPing, kAnyState, kFlagFragment)));
    fx.add("fragment 3 [3072,4096), over them", a[3], fragDenied());
    fx.add("last fragment", a[4], fragDenied());
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Ported ICMP cases: errors related to their own connection, queries as request/reply pairs.
// ---------------------------------------------------------------------------------------------

// Linux tools/testing/selftests/net/netfilter/conntrack_icmp_related.sh: nsclient1 pings nsclient2
// through two routers, the second with a 1280-byte link; the routers pass only new, established
// and RELATED ICMP, the client only established and RELATED. Here nsclient1 is cli-1 and
// nsclient2 is srv-1 (whose rules allow echo requests, as nsclient2's input chain passes new
// ones); the routers are kRouter4 / kRouter6. The test's masquerading (NAT) is not ported.
void linuxIcmpRelated() {
  const std::string p = mainPolicy();
  {
    Fx fx("peer_linux_icmp_related_mtu",
          "Linux selftests netfilter/conntrack_icmp_related.sh, the PMTU part: 1000-byte pings "
          "pass as new and established; a 1300-byte ping with DF gets 'fragmentation needed' "
          "(IPv4) or 'packet too big' (IPv6) from the router, RELATED at the client. Linux "
          "expects both errors related; so do we",
          p);
    fx.add("cli -> srv echo request, 1000 bytes, DF",
           echo(kCli4, kSrv4, 0x0a01, false, 1, 1000, {.dont_fragment = true}),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("srv echo reply", echo(kSrv4, kCli4, 0x0a01, true, 1, 1000),
           tracked(kSrvPing, kAnyState, kFlagReply));
    fx.add("cli -> srv IPv6 echo request, 1000 bytes", echo(kCli6, kSrv6, 0x0a02, false, 1, 1000),
           allowRule(kSrvPing6, kAnyState, kFlagNewConnection));
    fx.add("srv IPv6 echo reply", echo(kSrv6, kCli6, 0x0a02, true, 1, 1000),
           tracked(kSrvPing6, kAnyState, kFlagReply));
    fx.add("cli -> srv echo request, 1300 bytes, DF",
           echo(kCli4, kSrv4, 0x0a03, false, 1, 1300, {.dont_fragment = true}),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: fragmentation needed, MTU 1280 (related)",
           icmpError(kRouter4, kCli4, kIcmpDestUnreachable, 4,
                     echo(kCli4, kSrv4, 0x0a03, false, 1, 1300, rawIp()), 1280, 548),
           related(kSrvPing));
    fx.add("cli -> srv IPv6 echo request, 1300 bytes", echo(kCli6, kSrv6, 0x0a04, false, 1, 1300),
           allowRule(kSrvPing6, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: packet too big, MTU 1280 (related)",
           icmpError(kRouter6, kCli6, kIcmpv6PacketTooBig, 0,
                     echo(kCli6, kSrv6, 0x0a04, false, 1, 1300, rawIp()), 1280, 1232),
           related(kSrvPing6));
    put(fx);
  }
  {
    Fx fx("peer_linux_icmp_related_redirect",
          "Linux selftests netfilter/conntrack_icmp_related.sh, the redirect part: the first-hop "
          "router answers cli's ping with an ICMP redirect (IPv4) and an ND redirect (IPv6); "
          "Linux marks both RELATED. statewall does not relate redirects (docs/semantics.md): "
          "the IPv4 redirect needs a rule (cli has none: denied), the IPv6 one passes as valid "
          "neighbour discovery (allow-exempt)",
          p);
    fx.add("cli pings a host on its link", echo(kCli4, kExt4, 0x0a05, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: host redirect about that ping (Linux: related)",
           icmpError(kRouter4, kCli4, kIcmpRedirect, 1,
                     echo(kCli4, kExt4, 0x0a05, false, 1, 32, rawIp()), ipAddr(kExt4).v4()),
           denySg(kCliIn));
    fx.add("cli pings over IPv6", echo(kCli6, kExt6, 0x0a06, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("fe80::1 -> cli: ND redirect quoting that ping (Linux: related)",
           ndRedirect("fe80::1", kCli6, "fe80::7", kExt6,
                      echo(kCli6, kExt6, 0x0a06, false, 1, 32, rawIp())),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    put(fx);
  }
}

// Open vSwitch's two 'ICMP related' cases: a port unreachable about a packet cli never sent (not
// related), cli's UDP to ext:5555, then a port unreachable about it from `from` (related).
void unreachableNeverSentThenAboutUdp(Fx& fx, const char* from, uint16_t sport) {
  fx.add("ext2 -> cli: port unreachable about cli:4369 -> ext2:8738, never sent",
         icmpError(kExt4b, kCli4, kIcmpDestUnreachable, 3,
                   udp(kCli4, 4369, kExt4b, 8738, 32, rawIp())),
         denySg(kCliIn));
  fx.add("cli -> ext UDP to port 5555", udp(kCli4, sport, kExt4, 5555),
         allowRule(kCliOut, kAnyState, kFlagNewConnection));
  fx.add(
      std::string(from) + " -> cli: port unreachable about it (related)",
      icmpError(from, kCli4, kIcmpDestUnreachable, 3, udp(kCli4, sport, kExt4, 5555, 32, rawIp())),
      related(kCliOut));
}

// Open vSwitch tests/system-traffic.at and tests/ofproto-dpif.at, the ICMP cases without NAT.
void openVswitchIcmp() {
  const std::string p = mainPolicy();
  {
    Fx fx("peer_ovs_icmp_related",
          "Open vSwitch tests/system-traffic.at 'conntrack - ICMP related': UDP out is committed; "
          "the port unreachable the destination sends back is +rel and passes",
          p);
    fx.add("cli -> ext UDP to port 10000", udp(kCli4, 40600, kExt4, 10000),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("ext -> cli: port unreachable (related)",
           icmpError(kExt4, kCli4, kIcmpDestUnreachable, 3,
                     udp(kCli4, 40600, kExt4, 10000, 32, rawIp())),
           related(kCliOut));
    put(fx);
  }
  {
    Fx fx("peer_ovs_icmp_related_original_direction",
          "Open vSwitch tests/system-traffic.at 'conntrack - ICMP related to original direction': "
          "an error about the connection's reply, sent back to the reply's sender (so it travels "
          "in the connection's original direction), is +rel, twice",
          p);
    fx.add("ext:53 -> srv:53", udp(kExt4, 53, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("srv:53 -> ext:53 (the reply)", udp(kSrv4, 53, kExt4, 53),
           tracked(kSrv53, kAnyState, kFlagReply));
    const Bytes err =
        icmpError(kExt4, kSrv4, kIcmpDestUnreachable, 10, udp(kSrv4, 53, kExt4, 53, 32, rawIp()));
    fx.add("ext -> srv: host prohibited about srv's reply (related)", err, related(kSrv53));
    fx.add("the same error again (related)", err, related(kSrv53));
    put(fx);
  }
  {
    Fx fx("peer_ovs_icmp_related_2",
          "Open vSwitch tests/system-traffic.at 'conntrack - ICMP related 2': a port unreachable "
          "about a packet never sent is not related (+inv); after UDP out, a path midpoint's port "
          "unreachable about it is +rel",
          p);
    unreachableNeverSentThenAboutUdp(fx, kRouter4, 41614);
    put(fx);
  }
  {
    Fx fx("peer_ovs_dpif_icmp_related",
          "Open vSwitch tests/ofproto-dpif.at 'ofproto-dpif - conntrack - ICMP related': an error "
          "with no connection behind it is dropped; after UDP out, the destination's port "
          "unreachable is +rel+rpl and passes",
          p);
    unreachableNeverSentThenAboutUdp(fx, kExt4, 41615);
    put(fx);
  }
  {
    Fx fx("peer_ovs_ipv4_ping",
          "Open vSwitch tests/system-traffic.at 'conntrack - IPv4 ping': pings out are committed "
          "and their replies are +est; pings in (no rule) fail",
          p);
    for (uint16_t seq = 1; seq <= 3; ++seq) {
      fx.add("cli echo request", echo(kCli4, kExt4, 0x0b10, false, seq),
             seq == 1 ? allowRule(kCliOut, kAnyState, kFlagNewConnection) : tracked(kCliOut));
      fx.add("ext echo reply", echo(kExt4, kCli4, 0x0b10, true, seq),
             tracked(kCliOut, kAnyState, kFlagReply));
    }
    for (uint16_t seq = 1; seq <= 3; ++seq)
      fx.add("ext echo request to cli", echo(kExt4, kCli4, 0x0b11, false, seq), denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("peer_ovs_ipv6_ping",
          "Open vSwitch tests/system-traffic.at 'conntrack - IPv6 ping': pings in (no rule) fail; "
          "pings out are committed and their replies are +est",
          p);
    for (uint16_t seq = 1; seq <= 3; ++seq)
      fx.add("ext echo request to cli", echo(kExt6, kCli6, 0x0b12, false, seq), denySg(kCliIn));
    for (uint16_t seq = 1; seq <= 3; ++seq) {
      fx.add("cli echo request", echo(kCli6, kExt6, 0x0b13, false, seq),
             seq == 1 ? allowRule(kCliOut, kAnyState, kFlagNewConnection) : tracked(kCliOut));
      fx.add("ext echo reply", echo(kExt6, kCli6, 0x0b13, true, seq),
             tracked(kCliOut, kAnyState, kFlagReply));
    }
    put(fx);
  }
}

// FreeBSD tests/sys/netpfil/pf/icmp.sh, icmp.py and icmp6.sh (the rules pass one kind of traffic
// and keep state; everything else is blocked).
void freebsdPfIcmp() {
  const std::string p = mainPolicy();
  {
    Fx fx("peer_pf_icmp_cve_2019_5598",
          "FreeBSD tests/sys/netpfil/pf/icmp.sh 'cve_2019_5598': with UDP state to port 53, an "
          "ICMP error quoting other addresses with the same ports must not pass on that state",
          p);
    fx.add("ext:1234 -> srv:53", udp(kExt4, 1234, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("ext -> srv: port unreachable quoting 4.3.2.1:1234 -> 1.2.3.4:53",
           icmpError(kExt4, kSrv4, kIcmpDestUnreachable, 3,
                     udp("4.3.2.1", 1234, "1.2.3.4", 53, 32, rawIp())),
           denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp_inner_match",
          "FreeBSD tests/sys/netpfil/pf/icmp.py 'test_inner_match': with echo state between the "
          "pinger and srv, an error quoting srv's echo reply but addressed to a third host is "
          "blocked",
          p);
    fx.add("ext pings srv", echo(kExt4, kSrv4, 0x0b20, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("ext -> cli: unreachable quoting srv's echo reply to ext",
           icmpError(kExt4, kCli4, kIcmpDestUnreachable, 0,
                     echo(kSrv4, kExt4, 0x0b20, true, 1, 32, rawIp())),
           denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp_fragmentation_needed",
          "FreeBSD tests/sys/netpfil/pf/icmp.py 'test_fragmentation_needed': pings of 128 and "
          "1464 bytes with DF are answered; one of 1468 bytes gets 'fragmentation needed' (MTU "
          "1492) from the router, which passes on the ping's state",
          p);
    fx.add("cli echo request, 128 bytes",
           echo(kCli4, kExt4, 0, false, 0, 128, {.dont_fragment = true}),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kExt4, kCli4, 0, true, 0, 128),
           tracked(kCliOut, kAnyState, kFlagReply));
    fx.add("cli echo request, 1464 bytes",
           echo(kCli4, kExt4, 0, false, 0, 1464, {.dont_fragment = true}), tracked(kCliOut));
    fx.add("echo reply", echo(kExt4, kCli4, 0, true, 0, 1464),
           tracked(kCliOut, kAnyState, kFlagReply));
    fx.add("cli echo request, 1468 bytes",
           echo(kCli4, kExt4, 0, false, 0, 1468, {.dont_fragment = true}), tracked(kCliOut));
    fx.add("router -> cli: fragmentation needed, MTU 1492 (related)",
           icmpError(kRouter4, kCli4, kIcmpDestUnreachable, 4,
                     echo(kCli4, kExt4, 0, false, 0, 1468, rawIp()), 1492, 548),
           related(kCliOut));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp_truncated_opts",
          "FreeBSD tests/sys/netpfil/pf/icmp.py 'test_truncated_opts': an unreachable whose quoted "
          "IPv4 header announces options beyond the quote is dropped (pf must not read past it); "
          "statewall denies it as malformed",
          p);
    // IHL 14 (56 bytes) and a security option claiming 100 bytes, but 52 bytes quoted.
    Bytes q = {0x4e, 0, 0x03, 0xe8, 0, 1, 0, 0, 64, 0, 0, 0, 10, 0, 1, 10, 198, 51, 100, 7};
    q.push_back(130);
    q.push_back(100);
    q.resize(52, 0);
    fx.add("ext -> srv: unreachable with a truncated quoted header",
           icmpError(kExt4, kSrv4, kIcmpDestUnreachable, 0, q), malformed("icmp-quoted"));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp_id_conflict",
          "FreeBSD tests/sys/netpfil/pf/icmp.py 'test_id_conflict': two clients ping the same "
          "host with the same echo id; each gets its own reply (pf's test goes through NAT, "
          "which statewall does not do; the clients' addresses keep the pairs apart)",
          "version: 1\n"
          "groups:\n"
          "  cli:\n"
          "    description: default outbound rule\n"
          "interfaces:\n"
          "  cli-1: {addresses: [10.0.2.20], groups: [cli]}\n"
          "  cli-2: {addresses: [10.0.2.21], groups: [cli]}\n");
    fx.add("cli-1 pings, id 42", echo(kCli4, kExt4, 42, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("reply to cli-1", echo(kExt4, kCli4, 42, true), tracked(kCliOut, kAnyState, kFlagReply));
    fx.add("cli-2 pings, id 42", echo("10.0.2.21", kExt4, 42, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("reply to cli-2", echo(kExt4, "10.0.2.21", 42, true),
           tracked(kCliOut, kAnyState, kFlagReply));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp6_zero_id",
          "FreeBSD tests/sys/netpfil/pf/icmp6.sh 'zero_id': the host passes neighbour discovery "
          "and its own traffic out; an echo request with id 0 from outside, after a neighbour "
          "exchange, is still blocked (not confused with the neighbour discovery)",
          p);
    fx.add("ext echo request to cli (blocked)", echo(kExt6, kCli6, 0x0b30, false), denySg(kCliIn));
    const X nd = exemptControl(rules::Exemption::kNeighbourDiscovery);
    fx.add(
        "fe80::7 solicits cli",
        buildNd(
            {.src = ipAddr("fe80::7"), .dst = ipAddr("ff02::1:ff00:20"), .target = ipAddr(kCli6)}),
        nd);
    fx.add("cli advertises itself",
           buildNd({.type = kIcmpv6NeighborAdvert,
                    .src = ipAddr(kCli6),
                    .dst = ipAddr("fe80::7"),
                    .target = ipAddr(kCli6)}),
           nd);
    fx.add("ext echo request to cli, id 0", echo(kExt6, kCli6, 0, false, 0), denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp6_ttl_exceeded",
          "FreeBSD tests/sys/netpfil/pf/icmp6.sh 'ttl_exceeded': traceroute6 over UDP and over "
          "ICMPv6 echo; the routers' time exceeded errors pass on the probes' state (pf's test "
          "also translates them through NAT, not ported)",
          p);
    fx.add("cli UDP probe, hop limit 1", udp(kCli6, 40700, kExt6, 33434, 24, {.ttl = 1}),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: time exceeded (related)",
           icmpError(kRouter6, kCli6, kIcmpv6TimeExceeded, 0,
                     udp(kCli6, 40700, kExt6, 33434, 24, rawIp())),
           related(kCliOut));
    fx.add("cli echo probe, hop limit 1", echo(kCli6, kExt6, 0x0b31, false, 1, 32, {.ttl = 1}),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: time exceeded (related)",
           icmpError(kRouter6, kCli6, kIcmpv6TimeExceeded, 0,
                     echo(kCli6, kExt6, 0x0b31, false, 1, 32, rawIp())),
           related(kCliOut));
    put(fx);
  }
  {
    Fx fx("peer_pf_icmp6_repeat",
          "FreeBSD tests/sys/netpfil/pf/icmp6.sh 'repeat': neighbour solicitations repeated four "
          "times all pass, and so do the advertisements that answer them",
          p);
    const X nd = exemptControl(rules::Exemption::kNeighbourDiscovery);
    for (int i = 0; i < 4; ++i) {
      fx.add("fe80::7 solicits cli",
             buildNd({.src = ipAddr("fe80::7"),
                      .dst = ipAddr("ff02::1:ff00:20"),
                      .target = ipAddr(kCli6)}),
             nd);
      fx.add("cli advertises itself",
             buildNd({.type = kIcmpv6NeighborAdvert,
                      .src = ipAddr(kCli6),
                      .dst = ipAddr("fe80::7"),
                      .target = ipAddr(kCli6)}),
             nd);
    }
    put(fx);
  }
}

}  // namespace

void peerFixtures() {
  fragments();
  checksBeforeTracking();
  interfaceTimeouts();
  linuxPacketdrill();
  openVswitch();
  freebsdPf();
  linuxIcmpRelated();
  openVswitchIcmp();
  freebsdPfIcmp();
}

}  // namespace statewall::fixtures::dsl
