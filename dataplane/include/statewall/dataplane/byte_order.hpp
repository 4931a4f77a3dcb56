// Big-endian (network order) loads from frame bytes, for the parser and its fast paths.
#pragma once

#include <cstdint>

namespace statewall::dataplane {

// From single bytes: no alignment or aliasing concerns, and GCC/Clang fold each into one load
// plus a byte swap.
inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint64_t be64(const uint8_t* p) {
  return (uint64_t{be32(p)} << 32) | be32(p + 4);
}

}  // namespace statewall::dataplane
