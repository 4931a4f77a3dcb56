// Early drop in the connection table (conn_table.hpp, "Early drop"): a table made with an
// eviction reserve holds at most `capacity` live entries; an insert at capacity reaps an expired
// entry near the key, or evicts the live one closest to its expiry that the caller's Evict
// policy claims; it is full only when there is neither. Single-threaded here; the races are in
// evict_stress_test.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "table/table_test_util.hpp"

namespace statewall::dataplane {
namespace {

using testing::drainRetired;
using testing::EvictUnrepliedTest;
using testing::ForcedKey;
using testing::nthKey;
using testing::Table4;
using testing::TestValue;

constexpr uint64_t kFar = uint64_t{1} << 50;

constexpr uint64_t kReplied = testing::kStateReplied;

// The engine's rule on a test value: unreplied entries may be evicted; the claim is one CAS.

template <class Table>
typename Table::InsertResult insertEvicting(Table& t, const typename Table::Key& k, uint64_t now,
                                            uint64_t expires, EvictUnrepliedTest& ev) {
  return t.insert(
      k, t.hashOf(k), now, expires, [](TestValue&) {}, ev);
}

void reply(Table4::Entry* e) {
  e->value.state.fetch_or(kReplied, std::memory_order_acq_rel);
}

TEST(TableEvict, OnlyUnrepliedEntriesAreEvicted) {
  constexpr uint32_t kCap = 8;
  Table4 t(kCap, nullptr, kDefaultFlowHashSeed, false, 64);
  QsbrReader reader(t.qsbr());
  EvictUnrepliedTest ev;
  std::vector<Table4::Entry*> e;
  for (uint32_t i = 0; i < kCap; ++i) {
    const auto r = insertEvicting(t, nthKey(i), 1, kFar, ev);
    ASSERT_TRUE(r.inserted) << i;
    EXPECT_FALSE(r.evicted);
    e.push_back(r.entry);
  }
  // All replied but key 5.
  for (uint32_t i = 0; i < kCap; ++i)
    if (i != 5) reply(e[i]);

  const auto r = insertEvicting(t, nthKey(100), 1, kFar, ev);
  ASSERT_TRUE(r.inserted);
  EXPECT_TRUE(r.evicted);
  EXPECT_FALSE(r.reaped);
  EXPECT_FALSE(r.full);
  EXPECT_EQ(ev.claims, 1u);
  EXPECT_EQ(t.find(nthKey(5), t.hashOf(nthKey(5)), 1), nullptr);
  for (uint32_t i = 0; i < kCap; ++i)
    if (i != 5) {
      EXPECT_EQ(t.find(nthKey(i), t.hashOf(nthKey(i)), 1), e[i]) << i;
    }
  EXPECT_EQ(t.size(), kCap);

  // The newcomer is unreplied too: the next one evicts it, and no replied entry.
  const auto r2 = insertEvicting(t, nthKey(101), 1, kFar, ev);
  ASSERT_TRUE(r2.inserted);
  EXPECT_TRUE(r2.evicted);
  EXPECT_EQ(t.find(nthKey(100), t.hashOf(nthKey(100)), 1), nullptr);
  reply(r2.entry);

  // Now every entry has a reply: full, nothing killed.
  const auto r3 = insertEvicting(t, nthKey(102), 1, kFar, ev);
  EXPECT_TRUE(r3.full);
  EXPECT_FALSE(r3.evicted);
  EXPECT_EQ(r3.entry, nullptr);
  EXPECT_EQ(ev.claims, 2u);
  EXPECT_EQ(t.size(), kCap);
  for (uint32_t i = 0; i < kCap; ++i)
    if (i != 5) {
      EXPECT_EQ(t.find(nthKey(i), t.hashOf(nthKey(i)), 1), e[i]) << i;
    }
  // A replied entry's value was never touched by a claim.
  for (uint32_t i = 0; i < kCap; ++i)
    if (i != 5) {
      EXPECT_EQ(e[i]->value.state.load(), kReplied) << i;
    }
}

TEST(TableEvict, OldestUnrepliedGoesFirstAndExpiredBeforeAnyLive) {
  // Every key in one home bucket (forced hash) of a 7-entry table.
  using ForcedTable = ConnTable<ForcedKey, TestValue>;
  ForcedTable t(7, nullptr, kDefaultFlowHashSeed, false, 64);
  QsbrReader reader(t.qsbr());
  EvictUnrepliedTest ev;
  const uint64_t h = 0x00000000C0FFEE01ull;
  auto key = [&](uint64_t id) {
    ForcedKey k;
    k.id = id;
    k.forced_hash = h;
    return k;
  };
  const uint64_t expiry[7] = {500, 400, 900, 300, 700, 350, 800};
  std::vector<ForcedTable::Entry*> e;
  for (uint64_t i = 0; i < 7; ++i) {
    auto r = t.insert(
        key(i), h, 1, expiry[i], [](TestValue&) {}, ev);
    ASSERT_TRUE(r.inserted);
    e.push_back(r.entry);
  }
  e[3]->value.state.store(kReplied);  // the oldest, but replied
  // Oldest unreplied: key 5 (350).
  auto r = t.insert(
      key(10), h, 1, 1000, [](TestValue&) {}, ev);
  ASSERT_TRUE(r.inserted);
  EXPECT_TRUE(r.evicted);
  EXPECT_EQ(t.find(key(5), h, 1), nullptr);
  EXPECT_EQ(t.find(key(3), h, 1), e[3]);
  // Next: key 1 (400).
  r = t.insert(
      key(11), h, 1, 1000, [](TestValue&) {}, ev);
  ASSERT_TRUE(r.inserted);
  EXPECT_EQ(t.find(key(1), h, 1), nullptr);
  // At time 450 the replied key 3 (300) has expired: it is reaped, not an unreplied live one.
  r = t.insert(
      key(12), h, 450, 1000, [](TestValue&) {}, ev);
  ASSERT_TRUE(r.inserted);
  EXPECT_TRUE(r.reaped);
  EXPECT_FALSE(r.evicted);
  EXPECT_EQ(t.find(key(0), h, 450), e[0]);  // 500: unreplied and live, still there
  EXPECT_EQ(ev.claims, 2u);
  EXPECT_EQ(t.size(), 7u);
}

TEST(TableEvict, WithoutAReserveNothingIsEvicted) {
  constexpr uint32_t kCap = 8;
  Table4 t(kCap);
  QsbrReader reader(t.qsbr());
  EvictUnrepliedTest ev;
  for (uint32_t i = 0; i < kCap; ++i)
    ASSERT_TRUE(insertEvicting(t, nthKey(i), 1, kFar, ev).inserted);
  const auto r = insertEvicting(t, nthKey(100), 1, kFar, ev);
  EXPECT_TRUE(r.full);
  EXPECT_FALSE(r.evicted);
  EXPECT_EQ(ev.claims, 0u);
  EXPECT_EQ(t.evictReserve(), 0u);
}

TEST(TableEvict, PlainInsertIsBoundedByTheCapacityNotThePool) {
  constexpr uint32_t kCap = 8;
  Table4 t(kCap, nullptr, kDefaultFlowHashSeed, false, 64);
  QsbrReader reader(t.qsbr());
  for (uint32_t i = 0; i < kCap; ++i)
    ASSERT_TRUE(t.insert(nthKey(i), t.hashOf(nthKey(i)), 1, kFar).inserted);
  const auto r = t.insert(nthKey(100), t.hashOf(nthKey(100)), 1, kFar);
  EXPECT_TRUE(r.full);
  EXPECT_FALSE(r.evicted);
  EXPECT_EQ(t.size(), kCap);
}

// A SYN flood through a small table: every new key gets in by evicting an unreplied one, the
// evictions are counted, the victims come back through the reserve, and the connections that
// got replies are never touched. Once only replied entries are left, the table is full.
TEST(TableEvict, FloodCyclesThroughTheReserveAndCountsEvictions) {
  constexpr uint32_t kCap = 256;
  constexpr uint32_t kFlood = 50000;
  constexpr uint32_t kBurst = 32;  // the reader quiesces every kBurst inserts, as a worker does
  Table4 t(kCap, nullptr, kDefaultFlowHashSeed, false, 4 * kBurst);
  QsbrReader reader(t.qsbr());
  EvictUnrepliedTest ev;
  // 64 replied connections first.
  std::vector<Table4::Entry*> kept;
  for (uint32_t i = 0; i < 64; ++i) {
    const auto r = insertEvicting(t, nthKey(1000000 + i), 1, kFar, ev);
    ASSERT_TRUE(r.inserted);
    reply(r.entry);
    kept.push_back(r.entry);
  }
  uint64_t evicted = 0, inserted = 0, full = 0;
  for (uint32_t i = 0; i < kFlood; ++i) {
    const auto r = insertEvicting(t, nthKey(i), 1 + i, kFar, ev);
    inserted += r.inserted;
    evicted += r.evicted;
    full += r.full;
    if (i % kBurst == kBurst - 1) {
      reader.quiescent();
      for (uint32_t k = 0; k < kept.size(); ++k)
        ASSERT_EQ(t.find(nthKey(1000000 + k), t.hashOf(nthKey(1000000 + k)), 1), kept[k]) << i;
    }
  }
  // Near the key: a bucket (and its 3 neighbours) of replied entries only could refuse one;
  // with a quarter of the table replied that does not happen here.
  EXPECT_EQ(full, 0u);
  EXPECT_EQ(inserted, kFlood);
  EXPECT_EQ(evicted, kFlood - (kCap - 64));
  EXPECT_EQ(ev.claims, evicted);
  EXPECT_LE(t.size(), kCap);
  for (uint32_t k = 0; k < kept.size(); ++k) {
    EXPECT_EQ(kept[k]->value.state.load(), kReplied);
    EXPECT_EQ(t.connId(kept[k]) >> 32, 1u) << "a replied entry was reused";
  }
  // New connections that all get replies: the unreplied ones are evicted one by one until a
  // new key finds only replied entries near it; then it is full, and nothing is evicted for it.
  // Every replied entry stays.
  uint64_t refused = 0;
  for (uint32_t i = 0; i < 20 * kCap; ++i) {
    const auto r = insertEvicting(t, nthKey(2000000 + i), 2000000, kFar, ev);
    if (r.full) {
      ++refused;
      EXPECT_FALSE(r.evicted);
      EXPECT_EQ(r.entry, nullptr);
    } else {
      ASSERT_TRUE(r.inserted);
      reply(r.entry);
      kept.push_back(r.entry);
    }
    if (i % kBurst == 0) reader.quiescent();
  }
  EXPECT_GT(refused, 0u);
  EXPECT_LE(t.size(), kCap);
  for (uint32_t k = 0; k < kept.size(); ++k) {
    const FlowKey4 key = k < 64 ? nthKey(1000000 + k) : kept[k]->key;
    EXPECT_EQ(t.find(key, t.hashOf(key), 2000000), kept[k]) << k;
  }
  EXPECT_GT(kept.size(), kCap - 64u);
}

}  // namespace
}  // namespace statewall::dataplane
