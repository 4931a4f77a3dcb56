// libFuzzer target: the YAML loader on arbitrary text. Checks the load-whole-or-not-at-all
// contract besides the absence of crashes, the limits (alias bombs fail fast: libFuzzer's
// -rss_limit_mb and -timeout catch one that does not) and that every message and every loaded
// string is UTF-8 (what --json prints). Seeds: tests/fuzz/corpus/fuzz_policy_yaml/.
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
    if (validUtf8Prefix(d.message) != d.message.size()) std::abort();
  }
  if (r.policy) {
    for (const auto& g : r.policy->groups) {
      if (validUtf8Prefix(g.name) != g.name.size()) std::abort();
      if (validUtf8Prefix(g.description) != g.description.size()) std::abort();
    }
  }
  return 0;
}
