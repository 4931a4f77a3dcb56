// A small open-addressing hash map (linear probing, backward-shift deletion) for the replay's
// per-flow bookkeeping: no allocation per insert once grown, no tombstones, and iteration over a
// dense value array. Single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace statewall::sim::detail {

template <class Key, class Value, class Hash, class Eq>
class FlatMap {
 public:
  explicit FlatMap(size_t initial = 1024) { rehash(initial); }

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }

  // Returns the value for `key`, or nullptr.
  Value* find(const Key& key) {
    size_t i = hash_(key) & mask_;
    for (;;) {
      uint32_t s = slots_[i];
      if (s == kEmpty) return nullptr;
      if (eq_(keys_[s], key)) return &values_[s];
      i = (i + 1) & mask_;
    }
  }

  // Inserts a default value when absent. *inserted says which happened.
  Value& findOrInsert(const Key& key, bool* inserted) {
    if ((values_.size() + 1) * 4 > slots_.size() * 3) rehash(slots_.size() * 2);
    size_t i = hash_(key) & mask_;
    for (;;) {
      uint32_t s = slots_[i];
      if (s == kEmpty) break;
      if (eq_(keys_[s], key)) {
        *inserted = false;
        return values_[s];
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = static_cast<uint32_t>(values_.size());
    keys_.push_back(key);
    values_.emplace_back();
    *inserted = true;
    return values_.back();
  }

  // Removes `key` if present: the last dense element moves into its place.
  bool erase(const Key& key) {
    size_t i = hash_(key) & mask_;
    for (;;) {
      uint32_t s = slots_[i];
      if (s == kEmpty) return false;
      if (eq_(keys_[s], key)) break;
      i = (i + 1) & mask_;
    }
    const uint32_t victim = slots_[i];
    // Backward-shift deletion keeps probe sequences intact without tombstones.
    size_t hole = i;
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      uint32_t s = slots_[j];
      if (s == kEmpty) break;
      size_t home = hash_(keys_[s]) & mask_;
      // Move s into the hole when its home is not cyclically within (hole, j].
      bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!between) {
        slots_[hole] = s;
        hole = j;
      }
    }
    slots_[hole] = kEmpty;
    const uint32_t last = static_cast<uint32_t>(values_.size() - 1);
    if (victim != last) {
      // Point the slot of the last element at its new dense position.
      size_t k = hash_(keys_[last]) & mask_;
      while (slots_[k] != last)
        k = (k + 1) & mask_;
      slots_[k] = victim;
      keys_[victim] = std::move(keys_[last]);
      values_[victim] = std::move(values_[last]);
    }
    keys_.pop_back();
    values_.pop_back();
    return true;
  }

  // Dense access for iteration (order: insertion, perturbed by erase).
  std::vector<Key>& keys() { return keys_; }
  std::vector<Value>& values() { return values_; }

  void clear() {
    keys_.clear();
    values_.clear();
    std::fill(slots_.begin(), slots_.end(), kEmpty);
  }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFF;

  void rehash(size_t n) {
    size_t cap = 16;
    while (cap < n)
      cap *= 2;
    slots_.assign(cap, kEmpty);
    mask_ = cap - 1;
    for (uint32_t s = 0; s < keys_.size(); ++s) {
      size_t i = hash_(keys_[s]) & mask_;
      while (slots_[i] != kEmpty)
        i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<uint32_t> slots_;
  size_t mask_ = 0;
  std::vector<Key> keys_;
  std::vector<Value> values_;
  Hash hash_;
  Eq eq_;
};

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

}  // namespace statewall::sim::detail
