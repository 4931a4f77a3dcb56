#include "statewall/dataplane/verdict.hpp"

namespace statewall::dataplane {

std::optional<Reason> parseReason(std::string_view code) {
  for (size_t i = 0; i < kReasonCount; ++i)
    if (kReasonCodes[i] == code) return static_cast<Reason>(i);
  return std::nullopt;
}

}  // namespace statewall::dataplane
