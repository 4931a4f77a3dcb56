// Short connection numbers for people (docs/design.md "Connection tracking"; control/README.md
// "Connection ids"): the engine's id (a table index and a reuse generation, e.g. 4294967296) is
// stable but long, so the control plane gives each connection a number #1, #2, ... the first time
// it shows it. Bounded: when more ids are remembered than the limit, those the engine no longer
// holds are forgotten (an id never comes back: a new connection in the same entry gets a new
// generation). Any thread (one mutex; never on the packet path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace statewall::control {

class ConnNumbers {
 public:
  // `limit`: ids remembered before the next prune (at least 1024).
  explicit ConnNumbers(size_t limit = 1 << 20) : limit_(limit < 1024 ? 1024 : limit) {}

  // The number of the connection with this engine id, given now if it has none.
  // `live(visit)` calls visit(id) for every connection the engine holds (for the prune).
  uint64_t numberOf(uint64_t engine_id,
                    const std::function<void(const std::function<void(uint64_t)>&)>& live) {
    std::lock_guard lock(mu_);
    auto it = numbers_.find(engine_id);
    if (it != numbers_.end()) return it->second;
    if (numbers_.size() >= limit_) prune(live);
    const uint64_t n = ++given_;
    numbers_.emplace(engine_id, n);
    return n;
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return numbers_.size();
  }

 private:
  void prune(const std::function<void(const std::function<void(uint64_t)>&)>& live) {
    std::unordered_set<uint64_t> alive;
    live([&](uint64_t id) {
      if (numbers_.count(id) != 0) alive.insert(id);
    });
    for (auto it = numbers_.begin(); it != numbers_.end();)
      it = alive.count(it->first) != 0 ? std::next(it) : numbers_.erase(it);
    // Still full of live connections: keep them all and prune again at twice the size.
    if (numbers_.size() * 2 > limit_) limit_ = numbers_.size() * 2;
  }

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> numbers_;
  uint64_t given_ = 0;
  size_t limit_;
};

}  // namespace statewall::control
