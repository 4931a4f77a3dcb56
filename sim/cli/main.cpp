// statewall: offline policy checking, queries, pcap replay, explanations and reports.
#include <cstdio>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"statewall: stateful security-group firewall engine (offline tools)"};
  app.require_subcommand(1);
  int exit_code = 0;
  statewall::cli::addCheckCommand(app, &exit_code);
  statewall::cli::addQueryCommand(app, &exit_code);
  statewall::cli::addReplayCommand(app, &exit_code);
  statewall::cli::addGenCommand(app, &exit_code);
  statewall::cli::addCtlCommand(app, &exit_code);
  statewall::cli::addLintCommand(app, &exit_code);
  statewall::cli::addDiffCommand(app, &exit_code);
  statewall::cli::addReportCommand(app, &exit_code);
  statewall::cli::addExplainCommand(app, &exit_code);
  statewall::cli::addExportCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // --help and --version are successes; every other parse error is a usage error.
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
