// The `statewall` subcommands. Each add*Command() registers one CLI11 subcommand on `app`;
// when that subcommand runs, its callback stores the process exit code in *exit_code
// (0 success, 1 a negative answer such as an invalid policy or a failed expectation, 2 usage or
// input error).
#pragma once

#include <CLI/CLI.hpp>

namespace statewall::cli {

void addCheckCommand(CLI::App& app, int* exit_code);
void addQueryCommand(CLI::App& app, int* exit_code);
void addReplayCommand(CLI::App& app, int* exit_code);
void addGenCommand(CLI::App& app, int* exit_code);
void addCtlCommand(CLI::App& app, int* exit_code);
void addLintCommand(CLI::App& app, int* exit_code);
void addDiffCommand(CLI::App& app, int* exit_code);
void addReportCommand(CLI::App& app, int* exit_code);
void addExplainCommand(CLI::App& app, int* exit_code);
void addExportCommand(CLI::App& app, int* exit_code);
void addPlaygroundCommand(CLI::App& app, int* exit_code);
void addFlowLogsCommand(CLI::App& app, int* exit_code);

}  // namespace statewall::cli
