// Loading a policy and compiling it in one call: what every front end does with the policy it is
// given (the `statewall` commands, the playground, the control API, statewalld). The two steps stay
// separate in loader.hpp and compiled.hpp for callers that want the Policy itself (lint, diff).
//
// Pure; may be called from any thread.
#pragma once

#include <string>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {

struct LoadCompileResult {
  CompiledPolicyPtr policy;  // null when loading or compiling reported an error
  Diagnostics diagnostics;   // the loader's, then the compiler's (in that order)
  bool loaded = false;       // the load step succeeded (false: the files have errors; true with
                             // a null policy: the loaded policy does not compile)

  bool ok() const { return policy != nullptr; }
};

// loadPolicyFiles() then, when that succeeded, compile().
LoadCompileResult loadAndCompile(const std::vector<std::string>& paths);
// loadPolicyTexts() then, when that succeeded, compile().
LoadCompileResult loadAndCompile(const std::vector<SourceText>& docs);

}  // namespace statewall::rules
