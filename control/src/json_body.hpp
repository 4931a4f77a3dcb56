// JSON request bodies of the control API. Private to control/.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "statewall/control/status.hpp"

namespace statewall::control {

// Parses a JSON request body into *out. Refuses, besides malformed JSON, an object that has the
// same key twice (the JSON library would silently keep one value; the YAML loader refuses
// duplicates too): "duplicate key "udp"", with " in documents[0]" when it is not the top level.
Status parseJsonBody(std::string_view text, nlohmann::json* out);

}  // namespace statewall::control
