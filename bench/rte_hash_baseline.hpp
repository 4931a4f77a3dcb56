// DPDK's rte_hash behind a DPDK-free interface, so that bench/bench_table.cpp can compare the
// connection table with rte_hash in lock-free mode (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF) in the
// same process without including DPDK headers. Benchmark use only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "statewall/base/status.hpp"

namespace statewall::dpdk {

// Initialises the EAL once per process with args (argv[0] included), e.g. {"bench", "--no-huge",
// "--no-pci", "--no-shconf", "-m", "3072", "--no-telemetry", "--log-level=error", "-l", "0"}.
// The calling thread's CPU affinity is restored afterwards (the EAL pins it to its main lcore),
// so benchmark threads can run on every core. Note: with --no-huge the EAL's memory is a shared
// memfd on 4 KiB pages (transparent huge pages do not back it), so rte_hash runs on 4 KiB pages
// unless hugetlbfs pages are reserved. A failure ("rte_eal_init: ...") when the EAL does not start.
// Main thread only.
base::Status initEalForBench(const std::vector<std::string>& args);

class RteHashBaseline {
 public:
  static constexpr unsigned kMaxBurst = 64;  // RTE_HASH_LOOKUP_BULK_MAX

  // rte_hash_create() for `entries` keys of key_len bytes, hash function rte_hash_crc, flags
  // RW_CONCURRENCY_LF (lock-free readers). A failure ("rte_hash_create: ...", e.g. EAL memory).
  static base::Expected<std::unique_ptr<RteHashBaseline>> create(const std::string& name,
                                                                 uint32_t entries,
                                                                 uint32_t key_len);
  ~RteHashBaseline();
  RteHashBaseline(const RteHashBaseline&) = delete;
  RteHashBaseline& operator=(const RteHashBaseline&) = delete;

  // rte_hash_add_key_data(); 0 on success, a negative errno (-ENOSPC when full).
  int add(const void* key, uintptr_t data);
  // rte_hash_lookup_bulk_data() on n <= kMaxBurst keys: bit i of *hit_mask and data[i] for each
  // hit. Returns the number of hits. Any number of threads concurrently with one writer.
  int lookupBulk(const void** keys, unsigned n, uint64_t* hit_mask, uintptr_t* data) const;
  // DPDK heap bytes that rte_hash_create() took (buckets, key store, free-slot rings).
  size_t memoryBytes() const { return memory_bytes_; }

 private:
  RteHashBaseline() = default;
  void* hash_ = nullptr;  // struct rte_hash*
  size_t memory_bytes_ = 0;
};

}  // namespace statewall::dpdk
