// Tunnels and link types (docs/design.md "Encapsulation and tunnels"): with ParseOptions::decap
// the parser describes the innermost packet; without it, the outer one. Every fixture is built by
// packet_builder (FrameOptions::tunnels), so the tests also check the builder's framing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parse_util.hpp"

namespace statewall::dataplane {
namespace {

using testing::parseBytes;
using Kind = EncapHeader::Kind;

const IpAddr kIn4a = IpAddr::v4(0x0a000001);  // 10.0.0.1
const IpAddr kIn4b = IpAddr::v4(0x0a000002);
const IpAddr kIn6a = IpAddr::v6(0x20010db800000000ull, 1);
const IpAddr kIn6b = IpAddr::v6(0x20010db800000000ull, 2);
const IpAddr kOut6a = IpAddr::v6(0x20010db8ffff0000ull, 1);
const IpAddr kOut6b = IpAddr::v6(0x20010db8ffff0000ull, 2);

ParseOptions decapOn() {
  ParseOptions o;
  o.decap = true;
  return o;
}

TcpSpec innerTcp(bool v6 = false) {
  return {.src = v6 ? kIn6a : kIn4a,
          .dst = v6 ? kIn6b : kIn4b,
          .sport = 40001,
          .dport = 443,
          .flags = kSyn,
          .seq = 7};
}

struct TunnelCase {
  const char* name;
  TunnelSpec tunnel;
  bool inner_v6;
  uint8_t outer_proto;
  uint16_t outer_dport;  // UDP tunnels
  std::string text;      // encapText() of the tunnel's entry
};

std::vector<TunnelCase> tunnelCases() {
  std::vector<TunnelCase> c;
  c.push_back(
      {"vxlan", {.kind = Kind::kVxlan, .value = 42}, false, kIpProtoUdp, 4789, "vxlan:vni=42"});
  c.push_back({"vxlan-v6-outer",
               {.kind = Kind::kVxlan, .value = 7, .outer_src = kOut6a, .outer_dst = kOut6b},
               true,
               kIpProtoUdp,
               4789,
               "vxlan:vni=7"});
  c.push_back(
      {"geneve", {.kind = Kind::kGeneve, .value = 7}, false, kIpProtoUdp, 6081, "geneve:vni=7"});
  c.push_back({"geneve-options",
               {.kind = Kind::kGeneve, .value = 9, .geneve_options = Bytes(12, 0xab)},
               true,
               kIpProtoUdp,
               6081,
               "geneve:vni=9"});
  c.push_back({"gtp-u",
               {.kind = Kind::kGtpU, .value = 0x1234},
               false,
               kIpProtoUdp,
               2152,
               "gtp-u:teid=0x1234"});
  c.push_back({"gtp-u-ext",
               {.kind = Kind::kGtpU,
                .value = 0xabcdef01,
                .gtp_sequence = true,
                .gtp_extensions = {Bytes{0x00, 0x01}, Bytes(6, 0x11)}},
               true,
               kIpProtoUdp,
               2152,
               "gtp-u:teid=0xabcdef01"});
  c.push_back({"teredo", {.kind = Kind::kTeredo}, true, kIpProtoUdp, 3544, "teredo"});
  c.push_back({"teredo-auth-origin",
               {.kind = Kind::kTeredo, .teredo_auth = true, .teredo_origin = true},
               true,
               kIpProtoUdp,
               3544,
               "teredo"});
  c.push_back({"ayiya", {.kind = Kind::kAyiya}, false, kIpProtoUdp, 5072, "ayiya"});
  c.push_back({"ayiya-v6", {.kind = Kind::kAyiya}, true, kIpProtoUdp, 5072, "ayiya"});
  c.push_back({"gre", {.kind = Kind::kGre}, false, kIpProtoGre, 0, "gre"});
  // GRE in UDP (RFC 8086), as in Zeek's gre-over-udp-4754.pcap.
  c.push_back(
      {"gre-udp", {.kind = Kind::kGre, .dport = 4754}, false, kIpProtoUdp, 4754, "gre:port=4754"});
  c.push_back({"gre-udp-key-ethernet",
               {.kind = Kind::kGre, .value = 9, .aux = 1, .dport = 4754, .ethernet = true},
               true,
               kIpProtoUdp,
               4754,
               "gre:key=9:port=4754"});
  c.push_back(
      {"gre-key-seq-csum",
       {.kind = Kind::kGre, .value = 5, .aux = 1, .gre_checksum = true, .gre_sequence = true},
       true,
       kIpProtoGre,
       0,
       "gre:key=5"});
  c.push_back(
      {"gre-ethernet", {.kind = Kind::kGre, .ethernet = true}, false, kIpProtoGre, 0, "gre"});
  c.push_back(
      {"erspan-1", {.kind = Kind::kErspan, .aux = 1}, false, kIpProtoGre, 0, "erspan:type=1"});
  c.push_back({"erspan-2",
               {.kind = Kind::kErspan, .value = 3, .aux = 2},
               false,
               kIpProtoGre,
               0,
               "erspan:session=3"});
  c.push_back({"erspan-3",
               {.kind = Kind::kErspan, .value = 1023, .aux = 3},
               true,
               kIpProtoGre,
               0,
               "erspan:session=1023:type=3"});
  // Aruba's 802.11 in GRE, as in Zeek's gre-aruba.pcap: a data frame from the distribution system,
  // LLC/SNAP, the IP packet; QoS data with four addresses; another of Aruba's protocol types.
  c.push_back({"aruba", {.kind = Kind::kAruba}, false, kIpProtoGre, 0, "aruba:proto=0x8200"});
  c.push_back({"aruba-qos-4addr",
               {.kind = Kind::kAruba, .value = 0x8210, .wlan_qos = true, .wlan_four_address = true},
               true,
               kIpProtoGre,
               0,
               "aruba:proto=0x8210"});
  c.push_back({"aruba-9000",
               {.kind = Kind::kAruba, .value = 0x9000, .wlan_qos = true},
               false,
               kIpProtoGre,
               0,
               "aruba:proto=0x9000"});
  c.push_back({"4in4", {.kind = Kind::kIpIp}, false, kIpProtoIpIp, 0, "ip-in-ip"});
  c.push_back({"6in4", {.kind = Kind::kIpIp}, true, kIpProtoIpv6, 0, "ip-in-ip"});
  c.push_back({"4in6",
               {.kind = Kind::kIpIp, .outer_src = kOut6a, .outer_dst = kOut6b},
               false,
               kIpProtoIpIp,
               0,
               "ip-in-ip"});
  c.push_back({"6in6",
               {.kind = Kind::kIpIp, .outer_src = kOut6a, .outer_dst = kOut6b},
               true,
               kIpProtoIpv6,
               0,
               "ip-in-ip"});
  return c;
}

TEST(Tunnels, DecapJudgesTheInnerPacketAndWithoutItTheOuter) {
  for (const TunnelCase& tc : tunnelCases()) {
    SCOPED_TRACE(tc.name);
    const Bytes f = buildTcp(innerTcp(tc.inner_v6), {.tunnels = {tc.tunnel}});
    const auto in = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
    ASSERT_TRUE(in.ok) << layerName(in.p.malformed) << ": " << in.p.malformed_why;
    EXPECT_EQ(in.p.tunnel_depth, 1);
    EXPECT_EQ(in.p.proto, kIpProtoTcp);
    EXPECT_EQ(in.p.src, tc.inner_v6 ? kIn6a : kIn4a);
    EXPECT_EQ(in.p.dst, tc.inner_v6 ? kIn6b : kIn4b);
    EXPECT_EQ(in.p.sport, 40001);
    EXPECT_EQ(in.p.dport, 443);
    EXPECT_EQ(in.p.tcp_flags, kSyn);
    EXPECT_EQ(in.p.seq, 7u);
    // The general path (no fast path) agrees.
    ParsedPacket g;
    EXPECT_TRUE(parsePacketGeneral(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet,
                                   decapOn(), &g));
    EXPECT_EQ(g.dport, 443);

    const auto out = parseBytes(f, LinkType::kEthernet);
    ASSERT_TRUE(out.ok) << layerName(out.p.malformed) << ": " << out.p.malformed_why;
    EXPECT_EQ(out.p.tunnel_depth, 0);
    EXPECT_EQ(out.p.proto, tc.outer_proto);
    EXPECT_EQ(out.p.src, tc.tunnel.outer_src);
    EXPECT_EQ(out.p.dst, tc.tunnel.outer_dst);
    if (tc.outer_proto == kIpProtoUdp) {
      EXPECT_EQ(out.p.dport, tc.outer_dport);
    }
    // decap off through the 5-argument form: the same as the 4-argument one.
    const auto off = parseBytes(f.data(), f.size(), LinkType::kEthernet, ParseOptions{});
    EXPECT_EQ(off.p.proto, tc.outer_proto);
    EXPECT_EQ(off.p.tunnel_depth, 0);
  }
}

TEST(Tunnels, EncapsulationListsTheTunnelWithItsCarryingFlow) {
  for (const TunnelCase& tc : tunnelCases()) {
    SCOPED_TRACE(tc.name);
    const Bytes f =
        buildTcp(innerTcp(tc.inner_v6), {.vlans = {{.vid = 100}}, .tunnels = {tc.tunnel}});
    const auto e =
        encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet, decapOn());
    ASSERT_EQ(e.size(), 2u);
    EXPECT_EQ(encapText(e[0]), "vlan:100");
    EXPECT_FALSE(e[0].has_outer);
    EXPECT_EQ(encapText(e[1]), tc.text);
    EXPECT_TRUE(e[1].has_outer);
    EXPECT_EQ(e[1].src, tc.tunnel.outer_src);
    EXPECT_EQ(e[1].dst, tc.tunnel.outer_dst);
    EXPECT_EQ(e[1].proto, tc.outer_proto);
    if (tc.outer_proto == kIpProtoUdp) {
      EXPECT_EQ(e[1].dport, tc.outer_dport);
    }
    // Without decap only the layer-2.5 header.
    const auto plain =
        encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet);
    ASSERT_EQ(plain.size(), 1u);
    // The text reads back as the same header, and builds the same frame.
    EncapHeader back;
    ASSERT_EQ(parseEncapText(tc.text, &back), "");
    EXPECT_EQ(back.kind, e[1].kind);
    EXPECT_EQ(back.value, e[1].value);
    EXPECT_EQ(encapText(back), tc.text);
  }
}

