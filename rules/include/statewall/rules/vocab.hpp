// The vocabulary every module shares: protocol names, port ranges, endpoints, flows, the labels of
// rules and ACL entries, and the small formatting helpers of the outputs. Each is written here
// once; sim, control and the CLI call these instead of keeping their own spelling. The JSON of a
// rule and an ACL entry is in vocab_json.hpp (README, "JSON schema of a rule and an ACL entry").
//
// Everything here is a pure function of its arguments: safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "statewall/base/status.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/ip.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

// ---- protocol names ----

// The printed name: "tcp", "udp", "icmp", "icmpv6", "all" (kProtoAll), or the number.
std::string protoName(int proto);

// "tcp", "udp", "icmp", "icmpv6", "all" (kProtoAll); empty for a protocol without a name here.
std::string_view protoKeyword(int proto);

// A rule's protocol: tcp, udp, icmp, icmpv6 (also icmp6, ipv6-icmp), all or -1 (kProtoAll), or a
// number 0..255. Names in any case. nullopt for anything else.
std::optional<int> parseProtocol(std::string_view text);
// A packet's IP protocol: the names and numbers of parseProtocol() but not "all" / -1.
std::optional<uint8_t> parseIpProtocol(std::string_view text);
inline constexpr std::string_view kProtocolExpected =
    "expected tcp, udp, icmp, icmpv6, all, -1 or a protocol number 0..255";

// ---- numbers, port ranges, endpoints ----

// A decimal number with no sign, no spaces and at most `max`. false for anything else.
bool parseDecimal(std::string_view s, uint64_t max, uint64_t* out);

// A port ("443"), an inclusive range ("1024-65535", spaces around the dash allowed) or every port
// ("*" or "all"). false for anything else, and for a range whose low end is above its high end.
bool parsePortRange(std::string_view s, uint16_t* lo, uint16_t* hi);

// HOST, HOST:PORT, [IPV6] or [IPV6]:PORT split into its texts. A bare IPv6 address (two or more
// colons, no brackets) is all host: its port cannot be written without brackets.
struct EndpointText {
  std::string_view host;
  std::string_view port;  // empty when !has_port
  bool has_port = false;
  bool bracketed = false;
};
// A failure ("'[::1': missing ']' after an IPv6 address") when the brackets are broken.
base::Expected<EndpointText> splitEndpoint(std::string_view s);

// A listen address, HOST:PORT where the port is required: "127.0.0.1:8080", "[::1]:0",
// "localhost:0" (host "127.0.0.1"), and the bare "::1:8080" (the last colon starts the port).
// A failure ("expected HOST:PORT ...", "bad port '70000' (0-65535)") otherwise.
struct HostPort {
  std::string host;  // without brackets; "localhost" as "127.0.0.1"
  uint16_t port = 0;
};
base::Expected<HostPort> parseHostPort(std::string_view s);

// "10.0.1.10:443", "[2001:db8::1]:443".
std::string endpointText(const IpAddr& a, uint16_t port);

// ---- flows ----

// A connection whichever way its packets go: the endpoints in a fixed order (the smaller
// (address, port) first). Ports are whatever the caller keys the flow by (ICMP: type/code or id).
struct BiFlowKey {
  uint8_t proto = 0;
  IpAddr a, b;
  uint16_t pa = 0, pb = 0;
  friend bool operator==(const BiFlowKey&, const BiFlowKey&) = default;
  auto operator<=>(const BiFlowKey&) const = default;
};
BiFlowKey biFlowKey(uint8_t proto, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                    uint16_t dport);
struct BiFlowKeyHash {
  size_t operator()(const BiFlowKey& k) const noexcept {
    IpAddrHash h;
    uint64_t x = h(k.a) * 0x9E3779B97F4A7C15ull ^ h(k.b);
    x ^= (uint64_t{k.pa} << 24 | uint64_t{k.pb} << 8 | k.proto) * 0xBF58476D1CE4E5B9ull;
    return static_cast<size_t>(x ^ (x >> 31));
  }
};

// ---- labels of rules and ACL entries ----
// Short: "web inbound[0]", "public-acl inbound rule 90", "public-acl inbound rule *".
// Long, with the text, as sentences quote it: "web inbound rule 0 'tcp 443 from 0.0.0.0/0'" and
// "public-acl inbound rule 90 'allow tcp 443 from 0.0.0.0/0'" (the entry's text without its
// number, which the label already gives). A rule in words, without its text: "web inbound rule 0"
// (the long label's start; `query` follows it with ": TEXT").
std::string ruleLabel(std::string_view group, Direction dir, uint32_t index);
std::string ruleLabel(const RuleInfo& r);
std::string ruleLabelWords(const RuleInfo& r);
std::string ruleLabelLong(const RuleInfo& r);
std::string aclEntryLabel(const AclEntryInfo& e);
std::string aclEntryLabelLong(const AclEntryInfo& e);
// An ACL entry's text without its leading number: "allow tcp 443 from 0.0.0.0/0".
std::string aclEntryTextWithoutNumber(const AclEntryInfo& e);

// ---- formatting helpers ----

// 1234567 -> "1,234,567".
std::string withThousands(uint64_t v);

// The set TCP flags as letters in header bit order F S R P A U E C: "S", "SA", "FA", "PA"; ""
// for none. The second form writes at most 8 letters to out and returns how many (no allocation).
std::string tcpFlagLetters(uint8_t flags);
size_t tcpFlagLetters(uint8_t flags, char out[8]);

// A time in nanoseconds since the epoch, in UTC: "2024-05-01 12:00:00 UTC" with frac_digits = 0,
// "2024-05-01 12:00:00.123456 UTC" with 6 (0, 3, 6 or 9 digits).
std::string utcText(uint64_t ns, int frac_digits);
// RFC 3339 with milliseconds: "2024-05-01T12:00:00.123Z".
std::string rfc3339Millis(uint64_t ns);

}  // namespace statewall::rules
