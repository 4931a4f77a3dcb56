// Policies for the sim tests: compiled from YAML text or the example, every diagnostic a test
// failure. (Separate from sim_test_util.hpp: only tests that link the rules library include it.)
#pragma once

#include <string>

#include "common/compile_policy.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::sim::testing {

// Loads and compiles policy files or a YAML text (tests/common/compile_policy.hpp): every
// diagnostic is a test failure; nullptr when the policy does not load or compile.
using statewall::testing::compileLoaded;
inline rules::CompiledPolicyPtr compilePolicy(const std::string& yaml) {
  return statewall::testing::compileYaml(yaml);
}
// examples/three-tier.yaml
inline rules::CompiledPolicyPtr examplePolicy() {
  return compileLoaded(
      rules::loadPolicyFiles({std::string(STATEWALL_EXAMPLES_DIR) + "/three-tier.yaml"}));
}

}  // namespace statewall::sim::testing
