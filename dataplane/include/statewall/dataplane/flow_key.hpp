// Canonical flow keys for the connection table: one key per connection, whichever direction the
// packet travels. The two endpoints are ordered, lower (address, port) first, so a packet and its
// reply build the same key; makeKey4()/makeKey6() also say which way the packet went.
//
// Ports: TCP and UDP ports; ICMP/ICMPv6 echo uses the echo identifier in BOTH port fields (it is
// the same in the request and the reply, so the key stays direction-independent); every other
// protocol uses 0 in both.
//
// Each key carries three bytes that are not part of the flow identity (operator==, sameFlow()
// and hash() ignore them): bit 0 is the direction of the packet the key was built from
// (1 = lo -> hi), and 23 bits belong to the connection table, which stores its entry generation
// there. A key stored in a table entry keeps the direction of the packet that created the entry,
// that is, the originator's side.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "statewall/rules/ip.hpp"

namespace statewall::dataplane {

inline constexpr uint64_t kDefaultFlowHashSeed = 0x243F6A8885A308D3ull;  // pi, any constant works

namespace flow_key_detail {

__extension__ typedef unsigned __int128 U128;

// 64x64 -> 128-bit multiply folded to 64 bits: the mixing step of wyhash-style hashes. Two of
// them give a full avalanche over two input words in about 8 cycles.
inline uint64_t foldMul(uint64_t a, uint64_t b) {
  const U128 p = static_cast<U128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

inline constexpr uint64_t kK1 = 0xA0761D6478BD642Full;
inline constexpr uint64_t kK2 = 0xE7037ED1A0B428DBull;
inline constexpr uint64_t kK3 = 0x8EBC6AF09C88C6E3ull;

// Three meta bytes: bit 0 direction, bits 1..23 generation.
inline uint32_t loadMeta(const uint8_t* m) {
  return static_cast<uint32_t>(m[0]) | static_cast<uint32_t>(m[1]) << 8 |
         static_cast<uint32_t>(m[2]) << 16;
}
inline void storeMeta(uint8_t* m, uint32_t v) {
  m[0] = static_cast<uint8_t>(v);
  m[1] = static_cast<uint8_t>(v >> 8);
  m[2] = static_cast<uint8_t>(v >> 16);
}

}  // namespace flow_key_detail

// Key metadata shared by FlowKey4 and FlowKey6 (see the file comment).
#define STATEWALL_FLOW_KEY_META_ACCESSORS                                            \
  static constexpr uint32_t kGenerationMask = (1u << 23) - 1;                        \
  bool loToHi() const {                                                              \
    return (meta[0] & 1u) != 0;                                                      \
  }                                                                                  \
  void setLoToHi(bool v) {                                                           \
    meta[0] = static_cast<uint8_t>((meta[0] & ~1u) | (v ? 1u : 0u));                 \
  }                                                                                  \
  uint32_t generation() const {                                                      \
    return flow_key_detail::loadMeta(meta) >> 1;                                     \
  }                                                                                  \
  void setGeneration(uint32_t g) {                                                   \
    flow_key_detail::storeMeta(meta, ((g & kGenerationMask) << 1) | (meta[0] & 1u)); \
  }

// IPv4 flow, 16 bytes. Addresses in host byte order (as rules::IpAddr::v4()).
struct FlowKey4 {
  uint32_t lo_addr = 0;
  uint32_t hi_addr = 0;
  uint16_t lo_port = 0;
  uint16_t hi_port = 0;
  uint8_t proto = 0;
  uint8_t meta[3] = {};  // not part of the identity: direction bit and table generation

  STATEWALL_FLOW_KEY_META_ACCESSORS

  // Same connection: compares the identity fields only.
  bool sameFlow(const FlowKey4& o) const {
    uint64_t a[2];
    uint64_t b[2];
    std::memcpy(a, this, 16);
    std::memcpy(b, &o, 16);
    return ((a[0] ^ b[0]) | ((a[1] ^ b[1]) & kIdentityMask1)) == 0;
  }
  friend bool operator==(const FlowKey4& a, const FlowKey4& b) { return a.sameFlow(b); }

