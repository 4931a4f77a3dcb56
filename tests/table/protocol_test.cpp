// The duplicate-free insert protocol, step by step on one thread: a concurrent inserter is
// simulated by publishing a PENDING copy through ConnTableTestPeer and finishing it later, so every
// branch of the rescan (lower/higher pending copy, live winner, killed while pending) is covered
// deterministically. The threaded version of the same race is in stress_test.cpp.
#include <gtest/gtest.h>

#include "table/table_test_util.hpp"

namespace statewall::dataplane {

struct ConnTableTestPeer {
  template <class T>
  struct Pending {
    uint32_t idx = 0;
    typename T::Position pos;
  };

  // What insert() does up to and including the publication of its PENDING copy.
  template <class T, class K>
  static Pending<T> publishPending(T& t, const K& key, uint64_t tag) {
    Pending<T> p;
    p.idx = t.allocEntry();
    EXPECT_NE(p.idx, T::kNoIndex);
    auto& e = t.entries_[p.idx];
    e.key = key;
    e.key.setGeneration(T::nextGeneration(e.key.generation()));
    std::construct_at(&e.value);
    e.value.tag.store(tag);
    e.expires_ns.store(T::kPending);
    EXPECT_TRUE(t.publish(t.hashOf(key), p.idx, &p.pos));
    return p;
  }

  // What insert() does after publication: the rescan, then unlinking a losing copy.
  template <class T, class K>
  static bool finish(T& t, const K& key, const Pending<T>& p, uint64_t now, uint64_t expires,
                     unsigned attempt, typename T::Entry** winner) {
    const bool won = t.resolve(key, t.hashOf(key), now, expires, p.idx, p.pos, attempt, winner);
    if (!won) t.unlink(p.idx, t.hashOf(key), p.pos);
    return won;
  }

  template <class T>
  static typename T::Entry* entry(T& t, uint32_t idx) {
    return &t.entries_[idx];
  }
  template <class T>
  static unsigned rank(const Pending<T>& p) {
    return p.pos.rank();
  }
};

namespace {

using testing::nthKey;
using testing::Table4;
using testing::TestValue;
using Peer = ConnTableTestPeer;

constexpr uint64_t kFar = uint64_t{1} << 50;

class ProtocolTest : public ::testing::Test {
 protected:
  ProtocolTest() : table_(256), reader_(table_.qsbr()) {}

  Table4::InsertResult insert(const FlowKey4& k, uint64_t tag) {
    return table_.insert(k, table_.hashOf(k), 10, kFar,
                         [tag](TestValue& v) { v.tag.store(tag, std::memory_order_relaxed); });
  }
  size_t liveCopies(const FlowKey4& k) {
    size_t n = 0;
    table_.forEach(10, [&](Table4::Entry& e) { n += e.key.sameFlow(k); });
    return n;
  }

  Table4 table_;
  QsbrReader reader_;
};

TEST_F(ProtocolTest, PendingCopyIsInvisibleToLookups) {
  const FlowKey4 k = nthKey(1);
  const auto p = Peer::publishPending(table_, k, 7);
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 10), nullptr);
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 0), nullptr);  // even at time 0
  EXPECT_EQ(liveCopies(k), 0u);
  Table4::Entry* winner = nullptr;
  ASSERT_TRUE(Peer::finish(table_, k, p, 10, kFar, 0, &winner));
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 10), Peer::entry(table_, p.idx));
}

// Another thread published first at a lower position and has not finished: our first attempt
// defers to it; our retry kills it and wins; its owner then finds our live copy and loses.
TEST_F(ProtocolTest, LowerPendingCopyIsDeferredToThenKilledOnRetry) {
  const FlowKey4 k = nthKey(2);
  const auto other = Peer::publishPending(table_, k, 1);
  const auto r = insert(nthKey(2, true), 2);
  ASSERT_TRUE(r.inserted);
  EXPECT_EQ(r.entry->value.tag.load(), 2u);
  EXPECT_EQ(table_.insertConflicts(), 1u);                     // the deferred first attempt
  EXPECT_EQ(Peer::entry(table_, other.idx)->expiresNs(), 0u);  // killed while pending

  Table4::Entry* winner = nullptr;
  EXPECT_FALSE(Peer::finish(table_, k, other, 10, kFar, 0, &winner));
  EXPECT_EQ(winner, r.entry);
  EXPECT_EQ(liveCopies(k), 1u);
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 10), r.entry);
  EXPECT_EQ(table_.indexStats().used_slots, 1u);
  EXPECT_EQ(table_.size(), 1u);
}

