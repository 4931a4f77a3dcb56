// `statewall diff --policy OLD... --against NEW...`: the rules added, removed and changed
// between two policies (matched up even when reordered), and whether what each group, ACL,
// interface and subnet allows changed (rules/policy_diff.hpp).
// Exit 0 when the new policy allows nothing less, 1 when it does, 2 on bad input.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/policy_diff.hpp"

namespace statewall::cli {
namespace {

using rules::ChangeKind;
using rules::PolicyChange;
using rules::PolicyDiff;

struct DiffArgs {
  std::vector<std::string> old_files;
  std::vector<std::string> new_files;
  bool json = false;
};

// Loads and compiles one policy; prints diagnostics; nullptr on failure.
rules::CompiledPolicyPtr loadPolicy(const std::vector<std::string>& files, const char* which) {
  rules::LoadResult loaded = rules::loadPolicyFiles(files);
  for (const auto& d : loaded.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!loaded.policy) {
    std::fprintf(stderr, "statewall diff: the %s policy does not load (run statewall check)\n",
                 which);
    return nullptr;
  }
  rules::CompileResult compiled = rules::compile(*loaded.policy);
  for (const auto& d : compiled.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!compiled.policy)
    std::fprintf(stderr, "statewall diff: the %s policy does not compile\n", which);
  return compiled.policy;
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
    std::printf("%s\n", out.dump(2).c_str());
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

int runDiff(const DiffArgs& a) {
  const rules::CompiledPolicyPtr old_p = loadPolicy(a.old_files, "old");
  if (!old_p) return 2;
  const rules::CompiledPolicyPtr new_p = loadPolicy(a.new_files, "new");
  if (!new_p) return 2;
  return runRuleDiff(a, *old_p, *new_p);
}

}  // namespace

void addDiffCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* cmd = app.add_subcommand(
      "diff", "What changes from one policy to another: rules added, removed and changed");
  cmd->footer(
      "Rules are matched by content even when reordered; ACL entries by content, then number.\n"
      "Exit status: 0 the new policy allows nothing less, 1 it allows less somewhere (an\n"
      "interface's groups or a subnet's ACL), 2 bad input.\n"
      "Example: statewall diff --policy old.yaml --against new.yaml");
  cmd->add_option("--policy", args->old_files, "the current policy's files")->required();
  cmd->add_option("--against", args->new_files, "the new policy's files")->required();
  cmd->add_flag("--json", args->json, "print one JSON object {changes, effects, summary}");
  cmd->callback([args, exit_code]() { *exit_code = runDiff(*args); });
}

}  // namespace statewall::cli