// ---- nesting and the depth limit ----

TEST(Tunnels, NestedTunnelsToTheLimitAndBeyond) {
  const std::vector<TunnelSpec> four = {{.kind = Kind::kGeneve, .value = 1},
                                        {.kind = Kind::kIpIp},
                                        {.kind = Kind::kGre, .value = 9, .aux = 1},
                                        {.kind = Kind::kVxlan, .value = 42}};
  const Bytes f = buildTcp(innerTcp(), {.tunnels = four});
  const auto r = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
  ASSERT_TRUE(r.ok) << layerName(r.p.malformed) << ": " << r.p.malformed_why;
  EXPECT_EQ(r.p.tunnel_depth, 4);
  EXPECT_EQ(r.p.dport, 443);
  const auto e =
      encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet, decapOn());
  std::vector<std::string> texts;
  for (const auto& h : e)
    texts.push_back(encapText(h));
  EXPECT_EQ(texts,
            (std::vector<std::string>{"geneve:vni=1", "ip-in-ip", "gre:key=9", "vxlan:vni=42"}));

  // One more than max_tunnel_depth: deny-malformed at "tunnel-depth", with the outer fields of
  // the last tunnel parsed.
  ParseOptions three = decapOn();
  three.max_tunnel_depth = 3;
  const auto deep = parseBytes(f.data(), f.size(), LinkType::kEthernet, three);
  EXPECT_FALSE(deep.ok);
  EXPECT_EQ(deep.p.malformed, Layer::kTunnelDepth);
  EXPECT_EQ(deep.p.tunnel_depth, 3);
  EXPECT_EQ(deep.p.dport, 4789);  // the VXLAN packet that would have been the fourth tunnel

  ParseOptions none = decapOn();
  none.max_tunnel_depth = 0;
  EXPECT_EQ(parseBytes(f.data(), f.size(), LinkType::kEthernet, none).p.malformed,
            Layer::kTunnelDepth);
}

