// `statewall report`: one self-contained HTML page about a policy and a trace.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "decap_flags.hpp"
#include "policy_input.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/report.hpp"

namespace statewall::cli {
namespace {

struct ReportArgs {
  std::vector<std::string> policies;
  std::vector<std::string> traces;
  std::string html;
  std::string title;
  size_t ladders = sim::ReportOptions{}.ladder_connections;
  size_t arrows = sim::ReportOptions{}.ladder_arrows;
  size_t max_connections = sim::ReportOptions{}.max_connections;
  size_t table_capacity = 0;
  bool quiet = false;
  DecapArgs decap;
};

int runReport(const ReportArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  const rules::CompiledPolicyPtr policy = loadCompiledPolicy(a.policies, "report", "no report");
  if (!policy) return 2;
  sim::ReportOptions o;
  if (!a.title.empty()) o.title = a.title;
  o.ladder_connections = a.ladders;
  o.ladder_arrows = a.arrows;
  o.max_connections = a.max_connections;
  o.table_capacity = a.table_capacity;
  if (!decapOptions(a.decap, "report", &o.parse)) return 2;

  // Created first, so that a bad output path is reported before a long replay.
  FILE* f = std::fopen(a.html.c_str(), "wb");
  if (f == nullptr) {
    std::perror(("statewall report: " + a.html).c_str());
    return 2;
  }
  sim::ReportData data;
  std::string err;
  if (!sim::buildReport(policy, a.traces, o, &data, &err)) {
    std::fclose(f);
    std::remove(a.html.c_str());
    std::fprintf(stderr, "statewall report: %s\n", err.c_str());
    return 2;
  }
  const std::string page = sim::renderReportHtml(data);
  const bool ok = std::fwrite(page.data(), 1, page.size(), f) == page.size();
  if (std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "statewall report: %s: write failed\n", a.html.c_str());
    return 2;
  }
  for (const std::string& w : sim::skippedInterfaceWarnings(data.summary))
    std::fprintf(stderr, "statewall report: warning: %s\n", w.c_str());
  if (data.summary.error) {
    std::fprintf(stderr,
                 "statewall report: warning: %s\nstatewall report: wrote %s anyway: it covers the "
                 "%llu packets before that point\n",
                 data.summary.error->str().c_str(), a.html.c_str(),
                 static_cast<unsigned long long>(data.summary.packets));
    return 2;
  }
  if (!a.quiet) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr,
                 "statewall report: wrote %s (%zu bytes; %llu packets, %llu connections) "
                 "in %.2f s\n",
                 a.html.c_str(), page.size(), static_cast<unsigned long long>(data.summary.packets),
                 static_cast<unsigned long long>(data.connections_total), secs);
  }
  return 0;
}

}  // namespace

void addReportCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Write one self-contained HTML page: verdicts, rule hits, ladders per connection, "
      "the TCP state machine, the stateless contrast and the connection table");
  addPolicyOption(cmd, &args->policies);
  cmd->add_option("traces", args->traces, "pcap or pcapng files, replayed in order as one stream")
      ->required();
  cmd->add_option("--html,-o", args->html, "the HTML file to write")->required();
  cmd->add_option("--title", args->title, "the page title");
  cmd->add_option("--ladders", args->ladders, "connections that get a ladder diagram (the first N)")
      ->capture_default_str();
  cmd->add_option("--ladder-packets", args->arrows, "packets drawn per ladder at most")
      ->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections,
                  "connections listed on the page (the first N)")
      ->capture_default_str();
  cmd->add_option("--table-capacity", args->table_capacity,
                  "connection-table capacity, as for replay (0: sized from the trace)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "do not print what was written");
  addDecapFlags(cmd, &args->decap);
  cmd->callback([args, exit_code]() { *exit_code = runReport(*args); });
}

}  // namespace statewall::cli
