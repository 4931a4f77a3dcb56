// Remembers the verdict of a fragmented datagram's first fragment so that its later fragments get
// the same verdict (DESIGN.md "Fragments"). Bounded (fixed slots, 4-way set associative, oldest
// entry replaced), shared by all workers, lock-free.
//
// Each slot is a seqlock: a writer claims it by moving `seq` from even to odd with a CAS (acquire:
// its field stores cannot move above the claim), stores the fields with release, and publishes by
// storing seq + 2 with release. A reader loads seq (acquire), loads the fields with acquire, then
// re-reads seq. If a field load saw a store of a concurrent writer, it synchronises with that
// release store, so the claim (odd seq) happens-before the re-read: the reader sees a changed seq
// and retries (a bounded number of times, then reports a miss). No fences, so ThreadSanitizer
// understands it.
// Writers never wait for readers; a writer that loses the claim race drops its record (the later
// fragments of that datagram will then be denied, which is the safe side).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::dataplane {

// For an allowed datagram: the rule and connection. For a denied one the engine stores where it
// was denied instead: rule = interface | direction << 16, conn_id = ACL entry.
struct FragmentRecord {
  Reason reason;
  uint16_t flags;
  rules::RuleId rule;
  uint64_t conn_id;
};

class FragmentTable {
 public:
  explicit FragmentTable(size_t capacity);

  // Any thread. tag != 0 identifies the datagram (family, addresses, protocol, identification).
  void remember(uint64_t tag, uint64_t expires_ns, const FragmentRecord& rec) noexcept;
  // Any thread. False when the datagram is unknown or its record expired.
  bool find(uint64_t tag, uint64_t now_ns, FragmentRecord* out) const noexcept;

  size_t capacity() const { return sets_ * kWays; }

 private:
  static constexpr size_t kWays = 4;
  struct alignas(64) Slot {
    std::atomic<uint64_t> seq{0};
    std::atomic<uint64_t> tag{0};
    std::atomic<uint64_t> expires_ns{0};
    std::atomic<uint64_t> packed{0};  // reason | flags << 8 | rule << 32
    std::atomic<uint64_t> conn_id{0};
  };
  static_assert(sizeof(Slot) == 64);

  size_t sets_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace statewall::dataplane
