// Concurrency stress for the connection table (run under ThreadSanitizer in the `concurrency`
// label). Four threads share one table; every flow's forward packets are handled by one thread and
// its replies by another, so the two directions of a new flow race to create it. Each flow lives a
// scripted life: both sides insert (find-or-create), update a per-side counter several times
// through find() + refresh(), and the side that finishes second checks the entry and ends the flow
// by erase() or by letting it expire (then the sweep, run by every thread, kills it). The clock is
// a plain counter the threads advance; nothing sleeps and nothing depends on timing.
//
// Checks: every flow was created exactly once and both sides always saw the same connection id
// (no duplicate, no lost entry); the finisher saw both sides' counts and the right originator; no
// ended flow is found afterwards; at the end the table is empty and its whole capacity can be
// inserted again (no entry leaked in the free or retired chains).
//
// STATEWALL_STRESS_FLOWS sets the number of flows (1 M for the TSan run, fewer for the plain one).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "table/table_test_util.hpp"

#ifndef STATEWALL_STRESS_FLOWS
#define STATEWALL_STRESS_FLOWS 100000
#endif

namespace statewall::dataplane {
namespace {

using testing::Table4;
using testing::TestValue;

constexpr unsigned kThreads = 4;
constexpr uint32_t kFlows = STATEWALL_STRESS_FLOWS;
constexpr uint32_t kRoundFlows = 4096;  // flows per round; threads meet at a barrier in between
constexpr uint32_t kUpdates = 3;        // updates per side
constexpr uint64_t kFar = uint64_t{1} << 60;
constexpr size_t kCapacity = 4 * kRoundFlows;

// Barrier on atomics only (TSan sees every synchronisation).
class SpinBarrier {
 public:
  explicit SpinBarrier(unsigned n) : n_(n) {}
  void arriveAndWait() {
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    } else {
      while (generation_.load(std::memory_order_acquire) == gen)
        std::this_thread::yield();
    }
  }

 private:
  const unsigned n_;
  std::atomic<unsigned> count_{0};
  std::atomic<unsigned> generation_{0};
};

// 10.a.b.c:port <-> 172.16.x.y:443, unique per flow.
FlowKey4 flowKey(uint32_t f, bool reply) {
  const uint32_t client = 0x0A000000u + (f >> 4);
  const uint32_t server = 0xAC100000u + (f & 0xFFF);
  const uint16_t port = static_cast<uint16_t>(20000 + (f & 15));
  FlowKey4 k;
  if (reply) {
    makeKey4(server, client, 443, port, 6, &k, nullptr);
  } else {
    makeKey4(client, server, port, 443, 6, &k, nullptr);
  }
  return k;
}

unsigned fwdThread(uint32_t f) {
  return f % kThreads;
}
unsigned revThread(uint32_t f) {
  return (f % kThreads + 1 + (f / kThreads) % (kThreads - 1)) % kThreads;
}
bool endsByExpiry(uint32_t f) {
  return f % 3 == 0;
}
bool simultaneousOpen(uint32_t f) {
  return f % 8 == 1;
}

struct FlowRecord {
  std::atomic<uint32_t> created{0};   // inserts that returned inserted = true
  std::atomic<uint32_t> creator{0};   // 1 = forward side, 2 = reply side
  std::atomic<uint64_t> conn_id{0};   // the id the first side saw; the other must see the same
  std::atomic<uint32_t> finished{0};  // set by the side that ended the flow
  std::atomic<uint32_t> arrived{0};   // rendezvous of the two sides (simultaneous open)
};

struct Errors {
  std::atomic<uint64_t> lost{0};       // a side did not find its live flow
  std::atomic<uint64_t> duplicate{0};  // a side saw another connection id or another flow's value
  std::atomic<uint64_t> bad_state{0};  // wrong counts or originator at the end
  std::atomic<uint64_t> refresh_failed{0};
  std::atomic<uint64_t> erase_failed{0};
  std::atomic<uint64_t> full{0};  // insert found no room even after sweeping
};

class Stress {
 public:
  Stress() : table_(kCapacity, &qsbr_), records_(new FlowRecord[kFlows]) {}

  void run() {
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t)
      threads.emplace_back([this, t] { worker(t); });
    for (auto& th : threads)
      th.join();
  }

  void worker(unsigned t) {
    QsbrReader reader(qsbr_);
    ASSERT_TRUE(reader.valid());
    for (uint32_t round = 0; round * kRoundFlows < kFlows; ++round) {
      const uint32_t begin = round * kRoundFlows;
      const uint32_t end = std::min(kFlows, begin + kRoundFlows);
      unsigned done = 0;
      for (uint32_t f = begin; f < end; ++f) {
        const bool fwd = fwdThread(f) == t;
        const bool rev = revThread(f) == t;
        if (!fwd && !rev) continue;
        side(reader, f, rev);
        if (++done % 4 == 0) table_.sweep(clock_.load(std::memory_order_relaxed), 8);
      }
      // Idle at the barrier: offline, so grace periods do not wait for us.
      reader.offline();
      barrier_.arriveAndWait();
      if (t == 0) {
        reader.online();
        checkRound(begin, end);
        reader.offline();
      }
      barrier_.arriveAndWait();
      reader.online();
    }
    reader.offline();
    barrier_.arriveAndWait();
    if (t == 0) {
      reader.online();
      checkEnd(reader);
      reader.offline();
    }
    barrier_.arriveAndWait();
    reader.online();  // QsbrReader's destructor goes offline and unregisters
  }

