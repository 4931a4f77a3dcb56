// Every layer and link type built by the packet builder and read back by the parser.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "parse_util.hpp"

namespace statewall::dataplane {
namespace {

using testing::parseBytes;

const IpAddr kV4a = ipAddr("192.0.2.1");
const IpAddr kV4b = ipAddr("198.51.100.7");
const IpAddr kV6a = ipAddr("2001:db8::1");
const IpAddr kV6b = ipAddr("2001:db8:ffff::abcd");

struct LinkCase {
  const char* name;
  FrameOptions opts;
  size_t l3_offset;
};

std::vector<LinkCase> linkCases() {
  return {
      {"ethernet", {}, 14},
      {"raw", {.link = LinkType::kRawIp}, 0},
      {"sll", {.link = LinkType::kLinuxSll}, 16},
      {"sll2", {.link = LinkType::kLinuxSll2}, 20},
      {"null", {.link = LinkType::kNull}, 4},
      {"loop", {.link = LinkType::kLoop}, 4},
      {"vlan", {.vlans = {{.vid = 100}}}, 18},
      {"qinq-88a8", {.vlans = {{.vid = 10, .tpid = kEtherTypeQinQ}, {.vid = 4095}}}, 22},
      {"qinq-9100", {.vlans = {{.vid = 7, .tpid = kEtherTypeQinQ1, .pcp = 5}, {.vid = 8}}}, 22},
      {"sll-vlan", {.link = LinkType::kLinuxSll, .vlans = {{.vid = 42}}}, 20},
      {"sll2-vlan", {.link = LinkType::kLinuxSll2, .vlans = {{.vid = 43}}}, 24},
      {"ethernet-padded", {.trailer_len = 20}, 14},
      // Layer 2.5 (docs/design.md "Encapsulation and tunnels"): always unwrapped.
      {"vlan-x3",
       {.vlans = {{.vid = 1, .tpid = kEtherTypeQinQ},
                  {.vid = 2, .tpid = kEtherTypeQinQ1},
                  {.vid = 3}}},
       26},
      {"mpls", {.shims = {{.kind = Shim::Kind::kMpls, .value = 16}}}, 18},
      {"mpls-x3",
       {.shims = {{.kind = Shim::Kind::kMpls, .value = 100},
                  {.kind = Shim::Kind::kMpls, .value = 200},
                  {.kind = Shim::Kind::kMpls, .value = 0xfffff}}},
       26},
      {"vlan-mpls",
       {.vlans = {{.vid = 5}}, .shims = {{.kind = Shim::Kind::kMpls, .value = 17}}},
       22},
      {"mpls-pw-cw-vlan",
       {.shims = {{.kind = Shim::Kind::kMpls, .value = 300},
                  {.kind = Shim::Kind::kEthernetPw},
                  {.kind = Shim::Kind::kVlan, .value = 77}}},
       14 + 4 + 4 + 14 + 4},
      // Without a control word the inner frame's first nibble must not be 0, 4 or 6 (the guess).
      {"mpls-pw-no-cw",
       {.dst_mac = {0x52, 0, 0, 0, 0, 2},
        .shims = {{.kind = Shim::Kind::kMpls, .value = 301},
                  {.kind = Shim::Kind::kEthernetPw, .control_word = false}}},
       14 + 4 + 14},
      {"pppoe", {.shims = {{.kind = Shim::Kind::kPppoe, .value = 0x1234}}}, 22},
      {"vlan-pppoe",
       {.vlans = {{.vid = 8}}, .shims = {{.kind = Shim::Kind::kPppoe, .value = 1}}},
       26},
      {"pbb", {.shims = {{.kind = Shim::Kind::kPbb, .value = 0x123456}}}, 14 + 18},
      {"pbb-vlan",
       {.vlans = {{.vid = 100, .tpid = kEtherTypeQinQ}},
        .shims = {{.kind = Shim::Kind::kPbb, .value = 42},
                  {.kind = Shim::Kind::kVlan, .value = 9}}},
       18 + 18 + 4},
      {"vn-tag", {.shims = {{.kind = Shim::Kind::kVnTag, .value = 0x80010002}}}, 20},
      {"fabricpath", {.shims = {{.kind = Shim::Kind::kFabricPath, .value = 1}}}, 14 + 16},
      {"cmd", {.shims = {{.kind = Shim::Kind::kCmd, .value = 42}}}, 14 + 8},
      // Zeek's cisco-fabric-path.pcap: FabricPath around a tagged frame; and Cisco MetaData
      // after a VLAN tag.
      {"fabricpath-vlan-cmd",
       {.shims = {{.kind = Shim::Kind::kFabricPath, .value = 1023},
                  {.kind = Shim::Kind::kVlan, .value = 12},
                  {.kind = Shim::Kind::kCmd, .value = 0xffff}}},
       14 + 16 + 4 + 8},
      {"sll-mpls",
       {.link = LinkType::kLinuxSll, .shims = {{.kind = Shim::Kind::kMpls, .value = 1}}},
       20},
      {"sll2-pppoe",
       {.link = LinkType::kLinuxSll2, .shims = {{.kind = Shim::Kind::kPppoe, .value = 3}}},
       28},
  };
}

class LinkTest : public ::testing::TestWithParam<std::pair<LinkCase, bool /*v6*/>> {};

TEST_P(LinkTest, TcpWithAllOptions) {
  const auto& [lc, v6] = GetParam();
  const TcpSpec spec{.src = v6 ? kV6a : kV4a,
                     .dst = v6 ? kV6b : kV4b,
                     .sport = 51000,
                     .dport = 443,
                     .flags = kSyn | kAck | kEce,
                     .seq = 0xfffffff0u,
                     .ack = 0x80000001u,
                     .window = 29200,
                     .mss = 1460,
                     .wscale = 7,
                     .sack_permitted = true,
                     .ts = std::pair<uint32_t, uint32_t>{123456789u, 987654321u},
                     .payload_len = 33};
  const auto frame = buildTcp(spec, lc.opts);
  const auto r = parseBytes(frame, lc.opts.link);
  ASSERT_TRUE(r.ok) << lc.name << ": " << layerName(r.p.malformed) << " " << r.p.malformed_why;
  const ParsedPacket& p = r.p;
  EXPECT_EQ(p.malformed, Layer::kNone);
  EXPECT_EQ(p.malformed_why, nullptr);
  EXPECT_EQ(p.l3, v6 ? L3::kIpv6 : L3::kIpv4);
  EXPECT_EQ(p.family, v6 ? Family::kV6 : Family::kV4);
  EXPECT_EQ(p.src, spec.src);
  EXPECT_EQ(p.dst, spec.dst);
  EXPECT_EQ(p.proto, kIpProtoTcp);
  EXPECT_EQ(p.ttl_or_hlim, 64);
  EXPECT_EQ(p.sport, 51000);
  EXPECT_EQ(p.dport, 443);
  EXPECT_EQ(p.seq, 0xfffffff0u);
  EXPECT_EQ(p.ack, 0x80000001u);
  EXPECT_EQ(p.tcp_flags, kSyn | kAck | kEce);
  EXPECT_EQ(p.window, 29200);
  EXPECT_EQ(p.tcp_opt.mss, 1460);
  EXPECT_EQ(p.tcp_opt.wscale, 7);
  EXPECT_TRUE(p.tcp_opt.sack_permitted);
  EXPECT_FALSE(p.tcp_opt.has_sack);
  EXPECT_TRUE(p.tcp_opt.has_ts);
  EXPECT_EQ(p.tcp_opt.tsval, 123456789u);
  EXPECT_EQ(p.tcp_opt.tsecr, 987654321u);
  EXPECT_EQ(p.l4_payload_len, 33u);
  const uint32_t tcp_hdr = 20 + 4 + 12 + 4;  // MSS, SACK-permitted + TS, NOP + WS
  EXPECT_EQ(p.ip_len, (v6 ? 40u : 20u) + tcp_hdr + 33);
  EXPECT_EQ(p.l3_offset, lc.l3_offset);
  EXPECT_EQ(p.l4_offset, lc.l3_offset + (v6 ? 40 : 20));
  EXPECT_EQ(frame.size(), lc.l3_offset + p.ip_len + lc.opts.trailer_len);
  EXPECT_FALSE(p.is_fragment);
  // Every VLAN tag counts, the link's and the shims' (inside a PBB or pseudowire frame too); the
  // first two VIDs are kept.
  std::vector<uint16_t> vids;
  for (const VlanTag& t : lc.opts.vlans)
    vids.push_back(t.vid);
  for (const Shim& h : lc.opts.shims)
    if (h.kind == Shim::Kind::kVlan) vids.push_back(static_cast<uint16_t>(h.value));
  ASSERT_EQ(p.vlan_count, vids.size());
  for (size_t i = 0; i < vids.size() && i < kMaxVlanTags; ++i)
    EXPECT_EQ(p.vlan_ids[i], vids[i]);
  // encapsulation() names every layer-2.5 header in order, with its value.
  const auto encap = encapsulation(frame.data(), static_cast<uint32_t>(frame.size()), lc.opts.link);
  std::vector<std::pair<EncapHeader::Kind, uint32_t>> want;
  for (const VlanTag& t : lc.opts.vlans)
    want.emplace_back(EncapHeader::Kind::kVlan, t.vid);
  for (const Shim& h : lc.opts.shims) {
    switch (h.kind) {
      case Shim::Kind::kVlan:
        want.emplace_back(EncapHeader::Kind::kVlan, h.value);
        break;
      case Shim::Kind::kMpls:
        want.emplace_back(EncapHeader::Kind::kMpls, h.value);
        break;
      case Shim::Kind::kPppoe:
        want.emplace_back(EncapHeader::Kind::kPppoe, h.value);
        break;
      case Shim::Kind::kPbb:
        want.emplace_back(EncapHeader::Kind::kPbb, h.value);
        break;
      case Shim::Kind::kVnTag:
        want.emplace_back(EncapHeader::Kind::kVnTag, h.value);
        break;
      case Shim::Kind::kFabricPath:
        want.emplace_back(EncapHeader::Kind::kFabricPath, h.value);
        break;
      case Shim::Kind::kCmd:
        want.emplace_back(EncapHeader::Kind::kCmd, h.value);
        break;
      case Shim::Kind::kEthernetPw:
        want.emplace_back(EncapHeader::Kind::kPseudowire, 0);
        break;
    }
  }
  ASSERT_EQ(encap.size(), want.size()) << lc.name;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(encap[i].kind, want[i].first) << lc.name << " header " << i;
    EXPECT_EQ(encap[i].value, want[i].second) << lc.name << " header " << i;
  }
}

TEST_P(LinkTest, Udp) {
  const auto& [lc, v6] = GetParam();
  const UdpSpec spec{.src = v6 ? kV6a : kV4a,
                     .dst = v6 ? kV6b : kV4b,
                     .sport = 5353,
                     .dport = 53,
                     .payload_len = 77};
  const auto r = parseBytes(buildUdp(spec, lc.opts), lc.opts.link);
  ASSERT_TRUE(r.ok) << lc.name << ": " << r.p.malformed_why;
  EXPECT_EQ(r.p.proto, kIpProtoUdp);
  EXPECT_EQ(r.p.sport, 5353);
  EXPECT_EQ(r.p.dport, 53);
  EXPECT_EQ(r.p.l4_payload_len, 77u);
  EXPECT_EQ(r.p.ip_len, (v6 ? 40u : 20u) + 8 + 77);
  EXPECT_EQ(r.p.tcp_flags, 0);
}

TEST_P(LinkTest, IcmpEcho) {
  const auto& [lc, v6] = GetParam();
  for (bool reply : {false, true}) {
    const IcmpEchoSpec spec{.src = v6 ? kV6a : kV4a,
                            .dst = v6 ? kV6b : kV4b,
                            .id = 0xbeef,
                            .seq = 9,
                            .reply = reply,
                            .payload_len = 56};
    const auto r = parseBytes(buildIcmpEcho(spec, lc.opts), lc.opts.link);
    ASSERT_TRUE(r.ok) << lc.name << ": " << r.p.malformed_why;
    EXPECT_EQ(r.p.proto, v6 ? kIpProtoIcmpv6 : kIpProtoIcmp);
    EXPECT_EQ(r.p.icmp_type, v6 ? (reply ? 129 : 128) : (reply ? 0 : 8));
    EXPECT_EQ(r.p.icmp_code, 0);
    EXPECT_EQ(r.p.icmp_id, 0xbeef);
    EXPECT_EQ(r.p.icmp_is_query_request, !reply);
    EXPECT_EQ(r.p.icmp_is_query_reply, reply);
    EXPECT_FALSE(r.p.icmp_is_error);
    EXPECT_FALSE(r.p.is_nd);
    EXPECT_EQ(r.p.sport, 0);
    EXPECT_EQ(r.p.dport, 0);
  }
}

std::vector<std::pair<LinkCase, bool>> allLinkCases() {
  std::vector<std::pair<LinkCase, bool>> v;
  for (const auto& lc : linkCases()) {
    v.push_back({lc, false});
    v.push_back({lc, true});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Links, LinkTest, ::testing::ValuesIn(allLinkCases()),
                         [](const auto& param_info) {
                           std::string n = std::string(param_info.param.first.name) +
                                           (param_info.param.second ? "_v6" : "_v4");
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

// A VLAN tag that names type 0xffff as the frame ends is another EtherType, not a pseudowire to
// read past the end (fuzz_parser found the walk reading one byte beyond the frame).
TEST(ParserLayers, TypeFfffAfterATagIsNotAPseudowire) {
  const Bytes frame = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x05, 0xff, 0xff};
  const auto r = parseBytes(frame, LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.l3, L3::kOther);
  EXPECT_EQ(r.p.vlan_count, 1);
  EXPECT_EQ(
      encapsulation(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::kEthernet).size(),
      1u);
}

TEST(ParserLayers, NamesComeFromOneTable) {
  const std::vector<std::string> want = {
      "none",     "link",       "vlan",        "sll",   "mpls",         "pppoe",  "pbb",
      "vn-tag",   "fabricpath", "cmd",         "ipv4",  "ipv4-options", "ipv6",   "ipv6-ext",
      "fragment", "tcp",        "tcp-options", "udp",   "icmp",         "icmpv6", "icmp-quoted",
      "ppp",      "gre",        "erspan",      "vxlan", "geneve",       "gtp-u",  "teredo",
      "ayiya",    "802.11",     "tunnel-depth"};
  ASSERT_EQ(kLayerCount, want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(layerName(static_cast<Layer>(i)), want[i]);
  }
  EXPECT_EQ(layerName(Layer::kIcmpQuoted), "icmp-quoted");
}

TEST(ParserTcp, SackBlocksGiveTheFurthestRightEdgeAcrossWrap) {
  const auto r = parseBytes(
      buildTcp({.sack = {{0xfffffe00u, 0xffffff00u}, {0xffffff80u, 0x00000100u}, {10, 20}}}),
      LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_TRUE(r.p.tcp_opt.has_sack);
  EXPECT_EQ(r.p.tcp_opt.sack_right_edge, 0x100u);  // 0x100 is after 0xffffff00 mod 2^32
  EXPECT_FALSE(r.p.tcp_opt.has_ts);
  EXPECT_EQ(r.p.tcp_opt.wscale, -1);
  EXPECT_EQ(r.p.tcp_opt.mss, 0);
}

TEST(ParserTcp, TimestampOnlyLayout) {
  // NOP, NOP, timestamp: the layout of nearly every established Linux segment.
  const auto frame =
      buildTcp({.ts = std::pair<uint32_t, uint32_t>{0xa1b2c3d4u, 7}, .payload_len = 9});
  ASSERT_EQ(frame[14 + 20 + 12], 8 << 4);  // data offset 32
  const auto r = parseBytes(frame, LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_TRUE(r.p.tcp_opt.has_ts);
  EXPECT_EQ(r.p.tcp_opt.tsval, 0xa1b2c3d4u);
  EXPECT_EQ(r.p.tcp_opt.tsecr, 7u);
  EXPECT_EQ(r.p.tcp_opt.mss, 0);
  EXPECT_FALSE(r.p.tcp_opt.sack_permitted);
  EXPECT_EQ(r.p.l4_payload_len, 9u);
}

TEST(ParserTcp, WindowScaleAbove14IsClampedAndUnknownOptionsSkipped) {
  // Kind 30 (MPTCP) with 6 bytes, then window scale 20.
  const auto r = parseBytes(buildTcp({.wscale = 20, .raw_options = {30, 6, 1, 2, 3, 4, 1, 1}}),
                            LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.tcp_opt.wscale, 14);
}

TEST(ParserTcp, OptionsAfterEndOfListAreIgnored) {
  // EOL, then bytes that would be a malformed option if read.
  const auto r =
      parseBytes(buildTcp({.mss = 536, .raw_options = {0, 2, 0, 0}}), LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.tcp_opt.mss, 536);
}

TEST(ParserIpv4, OptionsAreSkippedByIhl) {
  // NOP, router alert (copied, 4 bytes), record route with room for 2 addresses (11 bytes).
  const FrameOptions opts{.ipv4_options = {1, 0x94, 4, 0, 0, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0}};
  const auto frame = buildTcp({.sport = 1, .dport = 2}, opts);
  const auto r = parseBytes(frame, LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.l4_offset, 14 + 20 + 16);
  EXPECT_EQ(r.p.sport, 1);
  EXPECT_EQ(r.p.dport, 2);
  EXPECT_EQ(r.p.ip_len, 20u + 16 + 20);
}

TEST(ParserIpv4, TtlTosAndIdAsBuilt) {
  const auto r =
      parseBytes(buildUdp({}, {.ttl = 3, .tos = 0xb8, .ip_id = 0x4242}), LinkType::kEthernet);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.ttl_or_hlim, 3);
  EXPECT_FALSE(r.p.is_fragment);
  EXPECT_EQ(r.p.frag_id, 0u);  // only fragments report their identification
}

TEST(ParserIpv4, DontFragmentIsNotAFragment) {
  const auto r = parseBytes(buildUdp({}, {.dont_fragment = true}), LinkType::kEthernet);
  ASSERT_TRUE(r.ok);
  EXPECT_FALSE(r.p.is_fragment);
}

TEST(ParserLink, ArpIsRecognisedWithItsAddresses) {
  for (LinkType link : {LinkType::kEthernet, LinkType::kLinuxSll, LinkType::kLinuxSll2}) {
    const auto frame = buildArp({.op = 2, .sender_ip = kV4a, .target_ip = kV4b}, {.link = link});
    const auto r = parseBytes(frame, link);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.l3, L3::kArp);
    EXPECT_EQ(r.p.src, kV4a);
    EXPECT_EQ(r.p.dst, kV4b);
    EXPECT_EQ(r.p.proto, 0);
    // A short ARP is still ARP, not malformed: it passes per docs/design.md.
    const auto shorter = parseBytes(frame, link, frame.size() - 5);
    EXPECT_TRUE(shorter.ok);
    EXPECT_EQ(shorter.p.l3, L3::kArp);
    EXPECT_EQ(shorter.p.src, IpAddr{});
  }
}

TEST(ParserLink, OtherEthertypesAreNotIp) {
  for (uint16_t type : {uint16_t{0x88cc} /* LLDP */, uint16_t{0x8847} /* MPLS */,
                        uint16_t{0x0064} /* 802.3 length */}) {
    const auto r = parseBytes(buildEthertype(type, Bytes(46, 0xab)), LinkType::kEthernet);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.l3, L3::kOther);
    EXPECT_EQ(r.p.proto, 0);
  }
  const auto tagged = parseBytes(buildEthertype(0x88cc, Bytes(10, 1), {.vlans = {{.vid = 5}}}),
                                 LinkType::kEthernet);
  ASSERT_TRUE(tagged.ok);
  EXPECT_EQ(tagged.p.l3, L3::kOther);
  EXPECT_EQ(tagged.p.vlan_ids[0], 5);
}

TEST(ParserLink, SllNetlinkIsOther) {
  for (LinkType link : {LinkType::kLinuxSll, LinkType::kLinuxSll2}) {
    // ARPHRD_NETLINK: the protocol field is a netlink family, even if it looks like IPv4.
    const auto frame =
        buildEthertype(kEtherTypeIpv4, Bytes(20, 0x45), {.link = link, .sll_hatype = 824});
    const auto r = parseBytes(frame, link);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.l3, L3::kOther);
  }
}

TEST(ParserLink, SllOutgoingPacketsParse) {
  const auto r = parseBytes(buildTcp({}, {.link = LinkType::kLinuxSll2, .sll_packet_type = 4}),
                            LinkType::kLinuxSll2);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.proto, kIpProtoTcp);
}

