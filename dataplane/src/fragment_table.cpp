#include "fragment_table.hpp"

namespace statewall::dataplane {

namespace {
constexpr int kReadRetries = 4;

size_t roundUpPow2(size_t v) {
  size_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}
}  // namespace

FragmentTable::FragmentTable(size_t capacity)
    : sets_(roundUpPow2(capacity < kWays ? 1 : capacity / kWays)),
      slots_(std::make_unique<Slot[]>(sets_ * kWays)) {}

void FragmentTable::remember(uint64_t tag, uint64_t expires_ns,
                             const FragmentRecord& rec) noexcept {
  Slot* set = &slots_[(tag & (sets_ - 1)) * kWays];
  // Prefer the slot already holding this datagram, then the one expiring first.
  Slot* victim = &set[0];
  uint64_t victim_exp = UINT64_MAX;
  for (size_t i = 0; i < kWays; ++i) {
    if (set[i].tag.load(std::memory_order_relaxed) == tag) {
      victim = &set[i];
      break;
    }
    uint64_t e = set[i].expires_ns.load(std::memory_order_relaxed);
    if (e < victim_exp) {
      victim = &set[i];
      victim_exp = e;
    }
  }
  uint64_t s = victim->seq.load(std::memory_order_relaxed);
  if ((s & 1) || !victim->seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire,
                                                      std::memory_order_relaxed))
    return;  // another writer owns the slot right now
  victim->tag.store(tag, std::memory_order_release);
  victim->expires_ns.store(expires_ns, std::memory_order_release);
  victim->packed.store(
      static_cast<uint64_t>(rec.reason) | (uint64_t{rec.flags} << 8) | (uint64_t{rec.rule} << 32),
      std::memory_order_release);
  victim->conn_id.store(rec.conn_id, std::memory_order_release);
  victim->seq.store(s + 2, std::memory_order_release);
}

bool FragmentTable::find(uint64_t tag, uint64_t now_ns, FragmentRecord* out) const noexcept {
  const Slot* set = &slots_[(tag & (sets_ - 1)) * kWays];
  for (size_t i = 0; i < kWays; ++i) {
    const Slot& sl = set[i];
    for (int attempt = 0; attempt < kReadRetries; ++attempt) {
      uint64_t s1 = sl.seq.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      uint64_t t = sl.tag.load(std::memory_order_acquire);
      uint64_t e = sl.expires_ns.load(std::memory_order_acquire);
      uint64_t p = sl.packed.load(std::memory_order_acquire);
      uint64_t c = sl.conn_id.load(std::memory_order_acquire);
      if (sl.seq.load(std::memory_order_acquire) != s1) continue;
      if (t != tag || e <= now_ns) break;
      out->reason = static_cast<Reason>(p & 0xff);
      out->flags = static_cast<uint16_t>(p >> 8);
      out->rule = static_cast<rules::RuleId>(p >> 32);
      out->conn_id = c;
      return true;
    }
  }
  return false;
}

}  // namespace statewall::dataplane
