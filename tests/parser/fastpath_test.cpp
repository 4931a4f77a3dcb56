// parsePacket()'s fast path for Ethernet/IPv4/TCP frames against the general parser
// (parsePacketGeneral()): random frames, most of them close to what the fast path takes (TCP over
// IPv4 with and without timestamps, padding, other options) with bytes of the headers changed
// and the captured length cut, must give the same result and every field the same.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "parse_util.hpp"

namespace statewall::dataplane {
namespace {

std::string diff(const ParsedPacket& a, const ParsedPacket& b) {
  std::ostringstream o;
#define CMP(field)                                                 \
  if (!(a.field == b.field)) {                                     \
    o << #field << " " << static_cast<uint64_t>(a.field) << " vs " \
      << static_cast<uint64_t>(b.field) << "\n";                   \
  }
#define CMP_ADDR(field) \
  if (!(a.field == b.field)) o << #field << " " << a.field.str() << " vs " << b.field.str() << "\n";
  CMP(malformed)
  CMP(l3)
  CMP(family)
  CMP(proto)
  CMP(ttl_or_hlim)
  CMP(tcp_flags)
  CMP(icmp_type)
  CMP(icmp_code)
  CMP(sport)
  CMP(dport)
  CMP(window)
  CMP(icmp_id)
  CMP(seq)
  CMP(ack)
  CMP(ip_len)
  CMP(l4_payload_len)
  CMP(is_fragment)
  CMP(first_fragment)
  CMP(more_fragments)
  CMP(icmp_is_error)
  CMP(icmp_is_query_request)
  CMP(icmp_is_query_reply)
  CMP(is_nd)
  CMP(vlan_count)
  CMP(frag_offset)
  CMP(l3_offset)
  CMP(frag_id)
  CMP_ADDR(src)
  CMP_ADDR(dst)
  CMP(tcp_opt.mss)
  CMP(tcp_opt.wscale)
  CMP(tcp_opt.sack_permitted)
  CMP(tcp_opt.has_sack)
  CMP(tcp_opt.has_ts)
  CMP(tcp_opt.tsval)
  CMP(tcp_opt.tsecr)
  CMP(tcp_opt.sack_right_edge)
  CMP(vlan_ids[0])
  CMP(vlan_ids[1])
  CMP(l4_offset)
  CMP(quoted.present)
  CMP(quoted.has_l4)
  CMP(quoted.proto)
  CMP(quoted.icmp_type)
  CMP(quoted.family)
  CMP(quoted.sport)
  CMP(quoted.dport)
  CMP(quoted.icmp_id)
  CMP(quoted.tcp_seq)
  CMP_ADDR(quoted.src)
  CMP_ADDR(quoted.dst)
  CMP(tunnel_depth)
#undef CMP
#undef CMP_ADDR
  const char* wa = a.malformed_why;
  const char* wb = b.malformed_why;
  if ((wa == nullptr) != (wb == nullptr) || (wa != nullptr && std::strcmp(wa, wb) != 0)) {
    o << "malformed_why differs\n";
  }
  return o.str();
}

Bytes randomBase(std::mt19937_64& rng, bool tunnels = false) {
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  TcpSpec t;
  t.src = IpAddr::v4(static_cast<uint32_t>(rng()));
  t.dst = IpAddr::v4(static_cast<uint32_t>(rng()));
  t.sport = static_cast<uint16_t>(rng());
  t.dport = static_cast<uint16_t>(rng());
  t.flags = static_cast<uint8_t>(rng());
  t.seq = static_cast<uint32_t>(rng());
  t.ack = static_cast<uint32_t>(rng());
  t.window = static_cast<uint16_t>(rng());
  t.payload_len = pick(4) == 0 ? 0 : pick(200);
  switch (pick(5)) {
    case 0:
    case 1:
      t.ts = std::make_pair(static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()));
      break;
    case 2:
      t.mss = 1460;
      t.wscale = static_cast<uint8_t>(pick(15));
      t.sack_permitted = true;
      break;
    default:
      break;
  }
  FrameOptions o;
  o.trailer_len = pick(3) == 0 ? pick(30) : 0;
  o.ip_id = static_cast<uint16_t>(rng());
  o.dont_fragment = pick(2) == 0;
  if (pick(10) == 0) o.ipv4_options = {1, 1, 1, 0};
  if (pick(10) == 0) o.vlans = {VlanTag{.vid = 5}};
  if (pick(10) == 0) {
    o.shims = {Shim{.kind = Shim::Kind::kFabricPath, .value = static_cast<uint32_t>(pick(1024))},
               Shim{.kind = Shim::Kind::kCmd, .value = static_cast<uint32_t>(rng() & 0xffff)}};
  }
  if (tunnels) {
    // Up to two tunnels of the kinds that carry IPv4, so that the inner packet is the fast
    // path's shape and mutations hit the tunnel headers.
    static constexpr EncapHeader::Kind kKinds[] = {
        EncapHeader::Kind::kVxlan, EncapHeader::Kind::kGeneve, EncapHeader::Kind::kGtpU,
        EncapHeader::Kind::kAyiya, EncapHeader::Kind::kGre,    EncapHeader::Kind::kErspan,
        EncapHeader::Kind::kIpIp,  EncapHeader::Kind::kAruba};
    for (uint32_t n = pick(3); n > 0; --n) {
      TunnelSpec ts{.kind = kKinds[pick(sizeof(kKinds) / sizeof(kKinds[0]))],
                    .value = static_cast<uint32_t>(rng() & 0xff),
                    .aux = static_cast<uint8_t>(pick(4))};
      if (ts.kind == EncapHeader::Kind::kErspan && ts.aux == 0) ts.aux = 2;
      if (ts.kind == EncapHeader::Kind::kAruba) {
        ts.value = 0;
        ts.wlan_qos = pick(2) == 0;
        ts.wlan_four_address = pick(2) == 0;
      }
      o.tunnels.push_back(ts);
    }
  }
  return buildTcp(t, o);
}

TEST(ParserFastPath, SameFieldsAsTheGeneralParser) {
  std::mt19937_64 rng(20261121);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  size_t fast_shaped = 0;  // frames the fast path can take (checked through its result)
  for (int iter = 0; iter < 200000; ++iter) {
    Bytes f = randomBase(rng);
    // Mutations: header bytes the fast path looks at, and the captured length.
    const uint32_t n_mut = pick(4);
    for (uint32_t m = 0; m < n_mut; ++m) {
      static constexpr size_t kSpots[] = {12, 13, 14, 16, 17, 20, 21, 23, 46, 54, 55, 56, 57};
      const size_t at = pick(3) == 0 ? pick(static_cast<uint32_t>(f.size()))
                                     : kSpots[pick(sizeof(kSpots) / sizeof(kSpots[0]))];
      if (at < f.size())
        f[at] = pick(2) == 0 ? static_cast<uint8_t>(rng()) : f[at] ^ (1u << pick(8));
    }
    size_t caplen = f.size();
    if (pick(5) == 0) caplen = pick(static_cast<uint32_t>(f.size()) + 1);
    // Exact-size copies, so that a read past caplen shows under AddressSanitizer.
    std::unique_ptr<uint8_t[]> copy(new uint8_t[caplen + 1]);
    std::memcpy(copy.get(), f.data(), caplen);
    ParsedPacket a;
    ParsedPacket b;
    const bool ra = parsePacket(copy.get(), static_cast<uint32_t>(caplen), LinkType::kEthernet, &a);
    const bool rb =
        parsePacketGeneral(copy.get(), static_cast<uint32_t>(caplen), LinkType::kEthernet, &b);
    ASSERT_EQ(ra, rb) << "iteration " << iter;
    const std::string d = diff(a, b);
    ASSERT_TRUE(d.empty()) << "iteration " << iter << ":\n" << d;
    if (rb && b.l3 == L3::kIpv4 && b.proto == kIpProtoTcp && b.l3_offset == 14 &&
        b.l4_offset == 34 && !b.is_fragment && !b.tcp_opt.has_sack && b.tcp_opt.mss == 0) {
      ++fast_shaped;
    }
  }
  EXPECT_GT(fast_shaped, 30000u);
}

// With decapsulation the fast path (taken by the frames that are not tunnels) and the general
// path still agree, tunnels and mutated tunnel headers included; and decap off through the
// 5-argument form is the 4-argument parse.
TEST(ParserFastPath, SameFieldsAsTheGeneralParserWithDecap) {
  std::mt19937_64 rng(20261207);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  ParseOptions decap;
  decap.decap = true;
  size_t inner = 0;  // frames parsed inside a tunnel
  for (int iter = 0; iter < 60000; ++iter) {
    Bytes f = randomBase(rng, true);
    for (uint32_t m = pick(3); m > 0; --m) {
      const size_t at = pick(static_cast<uint32_t>(f.size()));
      f[at] = pick(2) == 0 ? static_cast<uint8_t>(rng()) : f[at] ^ (1u << pick(8));
    }
    size_t caplen = f.size();
    if (pick(5) == 0) caplen = pick(static_cast<uint32_t>(f.size()) + 1);
    std::unique_ptr<uint8_t[]> copy(new uint8_t[caplen + 1]);
    std::memcpy(copy.get(), f.data(), caplen);
    const auto len = static_cast<uint32_t>(caplen);
    ParsedPacket a;
    ParsedPacket b;
    const bool ra = parsePacket(copy.get(), len, LinkType::kEthernet, decap, &a);
    const bool rb = parsePacketGeneral(copy.get(), len, LinkType::kEthernet, decap, &b);
    ASSERT_EQ(ra, rb) << "iteration " << iter;
    std::string d = diff(a, b);
    ASSERT_TRUE(d.empty()) << "iteration " << iter << ":\n" << d;
    if (rb && b.tunnel_depth > 0) ++inner;
    ParsedPacket c;
    ParsedPacket e;
    const bool rc = parsePacket(copy.get(), len, LinkType::kEthernet, ParseOptions{}, &c);
    const bool re = parsePacket(copy.get(), len, LinkType::kEthernet, &e);
    ASSERT_EQ(rc, re) << "iteration " << iter;
    d = diff(c, e);
    ASSERT_TRUE(d.empty()) << "iteration " << iter << ":\n" << d;
  }
  EXPECT_GT(inner, 10000u);
}

// Other link types never take the fast path but must still parse as before.
TEST(ParserFastPath, OtherLinkTypesUnchanged) {
  const Bytes raw = buildTcp({.flags = kAck, .payload_len = 10}, rawIp());
  ParsedPacket a;
  ParsedPacket b;
  ASSERT_TRUE(parsePacket(raw.data(), static_cast<uint32_t>(raw.size()), LinkType::kRawIp, &a));
  ASSERT_TRUE(
      parsePacketGeneral(raw.data(), static_cast<uint32_t>(raw.size()), LinkType::kRawIp, &b));
  EXPECT_EQ(diff(a, b), "");
  EXPECT_EQ(a.l4_payload_len, 10u);
}

}  // namespace
}  // namespace statewall::dataplane