TEST(ParserOther, UnknownProtocolHasNoPorts) {
  for (const IpAddr& src : {kV4a, kV6a}) {
    const IpAddr dst = src.isV4() ? kV4b : kV6b;
    const auto r =
        parseBytes(buildOtherProto({.src = src, .dst = dst, .proto = 47, .payload_len = 3}),
                   LinkType::kEthernet);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.proto, 47);
    EXPECT_EQ(r.p.sport, 0);
    EXPECT_EQ(r.p.dport, 0);
    EXPECT_EQ(r.p.l4_offset, 0);
    EXPECT_EQ(r.p.l4_payload_len, 0u);
  }
  // ICMP carried over IPv6 (protocol 1, not 58) is just a protocol number.
  const auto r =
      parseBytes(buildOtherProto({.src = kV6a, .dst = kV6b, .proto = 1, .payload_len = 2}),
                 LinkType::kEthernet);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.proto, 1);
  EXPECT_FALSE(r.p.icmp_is_query_request);
}

TEST(ParserIpv6, ExtensionChainIsWalkedToTheTransportHeader) {
  const FrameOptions opts{
      .ipv6_ext = {{.type = kIpv6HopByHop, .body = {5, 2, 0, 0}},  // router alert
                   {.type = kIpv6DestOpts},
                   {.type = kIpv6Routing, .body = {4, 0}},  // SRH type, 0 left
                   {.type = kIpProtoAh, .body = {0, 0, 0, 0, 0, 0, 0, 9}},
                   {.type = kIpv6DestOpts, .body = {0x1e, 3, 1, 2, 3}}}};
  const auto frame = buildTcp({.src = kV6a, .dst = kV6b, .sport = 7, .dport = 9}, opts);
  const auto r = parseBytes(frame, LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.proto, kIpProtoTcp);
  EXPECT_EQ(r.p.sport, 7);
  EXPECT_EQ(r.p.dport, 9);
  EXPECT_EQ(r.p.l4_offset, 14 + 40 + 8 + 8 + 8 + 16 + 8);
  EXPECT_EQ(r.p.ip_len, 40u + 48 + 20);
}