// A tunnel inside itself, far beyond the limit: deny-malformed, never a crash or a long walk.
TEST(Tunnels, TunnelInsideItselfBomb) {
  for (Kind k : {Kind::kVxlan, Kind::kIpIp, Kind::kGre, Kind::kGtpU}) {
    SCOPED_TRACE(std::string(encapKindName(k)));
    std::vector<TunnelSpec> many(40, TunnelSpec{.kind = k});
    const Bytes f = buildTcp(innerTcp(), {.tunnels = many});
    const auto r = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.p.malformed, Layer::kTunnelDepth);
    EXPECT_EQ(r.p.tunnel_depth, 4);
    // encapsulation() stops where the parser stops.
    EXPECT_EQ(
        encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet, decapOn())
            .size(),
        4u);
    // Without decap: one outer packet.
    EXPECT_TRUE(parseBytes(f, LinkType::kEthernet).ok);
  }
}

// Layer-2.5 headers inside a tunnel's Ethernet frame are unwrapped too, and listed after it.
TEST(Tunnels, LayerTwoPointFiveInsideATunnel) {
  TunnelSpec vx{.kind = Kind::kVxlan, .value = 42};
  vx.inner_shims = {{.kind = Shim::Kind::kVlan, .value = 7},
                    {.kind = Shim::Kind::kMpls, .value = 16}};
  const Bytes f = buildTcp(innerTcp(), {.vlans = {{.vid = 100}}, .tunnels = {vx}});
  const auto r = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.dport, 443);
  EXPECT_EQ(r.p.vlan_count, 2);  // the frame's tags, outer first
  EXPECT_EQ(r.p.vlan_ids[0], 100);
  EXPECT_EQ(r.p.vlan_ids[1], 7);
  std::vector<std::string> texts;
  for (const auto& h :
       encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet, decapOn()))
    texts.push_back(encapText(h));
  EXPECT_EQ(texts, (std::vector<std::string>{"vlan:100", "vxlan:vni=42", "vlan:7", "mpls:16"}));
}

// GRE carrying an MPLS stack (hand-made: the builder puts layer 2.5 only in Ethernet frames).
TEST(Tunnels, GreCarryingMpls) {
  const Bytes ip = buildTcp(innerTcp(), rawIp());
  Bytes gre = {0x00, 0x00, 0x88, 0x47, 0x00, 0x01, 0x01, 0x40};  // GRE, then label 16 (bottom)
  gre.insert(gre.end(), ip.begin(), ip.end());
  const Bytes f =
      buildOtherProto({.proto = kIpProtoGre, .payload_len = gre.size(), .payload = gre});
  const auto r = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.dport, 443);
  const auto e =
      encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet, decapOn());
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(encapText(e[0]), "gre");
  EXPECT_EQ(encapText(e[1]), "mpls:16");
}

// The tunnel's payload starts after the outer IPv6 extension headers.
TEST(Tunnels, GreAfterIpv6ExtensionHeaders) {
  const Bytes ip = buildTcp(innerTcp(), rawIp());
  Bytes gre = {0x20, 0x00, 0x08, 0x00, 0, 0, 0, 77};  // key 77, IPv4
  gre.insert(gre.end(), ip.begin(), ip.end());
  const Bytes f = buildOtherProto(
      {.src = kOut6a,
       .dst = kOut6b,
       .proto = kIpProtoGre,
       .payload_len = gre.size(),
       .payload = gre},
      {.ipv6_ext = {{.type = kIpv6HopByHop, .body = {5, 2, 0, 0}},
                    {.type = kIpv6DestOpts},
                    {.type = kIpv6Fragment, .body = {0, 0, 0, 0, 0, 9}}}});  // atomic fragment
  const auto r = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.tunnel_depth, 1);
  EXPECT_EQ(r.p.dport, 443);
  const auto e =
      encapsulation(f.data(), static_cast<uint32_t>(f.size()), LinkType::kEthernet, decapOn());
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(encapText(e[0]), "gre:key=77");
  EXPECT_EQ(e[0].family, Family::kV6);
  EXPECT_EQ(e[0].src, kOut6a);
}

// ---- what is not decapsulated ----

TEST(Tunnels, FragmentedOuterPacketsAreNotDecapsulated) {
  const Bytes f = buildTcp({.src = kIn4a, .dst = kIn4b, .dport = 443, .payload_len = 1400},
                           {.tunnels = {{.kind = Kind::kVxlan, .value = 1}}});
  const auto frags = fragment(f, 576, {.tunnels = {{.kind = Kind::kVxlan}}});
  ASSERT_GT(frags.size(), 1u);
  const auto first = parseBytes(frags[0].data(), frags[0].size(), LinkType::kEthernet, decapOn());
  ASSERT_TRUE(first.ok) << first.p.malformed_why;
  EXPECT_EQ(first.p.tunnel_depth, 0);
  EXPECT_TRUE(first.p.is_fragment);
  EXPECT_EQ(first.p.dport, 4789);
}