  // One direction of flow f: create-or-find, kUpdates updates, then maybe end the flow.
  void side(QsbrReader& reader, uint32_t f, bool reply) {
    FlowRecord& rec = records_[f];
    const FlowKey4 key = flowKey(f, reply);
    const uint64_t h = table_.hashOf(key);
    if (simultaneousOpen(f)) {
      // Try to make both sides insert at the same moment: wait a little for the partner (bounded,
      // so a descheduled partner only costs the overlap, never progress).
      rec.arrived.fetch_add(1, std::memory_order_acq_rel);
      for (int i = 0; i < 2000 && rec.arrived.load(std::memory_order_acquire) < 2; ++i) {
        __builtin_ia32_pause();
      }
    }
    Table4::InsertResult r{};
    for (int attempt = 0; attempt < 100; ++attempt) {
      r = table_.insert(key, h, now(), kFar, [f](TestValue& v) {
        v.tag.store(f + 1, std::memory_order_relaxed);
        v.state.store(1, std::memory_order_relaxed);
      });
      if (!r.full) break;
      // Room comes back once expired flows are swept and a grace period passes.
      table_.sweep(now(), table_.bucketCount());
      reader.quiescent();
      table_.reclaim();
    }
    if (r.full) {
      errors_.full.fetch_add(1);
      return;
    }
    if (r.inserted) {
      rec.created.fetch_add(1);
      rec.creator.store(reply ? 2 : 1);
    }
    if (r.entry->value.tag.load(std::memory_order_relaxed) != f + 1) errors_.duplicate.fetch_add(1);
    const uint64_t id = table_.connId(r.entry);
    uint64_t expected = 0;
    if (!rec.conn_id.compare_exchange_strong(expected, id) && expected != id) {
      errors_.duplicate.fetch_add(1);
    }
    reader.quiescent();
    clock_.fetch_add(1, std::memory_order_relaxed);

    for (uint32_t u = 0; u < kUpdates; ++u) {
      Table4::Entry* e = table_.find(key, h, now());
      if (e == nullptr) {
        errors_.lost.fetch_add(1);
        return;
      }
      if (table_.connId(e) != id) errors_.duplicate.fetch_add(1);
      (reply ? e->value.rev : e->value.fwd).fetch_add(1, std::memory_order_relaxed);
      if (!table_.refresh(e, kFar)) errors_.refresh_failed.fetch_add(1);
      reader.quiescent();
    }

    Table4::Entry* e = table_.find(key, h, now());
    if (e == nullptr) {
      errors_.lost.fetch_add(1);
      return;
    }
    // acq_rel: the second side sees the first side's counter updates.
    if (e->value.spare.fetch_add(1, std::memory_order_acq_rel) + 1 != 2) return;
    // Both sides are done: check the connection, then end it.
    if (e->value.fwd.load() != kUpdates || e->value.rev.load() != kUpdates ||
        e->value.state.load() != 1) {
      errors_.bad_state.fetch_add(1);
    }
    const bool fwd_created = rec.creator.load() == 1;
    if (e->fromOriginator(flowKey(f, false)) != fwd_created ||
        e->fromOriginator(flowKey(f, true)) == fwd_created) {
      errors_.bad_state.fetch_add(1);
    }
    e->value.state.store(2, std::memory_order_relaxed);
    if (endsByExpiry(f)) {
      if (!table_.refresh(e, now() + 2)) errors_.refresh_failed.fetch_add(1);
    } else if (!table_.erase(e)) {
      errors_.erase_failed.fetch_add(1);
    }
    rec.finished.store(1);
    reader.quiescent();
  }

  // Thread 0, while the others wait at the barrier (still registered, holding nothing).
  void checkRound(uint32_t begin, uint32_t end) {
    clock_.fetch_add(10, std::memory_order_relaxed);  // every expiring flow of the round is due
    for (uint32_t f = begin; f < end; ++f) {
      const FlowRecord& rec = records_[f];
      EXPECT_EQ(rec.created.load(), 1u) << "flow " << f;
      EXPECT_EQ(rec.finished.load(), 1u) << "flow " << f;
      const FlowKey4 k = flowKey(f, f & 1);
      EXPECT_EQ(table_.find(k, table_.hashOf(k), now()), nullptr) << "flow " << f;
    }
  }