TEST(ParserIpv6, EightExtensionHeadersAreTheLimit) {
  FrameOptions opts{.ipv6_ext = {{.type = kIpv6HopByHop}}};
  for (int i = 1; i < kMaxIpv6ExtHeaders; ++i)
    opts.ipv6_ext.push_back({.type = kIpv6DestOpts});
  const UdpSpec spec{.src = kV6a, .dst = kV6b, .dport = 123};
  const auto ok = parseBytes(buildUdp(spec, opts), LinkType::kEthernet);
  ASSERT_TRUE(ok.ok) << ok.p.malformed_why;
  EXPECT_EQ(ok.p.dport, 123);
  opts.ipv6_ext.push_back({.type = kIpv6DestOpts});
  const auto bad = parseBytes(buildUdp(spec, opts), LinkType::kEthernet);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.p.malformed, Layer::kIpv6Ext);
}

TEST(ParserIpv6, EspAndNoNextHeaderStopTheChain) {
  for (uint8_t proto : {kIpProtoEsp, kIpProtoNoNext}) {
    const auto r = parseBytes(buildOtherProto({.src = kV6a, .dst = kV6b, .proto = proto},
                                              {.ipv6_ext = {{.type = kIpv6DestOpts}}}),
                              LinkType::kEthernet);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.proto, proto);
    EXPECT_EQ(r.p.l4_offset, 0);
  }
}

