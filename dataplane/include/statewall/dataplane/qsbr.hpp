// Quiescent-state based reclamation (QSBR), the scheme of DPDK's rte_rcu_qsbr and of Linux RCU:
// readers never block and never write shared memory on the read path; a writer that unlinks an
// object asks for a grace period and reuses the object only once every online reader has passed a
// quiescent point (a moment where it holds no reference into the shared structure) after the
// grace period started.
//
// Protocol for a reader thread:
//   id = qsbr.registerThread();      // once; the thread starts offline
//   qsbr.online(id);
//   loop { process a burst (may hold table references); qsbr.quiescent(id); }
//   qsbr.offline(id);                // idle: reclamation stops waiting for this thread
//   qsbr.unregisterThread(id);
// Protocol for a writer (reclaimer):
//   unlink the object with a seq_cst store or RMW;
//   token = qsbr.start();
//   later: if (qsbr.poll(token)) reuse the object.
// Readers must load the links that lead to reclaimable objects with seq_cst loads (a plain MOV on
// x86, LDAR on AArch64). No fences anywhere: ThreadSanitizer models atomics but not fences.
//
// Memory-ordering argument (C++20 model, as rte_rcu_qsbr):
// - quiescent(): t = token.load(acquire); cnt.store(t, release). Every access the reader made
//   before it is sequenced before the release store; a writer whose poll() loads cnt and sees a
//   value >= its token therefore happens-after all of them and may reuse the object. The acquire
//   load of a token >= T synchronizes with start()'s release RMW that produced T, so the reader's
//   later loads see the unlink (made before start()) or something newer.
// - online(): a reader coming back online must not read an object whose grace period poll()
//   already judged without it. online() stores cnt with seq_cst; poll() loads cnt with seq_cst;
//   the unlink is seq_cst and strongly happens before poll() (it is sequenced before the writer's
//   hand-off to the reclaimer, which is sequenced before poll()); the reader's link loads are
//   seq_cst. In the single total order S: if poll() did not see the new cnt, then
//   unlink < poll's load < online's store < the reader's loads, so those loads see the unlink.
//   (This is the store->load Dekker pattern; release/acquire alone would allow both to miss.)
// - offline(): cnt.store(0, release): everything the reader did before is visible to a poll()
//   that reads 0, so skipping it is safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace statewall::dataplane {

class Qsbr {
 public:
  static constexpr unsigned kNoThread = ~0u;
  static constexpr unsigned kDefaultMaxThreads = 128;

  explicit Qsbr(unsigned max_threads = kDefaultMaxThreads);
  ~Qsbr();
  Qsbr(const Qsbr&) = delete;
  Qsbr& operator=(const Qsbr&) = delete;

  unsigned maxThreads() const { return max_threads_; }

  // Reserves a reader id; kNoThread when max_threads are registered. The new reader is offline.
  // Any thread, concurrently (a CAS per id).
  unsigned registerThread();
  // Releases the id. The reader must be offline. Only the thread that owns the id.
  void unregisterThread(unsigned id);

  // Only the thread that owns id (these three are the reader fast path: no RMW, no lock).
  void online(unsigned id) {
    // seq_cst store: the reader's half of the online() argument in the file comment.
    threads_[id].cnt.store(token_.load(std::memory_order_acquire), std::memory_order_seq_cst);
  }
  void offline(unsigned id) { threads_[id].cnt.store(0, std::memory_order_release); }
  // The reader holds no reference obtained before this call. Must be online.
  void quiescent(unsigned id) {
    ThreadState& t = threads_[id];
    const uint64_t now = token_.load(std::memory_order_acquire);
    // Skip the store when nothing changed: keeps the line shared in the common case.
    if (t.cnt.load(std::memory_order_relaxed) != now) t.cnt.store(now, std::memory_order_release);
  }
  bool isOnline(unsigned id) const { return threads_[id].cnt.load(std::memory_order_relaxed) != 0; }

  // Starts a grace period covering everything unlinked before the call; returns its token.
  // Any thread, concurrently.
  uint64_t start();
  // True once every reader that was online when start() returned has gone offline or passed a
  // quiescent point since. Any thread, concurrently; never blocks.
  bool poll(uint64_t token) const;
  // Waits (yielding) until poll(token) holds. The caller must not itself be an online reader
  // (it would wait for itself). Control-plane use only.
  void synchronize(uint64_t token) const;

 private:
  struct alignas(64) ThreadState {
    // 0 = offline (or unregistered); otherwise the token seen at the last quiescent point.
    std::atomic<uint64_t> cnt{0};
    std::atomic<bool> registered{false};
  };

  alignas(64) std::atomic<uint64_t> token_{1};
  unsigned max_threads_;
  std::unique_ptr<ThreadState[]> threads_;
};

// RAII reader registration: registers and goes online at construction, goes offline and
// unregisters at destruction. valid() is false when no id was free.
class QsbrReader {
 public:
  explicit QsbrReader(Qsbr& qsbr) : qsbr_(&qsbr), id_(qsbr.registerThread()) {
    if (id_ != Qsbr::kNoThread) qsbr_->online(id_);
  }
  ~QsbrReader() {
    if (id_ != Qsbr::kNoThread) {
      qsbr_->offline(id_);
      qsbr_->unregisterThread(id_);
    }
  }
  QsbrReader(const QsbrReader&) = delete;
  QsbrReader& operator=(const QsbrReader&) = delete;

  bool valid() const { return id_ != Qsbr::kNoThread; }
  unsigned id() const { return id_; }
  void quiescent() { qsbr_->quiescent(id_); }
  void online() { qsbr_->online(id_); }
  void offline() { qsbr_->offline(id_); }

 private:
  Qsbr* qsbr_;
  unsigned id_;
};

}  // namespace statewall::dataplane
