// parsePacket()'s fast path for IPv4/TCP in Ethernet and raw IP frames against the general parser
// (parsePacketGeneral()): random frames, most of them close to what the fast path takes (TCP over
// IPv4 with and without timestamps, padding, other options) with bytes of the headers changed
// and the captured length cut, must give the same result and every field the same; and so must
// every frame of the engine's fixture table (tests/engine/fixtures.hpp), as it is and as raw IP,
// cut at every length.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/fixtures.hpp"
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

// A random TCP frame near the fast path's shape; `link` Ethernet or raw IP (no VLAN tag then).
Bytes randomBase(std::mt19937_64& rng, bool tunnels = false, LinkType link = LinkType::kEthernet) {
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
  o.link = link;
  o.trailer_len = pick(3) == 0 ? pick(30) : 0;
  o.ip_id = static_cast<uint16_t>(rng());
  o.dont_fragment = pick(2) == 0;
  if (pick(10) == 0) o.ipv4_options = {1, 1, 1, 0};
  if (link == LinkType::kEthernet && pick(10) == 0) o.vlans = {VlanTag{.vid = 5}};
  if (link == LinkType::kEthernet && pick(10) == 0) {
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

// Parses the first `caplen` bytes of `f` (from an exact-size copy, so that a read past caplen
// shows under AddressSanitizer) with parsePacket() and parsePacketGeneral(): "" when both give
// the same result and fields, else what differs. *general receives the general parse.
std::string fastVsGeneral(const uint8_t* f, size_t caplen, LinkType link,
                          const ParseOptions* opts = nullptr, ParsedPacket* general = nullptr) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[caplen + 1]);
  std::memcpy(copy.get(), f, caplen);
  const auto len = static_cast<uint32_t>(caplen);
  ParsedPacket a;
  ParsedPacket b;
  const bool ra = opts != nullptr ? parsePacket(copy.get(), len, link, *opts, &a)
                                  : parsePacket(copy.get(), len, link, &a);
  const bool rb = opts != nullptr ? parsePacketGeneral(copy.get(), len, link, *opts, &b)
                                  : parsePacketGeneral(copy.get(), len, link, &b);
  if (general != nullptr) *general = b;
  if (ra != rb) return "result " + std::to_string(ra) + " vs " + std::to_string(rb) + "\n";
  return diff(a, b);
}

// Random frames of `link` near the fast path's shape, mutated at the header bytes it reads and
// cut short: the fast path and the general parser agree on each. The header bytes: EtherType,
// IPv4 version/IHL, total length, flags/fragment offset, protocol, TCP data offset, the first
// option bytes.
void sameFieldsOnRandomFrames(LinkType link, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  const size_t l3 = link == LinkType::kEthernet ? 14 : 0;
  size_t fast_shaped = 0;  // frames the fast path can take (checked through its result)
  for (int iter = 0; iter < 200000; ++iter) {
    Bytes f = randomBase(rng, false, link);
    // Mutations: header bytes the fast path looks at, and the captured length.
    const uint32_t n_mut = pick(4);
    for (uint32_t m = 0; m < n_mut; ++m) {
      static constexpr size_t kEthernetSpots[] = {12, 13, 14, 16, 17, 20, 21,
                                                  23, 46, 54, 55, 56, 57};
      static constexpr size_t kRawSpots[] = {0, 2, 3, 6, 7, 9, 32, 40, 41, 42, 43};
      auto spot = [&] {
        return l3 != 0 ? kEthernetSpots[pick(std::size(kEthernetSpots))]
                       : kRawSpots[pick(std::size(kRawSpots))];
      };
      const size_t at = pick(3) == 0 ? pick(static_cast<uint32_t>(f.size())) : spot();
      if (at < f.size())
        f[at] = pick(2) == 0 ? static_cast<uint8_t>(rng()) : f[at] ^ (1u << pick(8));
    }
    size_t caplen = f.size();
    if (pick(5) == 0) caplen = pick(static_cast<uint32_t>(f.size()) + 1);
    ParsedPacket b;
    const std::string d = fastVsGeneral(f.data(), caplen, link, nullptr, &b);
    ASSERT_TRUE(d.empty()) << "iteration " << iter << ":\n" << d;
    if (b.malformed == Layer::kNone && b.l3 == L3::kIpv4 && b.proto == kIpProtoTcp &&
        b.l3_offset == l3 && b.l4_offset == l3 + 20 && !b.is_fragment && !b.tcp_opt.has_sack &&
        b.tcp_opt.mss == 0) {
      ++fast_shaped;
    }
  }
  EXPECT_GT(fast_shaped, 30000u);
}

TEST(ParserFastPath, SameFieldsAsTheGeneralParser) {
  sameFieldsOnRandomFrames(LinkType::kEthernet, 20261121);
}

// The raw IP fast path (the packet inside a Gateway Load Balancer's GENEVE takes it).
TEST(ParserFastPath, SameFieldsAsTheGeneralParserRawIp) {
  sameFieldsOnRandomFrames(LinkType::kRawIp, 20261208);
}

// Every frame of the engine's fixture table, in its own link type and, where it is an Ethernet
// frame of IPv4 or IPv6, as the raw IP packet inside; each cut at every length, with and without
// decapsulation.
TEST(ParserFastPath, SameFieldsOnTheFixtureTable) {
  ParseOptions decap;
  decap.decap = true;
  size_t frames = 0, raw_fast_shaped = 0;
  for (const fixtures::Fixture& fx : fixtures::allFixtures()) {
    for (size_t i = 0; i < fx.packets.size(); ++i) {
      const Bytes& frame = fx.packets[i].frame;
      std::vector<std::pair<LinkType, Bytes>> forms = {{fx.link, frame}};
      if (fx.link == LinkType::kEthernet && frame.size() >= 14 &&
          (testing::rd16(frame, 12) == kEtherTypeIpv4 ||
           testing::rd16(frame, 12) == kEtherTypeIpv6)) {
        forms.emplace_back(LinkType::kRawIp, Bytes(frame.begin() + 14, frame.end()));
      }
      for (const auto& [link, bytes] : forms) {
        ++frames;
        for (size_t len = 0; len <= bytes.size(); ++len) {
          ParsedPacket b;
          std::string d = fastVsGeneral(bytes.data(), len, link, nullptr, &b);
          ASSERT_TRUE(d.empty()) << fx.name << " packet " << i << " (" << fx.packets[i].note
                                 << "), link " << static_cast<int>(link) << ", " << len
                                 << " bytes:\n"
                                 << d;
          if (len == bytes.size() && link == LinkType::kRawIp && b.malformed == Layer::kNone &&
              b.l3 == L3::kIpv4 && b.proto == kIpProtoTcp && b.l4_offset == 20 && !b.is_fragment &&
              !b.tcp_opt.has_sack && b.tcp_opt.mss == 0) {
            ++raw_fast_shaped;
          }
          d = fastVsGeneral(bytes.data(), len, link, &decap);
          ASSERT_TRUE(d.empty()) << fx.name << " packet " << i << " (" << fx.packets[i].note
                                 << "), link " << static_cast<int>(link) << ", " << len
                                 << " bytes, decap:\n"
                                 << d;
        }
      }
    }
  }
  EXPECT_GT(frames, 500u);
  EXPECT_GT(raw_fast_shaped, 100u);
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