TEST(ParserIpv6, AtomicFragmentIsAWholePacket) {
  // Fragment header with offset 0 and M clear (RFC 6946), identification 0x01020304.
  const FrameOptions opts{.ipv6_ext = {{.type = kIpv6Fragment, .body = {0, 0, 1, 2, 3, 4}}}};
  const auto r =
      parseBytes(buildUdp({.src = kV6a, .dst = kV6b, .dport = 4789}, opts), LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_FALSE(r.p.is_fragment);
  EXPECT_EQ(r.p.dport, 4789);
  EXPECT_EQ(r.p.frag_id, 0x01020304u);
}

TEST(ParserNd, NeighbourDiscoveryTypes) {
  for (uint8_t type = 133; type <= 137; ++type) {
    const auto frame =
        buildNd({.type = type, .link_addr = MacAddr{2, 0, 0, 0, 0, 9}}, {.link = LinkType::kRawIp});
    const auto r = parseBytes(frame, LinkType::kRawIp);
    ASSERT_TRUE(r.ok) << int{type};
    EXPECT_TRUE(r.p.is_nd);
    EXPECT_EQ(r.p.icmp_type, type);
    EXPECT_EQ(r.p.ttl_or_hlim, 255);
    EXPECT_FALSE(r.p.icmp_is_error);
    EXPECT_EQ(r.p.nd_problem, NdProblem::kNone) << int{type};
  }
  const auto not_nd = parseBytes(buildIcmpEcho({.src = kV6a, .dst = kV6b}), LinkType::kEthernet);
  EXPECT_FALSE(not_nd.p.is_nd);
}

// RFC 4861 validity: each problem is named; the parse itself succeeds (the engine judges invalid
// ND by the rules).
TEST(ParserNd, InvalidNeighbourDiscoveryIsNamed) {
  const IpAddr global = IpAddr::v6(0x20010db800000000ull, 7);
  auto problem = [](const Bytes& frame) {
    const auto r = parseBytes(frame, LinkType::kRawIp);
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.p.is_nd);
    return r.p.nd_problem;
  };
  const FrameOptions raw{.link = LinkType::kRawIp};
  EXPECT_EQ(problem(buildNd({}, {.link = LinkType::kRawIp, .ttl = 64})), NdProblem::kHopLimit);
  EXPECT_EQ(problem(buildNd({.type = kIcmpv6RouterAdvert, .src = global}, raw)),
            NdProblem::kSourceNotLinkLocal);
  EXPECT_EQ(problem(buildNd({.type = kIcmpv6Redirect, .src = global}, raw)),
            NdProblem::kSourceNotLinkLocal);
  EXPECT_EQ(problem(buildNd({.type = kIcmpv6NeighborAdvert, .src = global}, raw)),
            NdProblem::kNone);
  auto handmade = [&](Bytes m) {
    const IpAddr src = IpAddr::v6(0xfe80000000000000ull, 1);
    const IpAddr dst = IpAddr::v6(0xff02000000000000ull, 1);
    const uint16_t sum = transportChecksum(src, dst, kIpProtoIcmpv6, m);
    m[2] = static_cast<uint8_t>(sum >> 8);
    m[3] = static_cast<uint8_t>(sum);
    return buildIpPacket(src, dst, kIpProtoIcmpv6, m, {.link = LinkType::kRawIp, .ttl = 255});
  };
  EXPECT_EQ(problem(handmade({135, 0, 0, 0, 0, 0, 0, 0})), NdProblem::kTooShort);
  EXPECT_EQ(problem(handmade({133, 1, 0, 0, 0, 0, 0, 0})), NdProblem::kCode);
  EXPECT_EQ(problem(handmade({133, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})),
            NdProblem::kBadOption);
  EXPECT_EQ(problem(handmade({133, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0})),
            NdProblem::kBadOption);
  EXPECT_EQ(problem(handmade({133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0})),
            NdProblem::kNone);
}

