// The packet builder's bytes checked field by field, with checksums verified by an independent
// computation (a plain word sum written here, not the builder's internetChecksum()).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "parse_util.hpp"

namespace statewall::dataplane {
namespace {

using testing::rd16;

// One's-complement sum over big-endian 16-bit words; a correct checksum makes the folded sum of
// the covered bytes (checksum field included) 0xffff.
uint32_t wordSum(const Bytes& b, size_t from, size_t to) {
  uint32_t sum = 0;
  for (size_t i = from; i < to; i += 2) {
    const uint32_t hi = b[i];
    const uint32_t lo = i + 1 < to ? b[i + 1] : 0;
    sum += hi * 256 + lo;
  }
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum > 0xffff)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// True when the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6 checksum of the packet at `l3`
// are both valid.
bool checksumsValid(const Bytes& f, size_t l3) {
  const bool v6 = (f.at(l3) >> 4) == 6;
  size_t l4;
  size_t end;
  uint8_t proto;
  uint32_t pseudo = 0;
  if (!v6) {
    const size_t ihl = (f[l3] & 15) * 4u;
    if (fold(wordSum(f, l3, l3 + ihl)) != 0xffff) return false;
    l4 = l3 + ihl;
    end = l3 + rd16(f, l3 + 2);
    proto = f[l3 + 9];
    pseudo = wordSum(f, l3 + 12, l3 + 20) + proto + static_cast<uint32_t>(end - l4);
  } else {
    end = l3 + 40 + rd16(f, l3 + 4);
    // Walk the extension headers the builder can write (no fragments here).
    proto = f[l3 + 6];
    l4 = l3 + 40;
    while (proto == 0 || proto == 43 || proto == 60 || proto == 51) {
      const size_t len = proto == 51 ? (f[l4 + 1] + 2u) * 4 : (f[l4 + 1] + 1u) * 8;
      proto = f[l4];
      l4 += len;
    }
    const uint32_t len = static_cast<uint32_t>(end - l4);
    pseudo = wordSum(f, l3 + 8, l3 + 40) + (len >> 16) + (len & 0xffff) + proto;
  }
  if (end > f.size()) return false;
  if (proto == 6 || proto == 17 || proto == 58) return fold(pseudo + wordSum(f, l4, end)) == 0xffff;
  if (proto == 1) return fold(wordSum(f, l4, end)) == 0xffff;
  return true;
}

TEST(BuilderChecksum, Ipv4HeaderMatchesAKnownVector) {
  // The classic example header 4500 0073 0000 4000 4011 xxxx c0a8 0001 c0a8 00c7 -> b861.
  const auto p = buildOtherProto({.src = ipAddr("192.168.0.1"),
                                  .dst = ipAddr("192.168.0.199"),
                                  .proto = 17,
                                  .payload_len = 95},
                                 {.link = LinkType::kRawIp, .ip_id = 0, .dont_fragment = true});
  ASSERT_EQ(p.size(), 0x73u);
  const Bytes want = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                      0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(Bytes(p.begin(), p.begin() + 20), want);
}

TEST(BuilderChecksum, TransportChecksumsAreValidEverywhere) {
  const IpAddr v6a = ipAddr("2001:db8::1");
  const IpAddr v6b = ipAddr("2001:db8::99");
  const FrameOptions ext6{
      .ipv6_ext = {{.type = kIpv6HopByHop}, {.type = kIpv6DestOpts, .body = {1}}}};
  const FrameOptions opt4{.ipv4_options = {0x94, 4, 0, 0}};
  std::vector<Bytes> frames = {
      buildTcp({.flags = kSyn, .mss = 1460, .payload_len = 0}),
      buildTcp({.payload_len = 1}),  // odd length
      buildTcp({.payload_len = 999}, opt4),
      buildTcp(
          {.src = v6a, .dst = v6b, .ts = std::pair<uint32_t, uint32_t>{5, 6}, .payload_len = 17}),
      buildTcp({.src = v6a, .dst = v6b, .payload_len = 3}, ext6),
      buildUdp({.payload_len = 0}),
      buildUdp({.payload_len = 513}),
      buildUdp({.src = v6a, .dst = v6b, .payload_len = 31}, ext6),
      buildIcmpEcho({.payload_len = 7}),
      buildIcmpEcho({.src = v6a, .dst = v6b, .reply = true, .payload_len = 9}),
      buildIcmpError({}, buildTcp({}, rawIp())),
      buildIcmpError({.src = v6b, .dst = v6a, .type = kIcmpv6PacketTooBig, .code = 0, .rest = 1280},
                     buildUdp({.src = v6a, .dst = v6b}, rawIp())),
      buildNd({.link_addr = MacAddr{1, 2, 3, 4, 5, 6}}),
      buildNd({.type = kIcmpv6RouterAdvert}),
  };
  for (size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    EXPECT_TRUE(checksumsValid(frames[i], 14));
    // The check can fail: one flipped bit in the last byte breaks the transport checksum.
    Bytes broken = frames[i];
    broken.back() ^= 0x01;
    EXPECT_FALSE(checksumsValid(broken, 14));
  }
}

TEST(BuilderChecksum, UdpChecksumZeroIsSentAsAllOnes) {
  // Find the two payload bytes that make the computed sum 0, then check the wire shows 0xffff.
  const Bytes probe = buildUdp({.payload = {0, 0}}, rawIp());
  const uint16_t c = rd16(probe, 20 + 6);
  const auto f =
      buildUdp({.payload = {static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c)}}, rawIp());
  EXPECT_EQ(rd16(f, 20 + 6), 0xffff);
  EXPECT_TRUE(checksumsValid(f, 0));
}

TEST(BuilderChecksum, InternetChecksumOfRfc1071Example) {
  // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (checksum 220d).
  const Bytes b = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(internetChecksum(b), 0x220d);
}

TEST(BuilderLayout, EthernetVlanAndSllHeaders) {
  const FrameOptions eth{
      .src_mac = {1, 2, 3, 4, 5, 6},
      .dst_mac = {7, 8, 9, 10, 11, 12},
      .vlans = {{.vid = 0x123, .tpid = kEtherTypeQinQ, .pcp = 3}, {.vid = 0xabc}}};
  const auto f = buildUdp({}, eth);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 12), (Bytes{7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(rd16(f, 12), 0x88a8);
  EXPECT_EQ(rd16(f, 14), (3 << 13) | 0x123);
  EXPECT_EQ(rd16(f, 16), 0x8100);
  EXPECT_EQ(rd16(f, 18), 0x0abc);
  EXPECT_EQ(rd16(f, 20), 0x0800);
  EXPECT_EQ(f[22], 0x45);
  EXPECT_EQ(l3Offset(eth), 22u);

  const auto sll =
      buildUdp({.src = ipAddr("::1"), .dst = ipAddr("::2")},
               {.link = LinkType::kLinuxSll, .src_mac = {1, 2, 3, 4, 5, 6}, .sll_packet_type = 4});
  EXPECT_EQ(rd16(sll, 0), 4);  // outgoing
  EXPECT_EQ(rd16(sll, 2), 1);  // ARPHRD_ETHER
  EXPECT_EQ(rd16(sll, 4), 6);  // address length
  EXPECT_EQ(sll[6], 1);
  EXPECT_EQ(rd16(sll, 14), 0x86dd);
  EXPECT_EQ(sll[16] >> 4, 6);

  const auto sll2 = buildUdp({}, {.link = LinkType::kLinuxSll2, .sll2_ifindex = 0x01020304});
  EXPECT_EQ(rd16(sll2, 0), 0x0800);
  EXPECT_EQ(rd16(sll2, 4), 0x0102);
  EXPECT_EQ(rd16(sll2, 6), 0x0304);
  EXPECT_EQ(rd16(sll2, 8), 1);
  EXPECT_EQ(sll2[11], 6);
  EXPECT_EQ(sll2[20], 0x45);
}

TEST(BuilderLayout, LengthsAndTcpHeader) {
  const auto f = buildTcp({.sport = 0x1111,
                           .dport = 0x2222,
                           .flags = kSyn,
                           .seq = 0x01020304,
                           .ack = 0x0a0b0c0d,
                           .window = 0x3333,
                           .mss = 0x05b4,
                           .payload_len = 3},
                          rawIp());
  ASSERT_EQ(f.size(), 20u + 24 + 3);
  EXPECT_EQ(rd16(f, 2), 47);
  EXPECT_EQ(f[8], 64);  // TTL
  EXPECT_EQ(f[9], 6);
  EXPECT_EQ(rd16(f, 20), 0x1111);
  EXPECT_EQ(rd16(f, 22), 0x2222);
  EXPECT_EQ(rd16(f, 24), 0x0102);
  EXPECT_EQ(rd16(f, 28), 0x0a0b);
  EXPECT_EQ(f[32], 6 << 4);  // data offset 24 bytes
  EXPECT_EQ(f[33], kSyn);
  EXPECT_EQ(rd16(f, 34), 0x3333);
  EXPECT_EQ((Bytes{f[40], f[41], f[42], f[43]}), (Bytes{2, 4, 0x05, 0xb4}));

  const auto u6 = buildUdp(
      {.src = ipAddr("::1"), .dst = ipAddr("::2"), .payload_len = 10},
      {.link = LinkType::kRawIp, .ipv6_ext = {{.type = kIpv6DestOpts}}, .flow_label = 0xabcde});
  EXPECT_EQ(rd16(u6, 4), 8 + 8 + 10);  // payload length covers the extension header
  EXPECT_EQ(u6[1] & 0x0f, 0x0a);
  EXPECT_EQ(rd16(u6, 2), 0xbcde);
  EXPECT_EQ(u6[6], kIpv6DestOpts);
  EXPECT_EQ(u6[40], kIpProtoUdp);
  EXPECT_EQ(u6[41], 0);             // 8 bytes
  EXPECT_EQ(rd16(u6, 48 + 4), 18);  // UDP length
}

// Reassembles fragments (IPv4 or IPv6, link header `l3` bytes) and checks each one's shape.
Bytes reassemble(const std::vector<Bytes>& frags, size_t l3, size_t mtu) {
  std::map<size_t, Bytes> parts;
  bool saw_last = false;
  for (const auto& f : frags) {
    const bool v6 = (f[l3] >> 4) == 6;
    size_t data;
    size_t offset;
    bool more;
    size_t ip_len;
    if (!v6) {
      const size_t ihl = (f[l3] & 15) * 4u;
      ip_len = rd16(f, l3 + 2);
      EXPECT_EQ(fold(wordSum(f, l3, l3 + ihl)), 0xffff);
      data = l3 + ihl;
      offset = (rd16(f, l3 + 6) & 0x1fff) * 8u;
      more = (rd16(f, l3 + 6) & 0x2000) != 0;
    } else {
      ip_len = 40 + rd16(f, l3 + 4);
      size_t pos = l3 + 40;
      uint8_t nh = f[l3 + 6];
      while (nh != kIpv6Fragment) {
        nh = f[pos];
        pos += (f[pos + 1] + 1u) * 8;
      }
      offset = rd16(f, pos + 2) & 0xfff8;
      more = (rd16(f, pos + 2) & 1) != 0;
      data = pos + 8;
    }
    EXPECT_LE(ip_len, mtu);
    EXPECT_EQ(f.size(), l3 + ip_len);
    if (more) {
      EXPECT_EQ((l3 + ip_len - data) % 8, 0u);
    }
    if (!more) saw_last = true;
    parts[offset] = Bytes(f.begin() + static_cast<std::ptrdiff_t>(data), f.end());
  }
  EXPECT_TRUE(saw_last);
  Bytes out;
  for (const auto& [off, bytes] : parts) {
    EXPECT_EQ(off, out.size()) << "fragments leave a gap or overlap";
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  return out;
}

TEST(BuilderFragment, Ipv4FragmentsReassembleAndCopyOnlyCopiedOptions) {
  // Router alert (copied) and record route (not copied).
  const FrameOptions opts{.ipv4_options = {0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0}};
  const auto whole = buildUdp({.payload_len = 1000}, opts);
  const auto frags = fragment(whole, 300, opts);
  ASSERT_EQ(frags.size(), 4u);
  EXPECT_EQ(frags[0][14] & 15, 8);  // 32-byte header: all options
  EXPECT_EQ(frags[1][14] & 15, 6);  // 24 bytes: router alert only
  EXPECT_EQ(frags[1][14 + 20], 0x94);
  const Bytes payload = reassemble(frags, 14, 300);
  EXPECT_EQ(payload, Bytes(whole.begin() + 14 + 32, whole.end()));
  for (const auto& f : frags)
    EXPECT_EQ(rd16(f, 14 + 4), 1);  // the identification is kept
}

TEST(BuilderFragment, Ipv6FragmentsReassembleAfterTheUnfragmentablePart) {
  const FrameOptions opts{.link = LinkType::kLinuxSll2,
                          .ipv6_ext = {{.type = kIpv6HopByHop},
                                       {.type = kIpv6Routing, .body = {0, 0}},
                                       {.type = kIpv6DestOpts}}};
  const auto whole =
      buildTcp({.src = ipAddr("fd00::a"), .dst = ipAddr("fd00::b"), .payload_len = 3000}, opts);
  const auto frags = fragment(whole, 1280, opts, 77);
  ASSERT_EQ(frags.size(), 3u);
  for (const auto& f : frags) {
    // Hop-by-hop and routing stay in front; the routing header now names the fragment header.
    EXPECT_EQ(f[20 + 6], kIpv6HopByHop);
    EXPECT_EQ(f[20 + 40], kIpv6Routing);
    EXPECT_EQ(f[20 + 48], kIpv6Fragment);
    EXPECT_EQ(f[20 + 56], kIpv6DestOpts);  // the fragment header's next header
    EXPECT_EQ(rd16(f, 20 + 60), 0);
    EXPECT_EQ(rd16(f, 20 + 62), 77);
  }
  const Bytes data = reassemble(frags, 20, 1280);
  EXPECT_EQ(data, Bytes(whole.begin() + 20 + 56, whole.end()));
}

TEST(BuilderFragment, SmallDatagramIsReturnedWhole) {
  const auto whole = buildUdp({.payload_len = 100});
  const auto frags = fragment(whole, 1500);
  ASSERT_EQ(frags.size(), 1u);
  EXPECT_EQ(frags[0], whole);
}

TEST(BuilderDeath, MixedFamiliesAbort) {
  EXPECT_DEATH(buildTcp({.src = ipAddr("10.0.0.1"), .dst = ipAddr("::1")}), "different families");
  EXPECT_DEATH(ipAddr("10.0.0.300"), "bad IP address");
  EXPECT_DEATH(buildArp({}, rawIp()), "raw IP");
  EXPECT_DEATH(buildIcmpError({}, buildTcp({})), "rawIp");
}

}  // namespace
}  // namespace statewall::dataplane
