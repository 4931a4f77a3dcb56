// `statewall flowlogs --policy P [--against NEW] LOG...`: VPC Flow Logs judged with a policy
// through the replay's engine (sim/flowlog_judge.hpp): whether the policy reproduces the logged
// actions, what NEW would break or open, and which rules the logged traffic used.
//
// Exit 0, 1 when NEW breaks or opens a logged connection, 2 on bad input (a policy that does not
// load, a log that cannot be read, a broken line: FILE:LINE, and then nothing is reported).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "flowlog_render.hpp"
#include "json_text.hpp"
#include "policy_input.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/flowlog.hpp"
#include "statewall/sim/flowlog_judge.hpp"

namespace statewall::cli {
namespace {

using sim::FlowLogReport;

struct FlowLogsArgs {
  std::vector<std::string> policies;
  std::vector<std::string> against;
  std::vector<std::string> logs;
  std::string format;
  bool json = false;
  uint64_t reorder = 600;
  size_t max_flows = 20;
  size_t table_capacity = 1 << 20;
};

// The rules and ACL entries an interface could use, and which of them the logs never used there.
struct IfaceUnused {
  std::vector<rules::RuleId> rules;
  std::vector<rules::AclEntryId> entries;
};

uint64_t hitsAt(const sim::RuleUse& u, rules::IfaceId i) {
  for (const auto& [at, n] : u.by_iface)
    if (at == i) return n;
  return 0;
}

IfaceUnused unusedAt(const rules::CompiledPolicy& p, const FlowLogReport& r, rules::IfaceId i) {
  IfaceUnused out;
  const auto& info = p.iface(i);
  for (rules::RuleId id = 0; id < p.ruleCount(); ++id) {
    const auto& ri = p.rule(id);
    bool mine = false;
    for (uint16_t g : info.groups)
      mine = mine || g == ri.group;
    if (mine && hitsAt(r.rule_use[id], i) == 0) out.rules.push_back(id);
  }
  if (info.subnet != rules::kNoSubnet) {
    const rules::AclId acl = p.subnet(info.subnet).acl;
    for (rules::AclEntryId e = 0; acl != rules::kNoAcl && e < p.aclEntryCount(); ++e) {
      if (p.aclEntry(e).acl == acl && hitsAt(r.acl_use[e], i) == 0) out.entries.push_back(e);
    }
  }
  return out;
}

void printText(const FlowLogsArgs& a, const sim::FlowLogJudge& judge,
               const std::vector<std::pair<std::string, uint64_t>>& per_file) {
  const FlowLogReport& r = judge.report();
  const rules::CompiledPolicy& p = judge.policy();
  std::string out = "statewall flowlogs\n";
  out += fmt::format("  policy   {}\n", fmt::join(a.policies, " "));
  if (!a.against.empty()) out += fmt::format("  against  {}\n", fmt::join(a.against, " "));
  for (const auto& [path, n] : per_file)
    out += fmt::format("  log      {}: {} records\n", path, n);
  if (r.judged > 0) {
    out += fmt::format("  period   {} .. {} ({:.2f} days)\n", utcSeconds(r.first_start),
                       utcSeconds(r.last_end), r.days());
  }
  out += fmt::format("  records  {} read, {} judged ({} connections)", r.records, r.judged,
                     r.connections);
  uint64_t skipped = 0;
  for (uint64_t n : r.skipped)
    skipped += n;
  if (skipped > 0) {
    std::vector<std::string> parts;
    for (size_t i = 0; i < sim::kFlowLogSkipCount; ++i)
      if (r.skipped[i] > 0)
        parts.push_back(fmt::format("{} {}", r.skipped[i],
                                    sim::flowLogSkipName(static_cast<sim::FlowLogSkip>(i))));
    out += fmt::format(", {} not judged: {}", skipped, fmt::join(parts, ", "));
  }
  out += "\n";
  if (r.late > 0) {
    out += fmt::format(
        "  warning: {} records arrived later than the reorder window allows (first: {}); each "
        "was judged at the time already reached (--reorder SECONDS widens the window)\n",
        r.late, r.late_first);
  }

  out += "\nAgreement\n";
  const uint64_t dis = r.accept_rejected + r.reject_accepted;
  out += fmt::format(
      "  {} of {} judged records reproduced ({:.1f}%); {} differ: {} logged ACCEPT the policy "
      "rejects, {} logged REJECT the policy accepts\n",
      r.agree, r.judged, r.judged ? 100.0 * r.agree / r.judged : 100.0, dis, r.accept_rejected,
      r.reject_accepted);
  for (size_t c = 0; c < r.by_cause.size(); ++c) {
    if (r.by_cause[c] == 0) continue;
    const auto cause = static_cast<sim::DisagreeCause>(c);
    out += fmt::format("  {:>8}  {}: {}\n", r.by_cause[c], sim::disagreeCauseName(cause),
                       sim::disagreeCauseMeaning(cause));
  }
  size_t shown = 0;
  for (const auto& d : r.disagreements) {
    if (shown++ == a.max_flows) {
      out +=
          fmt::format("  ... {} more (--json lists all)\n", r.disagreements.size() - a.max_flows);
      break;
    }
    out += fmt::format(
        "  {} records  {}  logged {}, policy {}  [{}]  {}\n    {}  first {}\n", d.records,
        where(d.flow, d.interface, d.egress), sim::flowActionName(d.logged),
        d.policy == sim::FlowAction::kNone ? "never arrives" : sim::flowActionName(d.policy),
        sim::disagreeCauseName(d.cause), d.where, d.detail, utcSeconds(d.first));
  }

  if (r.against) {
    out += "\nAgainst " + fmt::format("{}", fmt::join(a.against, " ")) + "\n";
    out += flowLogChangesText(r, a.max_flows);
  }

  out += fmt::format("\nRule usage over {:.2f} days\n", r.days());
  for (rules::RuleId id = 0; id < p.ruleCount(); ++id) {
    const auto& u = r.rule_use[id];
    if (u.hits == 0) continue;
    out +=
        fmt::format("  {:>8}  {:<22} {}\n", u.hits, rules::ruleLabel(p.rule(id)), p.rule(id).text);
  }
  for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e) {
    const auto& u = r.acl_use[e];
    if (u.hits == 0) continue;
    out += fmt::format("  {:>8}  {:<22} {}\n", u.hits, rules::aclEntryLabel(p.aclEntry(e)),
                       p.aclEntry(e).text);
  }
  out += fmt::format("\nUnused for {:.2f} days (per interface in the logs)\n", r.days());
  std::vector<std::string> absent;
  for (rules::IfaceId i = 0; i < p.ifaceCount(); ++i) {
    if (r.iface_records[i] == 0) {
      absent.push_back(p.iface(i).name);
      continue;
    }
    IfaceUnused u = unusedAt(p, r, i);
    if (u.rules.empty() && u.entries.empty()) continue;
    out += fmt::format("  {} ({} records):\n", p.iface(i).name, r.iface_records[i]);
    for (auto id : u.rules)
      out += fmt::format("    {:<22} {}\n", rules::ruleLabel(p.rule(id)), p.rule(id).text);
    for (auto e : u.entries)
      out +=
          fmt::format("    {:<22} {}\n", rules::aclEntryLabel(p.aclEntry(e)), p.aclEntry(e).text);
  }
  if (!absent.empty()) out += fmt::format("  not in the logs: {}\n", fmt::join(absent, ", "));
  std::fwrite(out.data(), 1, out.size(), stdout);
}

void printJson(const FlowLogsArgs& a, const sim::FlowLogJudge& judge,
               const std::vector<std::pair<std::string, uint64_t>>& per_file) {
  const FlowLogReport& r = judge.report();
  const rules::CompiledPolicy& p = judge.policy();
  nlohmann::ordered_json j;
  j["policy"] = a.policies;
  auto& logs = j["logs"] = nlohmann::ordered_json::array();
  for (const auto& [path, n] : per_file)
    logs.push_back({{"path", path}, {"records", n}});
  j["period"] = {{"first", r.first_start}, {"last", r.last_end}, {"days", r.days()}};
  nlohmann::ordered_json skipped;
  for (size_t i = 0; i < sim::kFlowLogSkipCount; ++i)
    skipped[std::string(sim::flowLogSkipName(static_cast<sim::FlowLogSkip>(i)))] = r.skipped[i];
  j["records"] = {{"read", r.records},
                  {"judged", r.judged},
                  {"connections", r.connections},
                  {"peak_connections_held", r.peak_connections_held},
                  {"skipped", skipped},
                  {"late", r.late},
                  {"late_first", r.late_first}};
  nlohmann::ordered_json ag;
  ag["agree"] = r.agree;
  ag["accept_rejected"] = r.accept_rejected;
  ag["reject_accepted"] = r.reject_accepted;
  nlohmann::ordered_json causes;
  for (size_t c = 0; c < r.by_cause.size(); ++c)
    causes[std::string(sim::disagreeCauseName(static_cast<sim::DisagreeCause>(c)))] = r.by_cause[c];
  ag["by_cause"] = causes;
  auto& list = ag["disagreements"] = nlohmann::ordered_json::array();
  for (const auto& d : r.disagreements) {
    nlohmann::ordered_json x;
    x["interface"] = d.interface;
    x["interface_id"] = d.logged_id;
    x["flow_direction"] = d.egress ? "egress" : "ingress";
    x["flow"] = flowLogFlowJson(d.flow);
    x["logged"] = sim::flowActionName(d.logged);
    x["policy"] = d.policy == sim::FlowAction::kNone ? "none" : sim::flowActionName(d.policy);
    x["cause"] = sim::disagreeCauseName(d.cause);
    x["detail"] = d.detail;
    x["where"] = d.where;
    x["records"] = d.records;
    x["packets"] = d.packets;
    x["bytes"] = d.bytes;
    x["first"] = d.first;
    x["last"] = d.last;
    list.push_back(std::move(x));
  }
  ag["unlisted"] = r.disagreements_unlisted;
  j["agreement"] = ag;
  if (r.against) {
    nlohmann::ordered_json av;
    av["policy"] = a.against;
    addFlowLogChangesJson(r, &av);
    j["against"] = av;
  }
  nlohmann::ordered_json usage;
  usage["days"] = r.days();
  auto& rl = usage["rules"] = nlohmann::ordered_json::array();
  for (rules::RuleId id = 0; id < p.ruleCount(); ++id) {
    nlohmann::ordered_json x;
    x["rule"] = rules::ruleLabel(p.rule(id));
    x["text"] = p.rule(id).text;
    x["hits"] = r.rule_use[id].hits;
    nlohmann::ordered_json by = nlohmann::ordered_json::object();
    for (const auto& [i, n] : r.rule_use[id].by_iface)
      by[p.iface(i).name] = n;
    x["by_interface"] = by;
    rl.push_back(std::move(x));
  }
  auto& al = usage["acl_entries"] = nlohmann::ordered_json::array();
  for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e) {
    nlohmann::ordered_json x;
    x["entry"] = rules::aclEntryLabel(p.aclEntry(e));
    x["text"] = p.aclEntry(e).text;
    x["hits"] = r.acl_use[e].hits;
    nlohmann::ordered_json by = nlohmann::ordered_json::object();
    for (const auto& [i, n] : r.acl_use[e].by_iface)
      by[p.iface(i).name] = n;
    x["by_interface"] = by;
    al.push_back(std::move(x));
  }
  auto& un = usage["unused"] = nlohmann::ordered_json::array();
  for (rules::IfaceId i = 0; i < p.ifaceCount(); ++i) {
    nlohmann::ordered_json x;
    x["interface"] = p.iface(i).name;
    x["records"] = r.iface_records[i];
    if (r.iface_records[i] > 0) {
      IfaceUnused u = unusedAt(p, r, i);
      auto& rr = x["rules"] = nlohmann::ordered_json::array();
      for (auto id : u.rules)
        rr.push_back(rules::ruleLabel(p.rule(id)));
      auto& ee = x["acl_entries"] = nlohmann::ordered_json::array();
      for (auto e : u.entries)
        ee.push_back(rules::aclEntryLabel(p.aclEntry(e)));
    }
    un.push_back(std::move(x));
  }
  j["rule_usage"] = usage;
  std::string text = jsonText(j, 2) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
}

