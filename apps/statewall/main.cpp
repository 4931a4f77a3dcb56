// statewall: offline policy checking, queries, pcap replay, explanations and reports.
#include <cstdio>
#include <exception>
#include <new>

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
  statewall::cli::addPlaygroundCommand(app, &exit_code);
  statewall::cli::addFlowLogsCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // --help and --version are successes; every other parse error is a usage error.
    return rc == 0 ? 0 : 2;
  } catch (const std::bad_alloc&) {
    // Bad input gets its own message where it is read; what reaches here is a bug or a limit
    // of the machine, and still not a crash.
    std::fprintf(stderr, "statewall: internal error: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "statewall: internal error: %s\n", e.what());
    return 2;
  } catch (...) {
    std::fprintf(stderr, "statewall: internal error: unknown exception\n");
    return 2;
  }
  return exit_code;
}
