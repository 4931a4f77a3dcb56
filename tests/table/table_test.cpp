// Single-threaded behaviour of the connection table: keys, both directions, duplicates, expiry,
// sweep, slot reuse, full table, probe limit, IPv6, connection ids, grace periods.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "table/table_test_util.hpp"

namespace statewall::dataplane {
namespace {

using testing::drainRetired;
using testing::ForcedKey;
using testing::key4;
using testing::nthKey;
using testing::Table4;
using testing::Table6;
using testing::TestValue;

constexpr uint64_t kFar = uint64_t{1} << 50;  // an expiry that never comes in these tests

// --- flow keys -------------------------------------------------------------------------------

TEST(FlowKey, BothDirectionsGiveOneKey) {
  bool fwd_dir = false;
  bool rev_dir = false;
  const FlowKey4 fwd = key4(0x0A000001, 0x0A000002, 40000, 80, 6, &fwd_dir);
  const FlowKey4 rev = key4(0x0A000002, 0x0A000001, 80, 40000, 6, &rev_dir);
  EXPECT_TRUE(fwd.sameFlow(rev));
  EXPECT_EQ(fwd.hash(), rev.hash());
  EXPECT_NE(fwd_dir, rev_dir);
  EXPECT_TRUE(fwd_dir);  // 10.0.0.1 < 10.0.0.2
  EXPECT_EQ(fwd.loToHi(), fwd_dir);
  EXPECT_EQ(rev.loToHi(), rev_dir);
  EXPECT_EQ(fwd.lo_addr, 0x0A000001u);
  EXPECT_EQ(fwd.lo_port, 40000);
  EXPECT_EQ(fwd.hi_port, 80);
}

TEST(FlowKey, OrdersByAddressThenPort) {
  bool dir = false;
  // Same address both sides: the lower port is the lo side.
  const FlowKey4 a = key4(0x7F000001, 0x7F000001, 5000, 80, 17, &dir);
  EXPECT_FALSE(dir);
  EXPECT_EQ(a.lo_port, 80);
  EXPECT_EQ(a.hi_port, 5000);
  // Fully equal endpoints: lo -> hi both ways.
  key4(0x7F000001, 0x7F000001, 80, 80, 17, &dir);
  EXPECT_TRUE(dir);
}

TEST(FlowKey, IdentityFieldsMatter) {
  const FlowKey4 base = key4(1, 2, 3, 4, 6);
  EXPECT_FALSE(base.sameFlow(key4(1, 2, 3, 4, 17)));
  EXPECT_FALSE(base.sameFlow(key4(1, 2, 3, 5, 6)));
  EXPECT_FALSE(base.sameFlow(key4(1, 3, 3, 4, 6)));
  EXPECT_NE(base.hash(), key4(1, 2, 3, 4, 17).hash());
  EXPECT_NE(base.hash(), base.hash(12345));  // the seed changes the hash
}

TEST(FlowKey, MetaIsNotIdentity) {
  FlowKey4 a = key4(1, 2, 3, 4, 6);
  FlowKey4 b = a;
  b.setGeneration(12345);
  b.setLoToHi(!a.loToHi());
  EXPECT_TRUE(a.sameFlow(b));
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_EQ(b.generation(), 12345u);
  EXPECT_NE(b.loToHi(), a.loToHi());
  b.setGeneration(FlowKey4::kGenerationMask + 3);  // masked to 23 bits
  EXPECT_EQ(b.generation(), 2u);
  EXPECT_NE(b.loToHi(), a.loToHi());  // untouched by setGeneration
}

TEST(FlowKey, EchoIdInBothPorts) {
  FlowKey4 req;
  FlowKey4 rep;
  bool req_dir = false;
  bool rep_dir = false;
  makeEchoKey4(0x0A000001, 0x08080808, 777, 1, &req, &req_dir);
  makeEchoKey4(0x08080808, 0x0A000001, 777, 1, &rep, &rep_dir);
  EXPECT_TRUE(req.sameFlow(rep));
  EXPECT_EQ(req.lo_port, 777);
  EXPECT_EQ(req.hi_port, 777);
  EXPECT_NE(req_dir, rep_dir);
  FlowKey4 other;
  makeEchoKey4(0x0A000001, 0x08080808, 778, 1, &other, nullptr);
  EXPECT_FALSE(req.sameFlow(other));
}

TEST(FlowKey, Ipv6BothDirections) {
  const auto a = *rules::IpAddr::parse("2001:db8::10");
  const auto b = *rules::IpAddr::parse("2001:db8::1:0:0:5");
  FlowKey6 fwd;
  FlowKey6 rev;
  bool fwd_dir = false;
  bool rev_dir = false;
  makeKey6(a, b, 50000, 443, 6, &fwd, &fwd_dir);
  makeKey6(b, a, 443, 50000, 6, &rev, &rev_dir);
  EXPECT_TRUE(fwd.sameFlow(rev));
  EXPECT_EQ(fwd.hash(), rev.hash());
  EXPECT_NE(fwd_dir, rev_dir);
  EXPECT_EQ(fwd.loAddr(), a);  // ::10 < ::1:0:0:5
  EXPECT_EQ(fwd.hiAddr(), b);
  FlowKey6 other;
  makeKey6(a, b, 50000, 444, 6, &other, nullptr);
  EXPECT_FALSE(fwd.sameFlow(other));
  EXPECT_NE(fwd.hash(), other.hash());
}

TEST(FlowKey, HashSpreadsSequentialKeys) {
  // Sequential clients: the home bucket (high half) and tag (low half) must both spread.
  constexpr uint32_t kBuckets = 1024;
  std::vector<int> count(kBuckets, 0);
  std::set<uint32_t> tags;
  for (uint32_t i = 0; i < 64 * kBuckets; ++i) {
    const uint64_t h = nthKey(i).hash();
    ++count[((h >> 32) * kBuckets) >> 32];
    tags.insert(static_cast<uint32_t>(h));
  }
  const auto [lo, hi] = std::minmax_element(count.begin(), count.end());
  EXPECT_GT(*lo, 20);  // mean 64; a poor hash leaves buckets empty
  EXPECT_LT(*hi, 120);
  EXPECT_GT(tags.size(), 64u * kBuckets - 10);
}

TEST(FlowKey, WordsAreTheKeyAndItsHash) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    // Random endpoints, often equal addresses or ports (the tie-breaks).
    const uint32_t a = static_cast<uint32_t>(rng());
    const uint32_t b = rng() % 4 == 0 ? a : static_cast<uint32_t>(rng());
    const uint16_t sp = static_cast<uint16_t>(rng());
    const uint16_t dp = rng() % 4 == 0 ? sp : static_cast<uint16_t>(rng());
    const uint8_t proto = static_cast<uint8_t>(rng());
    FlowKey4 k;
    bool lo_to_hi = false;
    makeKey4(a, b, sp, dp, proto, &k, &lo_to_hi);
    uint64_t w0 = 0, w1 = 0;
    const bool words_lo_to_hi = makeKey4Words(a, b, sp, dp, proto, &w0, &w1);
    const FlowKey4 kw = FlowKey4::fromWords(w0, w1);
    ASSERT_EQ(words_lo_to_hi, lo_to_hi) << i;
    ASSERT_EQ(std::memcmp(&kw, &k, sizeof k), 0) << i;  // every byte, direction bit included
    const uint64_t seed = rng();
    ASSERT_EQ(FlowKey4::hashWords(w0, w1, seed), k.hash(seed)) << i;
  }
}