// ICMP errors quoting each transport: the offending packet went from a to b; the error comes back.
struct QuoteCase {
  const char* name;
  Bytes offending;
  uint8_t proto;
  uint16_t sport, dport, icmp_id;
  uint32_t seq;
};

TEST(ParserIcmpError, QuotesTcpUdpAndIcmpInBothFamilies) {
  for (bool v6 : {false, true}) {
    const IpAddr a = v6 ? kV6a : kV4a;
    const IpAddr b = v6 ? kV6b : kV4b;
    const IpAddr router = v6 ? ipAddr("2001:db8:1::fe") : ipAddr("203.0.113.254");
    const std::vector<QuoteCase> cases = {
        {"tcp",
         buildTcp({.src = a,
                   .dst = b,
                   .sport = 1234,
                   .dport = 80,
                   .seq = 0xabcdef01,
                   .payload_len = 100},
                  rawIp()),
         kIpProtoTcp, 1234, 80, 0, 0xabcdef01},
        {"udp",
         buildUdp({.src = a, .dst = b, .sport = 999, .dport = 53, .payload_len = 30}, rawIp()),
         kIpProtoUdp, 999, 53, 0, 0},
        {"echo", buildIcmpEcho({.src = a, .dst = b, .id = 0x7777}, rawIp()),
         v6 ? kIpProtoIcmpv6 : kIpProtoIcmp, 0, 0, 0x7777, 0},
    };
    const uint8_t types_v4[] = {kIcmpDestUnreachable, kIcmpSourceQuench, kIcmpRedirect,
                                kIcmpTimeExceeded, kIcmpParamProblem};
    const uint8_t types_v6[] = {kIcmpv6DestUnreachable, kIcmpv6PacketTooBig, kIcmpv6TimeExceeded,
                                kIcmpv6ParamProblem};
    for (const auto& qc : cases) {
      for (size_t t = 0; t < (v6 ? 4u : 5u); ++t) {
        const uint8_t type = v6 ? types_v6[t] : types_v4[t];
        // RFC 792 routers quote the IP header and 8 bytes; RFC 1812 / 4443 ones quote more.
        for (size_t max_quote : {size_t{0}, size_t{(v6 ? 40u : 20u) + 8}}) {
          const auto frame = buildIcmpError({.src = router,
                                             .dst = a,
                                             .type = type,
                                             .code = 1,
                                             .rest = 1400,
                                             .max_quote = max_quote},
                                            qc.offending);
          const auto r = parseBytes(frame, LinkType::kEthernet);
          SCOPED_TRACE(std::string(qc.name) + (v6 ? " v6 type " : " v4 type ") +
                       std::to_string(type) + " quote " + std::to_string(max_quote));
          ASSERT_TRUE(r.ok) << r.p.malformed_why;
          EXPECT_TRUE(r.p.icmp_is_error);
          EXPECT_EQ(r.p.icmp_type, type);
          EXPECT_EQ(r.p.icmp_code, 1);
          EXPECT_EQ(r.p.src, router);
          EXPECT_EQ(r.p.dst, a);
          const QuotedHeader& q = r.p.quoted;
          EXPECT_TRUE(q.present);
          EXPECT_TRUE(q.has_l4);
          EXPECT_EQ(q.family, v6 ? Family::kV6 : Family::kV4);
          EXPECT_EQ(q.src, a);
          EXPECT_EQ(q.dst, b);
          EXPECT_EQ(q.proto, qc.proto);
          EXPECT_EQ(q.sport, qc.sport);
          EXPECT_EQ(q.dport, qc.dport);
          EXPECT_EQ(q.icmp_id, qc.icmp_id);
          EXPECT_EQ(q.tcp_seq, qc.seq);
          if (qc.icmp_id != 0) {
            EXPECT_EQ(q.icmp_type, v6 ? 128 : 8);
          }
        }
      }
    }
  }
}

