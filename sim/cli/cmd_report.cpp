// `statewall report`: one self-contained HTML page about a policy and a trace.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
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
  bool quiet = false;
};

int runReport(const ReportArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  rules::LoadResult loaded = rules::loadPolicyFiles(a.policies);
  for (const auto& d : loaded.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!loaded.ok()) {
    std::fprintf(stderr, "statewall report: the policy has errors; no report\n");
    return 2;
  }
  rules::CompileResult compiled = rules::compile(*loaded.policy);
  for (const auto& d : compiled.diagnostics)
    std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!compiled.policy) {
    std::fprintf(stderr, "statewall report: the policy does not compile; no report\n");
    return 2;
  }
  sim::ReportOptions o;
  if (!a.title.empty()) o.title = a.title;
  o.ladder_connections = a.ladders;
  o.ladder_arrows = a.arrows;
  o.max_connections = a.max_connections;

  // Created first, so that a bad output path is reported before a long replay.
  FILE* f = std::fopen(a.html.c_str(), "wb");
  if (f == nullptr) {
    std::perror(("statewall report: " + a.html).c_str());
    return 2;
  }
  sim::ReportData data;
  std::string err;
  if (!sim::buildReport(compiled.policy, a.traces, o, &data, &err)) {
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
  cmd->add_option("--policy,-p", args->policies,
                  "policy file (YAML or AWS JSON); repeat for a policy in several files")
      ->required()
      ->allow_extra_args(false);
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
  cmd->add_flag("--quiet,-q", args->quiet, "do not print what was written");
  cmd->callback([args, exit_code]() { *exit_code = runReport(*args); });
}

}  // namespace statewall::cli