// --- table basics ----------------------------------------------------------------------------

class TableTest : public ::testing::Test {
 protected:
  explicit TableTest(size_t capacity = 4096) : table_(capacity), reader_(table_.qsbr()) {}

  Table4::InsertResult insert(const FlowKey4& k, uint64_t now, uint64_t expires, uint64_t tag = 0) {
    return table_.insert(k, table_.hashOf(k), now, expires,
                         [tag](TestValue& v) { v.tag.store(tag, std::memory_order_relaxed); });
  }
  Table4::Entry* find(const FlowKey4& k, uint64_t now) {
    return table_.find(k, table_.hashOf(k), now);
  }

  Table4 table_;
  QsbrReader reader_;
};

TEST_F(TableTest, EntryLayout) {
  static_assert(sizeof(Table4::Entry) == 64);
  static_assert(alignof(Table4::Entry) == 64);
  static_assert(sizeof(Table6::Entry) == 128);
  Table4::Entry* e = insert(nthKey(1), 10, kFar).entry;
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(e) % 64, 0u);
}

TEST_F(TableTest, InsertThenFindFromBothDirections) {
  bool fwd_dir = false;
  bool rev_dir = false;
  const FlowKey4 fwd = key4(0x0A000001, 0x0A000002, 40000, 80, 6, &fwd_dir);
  const FlowKey4 rev = key4(0x0A000002, 0x0A000001, 80, 40000, 6, &rev_dir);
  EXPECT_EQ(find(fwd, 10), nullptr);
  const auto r = insert(fwd, 10, kFar, 42);
  ASSERT_TRUE(r.inserted);
  ASSERT_FALSE(r.full);
  ASSERT_NE(r.entry, nullptr);
  EXPECT_EQ(r.entry->value.tag.load(), 42u);
  EXPECT_EQ(r.entry->expiresNs(), kFar);

  Table4::Entry* by_fwd = find(fwd, 11);
  Table4::Entry* by_rev = find(rev, 11);
  EXPECT_EQ(by_fwd, r.entry);
  EXPECT_EQ(by_rev, r.entry);
  EXPECT_TRUE(by_rev->fromOriginator(fwd));
  EXPECT_FALSE(by_rev->fromOriginator(rev));
  EXPECT_TRUE(by_rev->fromOriginator(fwd_dir));
  EXPECT_FALSE(by_rev->fromOriginator(rev_dir));
  EXPECT_EQ(by_rev->originatorIsLo(), fwd_dir);
  EXPECT_EQ(table_.size(), 1u);
}

