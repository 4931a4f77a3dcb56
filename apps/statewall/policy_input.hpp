// The policy files every offline command takes (--policy/-p, repeatable), loaded and compiled the
// same way by all of them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "statewall/rules/compiled.hpp"

namespace statewall::cli {

// Adds the required, repeatable `--policy,-p FILE` option.
CLI::Option* addPolicyOption(CLI::App* cmd, std::vector<std::string>* files);

// Loads the files as one policy and compiles it, printing every diagnostic (FILE:LINE:COL ...) on
// stderr. nullptr when it does not load or compile, after one line "statewall COMMAND: the
// [WHICH ]policy has errors; NOTHING_DONE" (e.g. "nothing replayed"). Exit 2 is the caller's.
rules::CompiledPolicyPtr loadCompiledPolicy(const std::vector<std::string>& files,
                                            std::string_view command, std::string_view nothing_done,
                                            std::string_view which = {});

}  // namespace statewall::cli
