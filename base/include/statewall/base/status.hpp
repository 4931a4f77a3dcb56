// Errors as values for library calls (docs/design.md, "Errors"): a Status is success or a message
// that says what failed and why, ready to show to a person; Expected<T> is a T or such a Status.
// (std::expected is C++23; libstdc++ 12 does not offer it in C++20 mode, hence this small one.)
//
// The message is the whole sentence callers show. `where` is optional: the file, path or
// FILE:LINE the failure is about, kept apart so that a caller can put it in front in its own
// style; text() joins the two as "WHERE: MESSAGE".
//
// Values, no shared state: any thread. Not for the per-packet path (a failure allocates).
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "statewall/base/check.hpp"

namespace statewall::base {

class [[nodiscard]] Status {
 public:
  Status() = default;  // success
  static Status success() { return Status(); }
  static Status failure(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  // A failure about `where` (a path, FILE:LINE): text() is "WHERE: MESSAGE".
  static Status failureAt(std::string where, std::string message) {
    Status s = failure(std::move(message));
    s.where_ = std::move(where);
    return s;
  }

  bool ok() const { return !failed_; }
  // Empty on success.
  const std::string& message() const { return message_; }
  // Empty unless made by failureAt().
  const std::string& where() const { return where_; }
  // "WHERE: MESSAGE", or MESSAGE when there is no where.
  std::string text() const { return where_.empty() ? message_ : where_ + ": " + message_; }

 private:
  bool failed_ = false;
  std::string message_;
  std::string where_;
};

// A T, or the Status saying why there is none. Made from a T (success) or from a failed Status:
//   Expected<Flow> parseFlow(std::string_view s) {
//     if (bad) return Status::failure("expected PROTO SRC -> DST");
//     return Flow{...};
//   }
// Reading the value of a failed Expected (or making one from a successful Status) is a bug and
// stops the process (STATEWALL_CHECK).
template <class T>
class [[nodiscard]] Expected {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "use Status");
  static_assert(!std::is_reference_v<T>, "Expected holds a value");

 public:
  Expected(const T& value) : value_(value) {}        // NOLINT: implicit by design
  Expected(T&& value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  template <class U, class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                              !std::is_same_v<std::decay_t<U>, T> &&
                                              !std::is_same_v<std::decay_t<U>, Status> &&
                                              !std::is_same_v<std::decay_t<U>, Expected>>>
  Expected(U&& value) : value_(std::in_place, std::forward<U>(value)) {}  // NOLINT
  Expected(Status failure) : status_(std::move(failure)) {                // NOLINT
    STATEWALL_CHECK(!status_.ok(), "an Expected made from a successful Status has no value");
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  // Success when ok().
  const Status& status() const { return status_; }
  // The failure's message (empty when ok()).
  const std::string& message() const { return status_.message(); }

  T& value() & {
    STATEWALL_CHECK(ok(), "value() of a failed Expected");
    return *value_;
  }
  const T& value() const& {
    STATEWALL_CHECK(ok(), "value() of a failed Expected");
    return *value_;
  }
  T&& value() && {
    STATEWALL_CHECK(ok(), "value() of a failed Expected");
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace statewall::base
