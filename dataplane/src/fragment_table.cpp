#include "fragment_table.hpp"

namespace statewall::dataplane {

namespace {
constexpr uint64_t kOverlappedBit = uint64_t{1} << 24;
constexpr size_t kRuns = 6;  // kRunWords * 2

size_t roundUpPow2(size_t v) {
  size_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

uint64_t pack(const FragmentRecord& rec) {
  return static_cast<uint64_t>(rec.reason) | (uint64_t{rec.flags} << 8) |
         (uint64_t{rec.rule} << 32);
}

void unpack(uint64_t p, uint64_t conn_id, FragmentRecord* out) {
  out->reason = static_cast<Reason>(p & 0xff);
  out->flags = static_cast<uint16_t>(p >> 8);
  out->rule = static_cast<rules::RuleId>(p >> 32);
  out->conn_id = conn_id;
}

struct Run {
  uint32_t begin, end;
};
}  // namespace

FragmentTable::FragmentTable(size_t capacity)
    : sets_(roundUpPow2(capacity < kWays ? 1 : capacity / kWays)),
      slots_(std::make_unique<Slot[]>(sets_ * kWays)) {}

void FragmentTable::remember(uint64_t tag, uint64_t expires_ns, const FragmentRecord& rec,
                             uint32_t first_len) noexcept {
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
  victim->packed.store(pack(rec), std::memory_order_release);
  victim->conn_id.store(rec.conn_id, std::memory_order_release);
  victim->runs[0].store(uint64_t{first_len & 0xffff} << 16, std::memory_order_release);
  for (size_t w = 1; w < kRunWords; ++w)
    victim->runs[w].store(0, std::memory_order_release);
  victim->seq.store(s + 2, std::memory_order_release);
}

FragmentAdd FragmentTable::add(uint64_t tag, uint64_t now_ns, uint32_t begin, uint32_t end,
                               FragmentRecord* out) noexcept {
  Slot* set = &slots_[(tag & (sets_ - 1)) * kWays];
  for (size_t i = 0; i < kWays; ++i) {
    Slot& sl = set[i];
    if (sl.tag.load(std::memory_order_relaxed) != tag) continue;
    // Claim the slot: the check and the update of its runs are one step.
    uint64_t s = sl.seq.load(std::memory_order_relaxed);
    if ((s & 1) || !sl.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
      return FragmentAdd::kBusy;
    }
    auto release = [&](FragmentAdd r) {
      sl.seq.store(s + 2, std::memory_order_release);
      return r;
    };
    if (sl.tag.load(std::memory_order_relaxed) != tag ||
        sl.expires_ns.load(std::memory_order_relaxed) <= now_ns) {
      return release(FragmentAdd::kUnknown);
    }
    const uint64_t packed = sl.packed.load(std::memory_order_relaxed);
    unpack(packed, sl.conn_id.load(std::memory_order_relaxed), out);
    if (packed & kOverlappedBit) return release(FragmentAdd::kOverlapped);
    Run runs[kRuns];
    for (size_t w = 0; w < kRunWords; ++w) {
      const uint64_t v = sl.runs[w].load(std::memory_order_relaxed);
      runs[2 * w] =
          Run{static_cast<uint32_t>(v & 0xffff), static_cast<uint32_t>((v >> 16) & 0xffff)};
      runs[2 * w + 1] =
          Run{static_cast<uint32_t>((v >> 32) & 0xffff), static_cast<uint32_t>(v >> 48)};
    }
    for (const Run& r : runs) {
      if (r.begin == r.end) continue;
      if (begin >= r.begin && end <= r.end) return release(FragmentAdd::kDuplicate);
    }
    for (const Run& r : runs) {
      if (r.begin != r.end && begin < r.end && end > r.begin) {
        sl.packed.store(packed | kOverlappedBit, std::memory_order_release);
        return release(FragmentAdd::kOverlap);
      }
    }
    // Merge with the runs it touches, then take a free place.
    Run n{begin, end};
    for (Run& r : runs) {
      if (r.begin == r.end) continue;
      if (r.end == n.begin || r.begin == n.end) {
        n = Run{r.begin < n.begin ? r.begin : n.begin, r.end > n.end ? r.end : n.end};
        r = Run{0, 0};
      }
    }
    Run* free = nullptr;
    for (Run& r : runs) {
      if (r.begin == r.end) {
        free = &r;
        break;
      }
    }
    if (free == nullptr) return release(FragmentAdd::kBusy);  // too many separate runs
    *free = n;
    for (size_t w = 0; w < kRunWords; ++w) {
      const Run& a = runs[2 * w];
      const Run& b = runs[2 * w + 1];
      sl.runs[w].store(uint64_t{a.begin} | uint64_t{a.end} << 16 | uint64_t{b.begin} << 32 |
                           uint64_t{b.end} << 48,
                       std::memory_order_release);
    }
    return release(FragmentAdd::kAdded);
  }
  return FragmentAdd::kUnknown;
}

}  // namespace statewall::dataplane