TEST(ParserIcmpError, QuoteWithOnlyTheIpHeaderHasNoTransportFields) {
  for (bool v6 : {false, true}) {
    const IpAddr a = v6 ? kV6a : kV4a;
    const IpAddr b = v6 ? kV6b : kV4b;
    const auto offending = buildTcp({.src = a, .dst = b, .sport = 5, .dport = 6}, rawIp());
    const auto frame = buildIcmpError({.src = b,
                                       .dst = a,
                                       .type = v6 ? kIcmpv6TimeExceeded : kIcmpTimeExceeded,
                                       .code = 0,
                                       .max_quote = (v6 ? 40u : 20u) + 7},
                                      offending);
    const auto r = parseBytes(frame, LinkType::kEthernet);
    ASSERT_TRUE(r.ok) << r.p.malformed_why;
    EXPECT_TRUE(r.p.quoted.present);
    EXPECT_FALSE(r.p.quoted.has_l4);
    EXPECT_EQ(r.p.quoted.proto, kIpProtoTcp);
    EXPECT_EQ(r.p.quoted.sport, 0);
  }
}

TEST(ParserIcmpError, QuotedIpv6ExtensionHeadersAreFollowed) {
  const auto offending = buildUdp(
      {.src = kV6a, .dst = kV6b, .sport = 4000, .dport = 4001},
      {.link = LinkType::kRawIp, .ipv6_ext = {{.type = kIpv6HopByHop}, {.type = kIpv6DestOpts}}});
  const auto r = parseBytes(
      buildIcmpError(
          {.src = kV6b, .dst = kV6a, .type = kIcmpv6PacketTooBig, .code = 0, .rest = 1280},
          offending),
      LinkType::kEthernet);
  ASSERT_TRUE(r.ok) << r.p.malformed_why;
  EXPECT_EQ(r.p.quoted.proto, kIpProtoUdp);
  EXPECT_TRUE(r.p.quoted.has_l4);
  EXPECT_EQ(r.p.quoted.sport, 4000);
  EXPECT_EQ(r.p.quoted.dport, 4001);
}

