// The one way the `statewall` subcommands print JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace statewall::cli {

// `j` as text (`indent` -1: one line). Bytes that are not UTF-8 (a flow typed on the command
// line, a file name) become U+FFFD instead of throwing: output stays valid JSON whatever the
// input. Policies themselves are UTF-8 (the loader refuses anything else).
inline std::string jsonText(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace statewall::cli
