#include "rte_hash_baseline.hpp"

#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <cstring>

namespace statewall::dpdk {

namespace {

size_t heapAllocatedBytes() {
  size_t total = 0;
  for (int socket = 0; socket < RTE_MAX_NUMA_NODES; ++socket) {
    rte_malloc_socket_stats st{};
    if (rte_malloc_get_socket_stats(socket, &st) == 0) total += st.heap_allocsz_bytes;
  }
  return total;
}

}  // namespace

base::Status initEalForBench(const std::vector<std::string>& args) {
  cpu_set_t saved;
  const bool have_saved = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(copy.size()), argv.data()) < 0)
    return base::Status::failure(std::string("rte_eal_init: ") + rte_strerror(rte_errno));
  if (have_saved) pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  return base::Status::success();
}

base::Expected<std::unique_ptr<RteHashBaseline>> RteHashBaseline::create(const std::string& name,
                                                                         uint32_t entries,
                                                                         uint32_t key_len) {
  rte_hash_parameters params{};
  params.name = name.c_str();
  params.entries = entries;
  params.key_len = key_len;
  params.hash_func = rte_hash_crc;
  params.hash_func_init_val = 0;
  params.socket_id = 0;
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
  const size_t before = heapAllocatedBytes();
  rte_hash* h = rte_hash_create(&params);
  if (h == nullptr)
    return base::Status::failure(std::string("rte_hash_create: ") + rte_strerror(rte_errno));
  std::unique_ptr<RteHashBaseline> out(new RteHashBaseline());
  out->hash_ = h;
  out->memory_bytes_ = heapAllocatedBytes() - before;
  return out;
}

RteHashBaseline::~RteHashBaseline() {
  rte_hash_free(static_cast<rte_hash*>(hash_));
}

int RteHashBaseline::add(const void* key, uintptr_t data) {
  return rte_hash_add_key_data(static_cast<rte_hash*>(hash_), key, reinterpret_cast<void*>(data));
}

int RteHashBaseline::lookupBulk(const void** keys, unsigned n, uint64_t* hit_mask,
                                uintptr_t* data) const {
  static_assert(sizeof(uintptr_t) == sizeof(void*));
  void* out[kMaxBurst];
  const int hits =
      rte_hash_lookup_bulk_data(static_cast<const rte_hash*>(hash_), keys, n, hit_mask, out);
  std::memcpy(data, out, sizeof(void*) * n);
  return hits;
}

}  // namespace statewall::dpdk
