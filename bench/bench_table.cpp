// Connection table micro benchmarks: bulk lookup (bursts of 32, every key present) at 1 K, 1 M and
// 10 M connections, all-miss lookups, insert rate, 2-thread lookup scaling, and bytes per
// connection; the same key sets through DPDK's rte_hash in lock-free mode
// (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF, rte_hash_lookup_bulk_data) in the same process, so that
// the ratio is meaningful. Figures and the command: bench/README.md, "Connection table".
//
// The table is sized at its rated fill: capacity = number of connections. The rte_hash gets
// entries = number of connections too. Keys are random canonical IPv4 flow keys; lookups visit
// them in a random order (a shuffled copy, read sequentially, as packets would arrive).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "statewall/dataplane/conn_table.hpp"
#include "statewall/dataplane/flow_key.hpp"
#include "statewall/dataplane/qsbr.hpp"

// STATEWALL_BENCH_RTE_HASH: set by bench/CMakeLists.txt when DPDK is built
// (bench/rte_hash_baseline).
#ifdef STATEWALL_BENCH_RTE_HASH
#include "rte_hash_baseline.hpp"
#endif

namespace {

using statewall::dataplane::ConnTable;
using statewall::dataplane::FlowKey4;
using statewall::dataplane::FlowKey6;
using statewall::dataplane::QsbrReader;

// The engine's per-connection value is at most 40 bytes of atomics.
struct BenchValue {
  std::atomic<uint64_t> w[5];
};
using Table4 = ConnTable<FlowKey4, BenchValue>;
struct alignas(64) ValueLine {
  BenchValue v;
};
using Table6 = ConnTable<FlowKey6, BenchValue>;

constexpr unsigned kBurst = 32;
constexpr uint64_t kFar = uint64_t{1} << 60;
constexpr uint64_t kNow = 1000;

// n random canonical flow keys (meta bytes zero, so rte_hash sees the same 16 bytes).
std::vector<FlowKey4> makeKeys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowKey4> keys(n);
  for (FlowKey4& k : keys) {
    const uint64_t a = rng();
    const uint64_t b = rng();
    statewall::dataplane::makeKey4(static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32),
                                   static_cast<uint16_t>(b), static_cast<uint16_t>(b >> 16),
                                   (b >> 32) & 1 ? 6 : 17, &k, nullptr);
    std::memset(k.meta, 0, sizeof(k.meta));
  }
  return keys;
}

// Lookup order: shuffled copies of the keys, at least 64 K long, a multiple of the burst.
std::vector<FlowKey4> makeStream(const std::vector<FlowKey4>& keys, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowKey4> stream;
  const size_t want = std::max<size_t>(keys.size(), 65536);
  while (stream.size() < want) {
    std::vector<FlowKey4> copy = keys;
    std::shuffle(copy.begin(), copy.end(), rng);
    stream.insert(stream.end(), copy.begin(), copy.end());
  }
  stream.resize(stream.size() / kBurst * kBurst);
  return stream;
}

bool g_have_rte = false;

struct Fixture {
  size_t n = 0;
  std::vector<FlowKey4> keys;
  std::vector<FlowKey4> hits;    // lookup stream over present keys
  std::vector<FlowKey4> misses;  // lookup stream over absent keys
  std::unique_ptr<Table4> ours;
  std::unique_ptr<Table4> ours_4k;  // same keys, no transparent huge pages (built on demand)
#ifdef STATEWALL_BENCH_RTE_HASH
  std::unique_ptr<statewall::dpdk::RteHashBaseline> rte;
  // What an engine built on rte_hash needs besides it: the per-connection values, one cache
  // line each, that the hash's data field points to (here: index + 1).
  std::unique_ptr<ValueLine[]> rte_values;
#endif
  std::string error;
};

// Built once per size and kept for the whole run (both tables hold the same keys).
std::mutex g_fixture_mu;

