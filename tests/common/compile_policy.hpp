// "Compile this policy" for tests: YAML text or policy files through the loader and the compiler,
// every diagnostic a test failure (warnings too, unless the test allows them). The one helper for
// it; module test utilities forward here.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::testing {

enum class Warnings { kFail, kAllow };

// Compiles what the loader returned; nullptr when it did not load or compile.
inline rules::CompiledPolicyPtr compileLoaded(rules::LoadResult loaded,
                                              Warnings warnings = Warnings::kFail) {
  auto report = [warnings](const std::vector<rules::Diagnostic>& diagnostics) {
    for (const auto& d : diagnostics)
      if (warnings == Warnings::kFail || d.severity == rules::Severity::kError)
        ADD_FAILURE() << d.str();
  };
  report(loaded.diagnostics);
  if (!loaded.ok()) return nullptr;
  rules::CompileResult c = rules::compile(*loaded.policy);
  report(c.diagnostics);
  return c.policy;
}

// A policy from YAML (or AWS JSON) text, named `name` in diagnostics.
inline rules::CompiledPolicyPtr compileYaml(std::string_view text, std::string name = "test.yaml",
                                            Warnings warnings = Warnings::kFail) {
  return compileLoaded(rules::loadPolicyTexts({{std::move(name), std::string(text)}}), warnings);
}

// Policy files loaded together as one policy (statewall check's rules).
inline rules::CompiledPolicyPtr compileFiles(const std::vector<std::string>& files,
                                             Warnings warnings = Warnings::kFail) {
  return compileLoaded(rules::loadPolicyFiles(files), warnings);
}

}  // namespace statewall::testing
