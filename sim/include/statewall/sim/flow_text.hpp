// The one text syntax for a flow that people type on command lines and in files:
//
//   PROTO SRC -> DST [KEY=VALUE ...]      e.g. "tcp 198.51.100.7:50000 -> 10.0.1.10:443"
//
// where SRC and DST are HOST, HOST:PORT, [IPV6] or [IPV6]:PORT (HOST may be an address, a CIDR or
// '*', as the caller allows). `statewall query`, `statewall gen` and the replay's expectation files
// each give the pieces their own meaning (an exact packet, a flow to generate, a pattern); the
// splitting and the number and protocol syntax are shared here so that the three read a flow the
// same way and fail with the same messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace statewall::sim {

// A decimal number with no sign, no spaces and at most `max`. false for anything else.
bool parseDecimal(std::string_view s, uint64_t max, uint64_t* out);

// A port ("443") or a port range ("1024-65535", inclusive; "*" = 0-65535).
bool parsePortRange(std::string_view s, uint16_t* lo, uint16_t* hi);

// An IP protocol by name (tcp, udp, icmp, icmpv6 or icmp6) or number (0..255).
std::optional<uint8_t> parseProtocol(std::string_view s);

// HOST, HOST:PORT, [IPV6] or [IPV6]:PORT split into its texts. A bare IPv6 address (two or more
// colons, no brackets) is all host: its port cannot be written without brackets.
struct EndpointText {
  std::string_view host;
  std::string_view port;  // empty when !has_port
  bool has_port = false;
  bool bracketed = false;
};
// nullopt with *err ("'[::1': missing ']' after an IPv6 address") when the brackets are broken.
std::optional<EndpointText> splitEndpoint(std::string_view s, std::string* err);

// "PROTO SRC -> DST [WORD ...]" split into words. The arrow needs no spaces around it
// ("tcp 10.0.0.5:1->10.0.1.10:443") and commas separate words like spaces ("type=3,code=4").
// nullopt with *err when the arrow is not the third word.
struct FlowWords {
  std::string proto;
  std::string src;
  std::string dst;
  std::vector<std::string> rest;  // the words after DST
};
std::optional<FlowWords> splitFlow(std::string_view text, std::string* err);

// An ICMP (v6 = false) or ICMPv6 message in words, as people know it: "echo request",
// "destination unreachable, fragmentation needed", "packet too big". Empty for types without a
// common name (callers then show the numbers).
std::string icmpName(bool v6, uint8_t type, uint8_t code);

// A replay flow (statewall/sim/replay.hpp) as the summaries show it to people: FlowKey::str()
// with an ICMP message named ("icmp 198.51.100.7 -> 10.0.1.10 echo request") where icmpName()
// knows it; the type and code numbers otherwise.
struct FlowKey;
std::string flowKeyWords(const FlowKey& k);

}  // namespace statewall::sim
