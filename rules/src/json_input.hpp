// Private to rules/: what the JSON loaders (AWS CLI output, Terraform's `show -json`) share:
// parsing a text with a FILE:LINE:COL error, and showing a bad value in a message.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "statewall/rules/diagnostic.hpp"

namespace statewall::rules::internal {

// How a value is shown after "found": `string "abc"`, `number 7`, `an object`, `null`, ...
std::string describeJson(const nlohmann::json& v);

// The parsed document, or the error ("FILE:LINE:COL: invalid JSON at byte N: ...") in `error`.
// Never throws.
std::optional<nlohmann::json> parseJsonText(const std::string& file, const std::string& text,
                                            std::optional<Diagnostic>& error);

}  // namespace statewall::rules::internal