// The other copy sits at a higher position: we kill it at once and win on the first attempt.
TEST(ProtocolForced, HigherPendingCopyIsKilled) {
  using Forced = ConnTable<testing::ForcedKey, TestValue>;
  Forced t(256);
  QsbrReader reader(t.qsbr());
  testing::ForcedKey key;
  key.id = 1;
  key.forced_hash = 0x1111111122222222ull;
  testing::ForcedKey filler = key;  // same home bucket, another flow
  filler.id = 2;
  // filler takes the first slot, the other inserter's copy the second; then the first is freed.
  Forced::Entry* fill = t.insert(filler, filler.forced_hash, 10, kFar).entry;
  ASSERT_NE(fill, nullptr);
  const auto other = Peer::publishPending(t, key, 1);
  ASSERT_TRUE(t.erase(fill));
  const auto r = t.insert(key, key.forced_hash, 10, kFar,
                          [](TestValue& v) { v.tag.store(2, std::memory_order_relaxed); });
  ASSERT_TRUE(r.inserted);
  EXPECT_EQ(t.insertConflicts(), 0u);  // no retry needed
  EXPECT_EQ(Peer::entry(t, other.idx)->expiresNs(), 0u);
  Forced::Entry* winner = nullptr;
  EXPECT_FALSE(Peer::finish(t, key, other, 10, kFar, 0, &winner));
  EXPECT_EQ(winner, r.entry);  // it sees our live copy
  EXPECT_EQ(t.find(key, key.forced_hash, 10), r.entry);
  EXPECT_EQ(t.indexStats().used_slots, 1u);
}

// Both copies pending and each sees the other: the lower one wins, the higher one loses, with
// no retry on either side (the symmetric case where both would otherwise kill each other).
TEST_F(ProtocolTest, TwoPendingCopiesLowerWins) {
  const FlowKey4 k = nthKey(5);
  const auto a = Peer::publishPending(table_, k, 1);
  const auto b = Peer::publishPending(table_, nthKey(5, true), 2);
  ASSERT_LT(Peer::rank(a), Peer::rank(b));
  Table4::Entry* wb = nullptr;
  EXPECT_FALSE(Peer::finish(table_, k, b, 10, kFar, 0, &wb));  // b defers to lower a
  EXPECT_EQ(wb, nullptr);
  Table4::Entry* wa = nullptr;
  EXPECT_TRUE(Peer::finish(table_, k, a, 10, kFar, 0, &wa));
  EXPECT_EQ(liveCopies(k), 1u);
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 10)->value.tag.load(), 1u);
  // b's owner retries the ordinary way and gets a's entry.
  const auto r = insert(nthKey(5, true), 3);
  EXPECT_FALSE(r.inserted);
  EXPECT_EQ(r.entry, Peer::entry(table_, a.idx));
}

// The lower copy's owner finished first (LIVE): the higher copy loses to it.
TEST_F(ProtocolTest, LiveCopyWins) {
  const FlowKey4 k = nthKey(6);
  const auto a = Peer::publishPending(table_, k, 1);
  const auto b = Peer::publishPending(table_, k, 2);
  Table4::Entry* w = nullptr;
  ASSERT_TRUE(Peer::finish(table_, k, a, 10, kFar, 0, &w));
  EXPECT_FALSE(Peer::finish(table_, k, b, 10, kFar, 1, &w));  // even in kill-all mode
  EXPECT_EQ(w, Peer::entry(table_, a.idx));
  EXPECT_EQ(liveCopies(k), 1u);
  EXPECT_EQ(table_.indexStats().used_slots, 1u);
}

// A copy killed while pending loses even when no other copy is left by the time it rescans.
TEST_F(ProtocolTest, CopyKilledWhilePendingLoses) {
  const FlowKey4 k = nthKey(7);
  const auto a = Peer::publishPending(table_, k, 1);
  const auto b = Peer::publishPending(table_, k, 2);
  Table4::Entry* w = nullptr;
  // b, in retry mode, kills the lower pending a and wins; then b's connection is closed.
  ASSERT_TRUE(Peer::finish(table_, k, b, 10, kFar, 1, &w));
  EXPECT_EQ(Peer::entry(table_, a.idx)->expiresNs(), 0u);
  ASSERT_TRUE(table_.erase(Peer::entry(table_, b.idx)));
  EXPECT_FALSE(Peer::finish(table_, k, a, 10, kFar, 0, &w));
  EXPECT_EQ(w, nullptr);
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 10), nullptr);
  EXPECT_EQ(liveCopies(k), 0u);
  const auto st = table_.indexStats();
  EXPECT_EQ(st.used_slots, 0u);
  EXPECT_EQ(st.overflow_sum, 0u);
}

// An expired live copy is replaced: the inserter kills and unlinks it during its rescan.
TEST_F(ProtocolTest, ExpiredLiveCopyIsReplacedDuringRescan) {
  const FlowKey4 k = nthKey(8);
  Table4::Entry* old = table_.insert(k, table_.hashOf(k), 10, 50).entry;
  ASSERT_NE(old, nullptr);
  const auto b = Peer::publishPending(table_, k, 2);
  Table4::Entry* w = nullptr;
  ASSERT_TRUE(Peer::finish(table_, k, b, 60, kFar, 0, &w));
  EXPECT_EQ(old->expiresNs(), 0u);
  EXPECT_EQ(table_.indexStats().used_slots, 1u);
  EXPECT_EQ(table_.find(k, table_.hashOf(k), 60), Peer::entry(table_, b.idx));
}

}  // namespace
}  // namespace statewall::dataplane