std::unique_ptr<Table4> buildOurs(Fixture& f, bool huge_pages) {
  auto t = std::make_unique<Table4>(f.n, nullptr, statewall::dataplane::kDefaultFlowHashSeed,
                                    huge_pages);
  QsbrReader reader(t->qsbr());
  for (const FlowKey4& k : f.keys) {
    if (!t->insert(k, t->hashOf(k), kNow, kFar).inserted) {
      f.error = "our table refused a key at rated fill";
      break;
    }
  }
  return t;
}

// Thread-safe: the 2-thread benchmarks may be the first to ask.
Fixture& fixture(size_t n) {
  static std::map<size_t, std::unique_ptr<Fixture>> cache;
  std::lock_guard<std::mutex> lock(g_fixture_mu);
  auto& slot = cache[n];
  if (slot) return *slot;
  slot = std::make_unique<Fixture>();
  Fixture& f = *slot;
  f.n = n;
  f.keys = makeKeys(n, 1 + n);
  f.hits = makeStream(f.keys, 2 + n);
  f.misses = makeStream(makeKeys(std::min<size_t>(n, 1 << 20), 3 + n), 4 + n);
  f.ours = buildOurs(f, true);
#ifdef STATEWALL_BENCH_RTE_HASH
  if (g_have_rte) {
    auto created = statewall::dpdk::RteHashBaseline::create(
        "bench_" + std::to_string(n), static_cast<uint32_t>(n), sizeof(FlowKey4));
    if (created) {
      f.rte = std::move(*created);
    } else {
      f.error = created.message();
    }
    f.rte_values.reset(new ValueLine[n]);
    for (size_t i = 0; f.rte && i < n; ++i) {
      const int rc = f.rte->add(&f.keys[i], i + 1);
      if (rc < 0) {
        f.error =
            "rte_hash_add_key_data failed at key " + std::to_string(i) + ": " + std::to_string(rc);
        f.rte.reset();
      }
    }
  }
#endif
  return f;
}

double bytesPerConn(size_t bytes, size_t conns) {
  return static_cast<double>(bytes) / static_cast<double>(conns);
}

// --- our table -----------------------------------------------------------------------------------

// touch_value: also read a field of each hit's value, as the engine does (same cache line).
// huge_pages = false: the table without transparent huge pages (4 KiB pages, like the EAL's
// --no-huge memory that rte_hash gets here).
void lookupOurs(benchmark::State& state, bool hit, bool touch_value = false,
                bool huge_pages = true) {
  Fixture& f = fixture(static_cast<size_t>(state.range(0)));
  if (!huge_pages) {
    std::lock_guard<std::mutex> lock(g_fixture_mu);
    if (!f.ours_4k) f.ours_4k = buildOurs(f, false);
  }
  if (!f.error.empty() && f.error.find("our") == 0) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  Table4& t = huge_pages ? *f.ours : *f.ours_4k;
  const std::vector<FlowKey4>& stream = hit ? f.hits : f.misses;
  QsbrReader reader(t.qsbr());
  // Threads start at different points of the stream.
  size_t pos = (stream.size() / kBurst / 2 * static_cast<size_t>(state.thread_index())) * kBurst %
               stream.size();
  uint64_t hashes[kBurst];
  Table4::Entry* out[kBurst];
  size_t found = 0;
  uint64_t value_sum = 0;
  for (auto _ : state) {
    const FlowKey4* keys = &stream[pos];
    t.findBulk(keys, kBurst, kNow, out, hashes);
    for (unsigned i = 0; i < kBurst; ++i)
      found += out[i] != nullptr;
    if (touch_value) {
      for (unsigned i = 0; i < kBurst; ++i) {
        if (out[i] != nullptr) value_sum += out[i]->value.w[1].load(std::memory_order_relaxed);
      }
    }
    reader.quiescent();
    pos += kBurst;
    if (pos == stream.size()) pos = 0;
  }
  const size_t looked = static_cast<size_t>(state.iterations()) * kBurst;
  if (found != (hit ? looked : 0)) state.SkipWithError("wrong number of hits");
  state.SetItemsProcessed(static_cast<int64_t>(looked));
  benchmark::DoNotOptimize(value_sum);
  state.counters["bytes_per_conn"] = benchmark::Counter(bytesPerConn(t.memoryBytes(), t.capacity()),
                                                        benchmark::Counter::kAvgThreads);
}

