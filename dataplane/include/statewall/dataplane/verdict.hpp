// The closed set of verdict reasons of docs/design.md "Verdicts and reasons", generated from one
// table so that every counter, name and JSON code comes from the same list.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace statewall::dataplane {

// X(enumerator, code, allows)
#define STATEWALL_REASONS(X)                      \
  X(kAllowRule, "allow-rule", true)               \
  X(kAllowTracked, "allow-tracked", true)         \
  X(kAllowRelated, "allow-related", true)         \
  X(kAllowUntracked, "allow-untracked", true)     \
  X(kAllowUnprotected, "allow-unprotected", true) \
  X(kAllowExempt, "allow-exempt", true)           \
  X(kDenySg, "deny-sg", false)                    \
  X(kDenyAcl, "deny-acl", false)                  \
  X(kDenyInvalid, "deny-invalid", false)          \
  X(kDenyTableFull, "deny-table-full", false)     \
  X(kDenyMalformed, "deny-malformed", false)

enum class Reason : uint8_t {
#define STATEWALL_REASON_ENUM(e, code, allows) e,
  STATEWALL_REASONS(STATEWALL_REASON_ENUM)
#undef STATEWALL_REASON_ENUM
};

inline constexpr size_t kReasonCount = 0
#define STATEWALL_REASON_COUNT(e, code, allows) +1
    STATEWALL_REASONS(STATEWALL_REASON_COUNT)
#undef STATEWALL_REASON_COUNT
    ;

inline constexpr std::array<std::string_view, kReasonCount> kReasonCodes = {
#define STATEWALL_REASON_CODE(e, code, allows) code,
    STATEWALL_REASONS(STATEWALL_REASON_CODE)
#undef STATEWALL_REASON_CODE
};

inline constexpr std::array<bool, kReasonCount> kReasonAllows = {
#define STATEWALL_REASON_ALLOWS(e, code, allows) allows,
    STATEWALL_REASONS(STATEWALL_REASON_ALLOWS)
#undef STATEWALL_REASON_ALLOWS
};

constexpr std::string_view reasonCode(Reason r) {
  return kReasonCodes[static_cast<size_t>(r)];
}
constexpr bool reasonAllows(Reason r) {
  return kReasonAllows[static_cast<size_t>(r)];
}
std::optional<Reason> parseReason(std::string_view code);

}  // namespace statewall::dataplane
