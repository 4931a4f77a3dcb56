#include <string>

#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/policy.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::rules {

std::string SourceLoc::str() const {
  if (!json_path.empty()) return file + ": " + json_path;
  if (line > 0) return file + ":" + std::to_string(line) + ":" + std::to_string(col);
  return file;
}

std::string Diagnostic::str() const {
  return loc.str() + (severity == Severity::kError ? ": error: " : ": warning: ") + message;
}

std::string_view directionName(Direction d) {
  return d == Direction::kInbound ? "inbound" : "outbound";
}

std::string Match::str() const {
  std::string s = protoName(proto);
  if (protoHasPorts(proto)) {
    if (allPorts()) {
      s += " all";
    } else if (port_lo == port_hi) {
      s += " " + std::to_string(port_lo);
    } else {
      s += " " + std::to_string(port_lo) + "-" + std::to_string(port_hi);
    }
  } else if (protoIsIcmp(proto)) {
    if (icmp_type == kAny) {
      s += " any";
    } else {
      s += " type " + std::to_string(icmp_type) + " code " +
           (icmp_code == kAny ? std::string("any") : std::to_string(icmp_code));
    }
  }
  return s;
}

std::string Peer::str() const {
  switch (kind) {
    case PeerKind::kCidr:
      return cidr.str();
    case PeerKind::kPrefixList:
      return "pl:" + name;
    case PeerKind::kGroup:
      return "sg:" + name;
  }
  return {};
}

std::string SgRule::str(Direction d) const {
  std::string s = match.str() + (d == Direction::kInbound ? " from " : " to ");
  for (size_t i = 0; i < peers.size(); ++i) {
    if (i) s += ", ";
    s += peers[i].str();
  }
  return s;
}

std::string AclEntry::str(Direction d) const {
  return std::to_string(rule_number) + (allow ? " allow " : " deny ") + match.str() +
         (d == Direction::kInbound ? " from " : " to ") + cidr.str();
}

std::string_view timeoutKeyName(TimeoutKey k) {
  static constexpr std::string_view kNames[kTimeoutKeyCount] = {
      "tcp_syn_sent", "tcp_syn_recv",  "tcp_established", "tcp_fin_wait", "tcp_close_wait",
      "tcp_last_ack", "tcp_time_wait", "tcp_close",       "udp",          "udp_stream",
      "icmp",         "other"};
  return kNames[static_cast<size_t>(k)];
}

Timeouts Timeouts::defaults(TimeoutProfile p) {
  Timeouts t;
  t.profile = p;
  // linux (nf_conntrack defaults); aws differs in established TCP and UDP as docs/design.md says.
  t.seconds = {120, 60, 432000, 120, 60, 30, 120, 10, 30, 120, 30, 600};
  if (p == TimeoutProfile::kAws) {
    t.seconds[static_cast<size_t>(TimeoutKey::kUdp)] = 30;
    t.seconds[static_cast<size_t>(TimeoutKey::kUdpStream)] = 180;
  }
  return t;
}

namespace {
// The timeouts AWS lets a user set, with their ranges (docs/design.md "Idle timeouts").
struct AwsRange {
  TimeoutKey key;
  uint32_t lo, hi;
};
constexpr AwsRange kAwsRanges[] = {{TimeoutKey::kTcpEstablished, 60, 432000},
                                   {TimeoutKey::kUdp, 30, 60},
                                   {TimeoutKey::kUdpStream, 60, 180}};

// "" when v lies in r's range; else "KEY is V s; WHO allows LO..HI".
std::string outOfRange(const AwsRange& r, uint32_t v, std::string_view who) {
  if (v >= r.lo && v <= r.hi) return {};
  return std::string(timeoutKeyName(r.key)) + " is " + std::to_string(v) + " s; " +
         std::string(who) + " allows " + std::to_string(r.lo) + ".." + std::to_string(r.hi);
}
}  // namespace

std::string Timeouts::validate() const {
  for (size_t i = 0; i < kTimeoutKeyCount; ++i) {
    if (seconds[i] < 1)
      return std::string(timeoutKeyName(static_cast<TimeoutKey>(i))) + " must be at least 1 second";
  }
  if (profile != TimeoutProfile::kAws) return {};
  for (const auto& r : kAwsRanges) {
    if (std::string m = outOfRange(r, get(r.key), "profile aws"); !m.empty()) return m;
  }
  return {};
}

std::string InterfaceTimeouts::validate() const {
  for (const auto& r : kAwsRanges) {
    const uint32_t v = r.key == TimeoutKey::kTcpEstablished ? tcp_established
                       : r.key == TimeoutKey::kUdp          ? udp
                                                            : udp_stream;
    if (v == 0) continue;
    if (std::string m = outOfRange(r, v, "AWS"); !m.empty()) return m;
  }
  return {};
}

}  // namespace statewall::rules