  void checkEnd(QsbrReader& reader) {
    clock_.fetch_add(10, std::memory_order_relaxed);
    table_.sweep(now(), table_.bucketCount());
    for (int i = 0; i < 3; ++i) {
      reader.quiescent();
      table_.reclaim();
    }
    EXPECT_EQ(table_.size(), 0u);
    size_t visible = 0;
    table_.forEach(0, [&](Table4::Entry&) { ++visible; });
    EXPECT_EQ(visible, 0u);
    const auto st = table_.indexStats();
    EXPECT_EQ(st.used_slots, 0u);
    EXPECT_EQ(st.overflow_sum, 0u);
    // The whole pool is back: capacity fresh inserts succeed, the next one is refused.
    // (The other readers are offline at the barrier, so reclamation can finish.)
    size_t inserted = 0;
    for (uint32_t i = 0; i < kCapacity; ++i) {
      const FlowKey4 k = testing::nthKey(i);
      inserted += table_.insert(k, table_.hashOf(k), now(), kFar).inserted;
    }
    EXPECT_EQ(inserted, kCapacity);
    const FlowKey4 extra = testing::nthKey(kCapacity + 1);
    EXPECT_TRUE(table_.insert(extra, table_.hashOf(extra), now(), kFar).full);

    EXPECT_EQ(errors_.lost.load(), 0u);
    EXPECT_EQ(errors_.duplicate.load(), 0u);
    EXPECT_EQ(errors_.bad_state.load(), 0u);
    EXPECT_EQ(errors_.refresh_failed.load(), 0u);
    EXPECT_EQ(errors_.erase_failed.load(), 0u);
    EXPECT_EQ(errors_.full.load(), 0u);
    std::printf("flows %u, insert conflicts resolved %llu\n", kFlows,
                static_cast<unsigned long long>(table_.insertConflicts()));
  }

  uint64_t now() const { return clock_.load(std::memory_order_relaxed); }

 private:
  Qsbr qsbr_{16};
  Table4 table_;
  std::unique_ptr<FlowRecord[]> records_;
  Errors errors_;
  std::atomic<uint64_t> clock_{100};
  SpinBarrier barrier_{kThreads};
};

TEST(TableStress, TwoDirectionsOnDifferentThreads) {
  auto s = std::make_unique<Stress>();
  s->run();
}

// All threads insert the same keys at the same moment, then all erase them: exactly one insert
// and one erase per key wins, and everybody gets the same entry.
TEST(TableStress, SameKeyInsertRace) {
  constexpr uint32_t kKeys = std::min<uint32_t>(kFlows / 4, 100000);
  constexpr uint32_t kBatch = 16;
  Qsbr qsbr(8);
  Table4 table(8 * kBatch, &qsbr);
  SpinBarrier barrier(kThreads);
  std::vector<uint64_t> ids(static_cast<size_t>(kThreads) * kBatch);
  std::vector<uint32_t> wins(kBatch * 2);
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      QsbrReader reader(qsbr);
      for (uint32_t base = 0; base < kKeys; base += kBatch) {
        std::vector<Table4::Entry*> mine(kBatch);
        for (uint32_t i = 0; i < kBatch; ++i) {
          // All threads walk the batch in the same order so that they collide on each key;
          // half of them use the reply direction.
          const uint32_t j = i;
          const FlowKey4 k = testing::nthKey(base + j, t >= 2);
          const auto r = table.insert(k, table.hashOf(k), 10, kFar);
          if (r.entry == nullptr) {
            errors.fetch_add(1);
            continue;
          }
          mine[j] = r.entry;
          ids[t * kBatch + j] = table.connId(r.entry);
          if (r.inserted) __atomic_fetch_add(&wins[j], 1, __ATOMIC_RELAXED);
        }
        barrier.arriveAndWait();
        for (uint32_t i = 0; i < kBatch; ++i) {
          const uint32_t j = i;
          if (mine[j] != nullptr && table.erase(mine[j]))
            __atomic_fetch_add(&wins[kBatch + j], 1, __ATOMIC_RELAXED);
        }
        reader.quiescent();
        barrier.arriveAndWait();
        if (t == 0) {
          for (uint32_t j = 0; j < kBatch; ++j) {
            EXPECT_EQ(wins[j], 1u) << base + j;
            EXPECT_EQ(wins[kBatch + j], 1u) << base + j;
            for (unsigned o = 1; o < kThreads; ++o)
              EXPECT_EQ(ids[o * kBatch + j], ids[j]) << base + j;
            wins[j] = 0;
            wins[kBatch + j] = 0;
          }
          EXPECT_EQ(table.size(), 0u);
        }
        reader.quiescent();
        table.reclaim();
        barrier.arriveAndWait();
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(errors.load(), 0u);
  std::printf("keys %u, insert conflicts resolved %llu\n", kKeys,
              static_cast<unsigned long long>(table.insertConflicts()));
}

}  // namespace
}  // namespace statewall::dataplane
