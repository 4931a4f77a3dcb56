// `statewall diff --policy OLD... --against NEW... [TRACE...]`.
//
// Without a trace: the rules added, removed and changed between two policies (matched up even
// when reordered), and whether what each group, ACL, interface and subnet allows changed
// (rules/policy_diff.hpp). Exit 0 when the new policy allows nothing less, 1 when it does.
//
// With traces: sim::diffTraces() (sim/trace_diff.hpp) replays them under both policies; every
// flow with a packet whose verdict differs is listed with the reason under each policy, grouped by
// the rule change responsible. Exit 1 when any packet allowed under the old policy is denied under
// the new one.
//
// `statewall diff --plan plan.json [--policy SHARED...] [TRACE...]`: the same with the two policies
// of a Terraform plan (`terraform show -json`): before = its prior state (plan.json#prior), after =
// its planned values (plan.json#planned); --policy files are loaded on both sides.
//
// `--flow-logs LOG...` instead of traces: the logs are judged under both policies by the judge of
// `statewall flowlogs --against` (sim/flowlog_judge.hpp) and printed as it prints them. Exit 1 when
// the new policy breaks a logged ACCEPTed connection or opens a logged REJECTed one.
//
// Exit 2 on bad input (a policy that does not load, an unreadable or damaged trace, a broken flow
// log line: FILE:LINE).
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "decap_flags.hpp"
#include "flowlog_render.hpp"
#include "json_text.hpp"
#include "policy_input.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/policy_diff.hpp"
#include "statewall/sim/flowlog.hpp"
#include "statewall/sim/flowlog_judge.hpp"
#include "statewall/sim/trace_diff.hpp"

