#include "statewall/dataplane/qsbr.hpp"

#include <thread>

namespace statewall::dataplane {

Qsbr::Qsbr(unsigned max_threads)
    : max_threads_(max_threads == 0 ? 1 : max_threads),
      threads_(std::make_unique<ThreadState[]>(max_threads_)) {}

Qsbr::~Qsbr() = default;

unsigned Qsbr::registerThread() {
  for (unsigned i = 0; i < max_threads_; ++i) {
    bool expected = false;
    // acq_rel: a reused id must see the previous owner's final offline store.
    if (!threads_[i].registered.load(std::memory_order_relaxed) &&
        threads_[i].registered.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return i;
    }
  }
  return kNoThread;
}

void Qsbr::unregisterThread(unsigned id) {
  threads_[id].cnt.store(0, std::memory_order_release);
  threads_[id].registered.store(false, std::memory_order_release);
}

uint64_t Qsbr::start() {
  // Release: a reader that loads the new token (acquire) in quiescent()/online() also sees every
  // unlink that happened before this call.
  return token_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

bool Qsbr::poll(uint64_t token) const {
  for (unsigned i = 0; i < max_threads_; ++i) {
    // seq_cst (so also acquire): pairs with the release store in quiescent()/offline(), so
    // everything the reader did before that point happens-before the caller's reuse of the
    // object; and it is the writer's half of the online() argument in qsbr.hpp.
    const uint64_t c = threads_[i].cnt.load(std::memory_order_seq_cst);
    if (c != 0 && c < token) return false;
  }
  return true;
}

void Qsbr::synchronize(uint64_t token) const {
  while (!poll(token))
    std::this_thread::yield();
}

}  // namespace statewall::dataplane
