// The fixture table (fixtures.hpp), one scenario family: Fragments, control traffic, link layers,
// malformed packets. Every expectation follows docs/design.md; where it leaves a detail to the TCP
// tracker, the tracker's published transition table (tcpTransitions()) is the reference.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "engine/fixture_dsl.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::fixtures::dsl {

// ---------------------------------------------------------------------------------------------
// Fragments, control traffic, link layers, malformed packets.
// ---------------------------------------------------------------------------------------------

void fragmentFixtures() {
  const std::string p = mainPolicy();
  {
    Fx fx("frag4_udp_allowed", "the first fragment is judged, later ones follow it", p);
    auto frags =
        fragment(udp(kExt4, 8000, kSrv4, 53, 3000, {.ip_id = 0x1111}), 1500, {.ip_id = 0x1111});
    fx.add("first fragment", frags[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], allowRule(kSrv53, kAnyState, kFlagFragment));
    }
    fx.add("response", udp(kSrv4, 53, kExt4, 8000), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("frag4_udp_denied", "later fragments of a denied datagram are denied", p);
    auto frags =
        fragment(udp(kExt4, 8001, kSrv4, 99, 3000, {.ip_id = 0x2222}), 1500, {.ip_id = 0x2222});
    fx.add("first fragment", frags[0], denySg(kSrvIn));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], denySg(kSrvIn, kAnyState, kFlagFragment));
    }
    put(fx);
  }
  {
    Fx fx("frag4_without_first", "a fragment whose first fragment was never seen is denied", p);
    auto frags =
        fragment(udp(kExt4, 8002, kSrv4, 53, 3000, {.ip_id = 0x3333}), 1500, {.ip_id = 0x3333});
    fx.add("middle fragment alone", frags[1], orphanFragment());
    fx.add("last fragment alone", frags[2], orphanFragment());
    put(fx);
  }
  {
    Fx fx("frag4_out_of_order", "a later fragment before its first is denied; after, it follows",
          p);
    auto frags =
        fragment(udp(kExt4, 8003, kSrv4, 53, 3000, {.ip_id = 0x4444}), 1500, {.ip_id = 0x4444});
    fx.add("last fragment first", frags[2], orphanFragment());
    fx.add("first fragment", frags[0], allowRule(kSrv53));
    fx.add("middle fragment", frags[1], allowRule(kSrv53, kAnyState, kFlagFragment));
    put(fx);
  }
  {
    Fx fx("frag4_tcp_tracked", "fragments of a tracked TCP segment", p);
    Tcp t(kExt4, 43100, kSrv4, 80);
    established(fx, t, kSrv80);
    auto frags = fragment(t.s(kData, 2500), 1200, {.ip_id = 0x5555});
    fx.add("S data, first fragment", frags[0], tracked(kSrv80, TcpState::kEstablished));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("S data, later fragment", frags[i], tracked(kSrv80, kAnyState, kFlagFragment));
    }
    // No ACK of the whole segment follows: without reassembly the tracker only saw the first
    // fragment's bytes, and docs/design.md does not say how later fragments count for the window.
    put(fx);
  }
  {
    Fx fx("frag4_icmp_echo", "a fragmented echo request", p);
    auto frags = fragment(echo(kExt4, kSrv4, 0x0909, false, 1, 2000, {.ip_id = 0x6666}), 1000,
                          {.ip_id = 0x6666});
    fx.add("first fragment", frags[0], allowRule(kSrvPing));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], allowRule(kSrvPing, kAnyState, kFlagFragment));
    }
    put(fx);
  }
  {
    Fx fx("frag6_udp", "IPv6 fragments: first judged, later follow, orphan denied", p);
    auto frags = fragment(udp(kExt6, 8100, kSrv6, 53, 3000), 1280, {}, 0xabc1);
    fx.add("first fragment", frags[0], allowRule(kSrv53, kAnyState, kFlagNewConnection));
    for (size_t i = 1; i < frags.size(); ++i) {
      fx.add("later fragment", frags[i], allowRule(kSrv53, kAnyState, kFlagFragment));
    }
    auto denied = fragment(udp(kExt6, 8101, kSrv6, 99, 3000), 1280, {}, 0xabc2);
    fx.add("first fragment, closed port", denied[0], denySg(kSrvIn));
    fx.add("later fragment, closed port", denied[1], denySg(kSrvIn, kAnyState, kFlagFragment));
    auto orphan = fragment(udp(kExt6, 8102, kSrv6, 53, 3000), 1280, {}, 0xabc3);
    fx.add("later fragment without its first", orphan[1], orphanFragment());
    put(fx);
  }
}

