#include "json_input.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <utility>

#include "loader_internal.hpp"

namespace statewall::rules::internal {
namespace {

// Line and column (1-based) of a byte offset.
std::pair<int, int> lineColumn(const std::string& text, size_t offset) {
  offset = std::min(offset, text.size());
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, static_cast<int>(offset - line_start) + 1};
}

}  // namespace

std::string describeJson(const nlohmann::json& v) {
  if (v.is_string()) {
    return "string \"" + shorten(v.get_ref<const std::string&>(), 40) + "\"";
  }
  if (v.is_number_float()) return "a non-integer number";
  if (v.is_number())
    return "number " +
           std::to_string(v.is_number_unsigned()
                              ? static_cast<long long>(std::min<uint64_t>(
                                    v.get<uint64_t>(), std::numeric_limits<long long>::max()))
                              : v.get<long long>());
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return "null";
}

std::optional<nlohmann::json> parseJsonText(const std::string& file, const std::string& text,
                                            std::optional<Diagnostic>& error) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    size_t offset = e.byte == 0 ? 0 : e.byte - 1;
    auto [line, col] = lineColumn(text, offset);
    std::string what = e.what();
    if (auto p = what.find("parse error"); p != std::string::npos) {
      if (auto colon = what.find(": ", p); colon != std::string::npos)
        what = what.substr(colon + 2);
    }
    Diagnostics d;
    addError(d, SourceLoc{file, line, col, {}},
             "invalid JSON at byte " + std::to_string(offset) + ": " + what);
    error = std::move(d.front());
  } catch (const std::exception& e) {
    Diagnostics d;
    addError(d, SourceLoc{file, 0, 0, {}}, std::string("cannot read JSON: ") + e.what());
    error = std::move(d.front());
  }
  return std::nullopt;
}

}  // namespace statewall::rules::internal
