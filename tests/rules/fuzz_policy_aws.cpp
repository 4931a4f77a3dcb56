// libFuzzer target: the AWS JSON loader. The input is split at lines "%%" into several
// documents, so that references between documents (GroupId, PrefixListId, SubnetId) are fuzzed.
// Every message and every loaded name must be UTF-8 (what --json prints).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statewall::rules;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<SourceText> docs;
  constexpr std::string_view kSeparator = "\n%%\n";
  while (docs.size() < 8) {
    size_t cut = input.find(kSeparator);
    std::string name = "doc" + std::to_string(docs.size()) + ".json";
    docs.push_back(SourceText{name, std::string(input.substr(0, cut))});
    if (cut == std::string_view::npos) break;
    input.remove_prefix(cut + kSeparator.size());
  }
  LoadResult r = loadPolicyTexts(docs);
  if (r.policy.has_value() == hasErrors(r.diagnostics)) std::abort();
  for (const auto& d : r.diagnostics) {
    if (d.message.empty()) std::abort();
    if (validUtf8Prefix(d.message) != d.message.size()) std::abort();
  }
  if (r.policy) {
    for (const auto& g : r.policy->groups)
      if (validUtf8Prefix(g.name) != g.name.size()) std::abort();
  }
  if (r.policy && r.policy->files.size() != docs.size()) std::abort();
  return 0;
}
