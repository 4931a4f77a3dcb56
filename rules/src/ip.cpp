#include "statewall/rules/ip.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace statewall::rules {
namespace {

uint64_t loadBe64(const uint8_t* b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | b[i];
  return v;
}

void storeBe64(uint64_t v, uint8_t* b) {
  for (int i = 7; i >= 0; --i) {
    b[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

}  // namespace

IpAddr IpAddr::fromV4Bytes(const uint8_t* b) {
  return v4((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3]);
}

IpAddr IpAddr::fromV6Bytes(const uint8_t* b) {
  return v6(loadBe64(b), loadBe64(b + 8));
}

void IpAddr::toV6Bytes(uint8_t* out) const {
  storeBe64(hi, out);
  storeBe64(lo, out + 8);
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t bytes[16];
  if (text.find(':') == std::string_view::npos) {
    // inet_pton accepts only strict dotted quads; that is what we want.
    if (inet_pton(AF_INET, buf, bytes) != 1) return std::nullopt;
    return fromV4Bytes(bytes);
  }
  if (inet_pton(AF_INET6, buf, bytes) != 1) return std::nullopt;
  return fromV6Bytes(bytes);
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  uint8_t bytes[16];
  if (isV4()) {
    uint32_t v = v4();
    bytes[0] = static_cast<uint8_t>(v >> 24);
    bytes[1] = static_cast<uint8_t>(v >> 16);
    bytes[2] = static_cast<uint8_t>(v >> 8);
    bytes[3] = static_cast<uint8_t>(v);
    inet_ntop(AF_INET, bytes, buf, sizeof buf);
  } else {
    toV6Bytes(bytes);
    inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  }
  return buf;
}

IpAddr maskAddr(const IpAddr& a, unsigned prefix) {
  IpAddr r = a;
  if (a.isV4()) {
    uint32_t m = prefix == 0 ? 0 : (prefix >= 32 ? ~0u : ~0u << (32 - prefix));
    r.lo = a.v4() & m;
    r.hi = 0;
    return r;
  }
  if (prefix >= 128) return r;
  if (prefix <= 64) {
    r.hi = prefix == 0 ? 0 : (a.hi & (~0ull << (64 - prefix)));
    r.lo = 0;
  } else {
    r.lo = a.lo & (~0ull << (128 - prefix));
  }
  return r;
}

bool Cidr::contains(const IpAddr& a) const {
  return a.family == addr.family && maskAddr(a, prefix) == addr;
}

bool Cidr::contains(const Cidr& o) const {
  return o.family() == family() && o.prefix >= prefix && maskAddr(o.addr, prefix) == addr;
}

std::string Cidr::str() const {
  return addr.str() + "/" + std::to_string(prefix);
}

std::optional<Cidr> Cidr::parse(std::string_view text, bool* had_host_bits) {
  if (had_host_bits) *had_host_bits = false;
  auto slash = text.find('/');
  auto a = IpAddr::parse(text.substr(0, slash));
  if (!a) return std::nullopt;
  unsigned maxp = a->isV4() ? 32 : 128;
  unsigned p = maxp;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    p = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p > maxp) return std::nullopt;
  }
  Cidr c{maskAddr(*a, p), static_cast<uint8_t>(p)};
  if (had_host_bits) *had_host_bits = !(c.addr == *a);
  return c;
}

}  // namespace statewall::rules
