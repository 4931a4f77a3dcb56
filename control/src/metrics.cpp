#include <fmt/format.h>

#include "snapshot.hpp"

namespace statewall::control {
namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string promLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string renderMetrics(const StatsSnapshot& s) {
  std::string out;
  auto it = std::back_inserter(out);

  header(out, "statewall_packets_total", "counter", "Packets by verdict reason.");
  for (size_t r = 0; r < dataplane::kReasonCount; ++r)
    fmt::format_to(it, "statewall_packets_total{{reason=\"{}\"}} {}\n", dataplane::kReasonCodes[r],
                   s.counters.packets[r]);
  header(out, "statewall_bytes_total", "counter", "Bytes by verdict reason.");
  for (size_t r = 0; r < dataplane::kReasonCount; ++r)
    fmt::format_to(it, "statewall_bytes_total{{reason=\"{}\"}} {}\n", dataplane::kReasonCodes[r],
                   s.counters.bytes[r]);

  header(out, "statewall_policy_loads_running", "gauge",
         "Control requests compiling a policy now (loads, checks, timeout changes).");
  fmt::format_to(it, "statewall_policy_loads_running {}\n", s.loads_running);
  header(out, "statewall_policy_loads_completed_total", "counter",
         "Control requests that compiled a policy, published or not.");
  fmt::format_to(it, "statewall_policy_loads_completed_total {}\n", s.loads_completed);
  header(out, "statewall_connections", "gauge", "Live tracked connections.");
  fmt::format_to(it, "statewall_connections {}\n", s.connections);
  header(out, "statewall_connections_capacity", "gauge", "Connection table capacity.");
  fmt::format_to(it, "statewall_connections_capacity {}\n", s.capacity);
  header(out, "statewall_connections_created_total", "counter", "Connections created.");
  fmt::format_to(it, "statewall_connections_created_total {}\n", s.counters.connections_created);
  header(out, "statewall_connections_expired_total", "counter", "Connections expired.");
  fmt::format_to(it, "statewall_connections_expired_total {}\n", s.counters.connections_expired);
  header(out, "statewall_tcp_invalid_total", "counter",
         "TCP packets the state machine or window check marked INVALID.");
  fmt::format_to(it, "statewall_tcp_invalid_total {}\n", s.counters.tcp_invalid);
  header(out, "statewall_policy_version", "gauge", "Version of the running policy.");
  fmt::format_to(it, "statewall_policy_version {}\n", s.policy_version);

  if (s.policy) {
    header(out, "statewall_rule_hits_total", "counter",
           "Packets allowed by each security-group rule of the running policy.");
    for (size_t i = 0; i < s.rule_hits.size(); ++i) {
      const rules::RuleInfo& r = s.policy->rule(static_cast<rules::RuleId>(i));
      fmt::format_to(it,
                     "statewall_rule_hits_total{{rule=\"{}\",group=\"{}\",direction=\"{}\","
                     "index=\"{}\"}} {}\n",
                     i, promLabel(r.group_name), rules::directionName(r.dir), r.index,
                     s.rule_hits[i]);
    }
    header(out, "statewall_acl_hits_total", "counter",
           "Packets decided by each network-ACL entry of the running policy.");
    for (size_t i = 0; i < s.acl_hits.size(); ++i) {
      const rules::AclEntryInfo& e = s.policy->aclEntry(static_cast<rules::AclEntryId>(i));
      fmt::format_to(it,
                     "statewall_acl_hits_total{{acl=\"{}\",direction=\"{}\",rule=\"{}\","
                     "action=\"{}\"}} {}\n",
                     promLabel(e.acl_name), rules::directionName(e.dir), e.ruleNumberStr(),
                     e.allow ? "allow" : "deny", s.acl_hits[i]);
    }
  }

  if (s.rates) {
    header(out, "statewall_packets_per_second", "gauge",
           "Packet rate over the last sampling interval (all threads).");
    fmt::format_to(it, "statewall_packets_per_second {:.3f}\n", s.rates->packets_per_second);
    header(out, "statewall_bytes_per_second", "gauge",
           "Byte rate over the last sampling interval (all threads).");
    fmt::format_to(it, "statewall_bytes_per_second {:.3f}\n", s.rates->bytes_per_second);
  }
  if (!s.lcores.empty()) {
    header(out, "statewall_lcore_packets_per_second", "gauge", "Packet rate per lcore.");
    for (const auto& l : s.lcores)
      fmt::format_to(it, "statewall_lcore_packets_per_second{{lcore=\"{}\"}} {:.3f}\n", l.lcore,
                     l.packets_per_second);
    header(out, "statewall_lcore_bytes_per_second", "gauge", "Byte rate per lcore.");
    for (const auto& l : s.lcores)
      fmt::format_to(it, "statewall_lcore_bytes_per_second{{lcore=\"{}\"}} {:.3f}\n", l.lcore,
                     l.bytes_per_second);
  }
  return out;
}

}  // namespace statewall::control
