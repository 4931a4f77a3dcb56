// Waiting for another thread or process in a test: bounded, as a safety net against a hang,
// never as a timing assertion.
#pragma once

#include <chrono>
#include <thread>

namespace statewall::testing {

// Polls pred() until it holds (true) or `limit` has passed (false). A zero `poll` yields between
// polls instead of sleeping (for tests that keep another thread busy).
template <class Pred>
bool waitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(120),
             std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (poll.count() == 0) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(poll);
    }
  }
  return true;
}

}  // namespace statewall::testing