  uint64_t hash(uint64_t seed = kDefaultFlowHashSeed) const {
    uint64_t w[2];
    std::memcpy(w, this, 16);
    return hashWords(w[0], w[1], seed);
  }

  // The key as two 8-byte words (its memory, read little-endian): w0 = lo_addr | hi_addr << 32,
  // w1 = lo_port | hi_port << 16 | proto << 32 | meta bytes << 40. hashWords(w0, w1, seed) ==
  // hash(seed) of that key; building the words in registers and hashing them before storing the
  // key saves reloading it through narrower stores (a store-forwarding stall).
  static uint64_t hashWords(uint64_t w0, uint64_t w1, uint64_t seed) {
    using namespace flow_key_detail;
    const uint64_t h = foldMul(w0 ^ seed ^ kK1, (w1 & kIdentityMask1) ^ kK2);
    return foldMul(h ^ kK3, seed ^ kK1);
  }
  static FlowKey4 fromWords(uint64_t w0, uint64_t w1) {
    const uint64_t w[2] = {w0, w1};
    FlowKey4 k;
    std::memcpy(&k, w, 16);
    return k;
  }

 private:
  // Second 8-byte word: ports and proto are the low 5 bytes on a little-endian machine.
  static constexpr uint64_t kIdentityMask1 = 0x000000FFFFFFFFFFull;
};
static_assert(sizeof(FlowKey4) == 16);
static_assert(std::is_trivially_copyable_v<FlowKey4>);
static_assert(std::endian::native == std::endian::little,
              "FlowKey word masks assume little-endian");

// IPv6 flow, 40 bytes. Each address as rules::IpAddr stores it: two host-order halves.
struct FlowKey6 {
  uint64_t lo_addr_hi = 0;
  uint64_t lo_addr_lo = 0;
  uint64_t hi_addr_hi = 0;
  uint64_t hi_addr_lo = 0;
  uint16_t lo_port = 0;
  uint16_t hi_port = 0;
  uint8_t proto = 0;
  uint8_t meta[3] = {};  // not part of the identity: direction bit and table generation

  STATEWALL_FLOW_KEY_META_ACCESSORS

  bool sameFlow(const FlowKey6& o) const {
    uint64_t a[5];
    uint64_t b[5];
    std::memcpy(a, this, 40);
    std::memcpy(b, &o, 40);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) |
            ((a[4] ^ b[4]) & kIdentityMask4)) == 0;
  }
  friend bool operator==(const FlowKey6& a, const FlowKey6& b) { return a.sameFlow(b); }

  uint64_t hash(uint64_t seed = kDefaultFlowHashSeed) const {
    using namespace flow_key_detail;
    uint64_t w[5];
    std::memcpy(w, this, 40);
    const uint64_t h1 = foldMul(w[0] ^ seed ^ kK1, w[1] ^ kK2);
    const uint64_t h2 = foldMul(w[2] ^ seed ^ kK3, w[3] ^ kK1);
    const uint64_t h = foldMul(h1 ^ (w[4] & kIdentityMask4) ^ kK2, h2 ^ kK3);
    return foldMul(h ^ kK1, seed ^ kK2);
  }

  rules::IpAddr loAddr() const { return rules::IpAddr::v6(lo_addr_hi, lo_addr_lo); }
  rules::IpAddr hiAddr() const { return rules::IpAddr::v6(hi_addr_hi, hi_addr_lo); }

 private:
  static constexpr uint64_t kIdentityMask4 = 0x000000FFFFFFFFFFull;
};
static_assert(sizeof(FlowKey6) == 40);
static_assert(std::is_trivially_copyable_v<FlowKey6>);

#undef STATEWALL_FLOW_KEY_META_ACCESSORS

