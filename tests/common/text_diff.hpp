// Golden-output comparisons: the first line where two texts differ, for a failure message.
#pragma once

#include <algorithm>
#include <sstream>
#include <string>

namespace statewall::testing {

// "" when equal, else "line N:\n  got:  ...\n  want: ..." for the first line that differs
// (`want_label` names the expected side, e.g. "doc").
inline std::string firstDifference(const std::string& got, const std::string& want,
                                   const std::string& want_label = "want") {
  if (got == want) return "";
  std::stringstream a(got), b(want);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ha = static_cast<bool>(std::getline(a, la));
    const bool hb = static_cast<bool>(std::getline(b, lb));
    if (!ha && !hb) return "(only the final newline differs)";
    if (!ha || !hb || la != lb) {
      std::string tag = want_label + ":";  // padded to line up with "got:  "
      tag.resize(std::max<size_t>(tag.size() + 1, 6), ' ');
      return "line " + std::to_string(line) + ":\n  got:  " + (ha ? la : "<end>") + "\n  " + tag +
             (hb ? lb : "<end>");
    }
  }
}

}  // namespace statewall::testing