TEST(ParserIcmpError, QuotedNonFirstFragmentHasNoTransportHeader) {
  const auto frags =
      fragment(buildUdp({.src = kV4a, .dst = kV4b, .payload_len = 200}, rawIp()), 100, rawIp());
  ASSERT_GE(frags.size(), 2u);
  const auto r =
      parseBytes(buildIcmpError({.src = kV4b, .dst = kV4a}, frags[1]), LinkType::kEthernet);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.p.quoted.present);
  EXPECT_FALSE(r.p.quoted.has_l4);
}

TEST(ParserIcmp, QueriesCarryTheirIdAndRole) {
  // Echo 8/0, timestamp 13/14, information 15/16, address mask 17/18 (docs/design.md).
  for (uint8_t type : {0, 8, 13, 14, 15, 16, 17, 18}) {
    Bytes icmp = {type, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4};
    const auto r =
        parseBytes(addLinkHeader(buildIpPacket(kV4a, kV4b, kIpProtoIcmp, icmp), kEtherTypeIpv4),
                   LinkType::kEthernet);
    ASSERT_TRUE(r.ok);
    const bool request = type == 8 || type == 13 || type == 15 || type == 17;
    EXPECT_EQ(r.p.icmp_is_query_request, request) << int{type};
    EXPECT_EQ(r.p.icmp_is_query_reply, !request) << int{type};
    EXPECT_EQ(r.p.icmp_id, 0x1234) << int{type};
  }
}

TEST(ParserIcmp, OtherTypesAreNeitherErrorsNorQueries) {
  // Router advertisement (9) and router solicitation (10) over IPv4.
  for (uint8_t type : {uint8_t{10}, uint8_t{9}}) {
    Bytes icmp = {type, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    const auto r =
        parseBytes(addLinkHeader(buildIpPacket(kV4a, kV4b, kIpProtoIcmp, icmp), kEtherTypeIpv4),
                   LinkType::kEthernet);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.icmp_type, type);
    EXPECT_FALSE(r.p.icmp_is_error);
    EXPECT_FALSE(r.p.icmp_is_query_request);
    EXPECT_FALSE(r.p.icmp_is_query_reply);
    EXPECT_EQ(r.p.icmp_id, 0);
  }
}

