// Words shared by explain's narrative (explain.cpp) and its near-miss search (near_miss.cpp).
#pragma once

#include <string>

#include <fmt/format.h>

#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::sim::detail {

// What a packet is, in words, for one side's rules: "tcp port 8000", "icmp type 0 code 0".
inline std::string packetWords(const rules::Flow5& f) {
  std::string p = rules::protoName(f.proto);
  if (rules::protoHasPorts(f.proto)) return fmt::format("{} port {}", p, f.dport);
  if (rules::protoIsIcmp(f.proto)) {
    return fmt::format("{} type {} code {}", p, f.icmp_type, f.icmp_code);
  }
  return fmt::format("protocol {}", p);
}

}  // namespace statewall::sim::detail
