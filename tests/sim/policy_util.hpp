// Policies for the sim tests: compiled from YAML text or the example, every diagnostic a test
// failure. (Separate from sim_test_util.hpp: only tests that link the rules library include it.)
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::sim::testing {

// Loads and compiles policy files or a YAML text; every diagnostic is a test failure; nullptr
// when the policy does not load or compile.
inline rules::CompiledPolicyPtr compileLoaded(rules::LoadResult loaded) {
  for (const auto& d : loaded.diagnostics)
    ADD_FAILURE() << d.str();
  if (!loaded.ok()) return nullptr;
  auto c = rules::compile(*loaded.policy);
  for (const auto& d : c.diagnostics)
    ADD_FAILURE() << d.str();
  return c.policy;
}
inline rules::CompiledPolicyPtr compilePolicy(const std::string& yaml) {
  return compileLoaded(rules::loadPolicyTexts({{"test.yaml", yaml}}));
}
// examples/three-tier.yaml
inline rules::CompiledPolicyPtr examplePolicy() {
  return compileLoaded(
      rules::loadPolicyFiles({std::string(STATEWALL_EXAMPLES_DIR) + "/three-tier.yaml"}));
}

}  // namespace statewall::sim::testing
