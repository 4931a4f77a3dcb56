// `statewall replay --expect FILE.yaml`: assertions about a replay, for CI pipelines.
//
//   expect:                                   # or a bare list at the top level
//     - name: HTTPS from anywhere reaches web-1
//       flow: tcp * -> 10.0.1.10:443          # packets sent in that direction
//       verdict: allow
//     - connection: tcp * -> 10.0.1.10:443    # packets of both directions of matching flows
//       reason: [allow-rule, allow-tracked]
//     - flow: tcp 198.51.100.0/24 -> 10.0.1.10:22
//       verdict: deny
//       reason: deny-sg
//     - packet: 7                              # 1-based index in the input
//       verdict: deny
//     - packets: 10-12
//       verdict: allow
//       match: any                             # all (default) | any | first
//       count: 3                               # optional: exactly this many packets match
//
// Flow patterns: PROTO SRC -> DST [type=T] [code=C], PROTO one of tcp, udp, icmp, icmpv6, a
// number, or '*'; SRC/DST '*', an address, a CIDR, optionally with :PORT or :LO-HI
// (IPv6 in brackets: [2001:db8::/32]:443), or *:PORT. A pattern that matches no packet fails.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/base/status.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::sim {

struct FlowPattern {
  int proto = -1;  // -1: any
  std::optional<rules::Cidr> src, dst;
  uint16_t sport_lo = 0, sport_hi = 65535;
  uint16_t dport_lo = 0, dport_hi = 65535;
  int icmp_type = -1, icmp_code = -1;
  std::string text;

  // Whether a packet sent from (src, sport) to (dst, dport) matches.
  bool matches(uint8_t p, const rules::IpAddr& s, const rules::IpAddr& d, uint16_t sp, uint16_t dp,
               uint8_t itype, uint8_t icode) const;
};
// A failure ("flow pattern 'TEXT': what is wrong") when the text is not a pattern.
base::Expected<FlowPattern> parseFlowPattern(std::string_view text);

struct Expectation {
  enum class Kind : uint8_t { kFlow, kConnection, kPackets };
  enum class Quantifier : uint8_t { kAll, kAny, kFirst };

  Kind kind = Kind::kFlow;
  FlowPattern pattern;
  uint64_t first_index = 0, last_index = 0;  // kPackets, inclusive
  std::optional<bool> want_allow;
  uint32_t reasons = 0;  // bit per dataplane::Reason; 0 = any reason
  Quantifier quant = Quantifier::kAll;
  std::optional<uint64_t> count;
  std::string name;
  std::string where;  // FILE:LINE
  std::string what;   // the subject as written: "flow tcp * -> 10.0.1.10:443", "packet 7"

  // Observed.
  uint64_t matched = 0;
  uint64_t held = 0;  // matched packets that had the expected verdict/reason
  uint64_t first_match = 0;
  uint64_t first_bad = 0;  // first matched packet that did not
  std::string first_bad_detail;
  bool first_held = false;
};

struct ExpectResult {
  bool passed = false;
  std::string where;
  std::string name;
  std::string what;
  std::string expected;  // "allow", "deny (deny-sg)", ...
  std::string outcome;   // what happened
  uint64_t matched = 0;
};

class Expectations {
 public:
  // Parses the YAML file; a failure ("FILE:LINE:COL: message") on any error.
  static base::Expected<Expectations> load(const std::string& path);
  static base::Expected<Expectations> parse(const std::string& name, const std::string& text);

  // Records one packet's verdict. `describe` gives the human text of a verdict; it is called
  // only for the first packet that breaks an expectation.
  template <class Describe>
  void observe(uint64_t index, const dataplane::ParsedPacket& p, const dataplane::Verdict& v,
               Describe&& describe);

  std::vector<ExpectResult> results() const;
  bool allPassed() const;
  size_t size() const { return items_.size(); }
  const std::vector<Expectation>& items() const { return items_; }

 private:
  static base::Expected<Expectations> parseYaml(const std::string& name, const std::string& text);
  std::vector<Expectation> items_;
};

// ---- implementation of the template ----

namespace detail {
bool packetMatches(const Expectation& e, uint64_t index, const dataplane::ParsedPacket& p);
bool verdictHolds(const Expectation& e, dataplane::Reason r);
}  // namespace detail

template <class Describe>
void Expectations::observe(uint64_t index, const dataplane::ParsedPacket& p,
                           const dataplane::Verdict& v, Describe&& describe) {
  for (auto& e : items_) {
    if (!detail::packetMatches(e, index, p)) continue;
    bool ok = detail::verdictHolds(e, v.reason);
    if (e.matched == 0) {
      e.first_match = index;
      e.first_held = ok;
    }
    ++e.matched;
    if (ok) {
      ++e.held;
    } else if (e.first_bad == 0) {
      e.first_bad = index;
      e.first_bad_detail = describe(v);
    }
  }
}

}  // namespace statewall::sim
