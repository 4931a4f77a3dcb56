// The replay summary as text for people and as JSON.
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "statewall/rules/vocab.hpp"
#include "statewall/rules/vocab_json.hpp"
#include "statewall/sim/conn_log.hpp"
#include "statewall/sim/flow_text.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {
namespace {

using dataplane::kReasonCount;
using dataplane::Reason;

std::string percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "-";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

// Columns separated by two spaces; each column left- or right-aligned; the last column is not
// padded (it may hold long text).
class Table {
 public:
  explicit Table(std::string align) : align_(std::move(align)) {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.size() <= 1; }
  std::string str(const std::string& indent = "  ") const {
    std::vector<size_t> width(align_.size(), 0);
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
        width[i] = std::max(width[i], r[i].size());
      }
    }
    std::string out;
    for (const auto& r : rows_) {
      std::string line = indent;
      for (size_t i = 0; i < r.size(); ++i) {
        const bool last = i + 1 == r.size();
        if (i > 0) line += "  ";
        if (align_[i] == 'r') {
          line += std::string(width[i] - r[i].size(), ' ') + r[i];
        } else if (last) {
          line += r[i];
        } else {
          line += r[i] + std::string(width[i] - r[i].size(), ' ');
        }
      }
      while (!line.empty() && line.back() == ' ')
        line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  std::string align_;
  std::vector<std::vector<std::string>> rows_;
};

std::string formatName(TraceFormat f) {
  return f == TraceFormat::kPcap ? "pcap" : "pcapng";
}

// "EN10MB (Ethernet, DLT 1)", or each link type of a trace that mixes them, joined by " + ".
std::string linkTypesText(const TraceSummary& t) {
  if (t.dlts.size() <= 1) return dltName(t.dlt);
  std::string s;
  for (int d : t.dlts)
    s += (s.empty() ? "" : " + ") + dltName(d);
  return s;
}

std::string interfaceText(const TraceInterface& i) {
  return fmt::format("interface {}{}{}", i.index, i.name.empty() ? "" : " (" + i.name + ")",
                     i.section == 0 ? "" : fmt::format(" of section {}", i.section));
}

std::string policyLine(const rules::CompiledPolicy& p) {
  size_t acl_entries = p.aclEntryCount() - 2 * p.aclCount();
  return fmt::format("{} groups, {} rules, {} interfaces, {} network ACLs ({} entries)",
                     p.source().groups.size(), p.ruleCount(), p.ifaceCount(), p.aclCount(),
                     acl_entries);
}

}  // namespace

std::vector<std::string> skippedInterfaceWarnings(const ReplaySummary& s) {
  std::vector<std::string> out;
  for (const auto& tr : s.traces) {
    for (const TraceInterface& i : tr.skipped) {
      out.push_back(fmt::format(
          "{}: {} packets of {} were skipped (not judged, not counted): its link type {} is not "
          "one statewall reads",
          tr.path, rules::withThousands(i.skipped), interfaceText(i), dltName(i.dlt)));
    }
  }
  return out;
}