TEST_F(TableTest, ReplyOpensTheConnectionWhenItComesFirst) {
  bool rev_dir = false;
  const FlowKey4 rev = key4(0x0A000002, 0x0A000001, 80, 40000, 6, &rev_dir);
  const FlowKey4 fwd = key4(0x0A000001, 0x0A000002, 40000, 80, 6);
  ASSERT_TRUE(insert(rev, 10, kFar).inserted);
  Table4::Entry* e = find(fwd, 10);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->originatorIsLo(), rev_dir);
  EXPECT_TRUE(e->fromOriginator(rev));
  EXPECT_FALSE(e->fromOriginator(fwd));
}

TEST_F(TableTest, SecondInsertReturnsTheExistingEntry) {
  const FlowKey4 fwd = nthKey(7);
  const FlowKey4 rev = nthKey(7, true);
  const auto a = insert(fwd, 10, kFar, 1);
  ASSERT_TRUE(a.inserted);
  bool init_called = false;
  const auto b =
      table_.insert(rev, table_.hashOf(rev), 10, kFar, [&](TestValue&) { init_called = true; });
  EXPECT_FALSE(b.inserted);
  EXPECT_FALSE(b.full);
  EXPECT_EQ(b.entry, a.entry);
  EXPECT_FALSE(init_called);
  EXPECT_EQ(b.entry->value.tag.load(), 1u);
  EXPECT_TRUE(b.entry->fromOriginator(fwd));  // the first insert stays the originator
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(table_.indexStats().used_slots, 1u);
}

TEST_F(TableTest, ExpiredEntryIsAbsentAndReplacedByInsert) {
  const FlowKey4 k = nthKey(3);
  const auto a = insert(k, 10, 100, 1);
  ASSERT_TRUE(a.inserted);
  const uint64_t old_id = table_.connId(a.entry);
  EXPECT_NE(find(k, 99), nullptr);
  EXPECT_EQ(find(k, 100), nullptr);  // expires_ns <= now: absent
  EXPECT_EQ(find(k, 5000), nullptr);

  const auto b = insert(k, 150, 400, 2);
  ASSERT_TRUE(b.inserted);
  EXPECT_EQ(b.entry->value.tag.load(), 2u);
  EXPECT_NE(table_.connId(b.entry), old_id);
  EXPECT_EQ(find(k, 150), b.entry);
  EXPECT_EQ(table_.size(), 1u);  // the expired copy was killed, not duplicated
  EXPECT_EQ(table_.indexStats().used_slots, 1u);
  // The old entry is dead: refresh and erase fail on it (it is still readable: grace period).
  EXPECT_FALSE(table_.refresh(a.entry, 1000));
  EXPECT_FALSE(table_.erase(a.entry));
  EXPECT_EQ(a.entry->expiresNs(), 0u);
}

TEST_F(TableTest, RefreshExtendsAndFailsOnceDead) {
  const FlowKey4 k = nthKey(4);
  Table4::Entry* e = insert(k, 10, 100).entry;
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(table_.refresh(e, 300));
  EXPECT_EQ(find(k, 200), e);
  // An expired entry nobody killed yet can be revived by its owner's refresh.
  EXPECT_EQ(find(k, 300), nullptr);
  EXPECT_TRUE(table_.refresh(e, 500));
  EXPECT_EQ(find(k, 300), e);
  EXPECT_TRUE(table_.erase(e));
  EXPECT_FALSE(table_.refresh(e, 900));
  EXPECT_EQ(find(k, 300), nullptr);
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_FALSE(table_.refresh(e, 1));  // invalid expiry values are refused
}

