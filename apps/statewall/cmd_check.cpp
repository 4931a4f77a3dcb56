// `statewall check FILE...`: load, validate and compile one policy from several files; print a
// summary and the warnings. Exit 0 valid, 1 invalid, 2 usage error.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "json_text.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/load_compile.hpp"

namespace statewall::cli {
namespace {

struct CheckArgs {
  std::vector<std::string> files;
  bool json = false;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : " ") + x;
  return s;
}

std::string plural(size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

int runCheck(const CheckArgs& a) {
  rules::LoadCompileResult loaded = rules::loadAndCompile(a.files);
  const rules::Diagnostics& diags = loaded.diagnostics;
  const rules::CompiledPolicyPtr& compiled = loaded.policy;
  size_t n_errors = 0, n_warnings = 0;
  for (const auto& d : diags)
    (d.severity == rules::Severity::kError ? n_errors : n_warnings)++;
  const bool valid = compiled != nullptr && n_errors == 0;

  if (a.json) {
    nlohmann::ordered_json out;
    out["valid"] = valid;
    out["files"] = a.files;
    auto list = [&](rules::Severity sev) {
      nlohmann::ordered_json l = nlohmann::ordered_json::array();
      for (const auto& d : diags)
        if (d.severity == sev) l.push_back({{"location", d.loc.str()}, {"message", d.message}});
      return l;
    };
    out["errors"] = list(rules::Severity::kError);
    out["warnings"] = list(rules::Severity::kWarning);
    if (valid) {
      const rules::Policy& p = compiled->source();
      size_t in = 0, outb = 0, entries = 0;
      for (const auto& g : p.groups)
        in += g.inbound.size(), outb += g.outbound.size();
      for (const auto& acl : p.acls)
        entries += acl.inbound.size() + acl.outbound.size();
      out["summary"] = {{"groups", p.groups.size()},
                        {"rules", in + outb},
                        {"inbound_rules", in},
                        {"outbound_rules", outb},
                        {"interfaces", p.interfaces.size()},
                        {"subnets", p.subnets.size()},
                        {"network_acls", p.acls.size()},
                        {"acl_entries", entries},
                        {"prefix_lists", p.prefix_lists.size()}};
    }
    std::printf("%s\n", jsonText(out, 2).c_str());
    return valid ? 0 : 1;
  }

  // Errors and warnings go to stderr, one per line, as FILE:LINE:COL: error: MESSAGE.
  for (const auto& d : diags)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!valid) {
    std::fprintf(stderr, "%s: invalid policy (%s, %s)\n", joined(a.files).c_str(),
                 plural(n_errors, "error", "errors").c_str(),
                 plural(n_warnings, "warning", "warnings").c_str());
    return 1;
  }

  const rules::Policy& p = compiled->source();
  size_t in = 0, outb = 0, entries = 0, no_subnet = 0, unused_groups = 0;
  for (const auto& g : p.groups)
    in += g.inbound.size(), outb += g.outbound.size();
  for (const auto& acl : p.acls)
    entries += acl.inbound.size() + acl.outbound.size();
  std::vector<bool> used(p.groups.size(), false);
  for (size_t i = 0; i < compiled->ifaceCount(); ++i) {
    const auto& itf = compiled->iface(static_cast<rules::IfaceId>(i));
    if (itf.subnet == rules::kNoSubnet) ++no_subnet;
    for (uint16_t g : itf.groups)
      used[g] = true;
  }
  for (bool u : used)
    unused_groups += !u;

  std::printf("%s: valid policy\n", joined(a.files).c_str());
  std::printf("  security groups: %zu (%s: %zu inbound, %zu outbound)\n", p.groups.size(),
              plural(in + outb, "rule", "rules").c_str(), in, outb);
  std::printf("  interfaces:      %zu\n", p.interfaces.size());
  std::printf("  subnets:         %zu\n", p.subnets.size());
  std::printf("  network ACLs:    %zu (%s)\n", p.acls.size(),
              plural(entries, "entry", "entries").c_str());
  std::printf("  prefix lists:    %zu\n", p.prefix_lists.size());
  std::printf("  unprotected:     %s\n", p.unprotected_allow ? "allow" : "deny");
  if (no_subnet > 0)
    std::printf("  note: %s in no subnet (no network ACL applies to them)\n",
                plural(no_subnet, "interface is", "interfaces are").c_str());
  if (unused_groups > 0)
    std::printf("  note: %s not attached to any interface\n",
                plural(unused_groups, "group is", "groups are").c_str());
  std::printf("  warnings:        %zu\n", n_warnings);
  return 0;
}

}  // namespace

void addCheckCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Validate a policy (YAML, AWS JSON or Terraform JSON; the files together form one policy)");
  cmd->footer(
      "Exit status: 0 valid, 1 invalid (each error on stderr as FILE:LINE:COL: error: MESSAGE),\n"
      "2 usage error.\n"
      "Example: statewall check examples/aws/*.json");
  cmd->add_option("files", args->files, "policy files")->required();
  cmd->add_flag("--json", args->json, "print one JSON object {valid, errors, warnings, summary}");
  cmd->callback([args, exit_code]() { *exit_code = runCheck(*args); });
}

}  // namespace statewall::cli
