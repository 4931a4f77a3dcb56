// IPv4/IPv6 addresses and CIDR prefixes as plain values: no allocation, cheap to compare and hash.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace statewall::rules {

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

// An address as a 128-bit host-order integer (hi, lo). IPv4 lives in the low 32 bits of lo.
struct IpAddr {
  uint64_t hi = 0;
  uint64_t lo = 0;
  Family family = Family::kV4;

  static constexpr IpAddr v4(uint32_t host_order) { return IpAddr{0, host_order, Family::kV4}; }
  static constexpr IpAddr v6(uint64_t h, uint64_t l) { return IpAddr{h, l, Family::kV6}; }
  // From network-order bytes (4 or 16 of them).
  static IpAddr fromV4Bytes(const uint8_t* b);
  static IpAddr fromV6Bytes(const uint8_t* b);
  void toV6Bytes(uint8_t* out) const;

  constexpr bool isV4() const { return family == Family::kV4; }
  constexpr uint32_t v4() const { return static_cast<uint32_t>(lo); }

  // Parses dotted quad or RFC 4291 text (no brackets, no zone). nullopt on any error.
  static std::optional<IpAddr> parse(std::string_view text);
  std::string str() const;

  friend constexpr auto operator<=>(const IpAddr&, const IpAddr&) = default;
  friend constexpr bool operator==(const IpAddr&, const IpAddr&) = default;
};

struct Cidr {
  IpAddr addr;         // canonical: host bits cleared
  uint8_t prefix = 0;  // 0..32 or 0..128

  constexpr Family family() const { return addr.family; }
  constexpr unsigned maxPrefix() const { return addr.isV4() ? 32u : 128u; }
  constexpr bool isAll() const { return prefix == 0; }
  bool contains(const IpAddr& a) const;
  bool contains(const Cidr& other) const;  // other is a subset of this
  std::string str() const;

  // Parses "A/N" or a bare address (host prefix). On success sets *had_host_bits when the
  // text had bits set beyond the prefix (the result is canonicalised, as AWS does).
  static std::optional<Cidr> parse(std::string_view text, bool* had_host_bits = nullptr);
  static Cidr host(const IpAddr& a) { return Cidr{a, static_cast<uint8_t>(a.isV4() ? 32 : 128)}; }

  friend constexpr auto operator<=>(const Cidr&, const Cidr&) = default;
  friend constexpr bool operator==(const Cidr&, const Cidr&) = default;
};

// Mask helpers on the (hi, lo) representation, used by the classifier and validators.
IpAddr maskAddr(const IpAddr& a, unsigned prefix);

struct IpAddrHash {
  size_t operator()(const IpAddr& a) const noexcept {
    uint64_t x = a.hi * 0x9E3779B97F4A7C15ull ^ (a.lo + static_cast<uint64_t>(a.family));
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

}  // namespace statewall::rules