TEST(Tunnels, OtherPayloadsOnTunnelPortsAndProtocols) {
  // Not Teredo (no indicator, no IPv6): the UDP packet it is.
  const Bytes dns = buildUdp(
      {.sport = 3544, .dport = 53, .payload_len = 12, .payload = {0x12, 0x34, 0x01, 0x00}});
  auto r = parseBytes(dns.data(), dns.size(), LinkType::kEthernet, decapOn());
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.p.tunnel_depth, 0);
  EXPECT_EQ(r.p.dport, 53);
  // GTP-U signalling (echo request, type 1) carries no user packet.
  const Bytes echo = buildUdp(
      {.sport = 2152, .dport = 2152, .payload = {0x32, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 1, 0, 0}});
  r = parseBytes(echo.data(), echo.size(), LinkType::kEthernet, decapOn());
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.p.tunnel_depth, 0);
  // GRE version 1 (PPTP) and an unknown GRE protocol: judged as GRE.
  for (const Bytes& g : {Bytes{0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0}, Bytes{0, 0, 0x12, 0x34}}) {
    const Bytes f = buildOtherProto({.proto = kIpProtoGre, .payload_len = g.size(), .payload = g});
    r = parseBytes(f.data(), f.size(), LinkType::kEthernet, decapOn());
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.p.tunnel_depth, 0);
    EXPECT_EQ(r.p.proto, kIpProtoGre);
  }
  // AYIYA that is not a forward (opcode 2, echo request).
  Bytes ay = {0x41, 0x52, 0x22, 41, 0, 0, 0, 0};
  ay.resize(8 + 16 + 20, 0);
  const Bytes af = buildUdp({.sport = 5072, .dport = 5072, .payload = ay});
  r = parseBytes(af.data(), af.size(), LinkType::kEthernet, decapOn());
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.p.tunnel_depth, 0);
}

TEST(Tunnels, TunnelPortTable) {
  ParseOptions o = decapOn();
  // VXLAN on Linux's old default port 8472 is only UDP until the port is added.
  const Bytes f = buildTcp(innerTcp(), {.tunnels = {{.kind = Kind::kVxlan, .dport = 8472}}});
  EXPECT_EQ(parseBytes(f.data(), f.size(), LinkType::kEthernet, o).p.tunnel_depth, 0);
  EXPECT_EQ(parseTunnelPort("vxlan=8472", &o), "");
  const auto r = parseBytes(f.data(), f.size(), LinkType::kEthernet, o);
  EXPECT_EQ(r.p.tunnel_depth, 1);
  EXPECT_EQ(r.p.dport, 443);
  // Re-assigning a port replaces its kind rather than adding an entry.
  const uint8_t n = o.tunnel_port_count;
  EXPECT_EQ(parseTunnelPort("geneve=8472", &o), "");
  EXPECT_EQ(o.tunnel_port_count, n);
  // Bad input: an error naming what is wrong.
  EXPECT_NE(parseTunnelPort("vxlan", &o).find("KIND=PORT"), std::string::npos);
  EXPECT_NE(parseTunnelPort("erspan=47", &o).find("not a UDP tunnel"), std::string::npos);
  EXPECT_NE(parseTunnelPort("vxlan=0", &o).find("1 to 65535"), std::string::npos);
  EXPECT_NE(parseTunnelPort("vxlan=65536", &o).find("1 to 65535"), std::string::npos);
  EXPECT_NE(parseTunnelPort("vxlan=12x", &o).find("1 to 65535"), std::string::npos);
  ParseOptions full;
  std::string err;
  for (uint16_t p = 10000; err.empty(); ++p)
    err = parseTunnelPort("vxlan=" + std::to_string(p), &full);
  EXPECT_NE(err.find("at most 16"), std::string::npos);
  EXPECT_EQ(full.tunnel_port_count, ParseOptions::kMaxTunnelPorts);
}

TEST(Tunnels, EncapTextErrors) {
  EncapHeader h;
  EXPECT_NE(parseEncapText("vxlan:42", &h).find("vni=N"), std::string::npos);
  EXPECT_NE(parseEncapText("vlan:4096", &h).find("0 to 4095"), std::string::npos);
  EXPECT_NE(parseEncapText("wormhole", &h).find("unknown encapsulation"), std::string::npos);
  EXPECT_NE(parseEncapText("teredo:1", &h).find("takes no value"), std::string::npos);
  EXPECT_NE(parseEncapText("erspan:type=1:session=3", &h).find("no session"), std::string::npos);
  EXPECT_NE(parseEncapText("erspan:type=4", &h).find("0 to 3"), std::string::npos);
  EXPECT_NE(parseEncapText("vxlan:", &h).find("nothing after"), std::string::npos);
  for (const char* ok :
       {"vlan:100", "mpls:16", "pppoe:7", "pbb:4096", "vn-tag:5", "pw-eth", "gre", "gre:key=0",
        "erspan:type=1", "erspan:session=3", "erspan:session=3:type=3", "vxlan:vni=42",
        "geneve:vni=7", "gtp-u:teid=0x1234", "teredo", "ayiya", "ip-in-ip"}) {
    SCOPED_TRACE(ok);
    ASSERT_EQ(parseEncapText(ok, &h), "");
    EXPECT_EQ(encapText(h), ok);
  }
  ASSERT_EQ(parseEncapText("gtp-u:teid=4660", &h), "");
  EXPECT_EQ(encapText(h), "gtp-u:teid=0x1234");
  // A UDP tunnel's port (for gen), not part of the text.
  ASSERT_EQ(parseEncapText("vxlan:vni=42:port=8472", &h), "");
  EXPECT_EQ(h.dport, 8472);
  EXPECT_EQ(encapText(h), "vxlan:vni=42");
  EXPECT_EQ(tunnelSpecOf(h).dport, 8472);
  // GRE takes a port too: GRE in UDP (RFC 8086), for gen.
  ASSERT_EQ(parseEncapText("gre:key=3:port=4754", &h), "");
  EXPECT_EQ(tunnelSpecOf(h).dport, 4754);
  EXPECT_EQ(tunnelSpecOf(h).value, 3u);
  EXPECT_NE(parseEncapText("erspan:port=1", &h).find("session=N"), std::string::npos);
  EXPECT_NE(parseEncapText("ayiya:port=0", &h).find("1 to 65535"), std::string::npos);
}

