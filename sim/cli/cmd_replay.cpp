// `statewall replay`: what would this policy have let through in this capture, and why.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/expect.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::cli {
namespace {

struct ReplayArgs {
  std::vector<std::string> policies;
  std::vector<std::string> traces;
  bool json = false;
  std::string verdicts;
  std::string allowed;
  std::string denied;
  std::string connections;
  std::string connections_format = "jsonl";
  bool stateless = false;
  std::string expect;
  size_t top = 10;
  size_t table_capacity = 0;
  unsigned burst = 32;
  bool pass_non_ip = false;
  std::string progress = "auto";
};

void printDiagnostics(const rules::Diagnostics& diags) {
  for (const auto& d : diags)
    std::fprintf(stderr, "%s\n", d.str().c_str());
}

int runReplay(const ReplayArgs& a) {
  rules::LoadResult loaded = rules::loadPolicyFiles(a.policies);
  printDiagnostics(loaded.diagnostics);
  if (!loaded.ok()) {
    std::fprintf(stderr, "statewall replay: the policy has errors; nothing replayed\n");
    return 2;
  }
  rules::CompileResult compiled = rules::compile(*loaded.policy);
  printDiagnostics(compiled.diagnostics);
  if (!compiled.policy) {
    std::fprintf(stderr, "statewall replay: the policy does not compile; nothing replayed\n");
    return 2;
  }

  std::optional<sim::Expectations> expectations;
  if (!a.expect.empty()) {
    std::string err;
    expectations = sim::Expectations::load(a.expect, &err);
    if (!expectations) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 2;
    }
  }

  sim::ReplayOptions o;
  o.verdicts_path = a.verdicts;
  o.allowed_path = a.allowed;
  o.denied_path = a.denied;
  o.connections_path = a.connections;
  o.connections_format =
      a.connections_format == "tsv" ? sim::ConnFormat::kTsv : sim::ConnFormat::kJsonl;
  o.stateless = a.stateless;
  o.progress = a.progress == "always" || (a.progress == "auto" && ::isatty(STDERR_FILENO) == 1);
  o.top_flows = a.top;
  o.table_capacity = a.table_capacity;
  o.burst = a.burst;
  o.pass_non_ip = a.pass_non_ip;
  o.expectations = expectations ? &*expectations : nullptr;

  sim::Replay replay(compiled.policy, o);
  std::string err;
  if (!replay.openOutputs(&err)) {
    std::fprintf(stderr, "statewall replay: %s\n", err.c_str());
    return 2;
  }
  const bool complete = replay.runFiles(a.traces);
  bool wrote = replay.finish(&err);

  std::vector<sim::ExpectResult> results;
  if (expectations) results = expectations->results();
  const auto* res = expectations ? &results : nullptr;
  const std::string summary = a.json
                                  ? sim::formatSummaryJson(replay.summary(), replay.policy(), res)
                                  : sim::formatSummaryText(replay.summary(), replay.policy(), res);
  std::fwrite(summary.data(), 1, summary.size(), stdout);
  std::fflush(stdout);

  if (!complete) {
    std::fprintf(stderr, "statewall replay: %s\n", replay.summary().error->str().c_str());
    std::fprintf(stderr,
                 "statewall replay: the summary covers the %llu packets before that point\n",
                 static_cast<unsigned long long>(replay.summary().packets));
    return 2;
  }
  if (!wrote) {
    std::fprintf(stderr, "statewall replay: %s\n", err.c_str());
    return 2;
  }
  if (expectations && !expectations->allPassed()) {
    size_t failed = 0;
    for (const auto& r : results)
      failed += r.passed ? 0 : 1;
    std::fprintf(stderr, "statewall replay: %zu of %zu expectations failed\n", failed,
                 results.size());
    return 1;
  }
  return 0;
}

}  // namespace

void addReplayCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd = app.add_subcommand(
      "replay", "Replay pcap/pcapng traces through a policy: what it allows, denies, and why");
  cmd->add_option("--policy,-p", args->policies,
                  "policy file (YAML or AWS JSON); repeat for a policy in several files")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("traces", args->traces, "pcap or pcapng files, replayed in order as one stream")
      ->required();
  cmd->add_flag("--json", args->json, "print the summary as JSON");
  cmd->add_option("--verdicts", args->verdicts, "write one JSON object per packet (JSON lines)");
  cmd->add_option("--allowed", args->allowed, "write the allowed packets to this pcap");
  cmd->add_option("--denied", args->denied, "write the denied packets to this pcap");
  cmd->add_option("--connections", args->connections,
                  "write one record per connection (Zeek conn.log vocabulary)");
  cmd->add_option("--connections-format", args->connections_format,
                  "jsonl (default) or tsv (Zeek's tab-separated conn.log)")
      ->check(CLI::IsMember({"jsonl", "tsv"}));
  cmd->add_flag("--stateless", args->stateless,
                "also judge every packet by the rules alone and show what changes");
  cmd->add_option(
      "--expect", args->expect,
      "YAML assertions; exit 1 when one fails (see docs in sim/include/.../expect.hpp)");
  cmd->add_option("--top", args->top, "how many denied flows the summary lists")
      ->capture_default_str();
  cmd->add_option("--table-capacity", args->table_capacity,
                  "connection-table capacity (IPv4); default: sized from the traces, at most "
                  "1048576");
  cmd->add_option("--burst", args->burst,
                  "packets per engine call (1..64); a burst also spans at most 1 ms of trace time")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->add_flag("--pass-non-ip", args->pass_non_ip,
                "let non-IP frames (other than ARP) pass as allow-unprotected");
  cmd->add_option("--progress", args->progress,
                  "progress bar on stderr: auto (when it is a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->callback([args, exit_code]() { *exit_code = runReplay(*args); });
}

}  // namespace statewall::cli
