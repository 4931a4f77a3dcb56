// The one text syntax for a flow that people type on command lines and in files:
//
//   PROTO SRC -> DST [KEY=VALUE ...]      e.g. "tcp 198.51.100.7:50000 -> 10.0.1.10:443"
//
// where SRC and DST are HOST, HOST:PORT, [IPV6] or [IPV6]:PORT (HOST may be an address, a CIDR or
// '*', as the caller allows). `statewall query`, `statewall gen` and the replay's expectation files
// each give the pieces their own meaning (an exact packet, a flow to generate, a pattern); the
// splitting is shared here, and the number, port, protocol and endpoint syntax is the vocabulary's
// (statewall/rules/vocab.hpp), so that every command reads a flow the same way and fails with the
// same messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/base/status.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::sim {

// The numbers, port ranges, protocols and endpoints of the syntax are the shared vocabulary's
// (statewall/rules/vocab.hpp). These names keep the callers in sim/cli that still spell them
// sim:: (cmd_query.cpp) working until they call rules:: directly.
using rules::EndpointText;
using rules::parseDecimal;
using rules::parsePortRange;
using rules::splitEndpoint;
inline std::optional<uint8_t> parseProtocol(std::string_view s) {
  return rules::parseIpProtocol(s);
}

// "PROTO SRC -> DST [WORD ...]" split into words. The arrow needs no spaces around it
// ("tcp 10.0.0.5:1->10.0.1.10:443") and commas separate words like spaces ("type=3,code=4").
// A failure when the arrow is not the third word.
struct FlowWords {
  std::string proto;
  std::string src;
  std::string dst;
  std::vector<std::string> rest;  // the words after DST
};
base::Expected<FlowWords> splitFlow(std::string_view text);

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
