// `statewall lint --policy P...`: what is wrong or risky in a policy (rules/lint.hpp), each
// finding with a stable code, a severity, its location and a one-line fix.
// Exit 0 when nothing at or above --min-severity is found, 1 otherwise, 2 on bad input.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "json_text.hpp"
#include "policy_input.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/lint.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::cli {
namespace {

using rules::LintSeverity;

struct LintArgs {
  std::vector<std::string> policies;
  bool json = false;
  std::string min_severity = "warning";
  std::string ephemeral = "1024-65535";
  bool list_checks = false;
};

std::string locStr(const rules::SourceLoc& loc) {
  const std::string s = loc.str();
  return s.empty() ? "<policy>" : s;
}

int listChecks(bool json) {
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const rules::LintCheck& c : rules::lintChecks())
      out.push_back({{"code", c.code},
                     {"name", c.name},
                     {"severity", rules::lintSeverityName(c.severity)},
                     {"title", c.title}});
    std::printf("%s\n", jsonText(out, 2).c_str());
    return 0;
  }
  for (const rules::LintCheck& c : rules::lintChecks())
    std::printf("%s  %-7s  %-27s %s\n", std::string(c.code).c_str(),
                std::string(rules::lintSeverityName(c.severity)).c_str(),
                std::string(c.name).c_str(), std::string(c.title).c_str());
  return 0;
}

int runLint(const LintArgs& a) {
  if (a.list_checks) return listChecks(a.json);
  if (a.policies.empty()) {
    std::fprintf(stderr, "statewall lint: --policy FILE... is required\n");
    return 2;
  }
  const auto min = rules::parseLintSeverity(a.min_severity);
  if (!min) {
    std::fprintf(stderr,
                 "statewall lint: --min-severity must be info, warning or error, not '%s'\n",
                 a.min_severity.c_str());
    return 2;
  }
  rules::LintOptions options;
  if (!rules::parsePortRange(a.ephemeral, &options.ephemeral_lo, &options.ephemeral_hi)) {
    std::fprintf(stderr,
                 "statewall lint: --ephemeral-ports must be LO-HI within 0-65535, not '%s'\n",
                 a.ephemeral.c_str());
    return 2;
  }

  const rules::CompiledPolicyPtr policy = loadCompiledPolicy(a.policies, "lint", "nothing linted");
  if (!policy) return 2;

  const std::vector<rules::LintFinding> all = rules::lintPolicy(*policy, options);
  std::vector<const rules::LintFinding*> shown;
  size_t counts[3] = {0, 0, 0};
  size_t hidden = 0;
  for (const auto& f : all) {
    if (f.severity < *min) {
      ++hidden;
      continue;
    }
    shown.push_back(&f);
    ++counts[static_cast<size_t>(f.severity)];
  }

  if (a.json) {
    nlohmann::ordered_json out;
    out["files"] = a.policies;
    out["min_severity"] = rules::lintSeverityName(*min);
    out["findings"] = nlohmann::ordered_json::array();
    for (const rules::LintFinding* f : shown) {
      nlohmann::ordered_json j = {{"code", f->code},
                                  {"name", f->name},
                                  {"severity", rules::lintSeverityName(f->severity)},
                                  {"location", f->loc.str()},
                                  {"subject", f->subject},
                                  {"message", f->message},
                                  {"fix", f->fix}};
      j["related"] = nlohmann::ordered_json::array();
      for (const auto& r : f->related)
        j["related"].push_back({{"what", r.what}, {"location", r.loc.str()}});
      out["findings"].push_back(std::move(j));
    }
    out["counts"] = {{"error", counts[2]}, {"warning", counts[1]}, {"info", counts[0]}};
    out["below_min_severity"] = hidden;
    std::printf("%s\n", jsonText(out, 2).c_str());
  } else {
    for (const rules::LintFinding* f : shown) {
      std::printf("%s: %s %s %s: %s: %s\n", locStr(f->loc).c_str(),
                  std::string(rules::lintSeverityName(f->severity)).c_str(), f->code.c_str(),
                  f->name.c_str(), f->subject.c_str(), f->message.c_str());
      std::printf("    fix: %s\n", f->fix.c_str());
      for (const auto& r : f->related)
        std::printf("    see: %s [%s]\n", r.what.c_str(), locStr(r.loc).c_str());
    }
    std::string summary =
        shown.empty()
            ? std::string("no findings")
            : fmt::format("{} finding{} ({} error{}, {} warning{}, {} info)", shown.size(),
                          shown.size() == 1 ? "" : "s", counts[2], counts[2] == 1 ? "" : "s",
                          counts[1], counts[1] == 1 ? "" : "s", counts[0]);
    summary += fmt::format(" at or above {}", rules::lintSeverityName(*min));
    if (hidden > 0)
      summary += fmt::format("; {} below it not shown (--min-severity info shows all)", hidden);
    std::printf("%s\n", summary.c_str());
  }
  return shown.empty() ? 0 : 1;
}

}  // namespace

void addLintCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<LintArgs>();
  CLI::App* cmd = app.add_subcommand(
      "lint", "Find what is wrong or risky in a policy (open admin ports, dead rules, ACL traps)");
  cmd->footer(
      "Each finding: FILE:LINE:COL (or FILE: JSON-PATH): SEVERITY CODE NAME: SUBJECT: MESSAGE,\n"
      "then a one-line fix. Codes are stable; --list-checks prints them all.\n"
      "Exit status: 0 nothing at or above --min-severity, 1 findings, 2 bad input.\n"
      "Example: statewall lint --policy examples/aws/*.json --min-severity error");
  cmd->add_option("--policy", args->policies,
                  "policy files (YAML, AWS JSON or Terraform JSON), one policy");
  cmd->add_flag("--json", args->json, "print one JSON object {files, findings, counts}");
  cmd->add_option("--min-severity", args->min_severity,
                  "report findings at or above: info, warning (default) or error");
  cmd->add_option("--ephemeral-ports", args->ephemeral,
                  "ports replies come back to, for the stateless-ACL check (default 1024-65535)");
  cmd->add_flag("--list-checks", args->list_checks, "print every check's code and exit");
  cmd->callback([args, exit_code]() { *exit_code = runLint(*args); });
}

}  // namespace statewall::cli
