// Early drop under concurrency (run under ThreadSanitizer in the `concurrency` label). A small
// table with an eviction reserve is shared by flood threads, which insert one new unreplied key
// after another (each insert at capacity evicts an unreplied entry), and connection threads,
// which open a connection, answer it (the reply: a fetch_or of the replied bit, as the engine's
// decideIp() does), then look it up and refresh it several times and finally erase it. The
// claim (a CAS that sets the claimed bit while the replied bit is clear) races with the reply;
// a reply that finds the claim erases the entry itself, as the engine does.
//
// Checks: a connection whose reply did not find a claim is never evicted: every later lookup
// finds the same entry with its own value and every refresh succeeds; every successful claim is
// reported by exactly one insert (evicted); evictions happen; at the end the table empties and
// its whole pool comes back (no entry leaked in the free or retired chains): the capacity by
// plain inserts, then a flood by evicting inserts of which none is refused.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "table/table_test_util.hpp"

#ifndef STATEWALL_EVICT_STRESS_OPS
#define STATEWALL_EVICT_STRESS_OPS 40000
#endif

namespace statewall::dataplane {
namespace {

using testing::drainRetired;
using testing::EvictUnrepliedTest;
using testing::nthKey;
using testing::Table4;
using testing::TestValue;

constexpr uint64_t kReplied = testing::kStateReplied;
constexpr uint64_t kClaimed = testing::kStateClaimed;
constexpr uint64_t kFar = uint64_t{1} << 50;
constexpr uint32_t kCapacity = 1024;
constexpr uint32_t kBurst = 32;  // each thread quiesces every kBurst operations
constexpr unsigned kFloodThreads = 2;
constexpr unsigned kConnThreads = 2;
constexpr size_t kReserve = 16384;  // rides out a thread descheduled while online
constexpr uint32_t kOps = STATEWALL_EVICT_STRESS_OPS;  // inserts per flood thread
constexpr uint32_t kUpdates = 4;                       // lookups + refreshes per connection
constexpr uint64_t kMinReplied = 200;                  // connections answered per thread

struct Totals {
  std::atomic<uint64_t> claims{0};
  std::atomic<uint64_t> evicted{0};  // inserts that reported an eviction
  std::atomic<uint64_t> flood_full{0};
  std::atomic<uint64_t> conn_full{0};
  std::atomic<uint64_t> replied{0};         // connections whose reply got in before any claim
  std::atomic<uint64_t> lost_unreplied{0};  // evicted before their reply (allowed)
  std::atomic<uint64_t> violations{0};      // a replied connection lost or changed
};

class EvictStress {
 public:
  EvictStress() : table_(kCapacity, &qsbr_, kDefaultFlowHashSeed, false, kReserve) {}

  void run() {
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kFloodThreads; ++t)
      threads.emplace_back([this, t] { flood(t); });
    for (unsigned t = 0; t < kConnThreads; ++t)
      threads.emplace_back([this, t] { connections(t); });
    for (auto& th : threads)
      th.join();
  }

  void flood(unsigned t) {
    QsbrReader reader(qsbr_);
    ASSERT_TRUE(reader.valid());
    EvictUnrepliedTest ev;
    uint64_t evicted = 0;
    for (uint32_t i = 0; i < kOps; ++i) {
      const FlowKey4 k = nthKey(t * 10'000'000u + i);
      const auto r = table_.insert(
          k, table_.hashOf(k), 1, kFar, [](TestValue& v) { v.tag.store(0); }, ev);
      evicted += r.evicted;
      if (r.full) totals_.flood_full.fetch_add(1);
      if (i % kBurst == kBurst - 1) reader.quiescent();
    }
    totals_.claims.fetch_add(ev.claims);
    totals_.evicted.fetch_add(evicted);
    reader.offline();
    flood_done_.fetch_add(1);
  }