namespace statewall::cli {
namespace {

using rules::ChangeKind;
using rules::PolicyChange;
using rules::PolicyDiff;

struct DiffArgs {
  std::vector<std::string> old_files;
  std::vector<std::string> new_files;
  std::vector<std::string> traces;
  std::string plan;  // --plan: a Terraform plan gives both policies
  bool json = false;
  size_t max_flows = 20;  // flows listed per rule change in the text output
  size_t table_capacity = 1 << 20;
  std::string packets_path;  // --packets FILE.jsonl: every packet whose verdict changes
  DecapArgs decap;
  std::vector<std::string> flow_logs;  // --flow-logs: VPC Flow Logs instead of traces
  std::string log_format;              // --format: the fields of logs without a header line
};

// Loads and compiles one policy; prints diagnostics; nullptr on failure.
rules::CompiledPolicyPtr loadPolicy(const std::vector<std::string>& files, const char* which) {
  return loadCompiledPolicy(files, "diff", "nothing compared", which);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : " ") + x;
  return s;
}

std::string locStr(const rules::SourceLoc& loc) {
  return loc.str();
}

nlohmann::ordered_json changeJson(const PolicyChange& c) {
  nlohmann::ordered_json j = {{"kind", rules::changeKindName(c.kind)},
                              {"object", rules::objectKindName(c.object)},
                              {"name", c.name},
                              {"scope", c.scope},
                              {"before", c.before},
                              {"after", c.after},
                              {"detail", c.detail},
                              {"old_location", locStr(c.old_loc)},
                              {"new_location", locStr(c.new_loc)}};
  return j;
}

nlohmann::ordered_json effectJson(const rules::ScopeEffect& e) {
  return {{"scope", e.scope}, {"same", e.same},     {"narrower", e.narrower},
          {"wider", e.wider}, {"gained", e.gained}, {"lost", e.lost}};
}

std::string changeLine(const PolicyChange& c) {
  std::string text;
  switch (c.kind) {
    case ChangeKind::kAdded:
      text = c.after;
      break;
    case ChangeKind::kRemoved:
      text = c.before;
      break;
    case ChangeKind::kChanged:
    case ChangeKind::kMoved:
      text = c.before == c.after ? c.before : c.before + "  ->  " + c.after;
      break;
  }
  std::string s = fmt::format("  {:<8} {}", rules::changeKindName(c.kind), text);
  if (!c.detail.empty()) s += fmt::format("  ({})", c.detail);
  std::string where;
  if (!c.old_loc.file.empty()) where = c.old_loc.str();
  if (!c.new_loc.file.empty()) where += (where.empty() ? "" : " -> ") + c.new_loc.str();
  if (!where.empty()) s += "\n           [" + where + "]";
  return s;
}

std::string effectLine(const rules::ScopeEffect& e) {
  if (e.same) return "same packets allowed as before";
  std::string s;
  if (e.wider) s += "now also allows " + e.gained;
  if (e.narrower) s += std::string(s.empty() ? "" : "; ") + "no longer allows " + e.lost;
  return s;
}

int runRuleDiff(const DiffArgs& a, const rules::CompiledPolicy& old_p,
                const rules::CompiledPolicy& new_p) {
  const PolicyDiff diff = rules::diffPolicies(old_p, new_p);
  const bool narrows = diff.narrows();
  if (a.json) {
    nlohmann::ordered_json out;
    out["old"] = a.old_files;
    out["new"] = a.new_files;
    out["changes"] = nlohmann::ordered_json::array();
    for (const auto& c : diff.changes)
      out["changes"].push_back(changeJson(c));
    out["effects"] = nlohmann::ordered_json::array();
    for (const auto& e : diff.effects)
      out["effects"].push_back(effectJson(e));
    out["summary"] = {{"added", diff.count(ChangeKind::kAdded)},
                      {"removed", diff.count(ChangeKind::kRemoved)},
                      {"changed", diff.count(ChangeKind::kChanged)},
                      {"moved", diff.count(ChangeKind::kMoved)},
                      {"narrows", narrows}};
    std::printf("%s\n", jsonText(out, 2).c_str());
    return narrows ? 1 : 0;
  }

  std::printf("statewall diff: %s -> %s\n", joined(a.old_files).c_str(),
              joined(a.new_files).c_str());
  if (diff.empty()) std::printf("no rule changes\n");
  // Changes grouped by scope, in the order the diff lists them; each scope's effect under it.
  std::vector<std::string> scopes;
  std::map<std::string, std::vector<const PolicyChange*>> by_scope;
  for (const auto& c : diff.changes) {
    if (!by_scope.count(c.scope)) scopes.push_back(c.scope);
    by_scope[c.scope].push_back(&c);
  }
  std::map<std::string, const rules::ScopeEffect*> effect_of;
  for (const auto& e : diff.effects)
    effect_of[e.scope] = &e;
  for (const auto& scope : scopes) {
    std::printf("%s:\n", scope.c_str());
    for (const PolicyChange* c : by_scope[scope])
      std::printf("%s\n", changeLine(*c).c_str());
    if (auto it = effect_of.find(scope); it != effect_of.end())
      std::printf("  => %s\n", effectLine(*it->second).c_str());
  }
  bool header = false;
  for (const auto& e : diff.effects) {
    if (by_scope.count(e.scope) || e.same) continue;
    if (!header) std::printf("what interfaces and subnets allow:\n");
    header = true;
    std::printf("  %s: %s\n", e.scope.c_str(), effectLine(e).c_str());
  }
  std::printf(
      "%zu added, %zu removed, %zu changed, %zu moved; %s\n", diff.count(ChangeKind::kAdded),
      diff.count(ChangeKind::kRemoved), diff.count(ChangeKind::kChanged),
      diff.count(ChangeKind::kMoved),
      narrows ? "the new policy allows less (exit 1)" : "the new policy allows nothing less");
  return narrows ? 1 : 0;
}

// ---- the trace diff (sim/trace_diff.hpp): rendering ----

constexpr size_t kMaxChangedFlows = 100000;  // flows kept in detail; the rest are only counted

int runTraceDiff(const DiffArgs& a, const rules::CompiledPolicyPtr& old_p,
                 const rules::CompiledPolicyPtr& new_p) {
  sim::TraceDiffOptions opt;
  opt.table_capacity = a.table_capacity;
  opt.max_flows = kMaxChangedFlows;
  if (!decapOptions(a.decap, "diff", &opt.parse)) return 2;
  std::unique_ptr<FILE, int (*)(FILE*)> packets_out(nullptr, &std::fclose);
  if (!a.packets_path.empty()) {
    packets_out.reset(std::fopen(a.packets_path.c_str(), "w"));
    if (!packets_out) {
      std::fprintf(stderr, "statewall diff: cannot create %s\n", a.packets_path.c_str());
      return 2;
    }
    opt.on_packet = [&](const sim::ChangedPacket& p) {
      const nlohmann::ordered_json line = {
          {"packet", p.index},
          {"flow", p.flow.str()},
          {"old", {{"reason", p.old_reason}, {"detail", p.old_detail}}},
          {"new", {{"reason", p.new_reason}, {"detail", p.new_detail}}}};
      std::fprintf(packets_out.get(), "%s\n", jsonText(line).c_str());
    };
  }
  const sim::TraceDiffResult r = sim::diffTraces(old_p, new_p, a.traces, opt);
  for (const std::string& w : r.warnings)
    std::fprintf(stderr, "statewall diff: warning: %s\n", w.c_str());
  if (packets_out && (std::ferror(packets_out.get()) || std::fclose(packets_out.release()) != 0)) {
    std::fprintf(stderr, "statewall diff: error writing %s\n", a.packets_path.c_str());
    return 2;
  }
  if (r.error) {
    std::fprintf(stderr, "statewall diff: %s\n", r.error->c_str());
    return 2;
  }
  const rules::PolicyDiff& diff = r.diff;
  const int rc = r.breaks() ? 1 : 0;

  if (a.json) {
    nlohmann::ordered_json out;
    out["old"] = a.old_files;
    out["new"] = a.new_files;
    out["traces"] = a.traces;
    out["packets"] = r.packets;
    // Beyond kMaxChangedFlows flows, further flows are not kept: their packets are counted.
    out["summary"] = {{"changed_packets", r.changed_packets},
                      {"allowed_to_denied_packets", r.allowed_to_denied},
                      {"denied_to_allowed_packets", r.denied_to_allowed},
                      {"changed_flows", r.flows.size()},
                      {"connections_that_break", r.connections_that_break},
                      {"connections_that_open", r.connections_that_open},
                      {"packets_of_flows_not_listed", r.unlisted_packets}};
    out["groups"] = nlohmann::ordered_json::array();
    for (const sim::TraceDiffGroup& grp : r.groups) {
      nlohmann::ordered_json g;
      const bool known = grp.change >= 0;
      g["change"] = known ? changeJson(diff.changes[static_cast<size_t>(grp.change)])
                          : nlohmann::ordered_json(nullptr);
      g["flows"] = nlohmann::ordered_json::array();
      for (size_t i : grp.flows) {
        const sim::ChangedFlow& f = r.flows[i];
        nlohmann::ordered_json fj = {{"flow", f.first.str()},
                                     {"first_packet", f.first_index},
                                     {"changed_packets", f.packets},
                                     {"allowed_to_denied", f.now_denied},
                                     {"denied_to_allowed", f.now_allowed},
                                     {"old", {{"reason", f.old_reason}, {"detail", f.old_text}}},
                                     {"new", {{"reason", f.new_reason}, {"detail", f.new_text}}}};
        if (!known) fj["note"] = f.cause_note;
        g["flows"].push_back(std::move(fj));
      }
      out["groups"].push_back(std::move(g));
    }
    out["changes"] = nlohmann::ordered_json::array();
    for (const auto& c : diff.changes)
      out["changes"].push_back(changeJson(c));
    std::printf("%s\n", jsonText(out, 2).c_str());
    return rc;
  }

  std::printf("statewall diff: %s -> %s\n", joined(a.old_files).c_str(),
              joined(a.new_files).c_str());
  std::printf("traces: %s (%llu packets, read once, replayed under both policies)\n",
              joined(a.traces).c_str(), static_cast<unsigned long long>(r.packets));
  if (r.flows.empty()) std::printf("no packet changes verdict\n");
  for (const sim::TraceDiffGroup& grp : r.groups) {
    const bool known = grp.change >= 0;
    if (known) {
      const PolicyChange& c = diff.changes[static_cast<size_t>(grp.change)];
      std::printf("\n%s %s in %s:\n%s\n", std::string(rules::changeKindName(c.kind)).c_str(),
                  std::string(rules::objectKindName(c.object)).c_str(), c.scope.c_str(),
                  changeLine(c).c_str());
    } else {
      std::printf("\nnot explained by a single rule change:\n");
    }
    for (size_t k = 0; k < grp.flows.size() && k < a.max_flows; ++k) {
      const sim::ChangedFlow& f = r.flows[grp.flows[k]];
      std::printf("    %s  (%llu packet%s %s, first #%llu)\n", f.first.str().c_str(),
                  static_cast<unsigned long long>(f.packets), f.packets == 1 ? "" : "s",
                  f.now_denied > 0 ? (f.now_allowed > 0 ? "changed" : "now denied") : "now allowed",
                  static_cast<unsigned long long>(f.first_index));
      std::printf("      old: %s\n      new: %s\n", f.old_text.c_str(), f.new_text.c_str());
      if (!known && !f.cause_note.empty()) std::printf("      (%s)\n", f.cause_note.c_str());
    }
    if (grp.flows.size() > a.max_flows)
      std::printf("    ... and %zu more flows (--max-flows, or --json for all)\n",
                  grp.flows.size() - a.max_flows);
  }
  auto n = [](uint64_t v, const char* one, const char* many) {
    return fmt::format("{} {}", v, v == 1 ? one : many);
  };
  std::printf(
      "\n%s change verdict (%llu allowed -> denied, %llu denied -> allowed) in %s: %s "
      "would break, %llu would open%s\n",
      n(r.changed_packets, "packet", "packets").c_str(),
      static_cast<unsigned long long>(r.allowed_to_denied),
      static_cast<unsigned long long>(r.denied_to_allowed),
      n(r.flows.size(), "flow", "flows").c_str(),
      n(r.connections_that_break, "connection", "connections").c_str(),
      static_cast<unsigned long long>(r.connections_that_open), rc ? " (exit 1)" : "");
  if (r.unlisted_packets > 0)
    std::printf("(%llu more changed packets belong to flows beyond the first %zu, not listed)\n",
                static_cast<unsigned long long>(r.unlisted_packets), kMaxChangedFlows);
  std::printf(
      "rule changes: %zu added, %zu removed, %zu changed, %zu moved (without the trace: "
      "statewall diff --policy ... --against ...)\n",
      diff.count(ChangeKind::kAdded), diff.count(ChangeKind::kRemoved),
      diff.count(ChangeKind::kChanged), diff.count(ChangeKind::kMoved));
  return rc;
}

// ---- on flow logs (sim/flowlog_judge.hpp, as `statewall flowlogs --against`) ----

int runFlowLogDiff(const DiffArgs& a, const rules::CompiledPolicyPtr& old_p,
                   const rules::CompiledPolicyPtr& new_p) {
  const std::optional<sim::FlowLogFormat> fallback = logFormatOption("diff", a.log_format);
  if (!fallback) return 2;
  sim::FlowLogJudgeOptions opt;
  opt.table_capacity = a.table_capacity;
  sim::FlowLogJudge judge(old_p, new_p, opt);
  const sim::FlowLogFilesRead read = sim::judgeFlowLogFiles(judge, a.flow_logs, *fallback);
  if (read.error) {
    // Nothing is reported from a half-read input.
    std::fprintf(stderr, "statewall diff: %s; nothing compared\n", read.error->str().c_str());
    return 2;
  }
  judge.finish();
  const sim::FlowLogReport& r = judge.report();
  const int rc = r.break_connections + r.open_connections > 0 ? 1 : 0;
  const uint64_t differ = r.accept_rejected + r.reject_accepted;

  if (a.json) {
    nlohmann::ordered_json out;
    out["old"] = a.old_files;
    out["new"] = a.new_files;
    auto& logs = out["flow_logs"] = nlohmann::ordered_json::array();
    for (const auto& [path, n] : read.files)
      logs.push_back({{"path", path}, {"records", n}});
    out["records"] = {{"read", r.records}, {"judged", r.judged}, {"connections", r.connections}};
    // How well the old policy reproduces the logged actions (statewall flowlogs details it).
    out["old_agreement"] = {{"agree", r.agree},
                            {"accept_rejected", r.accept_rejected},
                            {"reject_accepted", r.reject_accepted}};
    addFlowLogChangesJson(r, &out);
    std::printf("%s\n", jsonText(out, 2).c_str());
    return rc;
  }

  std::string out =
      fmt::format("statewall diff: {} -> {}\n", joined(a.old_files), joined(a.new_files));
  for (const auto& [path, n] : read.files)
    out += fmt::format("flow log: {}: {} records\n", path, n);
  out += fmt::format("records: {} read, {} judged ({} connections), under both policies\n",
                     r.records, r.judged, r.connections);
  if (differ > 0) {
    out += fmt::format(
        "warning: the old policy does not reproduce {} of the {} judged records' logged actions "
        "(statewall flowlogs --policy OLD LOG... lists them): what ran is not quite the old "
        "policy\n",
        differ, r.judged);
  }
  out += "\n" + flowLogChangesText(r, a.max_flows);
  out += fmt::format(
      "rule changes: {} added, {} removed, {} changed, {} moved (without the logs: statewall diff "
      "--policy ... --against ...)\n",
      r.diff.count(ChangeKind::kAdded), r.diff.count(ChangeKind::kRemoved),
      r.diff.count(ChangeKind::kChanged), r.diff.count(ChangeKind::kMoved));
  std::fwrite(out.data(), 1, out.size(), stdout);
  return rc;
}

// Is `path` a pcap or pcapng trace (by its magic number)? The traces may follow --against's
// files on the command line (`--against NEW... TRACE`), where the option takes them in.
bool looksLikeTrace(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char m[4] = {0, 0, 0, 0};
  const size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  if (n < 4) return false;
  const uint32_t be = uint32_t{m[0]} << 24 | uint32_t{m[1]} << 16 | uint32_t{m[2]} << 8 | m[3];
  return be == 0xa1b2c3d4 || be == 0xd4c3b2a1 || be == 0xa1b23c4d || be == 0x4d3cb2a1 ||
         be == 0x0a0d0d0a;
}

int runDiff(DiffArgs a) {
  for (auto* list : {&a.old_files, &a.new_files}) {
    std::vector<std::string> keep;
    for (auto& f : *list)
      (looksLikeTrace(f) ? a.traces : keep).push_back(f);
    *list = std::move(keep);
  }
  if (!a.plan.empty()) {
    if (!a.new_files.empty()) {
      std::fprintf(stderr,
                   "statewall diff: --plan gives both policies (its prior state and its planned "
                   "values): expected no --against\n");
      return 2;
    }
    const std::vector<std::string> shared = a.old_files;
    a.old_files = {a.plan + "#prior"};
    a.new_files = {a.plan + "#planned"};
    for (const auto& f : shared) {
      a.old_files.push_back(f);
      a.new_files.push_back(f);
    }
  }
  if (!a.flow_logs.empty() && !a.traces.empty()) {
    std::fprintf(stderr,
                 "statewall diff: give traces or --flow-logs, not both (nothing compared)\n");
    return 2;
  }
  if (a.old_files.empty() || a.new_files.empty()) {
    std::fprintf(stderr,
                 "statewall diff: --policy and --against each need a policy file (or --plan "
                 "PLAN.json)\n");
    return 2;
  }
  const rules::CompiledPolicyPtr old_p = loadPolicy(a.old_files, "old");
  if (!old_p) return 2;
  const rules::CompiledPolicyPtr new_p = loadPolicy(a.new_files, "new");
  if (!new_p) return 2;
  if (!a.flow_logs.empty()) return runFlowLogDiff(a, old_p, new_p);
  if (!a.traces.empty()) return runTraceDiff(a, old_p, new_p);
  return runRuleDiff(a, *old_p, *new_p);
}

}  // namespace

void addDiffCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* cmd = app.add_subcommand(
      "diff", "What changes from one policy to another: on a trace, or rule by rule without one");
  cmd->footer(
      "With traces: every flow whose verdict changes, with the reason under each policy,\n"
      "grouped by the rule change responsible. Exit 1 when a packet allowed before is denied.\n"
      "Without: rules added, removed and changed, matched by content even when reordered (ACL\n"
      "entries by content, then number). Exit 1 when the new policy allows less somewhere.\n"
      "With --plan (terraform show -json of a plan): old = its prior state, new = its planned\n"
      "values; --policy files then go to both sides.\n"
      "With --flow-logs LOG...: the logged connections the new policy breaks (logged ACCEPT, now\n"
      "rejected) or opens (logged REJECT, now accepted), grouped by rule change; exit 1 if any.\n"
      "Exit 2 on bad input.\n"
      "Example: statewall diff --policy old.yaml --against new.yaml trace.pcap\n"
      "         statewall diff --plan plan.json trace.pcap\n"
      "         statewall diff --plan plan.json --flow-logs eni-flows.log.gz");
  cmd->add_option("--policy", args->old_files, "the current policy's files");
  cmd->add_option("--against", args->new_files, "the new policy's files");
  cmd->add_option("--plan", args->plan,
                  "a Terraform plan (terraform show -json): its prior state against its planned "
                  "values");
  cmd->add_option("traces", args->traces, "pcap or pcapng files, read once as one stream");
  cmd->add_flag("--json", args->json,
                "print one JSON object ({changes, effects, summary}, or {summary, groups} with "
                "traces, or {records, changes, ...} with --flow-logs)");
  cmd->add_option("--max-flows", args->max_flows, "flows listed per rule change (default 20)");
  cmd->add_option("--packets", args->packets_path,
                  "write every packet whose verdict changes to this file (JSON lines)");
  cmd->add_option("--table-capacity", args->table_capacity,
                  "connection-table capacity of each engine (IPv4)");
  cmd->add_option("--flow-logs", args->flow_logs,
                  "VPC Flow Logs (plain or .gz) to judge under both policies instead of traces");
  cmd->add_option("--format", args->log_format,
                  "with --flow-logs: the fields of logs without a header line, e.g. '${version} "
                  "${srcaddr} ...'");
  addDecapFlags(cmd, &args->decap);
  cmd->callback([args, exit_code]() { *exit_code = runDiff(*args); });
}

}  // namespace statewall::cli