// Builds the canonical key of a packet src:sport -> dst:dport (addresses in host order) and says
// whether the packet goes from the key's lo side to its hi side. The same flag is stored in the
// key's direction bit. A packet whose two endpoints are equal counts as lo -> hi both ways.
inline void makeKey4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto,
                     FlowKey4* key, bool* packet_is_lo_to_hi) {
  const uint64_t s = static_cast<uint64_t>(src) << 16 | sport;
  const uint64_t d = static_cast<uint64_t>(dst) << 16 | dport;
  const bool lo_to_hi = s <= d;
  *key = FlowKey4{};
  key->lo_addr = lo_to_hi ? src : dst;
  key->hi_addr = lo_to_hi ? dst : src;
  key->lo_port = lo_to_hi ? sport : dport;
  key->hi_port = lo_to_hi ? dport : sport;
  key->proto = proto;
  key->setLoToHi(lo_to_hi);
  if (packet_is_lo_to_hi != nullptr) *packet_is_lo_to_hi = lo_to_hi;
}

// makeKey4() as the key's two words (see FlowKey4::hashWords()); returns packet_is_lo_to_hi.
// FlowKey4::fromWords(*w0, *w1) is the key makeKey4() builds.
inline bool makeKey4Words(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto,
                          uint64_t* w0, uint64_t* w1) {
  const uint64_t s = static_cast<uint64_t>(src) << 16 | sport;
  const uint64_t d = static_cast<uint64_t>(dst) << 16 | dport;
  const bool lo_to_hi = s <= d;
  const uint64_t lo = lo_to_hi ? s : d;  // address << 16 | port
  const uint64_t hi = lo_to_hi ? d : s;
  *w0 = (lo >> 16) | (hi >> 16) << 32;
  *w1 = (lo & 0xFFFF) | (hi & 0xFFFF) << 16 | static_cast<uint64_t>(proto) << 32 |
        static_cast<uint64_t>(lo_to_hi) << 40;
  return lo_to_hi;
}

// IPv6 variant; src and dst must be IPv6 addresses (only hi/lo are read).
inline void makeKey6(const rules::IpAddr& src, const rules::IpAddr& dst, uint16_t sport,
                     uint16_t dport, uint8_t proto, FlowKey6* key, bool* packet_is_lo_to_hi) {
  bool lo_to_hi;
  if (src.hi != dst.hi) {
    lo_to_hi = src.hi < dst.hi;
  } else if (src.lo != dst.lo) {
    lo_to_hi = src.lo < dst.lo;
  } else {
    lo_to_hi = sport <= dport;
  }
  const rules::IpAddr& lo = lo_to_hi ? src : dst;
  const rules::IpAddr& hi = lo_to_hi ? dst : src;
  *key = FlowKey6{};
  key->lo_addr_hi = lo.hi;
  key->lo_addr_lo = lo.lo;
  key->hi_addr_hi = hi.hi;
  key->hi_addr_lo = hi.lo;
  key->lo_port = lo_to_hi ? sport : dport;
  key->hi_port = lo_to_hi ? dport : sport;
  key->proto = proto;
  key->setLoToHi(lo_to_hi);
  if (packet_is_lo_to_hi != nullptr) *packet_is_lo_to_hi = lo_to_hi;
}

// ICMP / ICMPv6 echo request or reply: the echo id goes in both port fields.
inline void makeEchoKey4(uint32_t src, uint32_t dst, uint16_t echo_id, uint8_t proto, FlowKey4* key,
                         bool* packet_is_lo_to_hi) {
  makeKey4(src, dst, echo_id, echo_id, proto, key, packet_is_lo_to_hi);
}
inline void makeEchoKey6(const rules::IpAddr& src, const rules::IpAddr& dst, uint16_t echo_id,
                         uint8_t proto, FlowKey6* key, bool* packet_is_lo_to_hi) {
  makeKey6(src, dst, echo_id, echo_id, proto, key, packet_is_lo_to_hi);
}

}  // namespace statewall::dataplane