// ---- truncated and lying headers: deny-malformed naming the layer ----

struct BadCase {
  const char* name;
  Bytes frame;
  Layer layer;
};

Bytes udpTo(uint16_t port, const Bytes& payload) {
  return buildUdp({.src = IpAddr::v4(0xc0000201),
                   .dst = IpAddr::v4(0xc0000202),
                   .sport = port,
                   .dport = port,
                   .payload = payload});
}

Bytes greWith(const Bytes& payload) {
  return buildOtherProto({.src = IpAddr::v4(0xc0000201),
                          .dst = IpAddr::v4(0xc0000202),
                          .proto = kIpProtoGre,
                          .payload_len = payload.size(),
                          .payload = payload});
}

std::vector<BadCase> badCases() {
  std::vector<BadCase> c;
  const Bytes inner4 = buildTcp(innerTcp(), rawIp());
  const Bytes inner6 = buildTcp(innerTcp(true), rawIp());
  auto cat = [](Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  c.push_back({"vxlan-short", udpTo(4789, {0x08, 0, 0, 0}), Layer::kVxlan});
  c.push_back(
      {"vxlan-no-ethernet", udpTo(4789, {0x08, 0, 0, 0, 0, 0, 42, 0, 1, 2, 3}), Layer::kVxlan});
  c.push_back({"geneve-short", udpTo(6081, {0, 0, 0x65, 0x58}), Layer::kGeneve});
  c.push_back({"geneve-version", udpTo(6081, Bytes{0x40, 0, 0x08, 0, 0, 0, 1, 0}), Layer::kGeneve});
  c.push_back({"geneve-options-past", udpTo(6081, Bytes{0x3f, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2}),
               Layer::kGeneve});
  c.push_back({"gtp-u-short", udpTo(2152, {0x30, 0xff, 0}), Layer::kGtpU});
  c.push_back(
      {"gtp-u-version", udpTo(2152, cat({0x50, 0xff, 0, 40, 0, 0, 0, 1}, inner4)), Layer::kGtpU});
  c.push_back({"gtp-u-length-past", udpTo(2152, cat({0x30, 0xff, 0x10, 0x00, 0, 0, 0, 1}, inner4)),
               Layer::kGtpU});
  {
    // E flag; an extension header of length 0.
    Bytes g = {0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0x85, 0, 0, 0, 0};
    g = cat(g, inner4);
    g[3] = static_cast<uint8_t>(g.size() - 8);
    c.push_back({"gtp-u-ext-zero", udpTo(2152, g), Layer::kGtpU});
    // An extension header running past the GTP length.
    Bytes h = {0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0x85, 9, 0, 0, 0};
    c.push_back({"gtp-u-ext-past", udpTo(2152, h), Layer::kGtpU});
    // Optional fields announced (S) but the length leaves no room for them.
    c.push_back(
        {"gtp-u-optional-past", udpTo(2152, {0x32, 0xff, 0, 2, 0, 0, 0, 1, 0, 1}), Layer::kGtpU});
  }
  c.push_back({"teredo-auth-past", udpTo(3544, cat({0x00, 0x01, 200, 0}, inner6)), Layer::kTeredo});
  c.push_back({"teredo-origin-short", udpTo(3544, {0x00, 0x00, 1, 2, 3}), Layer::kTeredo});
  c.push_back({"teredo-origin-not-ipv6", udpTo(3544, cat({0x00, 0x00, 1, 2, 3, 4, 5, 6}, inner4)),
               Layer::kTeredo});
  c.push_back({"ayiya-short", udpTo(5072, {0x41, 0x52, 0x21, 41}), Layer::kAyiya});
  c.push_back({"ayiya-identity-past", udpTo(5072, cat({0xf1, 0x52, 0x21, 4, 0, 0, 0, 0}, inner4)),
               Layer::kAyiya});
  c.push_back({"gre-short", greWith({0x00, 0x00, 0x08}), Layer::kGre});
  c.push_back({"gre-udp-short", udpTo(4754, {0x00, 0x00, 0x08}), Layer::kGre});
  c.push_back({"gre-udp-key-past", udpTo(4754, {0x20, 0x00, 0x08, 0x00, 0, 0}), Layer::kGre});
  c.push_back({"gre-udp-erspan-short", udpTo(4754, {0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10}),
               Layer::kErspan});
  c.push_back({"gre-key-past", greWith({0x20, 0x00, 0x08, 0x00, 0, 0}), Layer::kGre});
  c.push_back({"gre-csum-key-seq-past", greWith({0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}),
               Layer::kGre});
  c.push_back(
      {"gre-ethernet-short", greWith({0x00, 0x00, 0x65, 0x58, 1, 2, 3, 4, 5, 6}), Layer::kGre});
  c.push_back(
      {"erspan-2-short", greWith({0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0}), Layer::kErspan});
  c.push_back({"erspan-2-version",
               greWith({0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x20, 0, 0, 3, 0, 0, 0, 0}),
               Layer::kErspan});
  c.push_back({"erspan-3-short", greWith({0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0, 3}),
               Layer::kErspan});
  c.push_back({"erspan-3-subheader-past", greWith({0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0,
                                                   3,    0,    0,    0,    0, 0, 0, 0, 1,    0, 0}),
               Layer::kErspan});
  c.push_back({"erspan-1-no-ethernet", greWith({0x00, 0x00, 0x88, 0xbe, 1, 2, 3}), Layer::kErspan});
  {
    // Aruba 802.11 in GRE: the data header cut short; four addresses or a QoS field announced
    // past the packet; the LLC/SNAP header cut short.
    const Bytes hdr = {0x00, 0x00, 0x82, 0x00,  // GRE, Aruba type 0x8200
                       0x08, 0x02, 0,    0,     // data, From DS
                       2,    0,    0,    0,    0x11, 0, 2,    0, 0, 0,
                       0x11, 1,    2,    0,    0,    0, 0x11, 2, 0, 0};
    c.push_back(
        {"aruba-802.11-short", greWith(Bytes(hdr.begin(), hdr.begin() + 20)), Layer::kWlan});
    Bytes four = hdr;
    four[5] = 0x03;  // To DS and From DS: a fourth address that is not there
    c.push_back({"aruba-4addr-past", greWith(four), Layer::kWlan});
    Bytes qos = hdr;
    qos[4] = 0x88;  // QoS data, the QoS control field missing
    c.push_back({"aruba-qos-past", greWith(qos), Layer::kWlan});
    c.push_back({"aruba-llc-short", greWith(cat(hdr, {0xaa, 0xaa, 0x03, 0, 0})), Layer::kWlan});
    // The SNAP header says IPv4 but the packet after it is cut short.
    c.push_back({"aruba-inner-ipv4-short",
                 greWith(cat(cat(hdr, {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00}),
                             Bytes(inner4.begin(), inner4.begin() + 16))),
                 Layer::kIpv4});
  }
  {
    // IP-in-IP whose inner IPv4 header is cut short, and one whose inner total length lies.
    const Bytes cut(inner4.begin(), inner4.begin() + 12);
    c.push_back({"ip-in-ip-inner-short",
                 buildOtherProto({.proto = kIpProtoIpIp, .payload_len = 12, .payload = cut}),
                 Layer::kIpv4});
    Bytes lying = inner4;
    lying[2] = 0x05;  // total length 0x05xx: more than the outer packet holds
    c.push_back(
        {"ip-in-ip-inner-length",
         buildOtherProto({.proto = kIpProtoIpIp, .payload_len = lying.size(), .payload = lying}),
         Layer::kIpv4});
    c.push_back(
        {"6in4-not-ipv6",
         buildOtherProto({.proto = kIpProtoIpv6, .payload_len = inner4.size(), .payload = inner4}),
         Layer::kIpv6});
  }
  {
    // The inner packet is bounded by the tunnel's payload, not the frame: a VXLAN inner IPv4
    // whose length reaches into the outer frame's trailer is cut short.
    Bytes f = buildTcp(innerTcp(), {.trailer_len = 40, .tunnels = {{.kind = Kind::kVxlan}}});
    const size_t inner_ip = 14 + 20 + 8 + 8 + 14;
    f[inner_ip + 2] = static_cast<uint8_t>(f[inner_ip + 2] + 0);
    const uint16_t total = static_cast<uint16_t>((f[inner_ip + 2] << 8 | f[inner_ip + 3]) + 20);
    f[inner_ip + 2] = static_cast<uint8_t>(total >> 8);
    f[inner_ip + 3] = static_cast<uint8_t>(total);
    c.push_back({"vxlan-inner-length-past-udp", f, Layer::kIpv4});
  }
  {
    // The outer UDP length says the datagram ends inside the VXLAN header.
    Bytes f = buildTcp(innerTcp(), {.tunnels = {{.kind = Kind::kVxlan}}});
    f[14 + 20 + 4] = 0;
    f[14 + 20 + 5] = 12;
    c.push_back({"vxlan-udp-length-lies", f, Layer::kVxlan});
  }
  return c;
}

TEST(Tunnels, TruncatedAndLyingHeadersAreMalformedAtTheirLayer) {
  for (const BadCase& bc : badCases()) {
    SCOPED_TRACE(bc.name);
    const auto r = parseBytes(bc.frame.data(), bc.frame.size(), LinkType::kEthernet, decapOn());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(layerName(r.p.malformed), layerName(bc.layer)) << r.p.malformed_why;
    ASSERT_NE(r.p.malformed_why, nullptr);
    // Every prefix of the frame parses without a crash (AddressSanitizer checks the reads).
    for (size_t n = 0; n <= bc.frame.size(); ++n)
      parseBytes(bc.frame.data(), n, LinkType::kEthernet, decapOn());
    // Without decap none of these is looked into.
    EXPECT_TRUE(parseBytes(bc.frame, LinkType::kEthernet).ok) << bc.name;
  }
}

// Aruba 802.11 frames statewall does not look into are judged as the GRE packet they are, with or
// without decap: protected (encrypted), A-MSDU aggregates, management frames, null data, LLC
// that is not SNAP; and GRE types that are not Aruba's.
TEST(Tunnels, ArubaFramesThatAreNotDecapsulated) {
  const Bytes plain = buildTcp(innerTcp(), {.tunnels = {{.kind = Kind::kAruba}}});
  const Bytes qos = buildTcp(innerTcp(), {.tunnels = {{.kind = Kind::kAruba, .wlan_qos = true}}});
  const size_t wlan = 14 + 20 + 4;  // Ethernet, outer IPv4, GRE
  ASSERT_EQ(parseBytes(plain.data(), plain.size(), LinkType::kEthernet, decapOn()).p.dport, 443);
  ASSERT_EQ(parseBytes(qos.data(), qos.size(), LinkType::kEthernet, decapOn()).p.dport, 443);
  struct Refused {
    const char* name;
    Bytes frame;
  };
  std::vector<Refused> cases;
  auto patch = [&](const char* name, const Bytes& base, size_t at, uint8_t v) {
    Bytes f = base;
    f[at] = v;
    cases.push_back({name, f});
  };
  auto greType = [&](const char* name, uint16_t type) {
    Bytes f = plain;
    f.at(14 + 20 + 2) = static_cast<uint8_t>(type >> 8);
    f.at(14 + 20 + 3) = static_cast<uint8_t>(type);
    cases.push_back({name, f});
  };
  patch("protected", plain, wlan + 1, 0x42);
  patch("a-msdu", qos, wlan + 24, 0x80);
  patch("management frame", plain, wlan, 0x80);  // beacon
  patch("null data", plain, wlan, 0x48);         // data subtype 4: no payload
  patch("protocol version 1", plain, wlan, 0x09);
  patch("llc not snap", plain, wlan + 24, 0x42);  // spanning tree's SAP
  patch("snap with another oui", plain, wlan + 27, 0x0c);
  greType("gre type 0x8201", 0x8201);
  greType("gre type 0x8380", 0x8380);
  for (const Refused& rc : cases) {
    SCOPED_TRACE(rc.name);
    const auto r = parseBytes(rc.frame.data(), rc.frame.size(), LinkType::kEthernet, decapOn());
    ASSERT_TRUE(r.ok) << layerName(r.p.malformed) << ": " << r.p.malformed_why;
    EXPECT_EQ(r.p.tunnel_depth, 0);
    EXPECT_EQ(r.p.proto, kIpProtoGre);
    EXPECT_EQ(encapsulation(rc.frame.data(), static_cast<uint32_t>(rc.frame.size()),
                            LinkType::kEthernet, decapOn())
                  .size(),
              0u);
  }
}

TEST(Tunnels, CiscoAndArubaEncapText) {
  EncapHeader h;
  ASSERT_EQ(parseEncapText("aruba", &h), "");
  EXPECT_EQ(h.kind, Kind::kAruba);
  EXPECT_EQ(h.value, 0x8200u);
  EXPECT_EQ(encapText(h), "aruba:proto=0x8200");
  ASSERT_EQ(parseEncapText("aruba:proto=0x8370", &h), "");
  EXPECT_EQ(h.value, 0x8370u);
  EXPECT_NE(parseEncapText("aruba:proto=0x8380", &h).find("not an Aruba GRE protocol type"),
            std::string::npos);
  EXPECT_NE(parseEncapText("aruba:proto=0x8201", &h).find("not an Aruba GRE protocol type"),
            std::string::npos);
  EXPECT_NE(parseEncapText("aruba:5", &h).find("proto=N"), std::string::npos);
  ASSERT_EQ(parseEncapText("fabricpath:1023", &h), "");
  EXPECT_EQ(h.kind, Kind::kFabricPath);
  EXPECT_EQ(encapText(h), "fabricpath:1023");
  EXPECT_NE(parseEncapText("fabricpath:1024", &h).find("0 to 1023"), std::string::npos);
  ASSERT_EQ(parseEncapText("cmd:42", &h), "");
  EXPECT_EQ(h.kind, Kind::kCmd);
  EXPECT_EQ(encapText(h), "cmd:42");
  EXPECT_NE(parseEncapText("cmd:65536", &h).find("0 to 65535"), std::string::npos);
  for (uint16_t t = 0x8200; t <= 0x82f0; t += 0x10)
    EXPECT_TRUE(isArubaGreType(t)) << t;
  for (uint16_t t = 0x8300; t <= 0x8370; t += 0x10)
    EXPECT_TRUE(isArubaGreType(t)) << t;
  EXPECT_TRUE(isArubaGreType(0x9000));
  for (uint16_t t : {0x8100, 0x8201, 0x8380, 0x83f0, 0x9010, 0x0800, 0x6558})
    EXPECT_FALSE(isArubaGreType(t)) << t;
}

// Every prefix of every well-formed tunnel frame: never a crash, never "ok" with a field read
// past the prefix.
TEST(Tunnels, EveryPrefixOfEveryTunnelParses) {
  for (const TunnelCase& tc : tunnelCases()) {
    SCOPED_TRACE(tc.name);
    const Bytes f = buildTcp(innerTcp(tc.inner_v6), {.tunnels = {tc.tunnel}});
    for (size_t n = 0; n < f.size(); ++n) {
      const auto r = parseBytes(f.data(), n, LinkType::kEthernet, decapOn());
      if (r.ok) {
        EXPECT_LE(r.p.l3_offset + r.p.ip_len, n);
      }
    }
  }
}

// ---- PPP link types ----

TEST(LinkTypes, PppAndPppInHdlc) {
  for (LinkType link : {LinkType::kPpp, LinkType::kPppHdlc}) {
    for (bool v6 : {false, true}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(link)) + (v6 ? " v6" : " v4"));
      const Bytes f = buildTcp(innerTcp(v6), {.link = link});
      EXPECT_EQ(l3Offset({.link = link}), 4u);
      EXPECT_EQ(f[0], 0xff);
      EXPECT_EQ(f[1], 0x03);
      const auto r = parseBytes(f, link);
      ASSERT_TRUE(r.ok) << r.p.malformed_why;
      EXPECT_EQ(r.p.l3, v6 ? L3::kIpv6 : L3::kIpv4);
      EXPECT_EQ(r.p.l3_offset, 4);
      EXPECT_EQ(r.p.dport, 443);
      // A tunnel over PPP.
      const Bytes t = buildTcp(innerTcp(v6), {.link = link, .tunnels = {{.kind = Kind::kGre}}});
      EXPECT_EQ(parseBytes(t.data(), t.size(), link, decapOn()).p.dport, 443);
    }
  }
  // DLT_PPP without the address/control pair, with a 2-byte and a compressed 1-byte protocol.
  const Bytes ip = buildTcp(innerTcp(), rawIp());
  Bytes two = {0x00, 0x21};
  two.insert(two.end(), ip.begin(), ip.end());
  auto r = parseBytes(two, LinkType::kPpp);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.l3_offset, 2);
  Bytes one = {0x21};
  one.insert(one.end(), ip.begin(), ip.end());
  r = parseBytes(one, LinkType::kPpp);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.l3_offset, 1);
  EXPECT_EQ(r.p.dport, 443);
  // LCP (0xc021) is not IP: L3 other, not malformed.
  r = parseBytes(Bytes{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4}, LinkType::kPpp);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.p.l3, L3::kOther);
  // Cisco HDLC in a PPP_SERIAL capture: address 0x0f, control 0, an EtherType.
  Bytes hdlc = {0x0f, 0x00, 0x08, 0x00};
  hdlc.insert(hdlc.end(), ip.begin(), ip.end());
  r = parseBytes(hdlc, LinkType::kPppHdlc);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.dport, 443);
  // PPP carrying MPLS.
  Bytes mpls = {0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40};
  mpls.insert(mpls.end(), ip.begin(), ip.end());
  r = parseBytes(mpls, LinkType::kPppHdlc);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.dport, 443);
}

