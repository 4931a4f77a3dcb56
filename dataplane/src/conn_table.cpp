#include "statewall/dataplane/conn_table.hpp"

#include <sys/mman.h>

#include "statewall/base/check.hpp"

namespace statewall::dataplane::conn_table_detail {

void* allocateTableMemory(size_t bytes, bool huge_pages) {
  if (bytes == 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  // Random lookups over hundreds of MiB: 2 MiB pages cut the TLB misses. Advisory only.
  if (huge_pages && bytes >= (size_t{2} << 20)) madvise(p, bytes, MADV_HUGEPAGE);
#else
  (void)huge_pages;
#endif
  return p;
}

void freeTableMemory(void* p, size_t bytes) {
  if (p != nullptr) munmap(p, bytes);
}

void fatal(const char* what) {
  STATEWALL_FAIL(what);
}

}  // namespace statewall::dataplane::conn_table_detail
