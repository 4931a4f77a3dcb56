// Remembers the verdict of a fragmented datagram's first fragment so that its later fragments get
// the same verdict, and which bytes of the datagram its fragments carried so that a fragment
// overlapping them is caught (docs/design.md "Fragments"; docs/semantics.md "Fragments"). Bounded
// (fixed slots, 4-way set associative, oldest entry replaced), shared by all workers, lock-free.
//
// Each slot is a seqlock: a writer claims it by moving `seq` from even to odd with a CAS (acquire:
// its field stores cannot move above the claim), stores the fields with release, and publishes by
// storing seq + 2 with release. Every access is a writer's (add() checks and extends a datagram's
// runs in one claim), so the claim's acquire CAS, which reads the previous writer's release
// store of seq, orders it after that writer. No fences, so ThreadSanitizer understands it.
// Writers never wait: a writer that loses the claim race drops its record (the later fragments of
// that datagram will then be denied, which is the safe side), and add() reports kBusy (the engine
// denies that fragment).
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

// What add() found for a fragment's bytes.
enum class FragmentAdd : uint8_t {
  kUnknown,     // no live record of the datagram (its first fragment was not seen)
  kAdded,       // new bytes of a known datagram: recorded; *out holds the datagram's record
  kDuplicate,   // bytes wholly inside a run already seen: the fragment is dropped, the datagram
                // continues (as Linux defrag drops a duplicate)
  kOverlap,     // overlaps bytes already seen without repeating them: the datagram is dropped
  kOverlapped,  // the datagram was dropped before for an overlap
  kBusy,        // another thread holds the record, or the datagram has too many separate runs
};

class FragmentTable {
 public:
  explicit FragmentTable(size_t capacity);

  // Any thread. tag != 0 identifies the datagram (family, addresses, protocol, identification).
  // Records the first fragment's verdict and its bytes [0, first_len).
  void remember(uint64_t tag, uint64_t expires_ns, const FragmentRecord& rec,
                uint32_t first_len) noexcept;
  // Any thread. Records the bytes [begin, end) of a live datagram, unless they repeat or overlap
  // bytes already seen (then an overlap marks the datagram dropped); see FragmentAdd.
  FragmentAdd add(uint64_t tag, uint64_t now_ns, uint32_t begin, uint32_t end,
                  FragmentRecord* out) noexcept;

  size_t capacity() const { return sets_ * kWays; }

 private:
  static constexpr size_t kWays = 4;
  static constexpr size_t kRunWords = 3;  // two runs [begin, end) of 16-bit offsets per word
  struct alignas(64) Slot {
    std::atomic<uint64_t> seq{0};
    std::atomic<uint64_t> tag{0};
    std::atomic<uint64_t> expires_ns{0};
    std::atomic<uint64_t> packed{0};  // reason | flags << 8 | overlapped << 24 | rule << 32
    std::atomic<uint64_t> conn_id{0};
    std::atomic<uint64_t> runs[kRunWords] = {};  // bytes seen; an empty run is [0, 0)
  };
  static_assert(sizeof(Slot) == 64);

  size_t sets_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace statewall::dataplane