TEST_F(TableTest, EraseThenInsertMakesANewConnection) {
  const FlowKey4 k = nthKey(5);
  const auto a = insert(k, 10, kFar, 1);
  const uint64_t id = table_.connId(a.entry);
  ASSERT_TRUE(table_.erase(a.entry));
  EXPECT_FALSE(table_.erase(a.entry));
  EXPECT_EQ(find(k, 10), nullptr);
  const auto b = insert(k, 10, kFar, 2);
  ASSERT_TRUE(b.inserted);
  EXPECT_NE(table_.connId(b.entry), id);
  EXPECT_EQ(table_.indexStats().used_slots, 1u);
}

TEST_F(TableTest, SweepKillsOnlyExpired) {
  constexpr uint32_t kN = 1000;
  for (uint32_t i = 0; i < kN; ++i)
    ASSERT_TRUE(insert(nthKey(i), 1, 100 + i).inserted);
  EXPECT_EQ(table_.size(), kN);
  // now = 599: entries 0..499 (expiry 100..599) are due.
  const size_t killed = table_.sweep(599, table_.bucketCount());
  EXPECT_EQ(killed, 500u);
  EXPECT_EQ(table_.size(), kN - 500);
  for (uint32_t i = 0; i < kN; ++i) {
    EXPECT_EQ(find(nthKey(i), 1) != nullptr, i >= 500) << i;
  }
  EXPECT_EQ(table_.indexStats().used_slots, kN - 500);
}

TEST_F(TableTest, SweepSlicesCoverTheTable) {
  constexpr uint32_t kN = 700;
  for (uint32_t i = 0; i < kN; ++i)
    ASSERT_TRUE(insert(nthKey(i), 1, 50).inserted);
  size_t killed = 0;
  // Slices of 3 buckets: a full round of the shared cursor visits every bucket once.
  for (uint32_t done = 0; done < table_.bucketCount(); done += 3)
    killed += table_.sweep(60, 3);
  EXPECT_EQ(killed, kN);
  EXPECT_EQ(table_.size(), 0u);
  const auto st = table_.indexStats();
  EXPECT_EQ(st.used_slots, 0u);
  EXPECT_EQ(st.overflow_sum, 0u);
  EXPECT_EQ(table_.sweep(1000, 10), 0u);
}

TEST_F(TableTest, ForEachVisitsLiveEntries) {
  constexpr uint32_t kN = 300;
  for (uint32_t i = 0; i < kN; ++i)
    insert(nthKey(i), 1, i < 100 ? 50 : kFar, i);
  std::set<uint64_t> tags;
  table_.forEach(60, [&](Table4::Entry& e) { tags.insert(e.value.tag.load()); });
  EXPECT_EQ(tags.size(), kN - 100);
  EXPECT_EQ(*tags.begin(), 100u);
  // In slices, erasing from inside the callback.
  size_t erased = 0;
  for (uint32_t b = 0; b < table_.bucketCount();) {
    b = table_.forEachInRange(60, b, 5, [&](Table4::Entry& e) { erased += table_.erase(&e); });
  }
  EXPECT_EQ(erased, kN - 100);
  size_t left = 0;
  table_.forEach(0, [&](Table4::Entry&) { ++left; });
  EXPECT_EQ(left, 100u);  // the expired ones, still there at now = 0
}

TEST_F(TableTest, FindBulkMatchesFind) {
  constexpr uint32_t kN = 3000;
  for (uint32_t i = 0; i < kN; i += 2)
    insert(nthKey(i), 1, i % 6 == 0 ? 20 : kFar);
  std::vector<FlowKey4> keys;
  std::vector<uint64_t> hashes;
  for (uint32_t i = 0; i < kN; ++i) {
    keys.push_back(nthKey(i, i % 3 == 0));
    hashes.push_back(table_.hashOf(keys.back()));
  }
  std::vector<Table4::Entry*> out(kN, nullptr);
  for (uint32_t base = 0; base < kN; base += 32) {
    table_.findBulk(&keys[base], &hashes[base], std::min(32u, kN - base), 30, &out[base]);
  }
  size_t hits = 0;
  for (uint32_t i = 0; i < kN; ++i) {
    EXPECT_EQ(out[i], find(keys[i], 30)) << i;
    hits += out[i] != nullptr;
  }
  EXPECT_EQ(hits, kN / 2 - kN / 6);
  // n > 64 goes in chunks.
  std::vector<Table4::Entry*> big(kN, nullptr);
  table_.findBulk(keys.data(), hashes.data(), kN, 30, big.data());
  EXPECT_EQ(big, out);
}

