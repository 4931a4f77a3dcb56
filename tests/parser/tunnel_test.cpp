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

}  // namespace
}  // namespace statewall::dataplane