TEST(ParserFragments, Ipv4FragmentsOfUdp) {
  const auto whole =
      buildUdp({.src = kV4a, .dst = kV4b, .sport = 7000, .dport = 7001, .payload_len = 3000},
               {.ip_id = 0x9999});
  const auto frags = fragment(whole, 1500);
  ASSERT_EQ(frags.size(), 3u);
  uint32_t expect_offset = 0;
  for (size_t i = 0; i < frags.size(); ++i) {
    const auto r = parseBytes(frags[i], LinkType::kEthernet);
    ASSERT_TRUE(r.ok) << i << ": " << r.p.malformed_why;
    EXPECT_TRUE(r.p.is_fragment);
    EXPECT_EQ(r.p.first_fragment, i == 0);
    EXPECT_EQ(r.p.more_fragments, i + 1 < frags.size());
    EXPECT_EQ(r.p.frag_id, 0x9999u);
    EXPECT_EQ(r.p.frag_offset * 8u, expect_offset);
    EXPECT_EQ(r.p.proto, kIpProtoUdp);
    EXPECT_EQ(r.p.src, kV4a);
    if (i == 0) {
      EXPECT_EQ(r.p.sport, 7000);
      EXPECT_EQ(r.p.dport, 7001);
      EXPECT_EQ(r.p.l4_payload_len, 3000u);  // the whole datagram's, from the UDP length
    } else {
      EXPECT_EQ(r.p.sport, 0);
      EXPECT_EQ(r.p.dport, 0);
      EXPECT_EQ(r.p.l4_offset, 0);
    }
    expect_offset += r.p.ip_len - 20;
  }
  EXPECT_EQ(expect_offset, 3008u);
}

TEST(ParserFragments, Ipv6FragmentsOfTcpAfterHopByHop) {
  const FrameOptions opts{.vlans = {{.vid = 3}}, .ipv6_ext = {{.type = kIpv6HopByHop}}};
  const auto whole =
      buildTcp({.src = kV6a, .dst = kV6b, .sport = 80, .dport = 50000, .payload_len = 2500}, opts);
  const auto frags = fragment(whole, 1280, opts, 0xcafef00d);
  ASSERT_EQ(frags.size(), 3u);
  for (size_t i = 0; i < frags.size(); ++i) {
    const auto r = parseBytes(frags[i], LinkType::kEthernet);
    ASSERT_TRUE(r.ok) << i << ": " << r.p.malformed_why;
    EXPECT_TRUE(r.p.is_fragment);
    EXPECT_EQ(r.p.first_fragment, i == 0);
    EXPECT_EQ(r.p.more_fragments, i + 1 < frags.size());
    EXPECT_EQ(r.p.frag_id, 0xcafef00du);
    EXPECT_EQ(r.p.proto, kIpProtoTcp);
    EXPECT_LE(r.p.ip_len, 1280u);
    EXPECT_EQ(r.p.sport, i == 0 ? 80 : 0);
    EXPECT_EQ(r.p.vlan_ids[0], 3);
    if (i > 0) {
      EXPECT_GT(r.p.frag_offset, 0);
    }
  }
}

TEST(ParserFragments, FirstIpv4FragmentOfTcpCountsOnlyItsOwnBytes) {
  const auto frags = fragment(buildTcp({.payload_len = 1000}, rawIp()), 576, rawIp());
  ASSERT_EQ(frags.size(), 2u);
  const auto r = parseBytes(frags[0], LinkType::kRawIp);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.l4_payload_len, 552u - 20);  // (576 - 20) rounded down to 8, minus the TCP header
}

}  // namespace
}  // namespace statewall::dataplane

namespace statewall::dataplane {
namespace {

// BSD loopback (DLT_NULL, DLT_LOOP): the address family in either byte order; IPv6 as each BSD
// numbers it; another family is a non-IP frame; fewer than 4 bytes is a malformed link header.
TEST(BsdLoopback, AddressFamiliesInEitherByteOrder) {
  const Bytes v4 = buildTcp({}, {.link = LinkType::kLoop});
  const Bytes v6 = buildTcp({.src = kV6a, .dst = kV6b}, {.link = LinkType::kLoop});
  // The frame with its 4-byte header holding `af_wire` (as the bytes read, big-endian).
  auto framed = [](uint32_t af_wire, Bytes f) {
    testing::wr16(f, 0, static_cast<uint16_t>(af_wire >> 16));
    testing::wr16(f, 2, static_cast<uint16_t>(af_wire));
    return f;
  };
  for (LinkType link : {LinkType::kNull, LinkType::kLoop}) {
    for (bool little : {false, true}) {
      auto af = [&](uint32_t v) { return little ? __builtin_bswap32(v) : v; };
      auto r = parseBytes(framed(af(2), v4), link);
      ASSERT_TRUE(r.ok) << r.p.malformed_why;
      EXPECT_EQ(r.p.l3, L3::kIpv4);
      EXPECT_EQ(r.p.l3_offset, 4u);
      for (uint32_t v : {24u, 28u, 30u}) {
        r = parseBytes(framed(af(v), v6), link);
        ASSERT_TRUE(r.ok) << v;
        EXPECT_EQ(r.p.l3, L3::kIpv6) << v;
      }
      r = parseBytes(framed(af(7), v4), link);
      EXPECT_TRUE(r.ok);
      EXPECT_EQ(r.p.l3, L3::kOther);
    }
    auto r = parseBytes(Bytes{2, 0, 0}, link);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.p.malformed, Layer::kLink);
    // The builder writes NULL in a little-endian host's order, LOOP in network order.
    const Bytes built = buildTcp({}, {.link = link});
    EXPECT_EQ(built[0], link == LinkType::kNull ? 2 : 0);
    EXPECT_EQ(built[3], link == LinkType::kNull ? 0 : 2);
  }
}

}  // namespace
}  // namespace statewall::dataplane
