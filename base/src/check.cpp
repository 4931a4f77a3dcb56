#include "statewall/base/check.hpp"

#include <cstdio>
#include <cstdlib>

namespace statewall::base {

void checkFailed(const char* file, int line, const char* condition, const char* message) noexcept {
  if (message == nullptr) message = "";
  if (condition != nullptr) {
    std::fprintf(stderr, "statewall: %s:%d: check failed: %s: %s\n", file, line, condition,
                 message);
  } else {
    std::fprintf(stderr, "statewall: %s:%d: fatal: %s\n", file, line, message);
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace statewall::base