int runFlowLogs(const FlowLogsArgs& a) {
  auto policy = loadCompiledPolicy(a.policies, "flowlogs", "nothing judged");
  if (!policy) return 2;
  rules::CompiledPolicyPtr against;
  if (!a.against.empty()) {
    against = loadCompiledPolicy(a.against, "flowlogs", "nothing judged", "new");
    if (!against) return 2;
  }
  const std::optional<sim::FlowLogFormat> fallback = logFormatOption("flowlogs", a.format);
  if (!fallback) return 2;
  sim::FlowLogJudgeOptions opt;
  opt.reorder_s = a.reorder;
  opt.table_capacity = a.table_capacity;
  sim::FlowLogJudge judge(policy, against, opt);
  const sim::FlowLogFilesRead read = sim::judgeFlowLogFiles(judge, a.logs, *fallback);
  if (read.error) {
    // Nothing is reported from a half-read input.
    std::fprintf(stderr, "statewall flowlogs: %s; nothing judged\n", read.error->str().c_str());
    return 2;
  }
  const auto& per_file = read.files;
  judge.finish();
  if (a.json) {
    printJson(a, judge, per_file);
  } else {
    printText(a, judge, per_file);
  }
  const auto& r = judge.report();
  return r.against && r.break_connections + r.open_connections > 0 ? 1 : 0;
}

}  // namespace

void addFlowLogsCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<FlowLogsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "flowlogs",
      "Judge VPC Flow Logs with a policy: agreement, what --against NEW breaks or opens, rule use");
  cmd->footer(
      "Logs: the default format (version 2), or any custom format (versions 3 to 8) described\n"
      "  by the header line S3 delivery writes, or by --format '${version} ${interface-id} ...'\n"
      "  as the console shows it. Plain or gzip. NODATA/SKIPDATA records are counted, not judged.\n"
      "Exit status: 0; 1 when --against NEW breaks or opens a logged connection; 2 bad input.");
  addPolicyOption(cmd, &args->policies);
  cmd->add_option("--against", args->against,
                  "a new version of the policy; repeat for a policy in several files")
      ->allow_extra_args(false);
  cmd->add_option("logs", args->logs, "flow log files (plain or .gz; - reads stdin)")->required();
  cmd->add_option("--format", args->format,
                  "the fields of logs without a header line, e.g. '${version} ${srcaddr} ...'");
  cmd->add_flag("--json", args->json, "one JSON document");
  cmd->add_option("--reorder", args->reorder,
                  "seconds of log time a record may arrive out of order and still be ordered")
      ->capture_default_str();
  cmd->add_option("--max-flows", args->max_flows, "flows listed per section in the text output")
      ->capture_default_str();
  cmd->add_option("--table-capacity", args->table_capacity, "connection-table capacity")
      ->capture_default_str();
  cmd->callback([args, exit_code]() { *exit_code = runFlowLogs(*args); });
}

}  // namespace statewall::cli