// The staged lookup (prefetch, probe, probeNext, resolve) gives what find() gives, at the rated
// load where some keys live past their home bucket, with expired, erased and absent keys; and
// when the table changes between the probe and the resolve, never a dead entry.
TEST(TableStaged, StagesMatchFind) {
  constexpr uint32_t kCap = 20000;
  Table4 t(kCap);
  QsbrReader reader(t.qsbr());
  for (uint32_t i = 0; i < kCap; ++i)
    ASSERT_TRUE(t.insert(nthKey(i), t.hashOf(nthKey(i)), 1, i % 7 == 0 ? 20 : kFar).inserted);
  ASSERT_GT(t.indexStats().distance_sum, 0u);  // some keys overflowed their home bucket
  for (uint32_t i = 0; i < kCap; i += 5)
    t.erase(t.find(nthKey(i), t.hashOf(nthKey(i)), 1));
  size_t hits = 0;
  size_t want_hits = 0;
  for (uint32_t i = 0; i < kCap; ++i)
    want_hits += i % 5 != 0 && i % 7 != 0;  // not erased, not expired at 30
  for (uint32_t i = 0; i < kCap + 5000; ++i) {
    const FlowKey4 k = nthKey(i, i % 2 == 0);
    const uint64_t h = t.hashOf(k);
    t.prefetch(h);
    const Table4::Probe p1 = t.probe(h);
    const Table4::Probe p2 = t.probeNext(h, p1);
    Table4::Entry* want = t.find(k, h, 30);
    ASSERT_EQ(t.resolve(k, h, p1, 30), want) << i;
    ASSERT_EQ(t.resolve(k, h, p2, 30), want) << i;
    hits += want != nullptr;
  }
  EXPECT_EQ(hits, want_hits);
  // A probe taken before the key was erased, or before it was inserted, resolves to the
  // table as it is now.
  const FlowKey4 k = nthKey(3);
  const uint64_t h = t.hashOf(k);
  const Table4::Probe stale = t.probeNext(h, t.probe(h));
  ASSERT_NE(t.find(k, h, 30), nullptr);
  t.erase(t.find(k, h, 30));
  EXPECT_EQ(t.resolve(k, h, stale, 30), nullptr);
  drainRetired(t, reader);  // the erased entries back in the pool
  const Table4::Probe before = t.probeNext(h, t.probe(h));
  Table4::Entry* fresh = t.insert(k, h, 30, kFar).entry;
  ASSERT_NE(fresh, nullptr);
  // A key inserted after its probe may be missed (the probe may have seen a certain miss), as
  // with findBulk(); callers look a miss up again when it matters (the engine does).
  Table4::Entry* got = t.resolve(k, h, before, 30);
  EXPECT_TRUE(got == nullptr || got == fresh);
}

TEST_F(TableTest, ConnIdIsStableAndNeverZero) {
  const FlowKey4 k = nthKey(9);
  Table4::Entry* e = insert(k, 1, kFar).entry;
  const uint64_t id = table_.connId(e);
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(table_.refresh(e, kFar + 1));
  e->value.fwd.fetch_add(1);
  EXPECT_EQ(table_.connId(find(nthKey(9, true), 1)), id);
  std::set<uint64_t> ids;
  for (uint32_t i = 100; i < 200; ++i)
    ids.insert(table_.connId(insert(nthKey(i), 1, kFar).entry));
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(ids.count(id), 0u);
}

TEST(TableMemory, AtMost80BytesPerIpv4ConnectionAtCapacity) {
  Table4 t(1 << 20);
  const double per_conn = static_cast<double>(t.memoryBytes()) / static_cast<double>(t.capacity());
  EXPECT_LE(per_conn, 80.0);
  EXPECT_GT(per_conn, 64.0);
}

// --- full table, slot reuse, probe limit ------------------------------------------------------

