// Errors and warnings about policy input, each pointing at FILE:LINE:COL (YAML) or FILE: JSON-PATH.
#pragma once

#include <string>
#include <vector>

namespace statewall::rules {

struct SourceLoc {
  std::string file;
  int line = 0;           // 1-based; 0 when unknown or JSON
  int col = 0;            // 1-based
  std::string json_path;  // e.g. "SecurityGroups[2].IpPermissions[0].FromPort"; empty for YAML

  // "FILE:LINE:COL", "FILE: PATH" or "FILE".
  std::string str() const;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLoc loc;
  std::string message;

  // "FILE:LINE:COL: error: MESSAGE" (or "FILE: PATH: warning: MESSAGE").
  std::string str() const;
};

using Diagnostics = std::vector<Diagnostic>;

inline bool hasErrors(const Diagnostics& d) {
  for (const auto& x : d)
    if (x.severity == Severity::kError) return true;
  return false;
}

}  // namespace statewall::rules
