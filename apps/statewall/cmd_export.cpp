// `statewall export --nft --policy FILE...`: the policy's security groups as an nftables ruleset
// for a Linux router (sim/include/statewall/sim/nft_export.hpp says what it does and does not
// translate). Exit 0 translated, 1 the policy cannot be translated, 2 usage or input error.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "policy_input.hpp"
#include "statewall/sim/nft_export.hpp"

namespace statewall::cli {
namespace {

struct ExportArgs {
  std::vector<std::string> policy_files;
  bool nft = false;
  bool sysctl = false;
  std::string table = "statewall";
};

int runExport(const ExportArgs& a) {
  if (!a.nft) {
    std::fprintf(stderr, "statewall export: say which format: --nft\n");
    return 2;
  }
  rules::CompiledPolicyPtr policy =
      loadCompiledPolicy(a.policy_files, "export", "nothing exported");
  if (!policy) return 2;
  const sim::NftExport e = sim::exportNft(*policy, {.table = a.table});
  for (const auto& w : e.warnings)
    std::fprintf(stderr, "statewall export: warning: %s\n", w.c_str());
  if (!e.ok()) {
    for (const auto& err : e.errors)
      std::fprintf(stderr, "statewall export: error: %s\n", err.c_str());
    return 1;
  }
  std::fputs(e.ruleset.c_str(), stdout);
  if (a.sysctl) {
    std::printf("\n# conntrack timeouts (sysctl.conf format; per network namespace)\n");
    for (const auto& [key, value] : sim::conntrackSysctls(policy->timeouts()))
      std::printf("# %s = %u\n", key.c_str(), value);
  }
  return 0;
}

}  // namespace

void addExportCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Translate a policy's security groups for another firewall (nftables)");
  cmd->footer(
      "Exit status: 0 translated, 1 the policy cannot be translated (network ACLs), 2 usage or\n"
      "input error.\n"
      "Example: statewall export --nft --policy examples/three-tier.yaml | nft -f -");
  addPolicyOption(cmd, &args->policy_files);
  cmd->add_flag("--nft", args->nft, "an nftables ruleset (nft -f) with conntrack");
  cmd->add_option("--table", args->table, "the nftables table's name (default statewall)");
  cmd->add_flag("--sysctl", args->sysctl,
                "also print the policy's idle timeouts as net.netfilter.nf_conntrack_* settings");
  cmd->callback([args, exit_code]() { *exit_code = runExport(*args); });
}

}  // namespace statewall::cli