TEST(TableFull, DeniesNewAndNeverEvicts) {
  constexpr uint32_t kCap = 100;
  Table4 t(kCap);
  QsbrReader reader(t.qsbr());
  std::vector<Table4::Entry*> entries;
  for (uint32_t i = 0; i < kCap; ++i) {
    const auto r = t.insert(nthKey(i), t.hashOf(nthKey(i)), 1, kFar);
    ASSERT_TRUE(r.inserted) << i;
    entries.push_back(r.entry);
  }
  const auto full = t.insert(nthKey(kCap), t.hashOf(nthKey(kCap)), 1, kFar);
  EXPECT_TRUE(full.full);
  EXPECT_FALSE(full.inserted);
  EXPECT_EQ(full.entry, nullptr);
  // An existing connection still answers (no new entry needed).
  const auto existing = t.insert(nthKey(5, true), t.hashOf(nthKey(5)), 1, kFar);
  EXPECT_FALSE(existing.full);
  EXPECT_EQ(existing.entry, entries[5]);
  for (uint32_t i = 0; i < kCap; ++i)
    EXPECT_EQ(t.find(nthKey(i), t.hashOf(nthKey(i)), 1), entries[i]);

  // Freeing one entry makes room only after the grace period.
  ASSERT_TRUE(t.erase(entries[17]));
  EXPECT_TRUE(t.insert(nthKey(kCap), t.hashOf(nthKey(kCap)), 1, kFar).full);
  drainRetired(t, reader);
  EXPECT_TRUE(t.insert(nthKey(kCap), t.hashOf(nthKey(kCap)), 1, kFar).inserted);
  EXPECT_EQ(t.size(), kCap);
}

TEST(TableFull, ExpiredEntriesComeBackThroughTheSweep) {
  constexpr uint32_t kCap = 64;
  Table4 t(kCap);
  QsbrReader reader(t.qsbr());
  for (uint32_t i = 0; i < kCap; ++i)
    ASSERT_TRUE(t.insert(nthKey(i), t.hashOf(nthKey(i)), 1, 10).inserted);
  EXPECT_TRUE(t.insert(nthKey(999), t.hashOf(nthKey(999)), 20, kFar).full);
  EXPECT_EQ(t.sweep(20, t.bucketCount()), kCap);
  drainRetired(t, reader);
  for (uint32_t i = 0; i < kCap; ++i) {
    ASSERT_TRUE(t.insert(nthKey(1000 + i), t.hashOf(nthKey(1000 + i)), 20, kFar).inserted) << i;
  }
  EXPECT_TRUE(t.insert(nthKey(5000), t.hashOf(nthKey(5000)), 20, kFar).full);
}

using ForcedTable = ConnTable<ForcedKey, TestValue>;

ForcedKey forced(uint64_t id, uint64_t hash) {
  ForcedKey k;
  k.id = id;
  k.forced_hash = hash;
  return k;
}

TEST(TableSlots, DeletedSlotIsReusedAndOverflowCountsReturnToZero) {
  ForcedTable t(1000);
  QsbrReader reader(t.qsbr());
  const uint64_t h = 0x12345678ABCDEF01ull;  // every key: the same home bucket and tag
  std::vector<ForcedTable::Entry*> e;
  for (uint64_t i = 0; i < 9; ++i)
    e.push_back(t.insert(forced(i, h), h, 1, kFar).entry);
  auto st = t.indexStats();
  EXPECT_EQ(st.used_slots, 9u);
  EXPECT_EQ(st.max_distance, 1u);  // 7 in the home bucket, 2 in the next
  EXPECT_EQ(st.overflow_sum, 2u);
  // Same tag everywhere: lookups must compare keys.
  for (uint64_t i = 0; i < 9; ++i)
    EXPECT_EQ(t.find(forced(i, h), h, 1), e[i]);
  EXPECT_EQ(t.find(forced(99, h), h, 1), nullptr);

  // Free a home slot: the next key takes it (distance 0) instead of going further out.
  ASSERT_TRUE(t.erase(e[3]));
  ASSERT_TRUE(t.insert(forced(20, h), h, 1, kFar).inserted);
  st = t.indexStats();
  EXPECT_EQ(st.used_slots, 9u);
  EXPECT_EQ(st.distance_sum, 2u);
  EXPECT_EQ(st.overflow_sum, 2u);

  // Removing the overflowed keys brings the counts back to 0: misses stop at home again.
  ASSERT_TRUE(t.erase(e[7]));
  ASSERT_TRUE(t.erase(e[8]));
  st = t.indexStats();
  EXPECT_EQ(st.overflow_sum, 0u);
  EXPECT_EQ(st.max_distance, 0u);
  for (uint64_t i : {0, 1, 2, 4, 5, 6})
    EXPECT_EQ(t.find(forced(i, h), h, 1), e[i]);
  EXPECT_NE(t.find(forced(20, h), h, 1), nullptr);
}

