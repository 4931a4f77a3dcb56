// The terms of docs/glossary.md that outputs point people to: one table, used by `explain`'s text
// and the report, and checked against the document's headings by the tests.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace statewall::sim {

inline constexpr std::string_view kGlossaryPath = "docs/glossary.md";

struct GlossaryTerm {
  std::string_view heading;  // the document's "## " heading
  std::string_view anchor;   // its link target, as GitHub derives it from the heading
};

// Every term outputs may refer to, in the document's order.
std::span<const GlossaryTerm> glossaryTerms();

// "docs/glossary.md#untracked".
std::string glossaryRef(std::string_view anchor);

// The anchors of the terms a person reading `text` meets (a reason code, a TCP state, "INVALID",
// "untracked", "mid-stream", "ephemeral", "related", "idle", "sweep", ...), in the table's order,
// each once.
std::vector<std::string_view> glossaryAnchorsIn(std::string_view text);

}  // namespace statewall::sim
