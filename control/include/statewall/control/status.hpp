// Errors as values for the control plane: a Status is either success or a message that says
// what failed and why, ready to show to an operator.
#pragma once

#include <string>
#include <utility>

namespace statewall::control {

class Status {
 public:
  Status() = default;  // success
  static Status success() { return Status(); }
  static Status failure(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  bool failed_ = false;
  std::string message_;
};

}  // namespace statewall::control
