// Helpers shared by the parser tests: parse from an exact-size heap copy so that AddressSanitizer
// catches any read past caplen.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::dataplane::testing {

struct ParseResult {
  bool ok = false;
  ParsedPacket p;
};

inline ParseResult parseBytes(const uint8_t* data, size_t len, LinkType link) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len != 0) std::memcpy(copy.get(), data, len);
  ParseResult r;
  r.ok = parsePacket(len == 0 ? nullptr : copy.get(), static_cast<uint32_t>(len), link, &r.p);
  return r;
}

// The same with parse options (decapsulation), through the 5-argument parsePacket().
inline ParseResult parseBytes(const uint8_t* data, size_t len, LinkType link,
                              const ParseOptions& opts) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len != 0) std::memcpy(copy.get(), data, len);
  ParseResult r;
  r.ok = parsePacket(len == 0 ? nullptr : copy.get(), static_cast<uint32_t>(len), link, opts, &r.p);
  return r;
}

inline ParseResult parseBytes(const std::vector<uint8_t>& b, LinkType link, size_t len = SIZE_MAX) {
  return parseBytes(b.data(), len < b.size() ? len : b.size(), link);
}

inline uint16_t rd16(const std::vector<uint8_t>& b, size_t at) {
  return static_cast<uint16_t>((b.at(at) << 8) | b.at(at + 1));
}
inline void wr16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b.at(at) = static_cast<uint8_t>(v >> 8);
  b.at(at + 1) = static_cast<uint8_t>(v);
}

}  // namespace statewall::dataplane::testing