TEST(TableSlots, ProbeLimitMakesInsertFailWithoutEvicting) {
  ForcedTable t(2000);
  QsbrReader reader(t.qsbr());
  const uint64_t h = 0x00000000DEADBEEFull;  // home bucket 0
  const uint64_t limit = uint64_t{ForcedTable::kMaxProbe} * ForcedTable::kSlotsPerBucket;
  std::vector<ForcedTable::Entry*> e;
  for (uint64_t i = 0; i < limit; ++i) {
    const auto r = t.insert(forced(i, h), h, 1, kFar);
    ASSERT_TRUE(r.inserted) << i;
    e.push_back(r.entry);
  }
  const auto r = t.insert(forced(limit, h), h, 1, kFar);
  EXPECT_TRUE(r.full);
  EXPECT_EQ(r.entry, nullptr);
  // The failed insert gave its entry back and undid its overflow counts.
  EXPECT_EQ(t.size(), limit);
  const auto st = t.indexStats();
  EXPECT_EQ(st.max_distance, ForcedTable::kMaxProbe - 1);
  uint64_t expect_overflow = 0;
  for (uint64_t d = 0; d < ForcedTable::kMaxProbe; ++d)
    expect_overflow += d * 7;
  EXPECT_EQ(st.overflow_sum, expect_overflow);
  for (uint64_t i = 0; i < limit; ++i)
    EXPECT_EQ(t.find(forced(i, h), h, 1), e[i]);
  // A key with another home is unaffected, and freeing one slot lets the next collider in.
  EXPECT_TRUE(
      t.insert(forced(5000, 0xFFFFFFFF00000001ull), 0xFFFFFFFF00000001ull, 1, kFar).inserted);
  ASSERT_TRUE(t.erase(e[100]));
  EXPECT_TRUE(t.insert(forced(limit, h), h, 1, kFar).inserted);
}

// --- IPv6 --------------------------------------------------------------------------------------

TEST(TableV6, InsertFindBothDirections) {
  Table6 t(1000);
  QsbrReader reader(t.qsbr());
  const auto a = *rules::IpAddr::parse("2001:db8::10");
  std::vector<Table6::Entry*> entries;
  for (uint16_t i = 0; i < 500; ++i) {
    const auto b = rules::IpAddr::v6(0x20010db800000000ull + i, 0x5);
    FlowKey6 k;
    makeKey6(a, b, static_cast<uint16_t>(30000 + i), 443, 6, &k, nullptr);
    const auto r = t.insert(k, t.hashOf(k), 1, kFar, [i](TestValue& v) { v.tag = i; });
    ASSERT_TRUE(r.inserted);
    entries.push_back(r.entry);
  }
  for (uint16_t i = 0; i < 500; ++i) {
    const auto b = rules::IpAddr::v6(0x20010db800000000ull + i, 0x5);
    FlowKey6 rev;
    makeKey6(b, a, 443, static_cast<uint16_t>(30000 + i), 6, &rev, nullptr);
    Table6::Entry* e = t.find(rev, t.hashOf(rev), 1);
    ASSERT_EQ(e, entries[i]);
    EXPECT_EQ(e->value.tag.load(), i);
    EXPECT_FALSE(e->fromOriginator(rev));
  }
  EXPECT_EQ(t.size(), 500u);
}

TEST(TableMemory, Ipv6PerConnectionAtCapacity) {
  Table6 t(1 << 20);
  const double per_conn = static_cast<double>(t.memoryBytes()) / static_cast<double>(t.capacity());
  EXPECT_LE(per_conn, 128.0 + 64.0 / 7 / 0.64 + 1);  // entry + index + rounding
  EXPECT_GT(per_conn, 128.0);
}

// --- grace periods -----------------------------------------------------------------------------

TEST(TableReclaim, EntryIsReusedOnlyAfterEveryOnlineReaderQuiesced) {
  Qsbr qsbr(8);
  Table4 t(1, &qsbr);
  QsbrReader me(qsbr);
  QsbrReader other(qsbr);  // another packet thread, online, in the middle of a burst

  const FlowKey4 k1 = nthKey(1);
  const FlowKey4 k2 = nthKey(2);
  Table4::Entry* e1 = t.insert(k1, t.hashOf(k1), 1, kFar, [](TestValue& v) { v.tag = 1; }).entry;
  ASSERT_NE(e1, nullptr);
  Table4::Entry* held = t.find(k1, t.hashOf(k1), 1);  // "other" holds this pointer
  ASSERT_EQ(held, e1);
  ASSERT_TRUE(t.erase(e1));

  for (int round = 0; round < 4; ++round) {
    me.quiescent();
    t.reclaim();
    EXPECT_TRUE(t.insert(k2, t.hashOf(k2), 1, kFar).full) << round;
    // The held entry keeps its key and value until "other" passes a quiescent point.
    EXPECT_TRUE(held->key.sameFlow(k1));
    EXPECT_EQ(held->value.tag.load(), 1u);
  }
  other.quiescent();
  me.quiescent();
  t.reclaim();
  const auto r = t.insert(k2, t.hashOf(k2), 1, kFar, [](TestValue& v) { v.tag = 2; });
  ASSERT_TRUE(r.inserted);
  EXPECT_EQ(r.entry, e1);  // the only entry, reused
  EXPECT_NE(t.connId(r.entry), 0u);
}