  // Opens, answers and uses connections until the floods are done and kMinReplied of them got
  // their reply in (once the floods are offline, reclamation no longer waits for them).
  void connections(unsigned t) {
    QsbrReader reader(qsbr_);
    ASSERT_TRUE(reader.valid());
    EvictUnrepliedTest ev;
    uint64_t evicted = 0;
    unsigned ops = 0;
    auto tick = [&] {
      if (++ops % kBurst == 0) reader.quiescent();
    };
    uint64_t replied = 0;
    for (uint32_t j = 0; flood_done_.load() < kFloodThreads || replied < kMinReplied; ++j) {
      const FlowKey4 k = nthKey(100'000'000u + t * 10'000'000u + j, /*reply=*/false);
      const uint64_t h = table_.hashOf(k);
      const uint64_t tag = (uint64_t{t} << 32) | j;
      // An expiry earlier than the flood's: until its reply the connection is the oldest entry
      // near its key, the first victim, so claims and replies race as often as possible.
      const auto r = table_.insert(
          k, h, 1, kFar / 2, [tag](TestValue& v) { v.tag.store(tag); }, ev);
      evicted += r.evicted;
      if (r.full) {
        totals_.conn_full.fetch_add(1);
        tick();
        continue;
      }
      ASSERT_TRUE(r.inserted);
      tick();  // the reply comes later (another burst): the flood may claim it meanwhile
      // The reply, from the other direction's key.
      const FlowKey4 rk = nthKey(100'000'000u + t * 10'000'000u + j, /*reply=*/true);
      Table4::Entry* e = table_.find(rk, table_.hashOf(rk), 1);
      if (e == nullptr) {
        totals_.lost_unreplied.fetch_add(1);
        continue;
      }
      const uint64_t before = e->value.state.fetch_or(kReplied, std::memory_order_acq_rel);
      if (before & kClaimed) {
        table_.erase(e);  // evicted before its reply: finish the kill (or find it done)
        totals_.lost_unreplied.fetch_add(1);
        tick();
        continue;
      }
      if (!table_.refresh(e, kFar - 1)) totals_.violations.fetch_add(1);
      totals_.replied.fetch_add(1);
      ++replied;
      for (uint32_t u = 0; u < kUpdates; ++u) {
        tick();
        Table4::Entry* again = table_.find(k, h, 1);
        if (again == nullptr || again->value.tag.load() != tag ||
            again->value.state.load() != kReplied || !table_.refresh(again, kFar - 1 - u)) {
          totals_.violations.fetch_add(1);
          break;
        }
        e = again;
      }
      if (!table_.erase(e)) totals_.violations.fetch_add(1);
      tick();
    }
    totals_.claims.fetch_add(ev.claims);
    totals_.evicted.fetch_add(evicted);
  }

  Qsbr qsbr_;
  Table4 table_;
  Totals totals_;
  std::atomic<unsigned> flood_done_{0};
};

TEST(TableEvictStress, RepliedConnectionsSurviveAFloodOfEvictingInserts) {
  auto s = std::make_unique<EvictStress>();
  s->run();
  const Totals& t = s->totals_;
  EXPECT_EQ(t.violations.load(), 0u);
  EXPECT_EQ(t.claims.load(), t.evicted.load());
  // How many inserts were refused depends on the scheduler: a thread descheduled while online
  // holds every grace period, and the reserve runs dry meanwhile (tests/table/evict_test.cpp
  // shows that one reader that keeps quiescing is never refused).
  EXPECT_GT(t.evicted.load(), 0u);
  EXPECT_GE(t.replied.load(), kMinReplied * kConnThreads);
  std::printf(
      "evictions %llu, connections replied %llu, evicted before their reply %llu, "
      "refused: flood %llu, connections %llu\n",
      static_cast<unsigned long long>(t.evicted.load()),
      static_cast<unsigned long long>(t.replied.load()),
      static_cast<unsigned long long>(t.lost_unreplied.load()),
      static_cast<unsigned long long>(t.flood_full.load()),
      static_cast<unsigned long long>(t.conn_full.load()));

  // Empty it, then the whole pool must come back: the capacity by plain inserts, and a flood
  // as long as the first one by evicting inserts without a single refusal.
  QsbrReader reader(s->qsbr_);
  Table4& table = s->table_;
  table.forEach(2, [&](Table4::Entry& e) { table.erase(&e); });
  EXPECT_EQ(table.size(), 0u);
  drainRetired(table, reader);
  for (uint32_t i = 0; i < kCapacity; ++i) {
    const FlowKey4 k = nthKey(500'000'000u + i);
    ASSERT_TRUE(table.insert(k, table.hashOf(k), 2, kFar).inserted) << i;
  }
  EvictUnrepliedTest ev;
  for (uint32_t i = 0; i < kOps; ++i) {
    const FlowKey4 k = nthKey(600'000'000u + i);
    const auto r = table.insert(
        k, table.hashOf(k), 2, kFar, [](TestValue&) {}, ev);
    ASSERT_TRUE(r.inserted && r.evicted) << i;
    if (i % kBurst == kBurst - 1) reader.quiescent();
  }
  EXPECT_EQ(table.size(), kCapacity);
}

}  // namespace
}  // namespace statewall::dataplane