std::string formatSummaryText(const ReplaySummary& s, const rules::CompiledPolicy& policy,
                              const std::vector<ExpectResult>* expect) {
  std::string out;
  // Header: what was replayed.
  {
    Table t("ll");
    for (size_t i = 0; i < s.policy_files.size(); ++i) {
      t.row({i == 0 ? "policy" : "", s.policy_files[i]});
    }
    if (s.policy_files.empty()) t.row({"policy", "(in memory)"});
    t.row({"", policyLine(policy)});
    for (const auto& tr : s.traces) {
      t.row(
          {"trace", fmt::format("{}: {}, {}, {} packets, {} bytes", tr.path, formatName(tr.format),
                                linkTypesText(tr), rules::withThousands(tr.packets),
                                rules::withThousands(tr.bytes))});
    }
    if (s.packets > 0) {
      t.row({"time", fmt::format("{} .. {} ({:.6f} s)", rules::utcText(s.first_ts_ns, 6),
                                 rules::utcText(s.last_ts_ns, 6),
                                 static_cast<double>(s.last_ts_ns - s.first_ts_ns) / 1e9)});
    }
    out += "statewall replay\n" + t.str();
    if (s.error) {
      out += fmt::format("  INCOMPLETE: the replay stopped at {}\n", s.error->str());
    }
    for (const std::string& w : skippedInterfaceWarnings(s))
      out += "  warning: " + w + "\n";
    if (s.ts_backwards > 0) {
      out += fmt::format(
          "  warning: {} packets are older than the packet before them (first: #{}); each was "
          "judged at the time already reached\n",
          rules::withThousands(s.ts_backwards), s.ts_backwards_first);
    }
    if (s.snaplen_cut > 0) {
      out += fmt::format(
          "  warning: {} packets were cut short by the capture's snaplen; {} of them are "
          "deny-malformed because the bytes they need were not captured\n",
          rules::withThousands(s.snaplen_cut), rules::withThousands(s.snaplen_cut_malformed));
    }
  }

  // Verdicts by reason.
  {
    Table t("llrrr");
    t.row({"verdict", "reason", "packets", "bytes", "share"});
    for (bool allow : {true, false}) {
      uint64_t p = 0, b = 0;
      for (size_t r = 0; r < kReasonCount; ++r) {
        if (dataplane::kReasonAllows[r] == allow) {
          p += s.packets_by_reason[r];
          b += s.bytes_by_reason[r];
        }
      }
      t.row({allow ? "allow" : "deny", "", rules::withThousands(p), rules::withThousands(b),
             percent(p, s.packets)});
      for (size_t r = 0; r < kReasonCount; ++r) {
        if (dataplane::kReasonAllows[r] != allow || s.packets_by_reason[r] == 0) continue;
        t.row({"", std::string(dataplane::kReasonCodes[r]),
               rules::withThousands(s.packets_by_reason[r]),
               rules::withThousands(s.bytes_by_reason[r]),
               percent(s.packets_by_reason[r], s.packets)});
        if (static_cast<Reason>(r) == Reason::kDenyMalformed) {
          for (size_t l = 0; l < dataplane::kLayerCount; ++l) {
            if (s.malformed_by_layer[l] == 0) continue;
            t.row({"", fmt::format("  at {}", dataplane::kLayerNames[l]),
                   rules::withThousands(s.malformed_by_layer[l]), "", ""});
          }
        }
      }
    }
    t.row({"total", "", rules::withThousands(s.packets), rules::withThousands(s.bytes),
           s.packets > 0 ? "100.0%" : "-"});
    out += "\nVerdicts\n" + t.str();
  }

  // Rule hits.
  {
    Table t("rllll");
    t.row({"hits", "rule", "", "match", "description"});
    for (rules::RuleId r = 0; r < policy.ruleCount() && r < s.rule_hits.size(); ++r) {
      if (s.rule_hits[r] == 0) continue;
      const auto& ri = policy.rule(r);
      t.row({rules::withThousands(s.rule_hits[r]), rules::ruleLabel(policy.rule(r)), "", ri.text,
             ri.description});
    }
    out += "\nSecurity-group rule hits\n";
    out += t.empty() ? "  (none)\n" : t.str();
  }
  if (policy.aclEntryCount() > 0) {
    Table t("rlll");
    t.row({"hits", "entry", "action", "match"});
    for (rules::AclEntryId e = 0; e < policy.aclEntryCount() && e < s.acl_hits.size(); ++e) {
      if (s.acl_hits[e] == 0) continue;
      const auto& ai = policy.aclEntry(e);
      t.row({rules::withThousands(s.acl_hits[e]), rules::aclEntryLabel(policy.aclEntry(e)),
             ai.allow ? "allow" : "deny", ai.text});
    }
    out += "\nNetwork ACL hits\n";
    out += t.empty() ? "  (none)\n" : t.str();
  }
  // Never hit.
  {
    Table t("lll");
    size_t count = 0;
    for (rules::RuleId r = 0; r < policy.ruleCount(); ++r) {
      if (r < s.rule_hits.size() && s.rule_hits[r] != 0) continue;
      const auto& ri = policy.rule(r);
      t.row({rules::ruleLabel(policy.rule(r)), ri.text, ri.description});
      ++count;
    }
    for (rules::AclEntryId e = 0; e < policy.aclEntryCount(); ++e) {
      const auto& ai = policy.aclEntry(e);
      if (ai.rule_number == 0 || (e < s.acl_hits.size() && s.acl_hits[e] != 0)) continue;
      t.row({rules::aclEntryLabel(policy.aclEntry(e)), ai.text, ""});
      ++count;
    }
    out += fmt::format("\nRules never hit ({})\n", count);
    out += count == 0 ? "  (none: every rule was used)\n" : t.str();
  }

  // Top denied flows.
  {
    uint64_t denied = 0;
    for (size_t r = 0; r < kReasonCount; ++r)
      if (!dataplane::kReasonAllows[r]) denied += s.packets_by_reason[r];
    out += fmt::format("\nTop denied flows ({} of {}{} flows, {} packets denied)\n",
                       s.top_denied.size(), s.top_denied_approximate ? "about " : "",
                       rules::withThousands(s.denied_flows), rules::withThousands(denied));
    if (s.top_denied.empty()) {
      out += "  (none)\n";
    } else {
      Table t("rrllrl");
      t.row({"packets", "bytes", "reason", "flow", "first", "why"});
      // Estimates are marked: "~" before a count that may overstate the truth.
      const std::string mark = s.top_denied_approximate ? "~" : "";
      for (const auto& d : s.top_denied) {
        t.row({mark + rules::withThousands(d.packets), mark + rules::withThousands(d.bytes),
               std::string(dataplane::reasonCode(d.reason)), flowKeyWords(d.key),
               fmt::format("#{}", d.first_index), d.detail});
      }
      out += t.str();
      if (s.top_denied_approximate) {
        out += fmt::format(
            "  ~ approximate: more distinct denied flows than the replay counts exactly; a "
            "packet count may overstate its flow's by up to {}, and its bytes may be short\n",
            rules::withThousands(s.top_denied_max_error));
      }
    }
  }

  // Connections.
  // Evictions (early drop of a full table) only when there were some: most runs have none.
  out += fmt::format("\nConnections\n  {} created, {} expired, {}{} TCP packets invalid\n",
                     rules::withThousands(s.engine.connections_created),
                     rules::withThousands(s.engine.connections_expired),
                     s.engine.connections_evicted != 0
                         ? fmt::format("{} evicted unreplied (table full), ",
                                       rules::withThousands(s.engine.connections_evicted))
                         : std::string(),
                     rules::withThousands(s.engine.tcp_invalid));
  if (s.connections_logged) {
    std::string states;
    for (const auto& [name, n] : s.conn_states) {
      states += fmt::format("{}{} {}", states.empty() ? "" : ", ", name, rules::withThousands(n));
    }
    out += fmt::format("  log: {} records ({}); {} closed, {} timed out, {} still open\n",
                       rules::withThousands(s.connection_records), states.empty() ? "none" : states,
                       rules::withThousands(s.conn_ends[static_cast<size_t>(ConnEnd::kClosed)]),
                       rules::withThousands(s.conn_ends[static_cast<size_t>(ConnEnd::kTimedOut)]),
                       rules::withThousands(s.conn_ends[static_cast<size_t>(ConnEnd::kOpen)]));
    if (s.connection_records_early > 0) {
      out += fmt::format(
          "  log: {} records of flows without a connection were written while still open (more "
          "such flows at once than the connection table holds); a later packet of one starts a "
          "new record\n",
          rules::withThousands(s.connection_records_early));
    }
  }
  if (s.engine.totalPackets() != s.packets && s.error == std::nullopt) {
    out +=
        fmt::format("  WARNING: the engine counted {} packets, the replay {}\n",
                    rules::withThousands(s.engine.totalPackets()), rules::withThousands(s.packets));
  }

  // Stateless comparison.
  if (s.stateless) {
    Table t("lrr");
    t.row({"reason", "stateful", "stateless"});
    for (size_t r = 0; r < kReasonCount; ++r) {
      if (s.packets_by_reason[r] == 0 && s.stateless_by_reason[r] == 0) continue;
      t.row({std::string(dataplane::kReasonCodes[r]), rules::withThousands(s.packets_by_reason[r]),
             rules::withThousands(s.stateless_by_reason[r])});
    }
    out += "\nStateless comparison (every packet judged by the rules alone, no tracking)\n";
    out += t.str();
    out += fmt::format(
        "  {} packets allowed with connection tracking are denied by the rules alone; {} the "
        "other way round.\n",
        rules::withThousands(s.changed_to_deny), rules::withThousands(s.changed_to_allow));
    if (!s.changes.empty()) {
      Table c("rrllll");
      c.row({"first", "packets", "stateful", "stateless", "flow", "why"});
      size_t shown = 0;
      for (const auto& ch : s.changes) {
        if (shown++ == 20) break;
        c.row({fmt::format("#{}", ch.first_index), rules::withThousands(ch.packets),
               std::string(dataplane::reasonCode(ch.stateful)),
               std::string(dataplane::reasonCode(ch.stateless)), flowKeyWords(ch.key), ch.why});
      }
      out += fmt::format("  Flows that change verdict ({} shown of {}):\n",
                         std::min<size_t>(s.changes.size(), 20),
                         rules::withThousands(s.changed_flows));
      out += c.str("    ");
    }
  }

  // Expectations.
  if (expect != nullptr) {
    size_t held = 0;
    for (const auto& r : *expect)
      held += r.passed ? 1 : 0;
    out += fmt::format("\nExpectations: {} of {} hold\n", held, expect->size());
    for (const auto& r : *expect) {
      out += fmt::format("  {:<4}  {}  {}\n", r.passed ? "ok" : "FAIL", r.where,
                         r.name.empty() ? r.what : r.name);
      std::string subject = r.name.empty() ? "" : r.what + ": ";
      out += fmt::format("        {}expected {}; {}\n", subject, r.expected, r.outcome);
    }
  }
  return out;
}