TEST(LinkTypes, PppMalformed) {
  EXPECT_EQ(parseBytes(Bytes{}, LinkType::kPpp).p.malformed, Layer::kPpp);
  EXPECT_EQ(parseBytes(Bytes{0xff, 0x03}, LinkType::kPpp).p.malformed, Layer::kPpp);
  EXPECT_EQ(parseBytes(Bytes{0x00}, LinkType::kPpp).p.malformed, Layer::kPpp);
  EXPECT_EQ(parseBytes(Bytes{0xff, 0x03, 0x00}, LinkType::kPppHdlc).p.malformed, Layer::kPpp);
  EXPECT_EQ(parseBytes(Bytes{0x12, 0x03, 0x00, 0x21, 0x45}, LinkType::kPppHdlc).p.malformed,
            Layer::kPpp);
  // The IP inside is checked as on any link.
  EXPECT_EQ(parseBytes(Bytes{0xff, 0x03, 0x00, 0x21, 0x45}, LinkType::kPppHdlc).p.malformed,
            Layer::kIpv4);
}

// ---- Teredo found by its content (ParseOptions::detect_teredo, --detect-teredo) ----

TEST(Tunnels, TeredoOnAnotherPortIsFoundByContentWhenAsked) {
  const IpAddr teredo_client = IpAddr::v6(0x2001000041379e50ull, 0x8000f12ab9c82815ull);
  const Bytes to_relay =
      buildTcp({.src = teredo_client, .dst = kIn6b, .dport = 80, .payload_len = 10},
               {.tunnels = {{.kind = Kind::kTeredo, .sport = 3797, .dport = 32900}}});
  auto plain = parseBytes(to_relay.data(), to_relay.size(), LinkType::kEthernet, decapOn());
  ASSERT_TRUE(plain.ok);
  EXPECT_EQ(plain.p.tunnel_depth, 0);  // only port 3544 without detection
  EXPECT_EQ(plain.p.dport, 32900);
  ParseOptions detect = decapOn();
  detect.detect_teredo = true;
  auto r = parseBytes(to_relay.data(), to_relay.size(), LinkType::kEthernet, detect);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.tunnel_depth, 1);
  EXPECT_EQ(r.p.proto, kIpProtoTcp);
  EXPECT_EQ(r.p.dport, 80);
  EXPECT_EQ(r.p.src, teredo_client);
  // With its origin indication the addresses need not be Teredo's.
  const Bytes with_origin = buildTcp(
      {.src = kIn6a, .dst = kIn6b, .dport = 443},
      {.tunnels = {
           {.kind = Kind::kTeredo, .sport = 40000, .dport = 40001, .teredo_origin = true}}});
  r = parseBytes(with_origin.data(), with_origin.size(), LinkType::kEthernet, detect);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.tunnel_depth, 1);
  EXPECT_EQ(r.p.dport, 443);
}

