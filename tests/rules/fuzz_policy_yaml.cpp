// libFuzzer target: the YAML loader on arbitrary text. Checks the load-whole-or-not-at-all
// contract besides the absence of crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "statewall/rules/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statewall::rules;
  std::string text(reinterpret_cast<const char*>(data), size);
  LoadResult r = loadPolicyTexts({SourceText{"fuzz.yaml", std::move(text)}});
  if (r.policy.has_value() == hasErrors(r.diagnostics)) std::abort();
  for (const auto& d : r.diagnostics) {
    if (d.message.empty() || d.loc.file != "fuzz.yaml") std::abort();
  }
  return 0;
}