std::string formatSummaryJson(const ReplaySummary& s, const rules::CompiledPolicy& policy,
                              const std::vector<ExpectResult>* expect) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["policy"] = s.policy_files;
  ordered_json traces = ordered_json::array();
  for (const auto& t : s.traces) {
    ordered_json skipped = ordered_json::array();
    for (const TraceInterface& i : t.skipped) {
      skipped.push_back({{"section", i.section},
                         {"interface", i.index},
                         {"name", i.name},
                         {"link_type", i.dlt},
                         {"packets", i.skipped}});
    }
    traces.push_back({{"path", t.path},
                      {"format", formatName(t.format)},
                      {"link_type", t.dlt},
                      {"link_types", t.dlts.empty() ? std::vector<int>{t.dlt} : t.dlts},
                      {"packets", t.packets},
                      {"bytes", t.bytes},
                      {"skipped_packets", t.skipped_packets},
                      {"skipped_interfaces", skipped}});
  }
  j["traces"] = traces;
  j["complete"] = !s.error.has_value();
  if (s.error) {
    j["error"] = {
        {"file", s.error->file}, {"offset", s.error->offset}, {"message", s.error->message}};
  }
  j["packets"] = s.packets;
  j["bytes"] = s.bytes;
  j["out_of_order"] = {{"packets", s.ts_backwards}, {"first_index", s.ts_backwards_first}};
  j["snaplen_cut"] = {{"packets", s.snaplen_cut}, {"deny_malformed", s.snaplen_cut_malformed}};
  j["first_ts"] = static_cast<double>(s.first_ts_ns) / 1e9;
  j["last_ts"] = static_cast<double>(s.last_ts_ns) / 1e9;
  uint64_t ap = 0, ab = 0, dp = 0, db = 0;
  ordered_json reasons = ordered_json::object();
  for (size_t r = 0; r < kReasonCount; ++r) {
    (dataplane::kReasonAllows[r] ? ap : dp) += s.packets_by_reason[r];
    (dataplane::kReasonAllows[r] ? ab : db) += s.bytes_by_reason[r];
    reasons[std::string(dataplane::kReasonCodes[r])] = {{"packets", s.packets_by_reason[r]},
                                                        {"bytes", s.bytes_by_reason[r]}};
  }
  j["verdicts"] = {{"allow", {{"packets", ap}, {"bytes", ab}}},
                   {"deny", {{"packets", dp}, {"bytes", db}}}};
  j["reasons"] = reasons;
  ordered_json layers = ordered_json::object();
  for (size_t l = 0; l < dataplane::kLayerCount; ++l) {
    if (s.malformed_by_layer[l] != 0) {
      layers[std::string(dataplane::kLayerNames[l])] = s.malformed_by_layer[l];
    }
  }
  j["malformed_layers"] = layers;
  ordered_json rules_j = ordered_json::array();
  for (rules::RuleId r = 0; r < policy.ruleCount(); ++r) {
    const auto& ri = policy.rule(r);
    ordered_json rj = rules::ruleJson<ordered_json>(ri);
    rj["description"] = ri.description;
    rj["hits"] = r < s.rule_hits.size() ? s.rule_hits[r] : 0;
    rules_j.push_back(std::move(rj));
  }
  j["rule_hits"] = rules_j;
  ordered_json acl_j = ordered_json::array();
  for (rules::AclEntryId e = 0; e < policy.aclEntryCount(); ++e) {
    const auto& ai = policy.aclEntry(e);
    ordered_json aj = rules::aclEntryJson<ordered_json>(ai);
    aj["hits"] = e < s.acl_hits.size() ? s.acl_hits[e] : 0;
    acl_j.push_back(std::move(aj));
  }
  j["acl_hits"] = acl_j;
  ordered_json never = ordered_json::array();
  for (rules::RuleId r = 0; r < policy.ruleCount(); ++r) {
    if (r >= s.rule_hits.size() || s.rule_hits[r] == 0)
      never.push_back(rules::ruleLabel(policy.rule(r)));
  }
  for (rules::AclEntryId e = 0; e < policy.aclEntryCount(); ++e) {
    if (policy.aclEntry(e).rule_number == 0) continue;
    if (e >= s.acl_hits.size() || s.acl_hits[e] == 0)
      never.push_back(rules::aclEntryLabel(policy.aclEntry(e)));
  }
  j["never_hit"] = never;
  ordered_json top = ordered_json::array();
  for (const auto& d : s.top_denied) {
    ordered_json f = {{"flow", d.key.str()}, {"reason", dataplane::reasonCode(d.reason)},
                      {"why", d.detail},     {"packets", d.packets},
                      {"bytes", d.bytes},    {"first_index", d.first_index}};
    if (d.key.ip) {
      f["proto"] = d.key.proto;
      f["src"] = d.key.src.str();
      f["dst"] = d.key.dst.str();
      const bool icmp =
          d.key.proto == dataplane::kIpProtoIcmp || d.key.proto == dataplane::kIpProtoIcmpv6;
      f[icmp ? "icmp_type" : "sport"] = d.key.sport;
      f[icmp ? "icmp_code" : "dport"] = d.key.dport;
    }
    top.push_back(f);
  }
  j["top_denied"] = {{"flows", top},
                     {"distinct_flows", s.denied_flows},
                     {"approximate", s.top_denied_approximate},
                     {"max_overcount", s.top_denied_max_error}};
  ordered_json conns = {{"created", s.engine.connections_created},
                        {"expired", s.engine.connections_expired},
                        {"evicted", s.engine.connections_evicted},
                        {"tcp_invalid", s.engine.tcp_invalid}};
  if (s.connections_logged) {
    ordered_json states = ordered_json::object();
    for (const auto& [name, n] : s.conn_states)
      states[name] = n;
    conns["log"] = {{"records", s.connection_records},
                    {"conn_state", states},
                    {"closed", s.conn_ends[static_cast<size_t>(ConnEnd::kClosed)]},
                    {"timed_out", s.conn_ends[static_cast<size_t>(ConnEnd::kTimedOut)]},
                    {"open", s.conn_ends[static_cast<size_t>(ConnEnd::kOpen)]},
                    {"written_early", s.connection_records_early}};
  }
  j["connections"] = conns;
  if (s.stateless) {
    ordered_json by = ordered_json::object();
    for (size_t r = 0; r < kReasonCount; ++r) {
      by[std::string(dataplane::kReasonCodes[r])] = s.stateless_by_reason[r];
    }
    ordered_json ch = ordered_json::array();
    for (const auto& c : s.changes) {
      ch.push_back({{"first_index", c.first_index},
                    {"packets", c.packets},
                    {"flow", c.key.str()},
                    {"stateful", dataplane::reasonCode(c.stateful)},
                    {"stateless", dataplane::reasonCode(c.stateless)},
                    {"why", c.why}});
    }
    j["stateless"] = {{"reasons", by},
                      {"allowed_statefully_denied_statelessly", s.changed_to_deny},
                      {"denied_statefully_allowed_statelessly", s.changed_to_allow},
                      {"changed_flows", s.changed_flows},
                      {"changes", ch}};
  }
  if (expect != nullptr) {
    ordered_json ex = ordered_json::array();
    bool all = true;
    for (const auto& r : *expect) {
      all = all && r.passed;
      ex.push_back({{"passed", r.passed},
                    {"where", r.where},
                    {"name", r.name},
                    {"subject", r.what},
                    {"expected", r.expected},
                    {"matched", r.matched},
                    {"outcome", r.outcome}});
    }
    j["expectations"] = {{"passed", all}, {"results", ex}};
  }
  // Names and texts come from the policy and may hold any bytes: invalid UTF-8 becomes U+FFFD.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace statewall::sim
