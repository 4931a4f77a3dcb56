// A bounded single-producer single-consumer ring of plain values (private). The producer (a
// forwarding lcore) never blocks: push() fails when the ring is full. No locks, no allocation
// after construction.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <type_traits>

namespace statewall::dpdk {

template <class T, uint32_t N>
class SpscRing {
  static_assert(N > 0 && (N & (N - 1)) == 0, "N must be a power of two");
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Producer only.
  bool push(const T& v) noexcept {
    const uint32_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) == N) return false;
    slots_[h & (N - 1)] = v;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  // Consumer only.
  bool pop(T* v) noexcept {
    const uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return false;
    *v = slots_[t & (N - 1)];
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

 private:
  alignas(64) std::atomic<uint32_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint32_t> tail_{0};  // written by the consumer
  alignas(64) std::array<T, N> slots_{};
};

}  // namespace statewall::dpdk
