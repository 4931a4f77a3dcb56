// The protocol spellings every command accepts (rules::parseIpProtocol, rules/vocab.hpp): one table
// that the vocabulary's own test and each caller's test (policy loaders, flow text, the control
// API's filters) run, so that no command accepts a spelling another refuses.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace statewall::testing {

struct ProtocolSpelling {
  std::string_view text;
  std::optional<uint8_t> proto;  // nullopt: rejected
};

inline constexpr ProtocolSpelling kProtocolSpellings[] = {
    {"tcp", 6},
    {"TCP", 6},
    {"Tcp", 6},
    {"udp", 17},
    {"UDP", 17},
    {"icmp", 1},
    {"ICMP", 1},
    {"icmpv6", 58},
    {"ICMPv6", 58},
    {"icmp6", 58},
    {"ipv6-icmp", 58},
    {"0", 0},
    {"47", 47},
    {"047", 47},
    {"255", 255},
    {"256", std::nullopt},
    {"", std::nullopt},
    {" tcp", std::nullopt},
    {"tcp ", std::nullopt},
    {"+6", std::nullopt},
    {"6x", std::nullopt},
    {"sctp", std::nullopt},
    {"icmp4", std::nullopt},
    {"99999999999999999999", std::nullopt},
};

}  // namespace statewall::testing
