#include "policy_input.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "statewall/rules/load_compile.hpp"

namespace statewall::cli {

CLI::Option* addPolicyOption(CLI::App* cmd, std::vector<std::string>* files) {
  return cmd
      ->add_option("--policy,-p", *files,
                   "policy file (YAML, AWS JSON, or Terraform JSON: plan.json, plan.json#prior); "
                   "repeat for a policy in several files")
      ->required()
      ->allow_extra_args(false);
}

rules::CompiledPolicyPtr loadCompiledPolicy(const std::vector<std::string>& files,
                                            std::string_view command, std::string_view nothing_done,
                                            std::string_view which) {
  const std::string what = which.empty() ? "policy" : fmt::format("{} policy", which);
  rules::LoadCompileResult r = rules::loadAndCompile(files);
  for (const auto& d : r.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!r.policy) {
    std::fprintf(stderr, "statewall %.*s: the %s %s; %.*s\n", static_cast<int>(command.size()),
                 command.data(), what.c_str(), r.loaded ? "does not compile" : "has errors",
                 static_cast<int>(nothing_done.size()), nothing_done.data());
  }
  return r.policy;
}

}  // namespace statewall::cli