TEST(Tunnels, TeredoDetectionLeavesOtherUdpAlone) {
  ParseOptions detect = decapOn();
  detect.detect_teredo = true;
  // IPv6 in UDP without Teredo headers or a 2001::/32 address: not Teredo.
  const Bytes other6 =
      buildTcp({.src = kIn6a, .dst = kIn6b, .dport = 80},
               {.tunnels = {{.kind = Kind::kTeredo, .sport = 40000, .dport = 40001}}});
  auto r = parseBytes(other6.data(), other6.size(), LinkType::kEthernet, detect);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.tunnel_depth, 0);
  EXPECT_EQ(r.p.dport, 40001);
  // A Teredo address but a length that does not match the datagram: not Teredo (not malformed).
  const IpAddr teredo_client = IpAddr::v6(0x2001000041379e50ull, 1);
  Bytes cut = buildTcp({.src = teredo_client, .dst = kIn6b, .dport = 80, .payload_len = 20},
                       {.link = LinkType::kRawIp});
  cut.resize(cut.size() - 4);
  const Bytes f = buildUdp({.src = kOut6a,
                            .dst = kOut6b,
                            .sport = 40000,
                            .dport = 40001,
                            .payload_len = cut.size(),
                            .payload = cut});
  r = parseBytes(f.data(), f.size(), LinkType::kEthernet, detect);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.tunnel_depth, 0);
  EXPECT_EQ(r.p.proto, kIpProtoUdp);
  // A DNS answer of 40 bytes or more is UDP.
  const Bytes dns = buildUdp({.sport = 53,
                              .dport = 40000,
                              .payload_len = 64,
                              .payload = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1}});
  r = parseBytes(dns.data(), dns.size(), LinkType::kEthernet, detect);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.tunnel_depth, 0);
}

}  // namespace
}  // namespace statewall::dataplane