void controlAndLinks() {
  {
    Fx fx("control_arp_nd", "ARP and valid IPv6 neighbour discovery are exempt", mainPolicy());
    fx.add("ARP request", buildArp({.sender_ip = ipAddr(kSrv4), .target_ip = ipAddr("10.0.1.1")}),
           exemptControl(rules::Exemption::kArp));
    fx.add("ARP reply",
           buildArp({.op = 2, .sender_ip = ipAddr("10.0.1.1"), .target_ip = ipAddr(kSrv4)}),
           exemptControl(rules::Exemption::kArp));
    fx.add("neighbour solicitation", buildNd({}),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    fx.add("neighbour advertisement",
           buildNd({.type = kIcmpv6NeighborAdvert,
                    .src = ipAddr(kSrv6),
                    .dst = ipAddr("fe80::1"),
                    .target = ipAddr(kSrv6)}),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    fx.add(
        "router advertisement",
        buildNd({.type = kIcmpv6RouterAdvert, .src = ipAddr("fe80::1"), .dst = ipAddr("ff02::1")}),
        exemptControl(rules::Exemption::kNeighbourDiscovery));
    put(fx);
  }
  {
    Fx fx("control_with_unprotected_deny", "ARP and ND pass even with `unprotected: deny`",
          mainPolicy("unprotected: deny\n"));
    fx.add("ARP request", buildArp({}), exemptControl(rules::Exemption::kArp));
    fx.add("neighbour solicitation", buildNd({}),
           exemptControl(rules::Exemption::kNeighbourDiscovery));
    put(fx);
  }
  {
    Fx fx("unprotected_allow", "neither address protected: the policy passes it (default)",
          mainPolicy());
    Tcp t("192.0.2.1", 1234, "192.0.2.2", 80);
    fx.add("TCP SYN", t.c(kSyn), unprotected());
    fx.add("UDP", udp("192.0.2.3", 1000, "192.0.2.4", 2000), unprotected());
    fx.add("IPv6 UDP", udp("2001:db8:aa::1", 1000, "2001:db8:aa::2", 2000), unprotected());
    fx.add("ICMP echo", echo("192.0.2.5", "192.0.2.6", 1, false), unprotected());
    put(fx);
  }
  {
    Fx fx("unprotected_deny", "`unprotected: deny`: deny-sg without an interface",
          mainPolicy("unprotected: deny\n"));
    Tcp t("192.0.2.1", 1234, "192.0.2.2", 80);
    fx.add("TCP SYN between unprotected hosts", t.c(kSyn), denySg("none"));
    fx.add("IPv6 UDP between unprotected hosts", udp("2001:db8:aa::1", 1, "2001:db8:aa::2", 2),
           denySg("none"));
    Tcp s(kExt4, 44000, kSrv4, 80);
    fx.add("protected traffic is unaffected", s.c(kSyn), allowRule(kSrv80, TcpState::kSynSent));
    put(fx);
  }
  {
    Fx fx("vlan_8021q", "802.1Q-tagged frames", mainPolicy());
    Tcp t(kExt4, 44100, kSrv4, 80, {.vlans = {VlanTag{.vid = 100}}});
    established(fx, t, kSrv80);
    fx.add("tagged UDP request", udp(kExt4, 9000, kSrv4, 53, 32, {.vlans = {VlanTag{.vid = 100}}}),
           allowRule(kSrv53));
    put(fx);
  }
  {
    Fx fx("vlan_qinq", "802.1ad outer and 802.1Q inner tags", mainPolicy());
    const FrameOptions qinq{
        .vlans = {VlanTag{.vid = 10, .tpid = kEtherTypeQinQ}, VlanTag{.vid = 200}}};
    Tcp t(kExt6, 44101, kSrv6, 80, qinq);
    handshake(fx, t, kSrv80);
    fx.add("S data", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("link_raw_ip", "raw IP frames (no link header)", mainPolicy());
    fx.link(LinkType::kRawIp);
    Tcp t(kExt4, 44102, kSrv4, 80, rawIp());
    handshake(fx, t, kSrv80);
    fx.add("UDP v6 request", udp(kExt6, 9001, kSrv6, 53, 32, rawIp()), allowRule(kSrv53));
    fx.add("UDP v6 response", udp(kSrv6, 53, kExt6, 9001, 32, rawIp()), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("link_linux_sll", "Linux cooked capture frames", mainPolicy());
    fx.link(LinkType::kLinuxSll);
    const FrameOptions sll{.link = LinkType::kLinuxSll};
    Tcp t(kExt4, 44103, kSrv4, 80, sll);
    handshake(fx, t, kSrv80);
    fx.add("S data", t.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    put(fx);
  }
}

void malformedPackets() {
  const std::string p = mainPolicy();
  Fx fx("malformed", "frames that cannot be parsed are deny-malformed naming the layer", p);
  {
    Bytes b = udp(kExt4, 1, kSrv4, 53);
    b.resize(b.size() - 10);
    fx.add("IPv4 total length beyond the captured bytes", b, malformed("ipv4"));
  }
  {
    Bytes b = udp(kExt4, 1, kSrv4, 53);
    b[14] = 0x44;
    fx.add("IPv4 IHL 4", b, malformed("ipv4"));
  }
  {
    const Bytes l4(12, 0);
    fx.add(
        "TCP header of 12 bytes",
        addLinkHeader(buildIpPacket(ipAddr(kExt4), ipAddr(kSrv4), kIpProtoTcp, l4), kEtherTypeIpv4),
        malformed("tcp"));
  }
  {
    Tcp t(kExt4, 45000, kSrv4, 80);
    Bytes b = t.c(kSyn);
    b[14 + 20 + 12] = 0x40;  // data offset 4
    fx.add("TCP data offset 4", b, malformed("tcp"));
  }
  {
    FrameOptions o;
    for (int i = 0; i < kMaxIpv6ExtHeaders + 1; ++i)
      o.ipv6_ext.push_back({.type = kIpv6DestOpts});
    fx.add("IPv6 chain of 9 extension headers", udp(kExt6, 1, kSrv6, 53, 8, o),
           malformed("ipv6-ext"));
  }
  {
    Bytes b = udp(kExt4, 1, kSrv4, 53);
    b[14 + 20 + 4] = 0;
    b[14 + 20 + 5] = 4;  // UDP length 4
    fx.add("UDP length below 8", b, malformed("udp"));
  }
  fx.add("Ethernet frame of 10 bytes", Bytes(10, 0), malformed("link"));
  fx.add("non-IP EtherType 0x88b5", buildEthertype(0x88b5, Bytes(46, 0xab)),
         malformed(std::nullopt));
  fx.add("ICMP error quoting 10 bytes",
         icmpError(kRouter4, kSrv4, kIcmpDestUnreachable, 1,
                   buildUdp({.src = ipAddr(kSrv4), .dst = ipAddr(kExt4)}, rawIp()), 0, 10),
         malformed("icmp-quoted"));
  put(fx);

  Fx fx2("malformed_in_tracked_flow",
         "a malformed copy of a tracked packet is denied; the connection is not disturbed", p);
  Tcp t(kExt4, 45001, kSrv4, 80);
  established(fx2, t, kSrv80);
  Bytes cut = t.sAt(kData, t.ss().nxt, t.cs().nxt, 100);
  cut.resize(14 + 20 + 10);
  fx2.add("S data cut inside the TCP header", cut, malformed("ipv4"));
  fx2.add("S data", t.s(kData, 100), tracked(kSrv80, TcpState::kEstablished));
  put(fx2);
}

}  // namespace statewall::fixtures::dsl