void BM_LookupOurs(benchmark::State& state) {
  lookupOurs(state, true);
}
void BM_LookupValueOurs(benchmark::State& state) {
  lookupOurs(state, true, true);
}
void BM_LookupOurs4K(benchmark::State& state) {
  lookupOurs(state, true, false, false);
}
void BM_LookupMissOurs(benchmark::State& state) {
  lookupOurs(state, false);
}

void BM_InsertOurs(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Fixture& f = fixture(n);
  // Insert in the random stream order (the first n of it is a permutation of the keys).
  for (auto _ : state) {
    state.PauseTiming();
    auto t = std::make_unique<Table4>(n);
    size_t inserted = 0;
    {
      // The reader must be gone before the table (it unregisters from the table's Qsbr).
      QsbrReader reader(t->qsbr());
      state.ResumeTiming();
      for (size_t i = 0; i < n; ++i) {
        const FlowKey4& k = f.hits[i];
        inserted += t->insert(k, t->hashOf(k), kNow, kFar, [i](BenchValue& v) {
                       v.w[0].store(i, std::memory_order_relaxed);
                     }).inserted;
        if ((i & 31) == 31) reader.quiescent();
      }
      state.PauseTiming();
    }
    if (inserted != n) state.SkipWithError("insert failed below capacity");
    state.counters["bytes_per_conn"] = bytesPerConn(t->memoryBytes(), t->capacity());
    t.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

// Bytes per connection at rated fill, IPv6 (entries of 128 bytes). No timing: a counter.
void BM_MemoryIpv6(benchmark::State& state) {
  Table6 t(static_cast<size_t>(state.range(0)));
  for (auto _ : state)
    benchmark::DoNotOptimize(t.capacity());
  state.counters["bytes_per_conn"] = bytesPerConn(t.memoryBytes(), t.capacity());
}

// --- rte_hash
// --------------------------------------------------------------------------------------

#ifdef STATEWALL_BENCH_RTE_HASH
// touch_value: also fetch each hit's value line (prefetched for the whole burst, then read).
void lookupRte(benchmark::State& state, bool hit, bool touch_value = false) {
  Fixture& f = fixture(static_cast<size_t>(state.range(0)));
  if (!f.rte) {
    state.SkipWithError(g_have_rte ? f.error.c_str() : "EAL not initialised");
    return;
  }
  const std::vector<FlowKey4>& stream = hit ? f.hits : f.misses;
  size_t pos = (stream.size() / kBurst / 2 * static_cast<size_t>(state.thread_index())) * kBurst %
               stream.size();
  const void* ptrs[kBurst];
  uintptr_t data[kBurst];
  size_t found = 0;
  uint64_t value_sum = 0;
  for (auto _ : state) {
    for (unsigned i = 0; i < kBurst; ++i)
      ptrs[i] = &stream[pos + i];
    uint64_t mask = 0;
    found += static_cast<size_t>(f.rte->lookupBulk(ptrs, kBurst, &mask, data));
    benchmark::DoNotOptimize(data);
    if (touch_value) {
      ValueLine* values = f.rte_values.get();
      for (uint64_t m = mask; m != 0; m &= m - 1) {
        __builtin_prefetch(&values[data[__builtin_ctzll(m)] - 1], 0, 3);
      }
      for (uint64_t m = mask; m != 0; m &= m - 1) {
        value_sum += values[data[__builtin_ctzll(m)] - 1].v.w[1].load(std::memory_order_relaxed);
      }
    }
    pos += kBurst;
    if (pos == stream.size()) pos = 0;
  }
  const size_t looked = static_cast<size_t>(state.iterations()) * kBurst;
  if (found != (hit ? looked : 0)) state.SkipWithError("wrong number of hits");
  state.SetItemsProcessed(static_cast<int64_t>(looked));
  benchmark::DoNotOptimize(value_sum);
  state.counters["bytes_per_conn"] = benchmark::Counter(
      bytesPerConn(f.rte->memoryBytes() + (touch_value ? sizeof(ValueLine) * f.n : 0), f.n),
      benchmark::Counter::kAvgThreads);
}

void BM_LookupRteHash(benchmark::State& state) {
  lookupRte(state, true);
}
void BM_LookupValueRteHash(benchmark::State& state) {
  lookupRte(state, true, true);
}
void BM_LookupMissRteHash(benchmark::State& state) {
  lookupRte(state, false);
}

void BM_InsertRteHash(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Fixture& f = fixture(n);
  if (!g_have_rte) {
    state.SkipWithError("EAL not initialised");
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto created = statewall::dpdk::RteHashBaseline::create(
        "bench_insert", static_cast<uint32_t>(n), sizeof(FlowKey4));
    if (!created) {
      state.SkipWithError(created.message().c_str());
      break;
    }
    std::unique_ptr<statewall::dpdk::RteHashBaseline> h = std::move(*created);
    size_t inserted = 0;
    state.ResumeTiming();
    for (size_t i = 0; i < n; ++i)
      inserted += h->add(&f.hits[i], i + 1) == 0;
    state.PauseTiming();
    if (inserted != n) state.SkipWithError("rte_hash insert failed below capacity");
    state.counters["bytes_per_conn"] = bytesPerConn(h->memoryBytes(), n);
    h.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
#endif

constexpr int64_t k1K = 1000;
constexpr int64_t k1M = 1000000;
constexpr int64_t k10M = 10000000;

// Single-thread figures use CPU time (items_per_second is per core, as in the other benches).
BENCHMARK(BM_LookupOurs)->Arg(k1K)->Arg(k1M)->Arg(k10M);
#ifdef STATEWALL_BENCH_RTE_HASH
BENCHMARK(BM_LookupRteHash)->Arg(k1K)->Arg(k1M)->Arg(k10M);
#endif
// Our table on 4 KiB pages, for a like-for-like comparison with rte_hash here.
BENCHMARK(BM_LookupOurs4K)->Arg(k1M)->Arg(k10M);
// Lookup plus a read of the connection's value, as the engine does on every packet.
BENCHMARK(BM_LookupValueOurs)->Arg(k1K)->Arg(k1M)->Arg(k10M);
#ifdef STATEWALL_BENCH_RTE_HASH
BENCHMARK(BM_LookupValueRteHash)->Arg(k1K)->Arg(k1M)->Arg(k10M);
#endif
BENCHMARK(BM_LookupMissOurs)->Arg(k1K)->Arg(k1M);
#ifdef STATEWALL_BENCH_RTE_HASH
BENCHMARK(BM_LookupMissRteHash)->Arg(k1K)->Arg(k1M);
#endif
BENCHMARK(BM_InsertOurs)->Arg(k1M)->Iterations(1)->Unit(benchmark::kMillisecond);
#ifdef STATEWALL_BENCH_RTE_HASH
BENCHMARK(BM_InsertRteHash)->Arg(k1M)->Iterations(1)->Unit(benchmark::kMillisecond);
#endif
BENCHMARK(BM_MemoryIpv6)->Arg(k1M)->Iterations(1);
// Scaling: wall-clock time, so items_per_second is the total over the threads.
BENCHMARK(BM_LookupOurs)->Arg(k1M)->Arg(k10M)->Threads(1)->Threads(2)->UseRealTime();
#ifdef STATEWALL_BENCH_RTE_HASH
BENCHMARK(BM_LookupRteHash)->Arg(k1M)->Arg(k10M)->Threads(1)->Threads(2)->UseRealTime();
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef STATEWALL_BENCH_RTE_HASH
  // No hugepages needed: rte_hash at 10 M keys takes about 0.6 GiB of plain memory.
  const statewall::base::Status eal = statewall::dpdk::initEalForBench(
      {"statewall_bench_table", "--no-huge", "--no-pci", "--no-shconf", "-m", "3072",
       "--no-telemetry", "--log-level=error", "-l", "0"});
  g_have_rte = eal.ok();
  if (!g_have_rte) std::fprintf(stderr, "rte_hash baseline disabled: %s\n", eal.message().c_str());
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