TEST(TableReclaim, PoolComesBackWholeRoundAfterRound) {
  constexpr uint32_t kCap = 16;
  Table4 t(kCap);
  QsbrReader reader(t.qsbr());
  std::set<uint64_t> ids;
  for (uint32_t round = 0; round < 200; ++round) {
    std::vector<Table4::Entry*> live;
    for (uint32_t i = 0; i < kCap; ++i) {
      const FlowKey4 k = nthKey(round * kCap + i);
      const auto r = t.insert(k, t.hashOf(k), 1, kFar);
      ASSERT_TRUE(r.inserted) << "round " << round << " key " << i;
      EXPECT_TRUE(ids.insert(t.connId(r.entry)).second);  // ids never repeat
      live.push_back(r.entry);
    }
    const FlowKey4 extra = nthKey(1u << 30);
    ASSERT_TRUE(t.insert(extra, t.hashOf(extra), 1, kFar).full);
    // Half erased, half expired and swept: both paths retire entries.
    for (uint32_t i = 0; i < kCap; i += 2)
      ASSERT_TRUE(t.erase(live[i]));
    for (uint32_t i = 1; i < kCap; i += 2)
      ASSERT_TRUE(t.refresh(live[i], 5));
    EXPECT_EQ(t.sweep(10, t.bucketCount()), kCap / 2);
    EXPECT_EQ(t.size(), 0u);
    drainRetired(t, reader);
  }
  EXPECT_EQ(t.indexStats().overflow_sum, 0u);
}

TEST(TableReclaim, OfflineReaderDoesNotHoldReclamation) {
  Qsbr qsbr(8);
  Table4 t(1, &qsbr);
  QsbrReader me(qsbr);
  QsbrReader idle(qsbr);
  idle.offline();
  const FlowKey4 k1 = nthKey(1);
  const FlowKey4 k2 = nthKey(2);
  Table4::Entry* e = t.insert(k1, t.hashOf(k1), 1, kFar).entry;
  const uint64_t id1 = t.connId(e);
  ASSERT_TRUE(t.erase(e));
  drainRetired(t, me);
  const auto r = t.insert(k2, t.hashOf(k2), 1, kFar);
  ASSERT_TRUE(r.inserted);
  EXPECT_NE(t.connId(r.entry), id1);  // same entry, next generation
  EXPECT_EQ(t.connId(r.entry) & 0xFFFFFFFFu, id1 & 0xFFFFFFFFu);
  idle.online();
}

TEST(Qsbr, GracePeriodWaitsForOnlineReadersOnly) {
  Qsbr q(4);
  const unsigned a = q.registerThread();
  const unsigned b = q.registerThread();
  ASSERT_NE(a, Qsbr::kNoThread);
  ASSERT_NE(b, Qsbr::kNoThread);
  EXPECT_NE(a, b);
  q.online(a);
  q.online(b);
  const uint64_t t1 = q.start();
  EXPECT_FALSE(q.poll(t1));
  q.quiescent(a);
  EXPECT_FALSE(q.poll(t1));
  q.quiescent(b);
  EXPECT_TRUE(q.poll(t1));
  const uint64_t t2 = q.start();
  EXPECT_GT(t2, t1);
  EXPECT_FALSE(q.poll(t2));
  q.offline(b);
  q.quiescent(a);
  EXPECT_TRUE(q.poll(t2));
  // A reader coming online after start() is not waited for.
  const uint64_t t3 = q.start();
  q.online(b);
  q.quiescent(a);
  EXPECT_TRUE(q.poll(t3));
  q.offline(a);
  q.offline(b);
  q.unregisterThread(a);
  q.unregisterThread(b);
}

TEST(Qsbr, RegistrationIsBounded) {
  Qsbr q(3);
  std::vector<unsigned> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(q.registerThread());
  EXPECT_EQ(q.registerThread(), Qsbr::kNoThread);
  q.unregisterThread(ids[1]);
  EXPECT_EQ(q.registerThread(), ids[1]);
  QsbrReader none(q);
  EXPECT_FALSE(none.valid());
}

}  // namespace
}  // namespace statewall::dataplane
