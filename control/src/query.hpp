// Request-target parsing for the control API: path, percent-decoded query parameters, and the
// connection filters of GET/DELETE /v1/connections. Private to control/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "statewall/control/client.hpp"
#include "statewall/control/status.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::dataplane {
struct ConnectionInfo;
}

namespace statewall::control {

struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;  // in order, percent-decoded
};

// Splits an origin-form target ("/path?a=1&b=x%20y") into its path and decoded parameters.
// Fails on a target that does not start with '/', on a bad %-escape, or on a NUL byte.
Status parseTarget(std::string_view target, Target* out);

// Decodes %XX escapes and '+' (as a space, the form encoding).
Status percentDecode(std::string_view in, std::string* out);

// Parses an unsigned decimal number in [lo, hi] (no sign, no spaces, no leading '+').
std::optional<uint64_t> parseUnsigned(std::string_view s, uint64_t lo, uint64_t hi);

// The filters of /v1/connections. Every set field must match; an unset field matches anything.
struct ConnectionFilter {
  std::optional<uint8_t> proto;
  std::optional<rules::Cidr> src;   // the originator's address
  std::optional<rules::Cidr> dst;   // the responder's address
  std::optional<rules::Cidr> addr;  // either address
  std::optional<uint16_t> sport;    // originator's port (ICMP echo: the id)
  std::optional<uint16_t> dport;
  std::optional<uint16_t> port;      // either port
  std::optional<std::string> state;  // a state name as stateName() gives it
  std::optional<uint64_t> id;

  bool empty() const {
    return !proto && !src && !dst && !addr && !sport && !dport && !port && !state && !id;
  }
  bool matches(const dataplane::ConnectionInfo& c) const;
};

// Takes one filter parameter. Returns false (and leaves *status ok) when `key` is not a filter
// name; fails when the key is a filter but the value is not valid.
bool parseFilterParam(std::string_view key, std::string_view value, ConnectionFilter* filter,
                      Status* status);

// The names filter=state accepts and connection listings show: the TCP states
// ("syn_sent", "established", ...) and, for other protocols, "unreplied" / "replied".
std::string stateName(const dataplane::ConnectionInfo& c);
bool isStateName(std::string_view s);

}  // namespace statewall::control
