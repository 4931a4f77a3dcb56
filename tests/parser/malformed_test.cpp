// Malformed packets: each gets the right Layer; truncation at every byte offset never crashes and
// names the layer the cut falls in.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "parse_util.hpp"

namespace statewall::dataplane {
namespace {

using testing::parseBytes;
using testing::rd16;
using testing::wr16;

const IpAddr kV4a = ipAddr("10.1.1.1");
const IpAddr kV4b = ipAddr("10.2.2.2");
const IpAddr kV6a = ipAddr("fd00::1");
const IpAddr kV6b = ipAddr("fd00::2");

// The result must be self-consistent whatever the input.
void expectConsistent(const testing::ParseResult& r) {
  EXPECT_EQ(r.ok, r.p.malformed == Layer::kNone);
  EXPECT_EQ(r.ok, r.p.malformed_why == nullptr);
}

// ---- Table of hand-made malformations ----

struct MalformedCase {
  const char* description;
  std::function<Bytes()> make;
  LinkType link;
  Layer layer;
};

// A frame built with `opts`, then patched by `patch(frame, l3_offset)`.
std::function<Bytes()> patched(std::function<Bytes(const FrameOptions&)> build,
                               std::function<void(Bytes&, size_t)> patch, FrameOptions opts = {}) {
  return [=] {
    Bytes f = build(opts);
    patch(f, l3Offset(opts));
    return f;
  };
}

Bytes tcp4(const FrameOptions& o) {
  return buildTcp({.payload_len = 10}, o);
}
Bytes tcp6(const FrameOptions& o) {
  return buildTcp({.src = kV6a, .dst = kV6b, .payload_len = 10}, o);
}
Bytes udp4(const FrameOptions& o) {
  return buildUdp({.payload_len = 10}, o);
}
Bytes udp6(const FrameOptions& o) {
  return buildUdp({.src = kV6a, .dst = kV6b}, o);
}

Bytes tcpWithRawOptions(Bytes raw) {
  return buildTcp({.raw_options = std::move(raw)});
}

// A TCP segment with a hand-written header: `doff` in 32-bit words, `seg_len` bytes in all.
Bytes tcpRaw(uint8_t doff_words, size_t seg_len) {
  Bytes t(seg_len, 0);
  if (seg_len > 12) t[12] = static_cast<uint8_t>(doff_words << 4);
  return addLinkHeader(buildIpPacket(kV4a, kV4b, kIpProtoTcp, t), kEtherTypeIpv4);
}

Bytes icmpErrorQuoting(const Bytes& quote, bool v6 = false) {
  Bytes m = {v6 ? kIcmpv6DestUnreachable : kIcmpDestUnreachable, 1, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), quote.begin(), quote.end());
  return addLinkHeader(
      buildIpPacket(v6 ? kV6b : kV4b, v6 ? kV6a : kV4a, v6 ? kIpProtoIcmpv6 : kIpProtoIcmp, m),
      v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
}

// An IPv4 fragment carrying `payload` bytes of protocol `proto` at `offset_units`.
Bytes ipv4Fragment(uint8_t proto, size_t payload, uint16_t offset_units, bool more) {
  Bytes f = addLinkHeader(buildIpPacket(kV4a, kV4b, proto, Bytes(payload, 0)), kEtherTypeIpv4);
  wr16(f, 14 + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | offset_units));
  return f;
}

// An IPv6 packet whose only extension header is a fragment header with the given fields.
Bytes ipv6Fragment(uint8_t next, size_t payload, uint16_t offset_units, bool more,
                   std::vector<Ipv6ExtHeader> before = {}) {
  FrameOptions o{.ipv6_ext = std::move(before)};
  o.ipv6_ext.push_back(
      {.type = kIpv6Fragment,
       .body = {static_cast<uint8_t>(offset_units >> 5),
                static_cast<uint8_t>((offset_units << 3) | (more ? 1 : 0)), 0, 0, 0, 1}});
  return addLinkHeader(buildIpPacket(kV6a, kV6b, next, Bytes(payload, 0), o), kEtherTypeIpv6, o);
}

std::vector<MalformedCase> malformedCases() {
  const auto tcp4_ok = [](const FrameOptions& o) { return tcp4(o); };
  return {
      // link
      {"ethernet header cut at 13", [] { return Bytes(13, 0); }, LinkType::kEthernet, Layer::kLink},
      {"empty raw packet", [] { return Bytes{}; }, LinkType::kRawIp, Layer::kLink},
      {"raw packet version 5", [] { return Bytes(40, 0x50); }, LinkType::kRawIp, Layer::kLink},
      {"raw packet version 0", [] { return Bytes(40, 0x00); }, LinkType::kRawIp, Layer::kLink},
      {"sll header cut at 15", [] { return Bytes(15, 0); }, LinkType::kLinuxSll, Layer::kSll},
      {"sll2 header cut at 19", [] { return Bytes(19, 0); }, LinkType::kLinuxSll2, Layer::kSll},
      // vlan
      {"vlan tag after an MPLS-carried pseudowire cut short",
       [] {
         return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x47, 0, 1,    1, 64, 0,
                      0, 0, 0, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0,    0,    1, 0x81, 0, 0};
       },
       LinkType::kEthernet, Layer::kVlan},
      // layer 2.5
      {"mpls label cut short",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x47, 0, 1, 1}; },
       LinkType::kEthernet, Layer::kMpls},
      {"mpls stack without bottom running out",
       [] {
         return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x47, 0, 1, 0, 64, 0, 2, 0, 64};
       },
       LinkType::kEthernet, Layer::kMpls},
      {"mpls stack with no payload",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x48, 0, 1, 1, 64}; },
       LinkType::kEthernet, Layer::kMpls},
      {"mpls pseudowire frame cut short",
       [] {
         return Bytes{2,    0, 0, 0, 0,  2, 2, 0, 0, 0, 0, 1, 0x88,
                      0x47, 0, 1, 1, 64, 0, 0, 0, 0, 2, 0, 0};
       },
       LinkType::kEthernet, Layer::kMpls},
      {"pppoe header cut short",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x64, 0x11, 0, 0, 1, 0}; },
       LinkType::kEthernet, Layer::kPppoe},
      {"pppoe version 2",
       [] {
         return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x64, 0x21, 0, 0, 1, 0, 2, 0, 0x21};
       },
       LinkType::kEthernet, Layer::kPppoe},
      {"pppoe length past the frame",
       patched(tcp4_ok, [](Bytes& f, size_t l3) { wr16(f, l3 - 4, 0x4000); },
               {.shims = {{.kind = Shim::Kind::kPppoe, .value = 1}}}),
       LinkType::kEthernet, Layer::kPppoe},
      {"pbb header cut short",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xe7, 0, 0, 0, 1, 2, 0, 0}; },
       LinkType::kEthernet, Layer::kPbb},
      {"vn-tag cut short",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x89, 0x26, 0x80, 0, 0, 1, 8}; },
       LinkType::kEthernet, Layer::kVnTag},
      {"fabricpath header cut short",
       [] {
         return Bytes{2,    0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x89, 0x03, 0x00,
                      0x7f, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1,    0x08};
       },
       LinkType::kEthernet, Layer::kFabricPath},
      {"fabricpath inner frame cut before its type",
       patched(tcp4_ok, [](Bytes& f, size_t l3) { f.resize(l3 - 1); },
               {.shims = {{.kind = Shim::Kind::kFabricPath, .value = 1}}}),
       LinkType::kEthernet, Layer::kFabricPath},
      {"cmd header cut short",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x89, 0x09, 1, 1, 0, 1, 0, 42, 8}; },
       LinkType::kEthernet, Layer::kCmd},
      {"cmd version 2",
       patched(tcp4_ok, [](Bytes& f, size_t l3) { f[l3 - 8] = 2; },
               {.shims = {{.kind = Shim::Kind::kCmd, .value = 42}}}),
       LinkType::kEthernet, Layer::kCmd},
      {"cmd after a vlan tag, cut short",
       [] {
         return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 5, 0x89, 0x09, 1, 1, 0, 1};
       },
       LinkType::kEthernet, Layer::kCmd},
      {"vlan tag cut short",
       [] { return Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0, 0, 5}; }, LinkType::kEthernet,
       Layer::kVlan},
      // ipv4
      {"ipv4 ethertype with version 6", patched(tcp4_ok, [](Bytes& f, size_t l3) { f[l3] = 0x65; }),
       LinkType::kEthernet, Layer::kIpv4},
      {"ipv4 IHL 4", patched(tcp4_ok, [](Bytes& f, size_t l3) { f[l3] = 0x44; }),
       LinkType::kEthernet, Layer::kIpv4},
      {"ipv4 IHL 0",
       patched(
           tcp4_ok, [](Bytes& f, size_t l3) { f[l3] = 0x40; }, rawIp()),
       LinkType::kRawIp, Layer::kIpv4},
      {"ipv4 total length below header",
       patched(tcp4_ok, [](Bytes& f, size_t l3) { wr16(f, l3 + 2, 19); }), LinkType::kEthernet,
       Layer::kIpv4},
      {"ipv4 total length above captured",
       patched(tcp4_ok, [](Bytes& f, size_t l3) { wr16(f, l3 + 2, rd16(f, l3 + 2) + 1); }),
       LinkType::kEthernet, Layer::kIpv4},
      {"ipv4 IHL past total length",
       patched(tcp4_ok,
               [](Bytes& f, size_t l3) {
                 f[l3] = 0x4f;
                 wr16(f, l3 + 2, 40);
               }),
       LinkType::kEthernet, Layer::kIpv4},
      {"ipv4 header cut at 19",
       [] { return Bytes{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 1, 1, 1, 2, 2, 2}; },
       LinkType::kRawIp, Layer::kIpv4},
      // ipv4-options
      {"ipv4 option length 0",
       [] {
         return tcp4({.ipv4_options = {7, 0, 0, 0}});
       },
       LinkType::kEthernet, Layer::kIpv4Options},
      {"ipv4 option length 1",
       [] {
         return tcp4({.ipv4_options = {0x94, 1, 0, 0}});
       },
       LinkType::kEthernet, Layer::kIpv4Options},
      {"ipv4 option past header",
       [] {
         return tcp4({.ipv4_options = {1, 7, 11, 4, 0, 0, 0, 0}});
       },
       LinkType::kEthernet, Layer::kIpv4Options},
      {"ipv4 option without length byte",
       [] {
         return tcp4({.ipv4_options = {1, 1, 1, 0x44}});
       },
       LinkType::kEthernet, Layer::kIpv4Options},
      // ipv6
      {"ipv6 ethertype with version 4",
       patched([](const FrameOptions& o) { return tcp6(o); },
               [](Bytes& f, size_t l3) { f[l3] = 0x40; }),
       LinkType::kEthernet, Layer::kIpv6},
      {"ipv6 payload length above captured",
       patched([](const FrameOptions& o) { return tcp6(o); },
               [](Bytes& f, size_t l3) { wr16(f, l3 + 4, rd16(f, l3 + 4) + 1); }),
       LinkType::kEthernet, Layer::kIpv6},
      {"ipv6 header cut at 39",
       [] {
         Bytes b(39, 0);
         b[0] = 0x60;
         return b;
       },
       LinkType::kRawIp, Layer::kIpv6},
      // ipv6-ext
      {"hop-by-hop after destination options",
       [] {
         return udp6({.ipv6_ext = {{.type = kIpv6DestOpts}, {.type = kIpv6HopByHop}}});
       },
       LinkType::kEthernet, Layer::kIpv6Ext},
      {"nine extension headers",
       [] {
         FrameOptions o;
         for (int i = 0; i < 9; ++i)
           o.ipv6_ext.push_back({.type = kIpv6DestOpts});
         return udp6(o);
       },
       LinkType::kEthernet, Layer::kIpv6Ext},
      {"destination option runs past its header",
       [] {
         return udp6({.ipv6_ext = {{.type = kIpv6DestOpts, .body = {0x1e, 9, 0, 0, 0, 0}}}});
       },
       LinkType::kEthernet, Layer::kIpv6Ext},
      {"extension header length past payload",
       [] {
         // Destination options claiming 16 bytes with only 8 before the end of the payload.
         Bytes ext = {59, 1, 1, 4, 0, 0, 0, 0};
         return addLinkHeader(buildIpPacket(kV6a, kV6b, kIpv6DestOpts, ext), kEtherTypeIpv6);
       },
       LinkType::kEthernet, Layer::kIpv6Ext},
      {"extension header cut in its first 8 bytes",
       [] {
         return addLinkHeader(buildIpPacket(kV6a, kV6b, kIpv6Routing, Bytes{6, 0, 0, 0}),
                              kEtherTypeIpv6);
       },
       LinkType::kEthernet, Layer::kIpv6Ext},
      // fragment
      {"ipv4 non-last fragment of 13 bytes", [] { return ipv4Fragment(17, 13, 0, true); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv4 fragment ending past 65535", [] { return ipv4Fragment(17, 16, 8191, false); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv4 tcp fragment at offset 8", [] { return ipv4Fragment(6, 16, 1, true); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv4 first fragment with half a TCP header", [] { return ipv4Fragment(6, 16, 0, true); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv4 first fragment with half a UDP header", [] { return ipv4Fragment(17, 0, 0, true); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv4 first fragment without the TCP options",
       [] {
         Bytes t(24, 0);
         t[12] = 0x80;  // data offset 32 bytes
         Bytes f = addLinkHeader(buildIpPacket(kV4a, kV4b, 6, t), kEtherTypeIpv4);
         wr16(f, 14 + 6, 0x2000);
         return f;
       },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv6 non-last fragment of 12 bytes", [] { return ipv6Fragment(17, 12, 0, true); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv6 fragment ending past 65535", [] { return ipv6Fragment(17, 8, 8191, false); },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv6 two fragment headers",
       [] {
         return ipv6Fragment(17, 16, 0, true,
                             {{.type = kIpv6Fragment, .body = {0, 0, 0, 0, 0, 2}}});
       },
       LinkType::kEthernet, Layer::kFragment},
      {"ipv6 first fragment without the whole header chain",
       [] { return ipv6Fragment(kIpv6DestOpts, 0, 0, true); }, LinkType::kEthernet,
       Layer::kFragment},
      {"ipv6 first fragment with half a TCP header", [] { return ipv6Fragment(6, 16, 0, true); },
       LinkType::kEthernet, Layer::kFragment},
      // tcp
      {"tcp header cut at 19 bytes", [] { return tcpRaw(5, 19); }, LinkType::kEthernet,
       Layer::kTcp},
      {"tcp data offset 4", [] { return tcpRaw(4, 40); }, LinkType::kEthernet, Layer::kTcp},
      {"tcp data offset 0", [] { return tcpRaw(0, 40); }, LinkType::kEthernet, Layer::kTcp},
      {"tcp data offset past the segment", [] { return tcpRaw(15, 40); }, LinkType::kEthernet,
       Layer::kTcp},
      // tcp-options
      {"tcp option length 0",
       [] {
         return tcpWithRawOptions({30, 0});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp option length 1",
       [] {
         return tcpWithRawOptions({30, 1});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp option past header",
       [] {
         return tcpWithRawOptions({30, 5, 0, 0});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp option without length byte",
       [] {
         return tcpWithRawOptions({1, 1, 1, 30});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp MSS length 3",
       [] {
         return tcpWithRawOptions({2, 3, 5, 1});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp window scale length 4",
       [] {
         return tcpWithRawOptions({3, 4, 7, 0});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp SACK-permitted length 3",
       [] {
         return tcpWithRawOptions({4, 3, 0, 1});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp SACK length 11",
       [] {
         return tcpWithRawOptions({5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp SACK with no block",
       [] {
         return tcpWithRawOptions({5, 2, 1, 1});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      {"tcp timestamp length 9",
       [] {
         return tcpWithRawOptions({8, 9, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1});
       },
       LinkType::kEthernet, Layer::kTcpOptions},
      // udp
      {"udp header cut at 7 bytes",
       [] { return addLinkHeader(buildIpPacket(kV4a, kV4b, 17, Bytes(7, 0)), kEtherTypeIpv4); },
       LinkType::kEthernet, Layer::kUdp},
      {"udp length 7",
       patched([](const FrameOptions& o) { return udp4(o); },
               [](Bytes& f, size_t l3) { wr16(f, l3 + 20 + 4, 7); }),
       LinkType::kEthernet, Layer::kUdp},
      {"udp length past the IP payload",
       patched([](const FrameOptions& o) { return udp4(o); },
               [](Bytes& f, size_t l3) { wr16(f, l3 + 20 + 4, 19); }),
       LinkType::kEthernet, Layer::kUdp},
      {"udp6 length past the IP payload",
       patched([](const FrameOptions& o) { return udp6(o); },
               [](Bytes& f, size_t l3) { wr16(f, l3 + 40 + 4, 9); }),
       LinkType::kEthernet, Layer::kUdp},
      {"udp length shorter than its first fragment",
       [] {
         Bytes u = {0, 1, 0, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
         Bytes f = addLinkHeader(buildIpPacket(kV4a, kV4b, 17, u), kEtherTypeIpv4);
         wr16(f, 14 + 6, 0x2000);
         return f;
       },
       LinkType::kEthernet, Layer::kUdp},
      // icmp / icmpv6
      {"icmp cut at 7 bytes",
       [] { return addLinkHeader(buildIpPacket(kV4a, kV4b, 1, Bytes(7, 8)), kEtherTypeIpv4); },
       LinkType::kEthernet, Layer::kIcmp},
      {"icmpv6 cut at 7 bytes",
       [] { return addLinkHeader(buildIpPacket(kV6a, kV6b, 58, Bytes(7, 128)), kEtherTypeIpv6); },
       LinkType::kEthernet, Layer::kIcmpv6},
      // icmp-quoted
      {"icmp error quoting 19 bytes",
       [] {
         Bytes q = buildTcp({}, rawIp());
         q.resize(19);
         return icmpErrorQuoting(q);
       },
       LinkType::kEthernet, Layer::kIcmpQuoted},
      {"icmp error quoting nothing", [] { return icmpErrorQuoting({}); }, LinkType::kEthernet,
       Layer::kIcmpQuoted},
      {"icmp error quoting IPv6",
       [] { return icmpErrorQuoting(buildTcp({.src = kV6a, .dst = kV6b}, rawIp())); },
       LinkType::kEthernet, Layer::kIcmpQuoted},
      {"icmp error quoting IHL 4",
       [] {
         Bytes q = buildTcp({}, rawIp());
         q[0] = 0x44;
         return icmpErrorQuoting(q);
       },
       LinkType::kEthernet, Layer::kIcmpQuoted},
      {"icmp error quoting options it cuts off",
       [] {
         Bytes q = buildTcp({}, {.link = LinkType::kRawIp, .ipv4_options = {1, 1, 1, 1}});
         q.resize(22);
         return icmpErrorQuoting(q);
       },
       LinkType::kEthernet, Layer::kIcmpQuoted},
      {"icmpv6 error quoting 39 bytes",
       [] {
         Bytes q = buildUdp({.src = kV6a, .dst = kV6b}, rawIp());
         q.resize(39);
         return icmpErrorQuoting(q, true);
       },
       LinkType::kEthernet, Layer::kIcmpQuoted},
      {"icmpv6 error quoting IPv4", [] { return icmpErrorQuoting(buildUdp({}, rawIp()), true); },
       LinkType::kEthernet, Layer::kIcmpQuoted},
  };
}

TEST(ParserMalformed, EachCaseNamesItsLayer) {
  for (const auto& c : malformedCases()) {
    SCOPED_TRACE(c.description);
    const Bytes frame = c.make();
    const auto r = parseBytes(frame, c.link);
    expectConsistent(r);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(layerName(r.p.malformed), layerName(c.layer))
        << (r.p.malformed_why ? r.p.malformed_why : "(no reason)");
  }
}

TEST(ParserMalformed, NotMalformed) {
  // Things that look odd but parse: checksums are not verified, padding after the datagram,
  // a UDP length below the IP payload (trailing bytes), TCP flag soup.
  Bytes bad_sums = buildTcp({.payload_len = 4});
  bad_sums[14 + 10] ^= 0xff;       // IPv4 header checksum
  bad_sums[14 + 20 + 16] ^= 0xff;  // TCP checksum
  EXPECT_TRUE(parseBytes(bad_sums, LinkType::kEthernet).ok);

  EXPECT_TRUE(parseBytes(buildUdp({}, {.trailer_len = 18}), LinkType::kEthernet).ok);

  Bytes short_udp = buildUdp({.payload_len = 12});
  wr16(short_udp, 14 + 20 + 4, 8);
  const auto r = parseBytes(short_udp, LinkType::kEthernet);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.p.l4_payload_len, 0u);

  EXPECT_TRUE(parseBytes(buildTcp({.flags = 0xff}), LinkType::kEthernet).ok);
  EXPECT_TRUE(parseBytes(buildTcp({.flags = 0}), LinkType::kEthernet).ok);

  // A middle IPv4 fragment of TCP at offset 16 (not the RFC 1858 overlap at 8).
  EXPECT_TRUE(parseBytes(ipv4Fragment(6, 16, 2, true), LinkType::kEthernet).ok);
}

TEST(ParserMalformed, FieldsBeforeTheFailingLayerStayFilled) {
  const auto r = parseBytes(tcpWithRawOptions({2, 3, 5, 1}), LinkType::kEthernet);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.p.malformed, Layer::kTcpOptions);
  EXPECT_EQ(r.p.src, kDefaultSrc);
  EXPECT_EQ(r.p.dst, kDefaultDst);
  EXPECT_EQ(r.p.proto, kIpProtoTcp);
  EXPECT_EQ(r.p.dport, 80);
}

TEST(ParserMalformed, OutputIsResetBetweenCalls) {
  ParsedPacket p;
  const Bytes tcp = buildTcp({.mss = 1200, .sack = {{1, 2}}});
  ASSERT_TRUE(parsePacket(tcp.data(), static_cast<uint32_t>(tcp.size()), LinkType::kEthernet, &p));
  const Bytes bad(5, 0);
  ASSERT_FALSE(parsePacket(bad.data(), 5, LinkType::kEthernet, &p));
  EXPECT_EQ(p.malformed, Layer::kLink);
  EXPECT_EQ(p.sport, 0);
  EXPECT_EQ(p.tcp_opt.mss, 0);
  EXPECT_FALSE(p.tcp_opt.has_sack);
  const Bytes arp = buildArp({});
  ASSERT_TRUE(parsePacket(arp.data(), static_cast<uint32_t>(arp.size()), LinkType::kEthernet, &p));
  EXPECT_EQ(p.malformed_why, nullptr);
  EXPECT_EQ(p.l3, L3::kArp);
}

// ---- Truncation at every byte offset ----
//
// A packet is described by segments [end, layer): a cut before `end` bytes (and after the previous
// segment) is malformed at `layer`. Without fixup every cut past the IP header start fails at the
// IP layer (its length field claims more than was captured); with fixup the IP length is rewritten
// to the bytes that remain, so the cut is seen by the layer it falls in.

struct Segment {
  size_t end;
  Layer layer;
};

struct TruncCase {
  const char* name;
  Bytes frame;
  LinkType link;
  size_t l3;
  bool v6;
  std::vector<Segment> segments;  // past the last one: parses
};

Layer expectedAt(const TruncCase& c, size_t n, bool fixup) {
  Layer layer = Layer::kNone;
  for (const auto& s : c.segments) {
    if (n < s.end) {
      layer = s.layer;
      break;
    }
  }
  const bool below_ip = layer == Layer::kLink || layer == Layer::kVlan || layer == Layer::kSll;
  if (!fixup && n >= c.l3 && n < c.frame.size() && !below_ip) {
    return c.v6 ? Layer::kIpv6 : Layer::kIpv4;
  }
  return layer;
}

std::vector<TruncCase> truncCases() {
  const Layer v4 = Layer::kIpv4;
  const Layer v6 = Layer::kIpv6;
  std::vector<TruncCase> v;
  v.push_back(
      {"eth vlan ipv4 tcp+options",
       buildTcp(
           {.mss = 1460, .wscale = 2, .ts = std::pair<uint32_t, uint32_t>{1, 2}, .payload_len = 5},
           {.vlans = {{.vid = 9}}}),
       LinkType::kEthernet,
       18,
       false,
       {{14, Layer::kLink}, {18, Layer::kVlan}, {38, v4}, {38 + 40, Layer::kTcp}}});
  v.push_back(
      {"qinq ipv4-options udp",
       buildUdp({.payload_len = 3}, {.vlans = {{.vid = 1, .tpid = kEtherTypeQinQ}, {.vid = 2}},
                                     .ipv4_options = {0x94, 4, 0, 0}}),
       LinkType::kEthernet,
       22,
       false,
       {{14, Layer::kLink}, {22, Layer::kVlan}, {22 + 24, v4}, {22 + 24 + 8 + 3, Layer::kUdp}}});
  v.push_back(
      {"sll ipv6 ext udp",
       buildUdp({.src = kV6a, .dst = kV6b, .payload_len = 2},
                {.link = LinkType::kLinuxSll,
                 .ipv6_ext = {{.type = kIpv6HopByHop},
                              {.type = kIpv6Routing, .body = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}}),
       LinkType::kLinuxSll,
       16,
       true,
       {{16, Layer::kSll},
        {56, v6},
        {56 + 8 + 16, Layer::kIpv6Ext},
        {56 + 24 + 8 + 2, Layer::kUdp}}});
  v.push_back({"sll2 ipv4 icmp echo",
               buildIcmpEcho({.payload_len = 4}, {.link = LinkType::kLinuxSll2}),
               LinkType::kLinuxSll2,
               20,
               false,
               {{20, Layer::kSll}, {40, v4}, {48, Layer::kIcmp}}});
  v.push_back({"raw ipv6 icmpv6 echo",
               buildIcmpEcho({.src = kV6a, .dst = kV6b, .payload_len = 4}, rawIp()),
               LinkType::kRawIp,
               0,
               true,
               {{1, Layer::kLink}, {40, v6}, {48, Layer::kIcmpv6}}});
  v.push_back({"raw ipv4 icmp error quoting tcp",
               buildIcmpError({}, buildTcp({.mss = 1400, .payload_len = 10}, rawIp()), rawIp()),
               LinkType::kRawIp,
               0,
               false,
               {{1, Layer::kLink}, {20, v4}, {28, Layer::kIcmp}, {48, Layer::kIcmpQuoted}}});
  v.push_back({"eth ipv6 icmpv6 error quoting udp",
               buildIcmpError({.src = kV6b, .dst = kV6a, .type = kIcmpv6DestUnreachable, .code = 4},
                              buildUdp({.src = kV6a, .dst = kV6b, .payload_len = 10}, rawIp())),
               LinkType::kEthernet,
               14,
               true,
               {{14, Layer::kLink}, {54, v6}, {62, Layer::kIcmpv6}, {102, Layer::kIcmpQuoted}}});
  return v;
}

// Rewrites the IP length fields so the datagram ends at the cut.
void fixupLength(Bytes& f, size_t l3, bool v6) {
  if (v6) {
    if (f.size() >= l3 + 40) wr16(f, l3 + 4, static_cast<uint16_t>(f.size() - l3 - 40));
  } else if (f.size() >= l3 + 20) {
    wr16(f, l3 + 2, static_cast<uint16_t>(f.size() - l3));
  }
}

TEST(ParserTruncation, EveryByteOffsetNamesTheLayerCut) {
  for (const auto& c : truncCases()) {
    ASSERT_TRUE(parseBytes(c.frame, c.link).ok) << c.name;
    for (bool fixup : {false, true}) {
      for (size_t n = 0; n <= c.frame.size(); ++n) {
        Bytes cut(c.frame.begin(), c.frame.begin() + static_cast<std::ptrdiff_t>(n));
        if (fixup) fixupLength(cut, c.l3, c.v6);
        const auto r = parseBytes(cut, c.link);
        SCOPED_TRACE(std::string(c.name) + " cut at " + std::to_string(n) +
                     (fixup ? " (length fixed up)" : ""));
        expectConsistent(r);
        EXPECT_EQ(layerName(r.p.malformed), layerName(expectedAt(c, n, fixup)))
            << (r.p.malformed_why ? r.p.malformed_why : "");
      }
    }
  }
}

// ---- Random corruption: no crash, consistent results (ASan catches out-of-bounds reads) ----

TEST(ParserCorruption, RandomByteFlipsStayConsistent) {
  std::mt19937 rng(12345);
  std::vector<std::pair<Bytes, LinkType>> seeds;
  for (const auto& c : truncCases())
    seeds.push_back({c.frame, c.link});
  for (const auto& c : malformedCases())
    seeds.push_back({c.make(), c.link});
  size_t parsed_ok = 0;
  size_t total = 0;
  for (const auto& [seed, link] : seeds) {
    if (seed.empty()) continue;
    for (int iter = 0; iter < 300; ++iter) {
      Bytes b = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips; ++i)
        b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
      const auto r = parseBytes(b, link);
      expectConsistent(r);
      if (r.ok) {
        ++parsed_ok;
        if (r.p.l3 == L3::kIpv4 || r.p.l3 == L3::kIpv6) {
          EXPECT_LE(r.p.l3_offset + r.p.ip_len, b.size());
        }
        EXPECT_LE(r.p.l4_offset, b.size());
        EXPECT_LE(r.p.tcp_opt.wscale, 14);
        if (r.p.icmp_is_error) {
          EXPECT_TRUE(r.p.quoted.present);
        }
      }
      ++total;
    }
  }
  // Both outcomes occur: the corruption neither always breaks nor never breaks the packets.
  EXPECT_GT(parsed_ok, total / 20);
  EXPECT_LT(parsed_ok, total);
}

}  // namespace
}  // namespace statewall::dataplane
