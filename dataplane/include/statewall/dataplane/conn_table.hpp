// The connection table: one fixed-capacity, lock-free hash table shared by all packet threads.
//
// Shape
// - Entries: one preallocated array of `capacity` entries. An entry holds the table's 8-byte
//   expiry word, the canonical flow key (whose spare bits keep the originator's direction and the
//   entry generation) and the caller's Value. ConnEntry<FlowKey4, 40-byte Value> is one 64-byte
//   cache line. Free and retired entries are chained through their expiry word, so the pool costs
//   no memory of its own. Entries are handed out in index order until each has been used once
//   (then from the free chain), so the pages of a large table are touched only as it fills.
// - Index: buckets of one cache line: 7 slots {32-bit hash tag, 32-bit entry index + 1} and an
//   overflow count. A key's home bucket comes from the high half of its hash; it lives in the
//   first bucket of home, home+1, ... (at most kMaxProbe) that had a free slot. The overflow count
//   of a bucket is the number of published keys whose probe passed it, so a lookup stops at the
//   first bucket whose count is 0 (one cache line for most misses). A deleted slot becomes empty
//   at once and is reusable by the next insert; the counts replace tombstones, so misses do not
//   get slower as the table churns. Sized for kRatedLoad index load at capacity.
// - Nothing is allocated after the constructor; a full table (no free entry, or no free slot
//   within kMaxProbe buckets) makes insert() fail with `full`.
//
// Early drop (as Linux conntrack's): a table made with an eviction reserve holds at most
// `capacity` live entries (counted; see insert()), and an insert that finds it at capacity may
// make room by killing an entry near the new key: an expired one (reaped), or else the live one
// closest to its expiry that the caller's Evict policy lets it claim (evicted). The victim dies
// like any entry (one CAS to kDead, unlinked, retired to wait for a grace period), so its memory
// cannot be reused at once; the new entry comes from the reserve, extra entries that only
// cover the victims still waiting for their grace period. Without a reserve (the default) the
// capacity is the pool, and nothing live is ever evicted.
//
// Entry life: the expiry word `expires_ns` is the whole state.
//   never used:   index >= the fresh cursor; not constructed, never read
//   free/retired: top bit set (a link in the free or retired chain)
//   kPending (1): being inserted; invisible to lookups
//   > 1:          LIVE with that expiry; lookups treat it as absent once expires_ns <= now
//   kDead (0):    killed; the thread that killed it unpublishes it and retires it
// A live entry dies by exactly one CAS to kDead (sweep() from the expired value it observed,
// erase(), or an insert() that meets an expired copy); refresh() is a CAS between live values, so
// a refresh and a kill can never both succeed, and a failed refresh tells the caller the entry is
// gone (insert a new one). Retired entries wait for a QSBR grace period (qsbr.hpp) before their
// memory is reused, so any pointer a reader obtained while online stays valid (its key and value
// keep their meaning) until that reader's next quiescent point.
//
// No duplicates. Two threads may insert the same key at once (a new flow's two directions on two
// cores). Each publishes its own PENDING copy, then rescans the key's probe sequence and resolves:
//   - another copy LIVE and not expired: we lose (return that copy);
//   - another copy LIVE but expired: kill it (CAS) and carry on;
//   - another copy PENDING at a higher position: kill it (CAS kPending -> kDead);
//   - another copy PENDING at a lower position: we lose and retry (on a retry we kill it instead,
//     so nobody ever waits for a thread that was descheduled mid-insert);
//   - then CAS our copy kPending -> expiry; failure means someone killed it: we lose.
// All slot publishes, rescans, overflow counts and these CASes are seq_cst. Proof that two copies
// A and B are never LIVE at once: say both publish, P_A before P_B in the single total order S.
// B's rescan R_B comes after P_B, so it sees A's slot (A's overflow increments precede P_A, so
// the rescan does not stop early) unless A was already unpublished, which only happens after A
// died. When R_B reads A's state: LIVE -> B loses; PENDING -> either B kills A (A's own LIVE CAS
// then fails) or B kills itself; if B's CAS on A fails, A's state moved on and B reads it again.
// So B becomes LIVE only if A is dead. This is the Dekker pattern (publish, then read the other),
// which needs seq_cst: with acquire/release alone both rescans could miss the other's publish.
//
// Eviction. The caller's Evict policy owns the meaning of "may be evicted" (the engine: not
// replied). Its claim() must be one atomic step on the caller's value (a CAS on a state word)
// that every writer which would make the entry non-evictable also observes: once a claim
// succeeds the entry dies (the evicting insert kills it from whatever live expiry it has, so a
// refresh in between does not save it), and a writer that finds the claim after the fact treats
// the connection as gone (it may erase() it itself; exactly one kill wins).
//
// Thread safety (as rte_hash.h documents it): every function that takes or returns an Entry*
// (find, findBulk, insert, refresh, erase, sweep, forEach, connId) must be called by a thread that
// is an online reader of qsbr() (see Qsbr), and an Entry* is only valid until that thread's next
// quiescent point or offline(). Within that rule any number of threads may call any of them
// concurrently; none takes a lock or blocks. capacity(), size(), memoryBytes() and reclaim() may
// be called from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "statewall/dataplane/flow_key.hpp"
#include "statewall/dataplane/qsbr.hpp"

// The SIMD tag filter (see ConnTable::candidates()) is off under ThreadSanitizer.
#if defined(__SANITIZE_THREAD__)
#define STATEWALL_CONN_TABLE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STATEWALL_CONN_TABLE_TSAN 1
#endif
#endif
#if defined(__SSE2__) && !defined(STATEWALL_CONN_TABLE_TSAN)
#include <emmintrin.h>
#define STATEWALL_CONN_TABLE_SIMD 1
#else
#define STATEWALL_CONN_TABLE_SIMD 0
#endif

namespace statewall::dataplane {

namespace conn_table_detail {
// Zeroed, page-aligned memory (mmap); transparent huge pages requested when huge_pages. Null on
// failure.
void* allocateTableMemory(size_t bytes, bool huge_pages);
void freeTableMemory(void* p, size_t bytes);
[[noreturn]] void fatal(const char* what);
}  // namespace conn_table_detail

// What the table needs from a key: trivially copyable, a seeded hash and an identity comparison
// that ignore the spare bits, a direction bit and a generation field (see flow_key.hpp).
template <class Key>
concept ConnTableKey = std::is_trivially_copyable_v<Key> &&
    requires(const Key& a, const Key& b, Key& m, uint64_t seed, uint32_t g) {
  { a.hash(seed) } -> std::convertible_to<uint64_t>;
  { a.sameFlow(b) } -> std::convertible_to<bool>;
  { a.loToHi() } -> std::convertible_to<bool>;
  { a.generation() } -> std::convertible_to<uint32_t>;
  { Key::kGenerationMask } -> std::convertible_to<uint32_t>;
  m.setGeneration(g);
};

// The caller's per-connection state. Shared by all threads, so it should be made of atomics.
template <class Value>
concept ConnTableValue =
    std::is_nothrow_default_constructible_v<Value> && std::is_trivially_destructible_v<Value>;

template <ConnTableKey Key, ConnTableValue Value>
struct alignas(64) ConnEntry {
  // Owned by the table (see the file comment); read it through expiresNs().
  std::atomic<uint64_t> expires_ns{0};
  // Written once by insert() before the entry is published, read-only while it is reachable.
  // Its direction bit is the originator's: the side that sent the packet which created it.
  Key key{};
  Value value{};

  // The expiry of a live (possibly expired) entry; 0 once it is dead or being inserted.
  uint64_t expiresNs() const {
    const uint64_t e = expires_ns.load(std::memory_order_relaxed);
    return static_cast<int64_t>(e) > 1 ? e : 0;
  }
  bool originatorIsLo() const { return key.loToHi(); }
  // Whether a packet going lo -> hi (makeKey*'s flag) was sent by the connection's originator.
  bool fromOriginator(bool packet_is_lo_to_hi) const { return packet_is_lo_to_hi == key.loToHi(); }
  // Same, from the packet's key (its direction bit).
  bool fromOriginator(const Key& packet_key) const { return packet_key.loToHi() == key.loToHi(); }
};

// Tests drive the insert protocol step by step through this (tests/table).
struct ConnTableTestPeer;

// The Evict policy of an insert that never evicts a live entry (see "Early drop"). An Evict
// policy has the same two members for the table's Entry type:
//   bool evictable(const Entry&) const;  // read-only hint while looking for a victim
//   bool claim(Entry&);                  // one atomic step; true: the entry must die now
// Both are called by the inserting thread on live entries it reaches as an online reader; they
// may read the entry's key and value and nothing else of the table.
struct NoEviction {
  template <class Entry>
  bool evictable(const Entry&) const {
    return false;
  }
  template <class Entry>
  bool claim(Entry&) const {
    return false;
  }
};

template <ConnTableKey KeyT, ConnTableValue ValueT>
class ConnTable {
 public:
  using Key = KeyT;
  using Value = ValueT;
  using Entry = ConnEntry<Key, Value>;

  static constexpr unsigned kSlotsPerBucket = 7;
  // Buckets an evicting insert looks at for a victim, from the new key's home bucket on; it
  // takes its victim from the first of them that has one.
  static constexpr unsigned kEvictBuckets = 4;
  // Buckets an insert may walk from the home bucket. At kRatedLoad the longest probe seen in
  // simulation (10 M keys, 3x churn) was 19 buckets; past the limit insert() reports `full`.
  static constexpr unsigned kMaxProbe = 32;
  // Index slots in use at full capacity; 64 / 7 / 0.64 = 14.3 index bytes per connection.
  static constexpr double kRatedLoad = 0.64;
  static constexpr size_t kMaxCapacity = (size_t{1} << 31) - 1;

  struct InsertResult {
    Entry* entry;          // the new entry, the existing live one, or null when full
    bool inserted;         // true: entry is new and was initialised by our init
    bool full;             // no free entry or no free slot in the probe window: deny-table-full
    bool evicted = false;  // a live entry was evicted to make room (Evict::claim() took it)
    bool reaped = false;   // an expired entry not yet swept was killed to make room
  };

  // Counted by scanning the whole index: tests and benchmarks only, not the packet path.
  struct IndexStats {
    size_t buckets = 0;
    size_t used_slots = 0;
    uint64_t overflow_sum = 0;  // sum of the buckets' overflow counts
    uint32_t max_distance = 0;  // longest probe (buckets past home) of a published key
    uint64_t distance_sum = 0;  // sum of probe distances of published keys
  };

  // Allocates and initialises everything (one mapping for entries, one for the index). capacity
  // is the number of connections; qsbr is the reclamation domain the table's readers register
  // with (null: the table owns one with Qsbr::kDefaultMaxThreads ids). seed keys the hash.
  // huge_pages asks for transparent huge pages (fewer TLB misses on big tables; false is for
  // comparisons). evict_reserve > 0 turns on early drop (see the file comment): that many more
  // entries are allocated (their pages are touched only when used), for the victims waiting for
  // their grace period; it should cover the evictions of about two grace periods (two bursts of
  // every inserting thread). Aborts with a message when the memory cannot be had (start-up only).
  explicit ConnTable(size_t capacity, Qsbr* qsbr = nullptr, uint64_t seed = kDefaultFlowHashSeed,
                     bool huge_pages = true, size_t evict_reserve = 0)
      : seed_(seed) {
    using namespace conn_table_detail;
    if (capacity == 0) capacity = 1;
    if (capacity > kMaxCapacity || evict_reserve > kMaxCapacity - capacity) {
      fatal("capacity too large");
    }
    if (qsbr == nullptr) {
      owned_qsbr_ = std::make_unique<Qsbr>();
      qsbr = owned_qsbr_.get();
    }
    qsbr_ = qsbr;
    capacity_ = static_cast<uint32_t>(capacity);
    pool_ = static_cast<uint32_t>(capacity + evict_reserve);
    const double want = static_cast<double>(capacity) / (kSlotsPerBucket * kRatedLoad);
    nbuckets_ = std::max<uint32_t>(1, static_cast<uint32_t>(want + 0.999999));
    probe_limit_ = std::min<uint32_t>(kMaxProbe, nbuckets_);

    entries_bytes_ = roundToPage(sizeof(Entry) * pool_);
    buckets_bytes_ = roundToPage(sizeof(Bucket) * nbuckets_);
    entries_ = static_cast<Entry*>(allocateTableMemory(entries_bytes_, huge_pages));
    buckets_ = static_cast<Bucket*>(allocateTableMemory(buckets_bytes_, huge_pages));
    if (entries_ == nullptr || buckets_ == nullptr) fatal("out of memory");
    for (uint32_t i = 0; i < nbuckets_; ++i)
      new (&buckets_[i]) Bucket();
    // Entries are not touched here: allocEntry() hands out never-used ones in index order
    // (fresh_) once the free chain is empty, so a table sized for the worst case costs only the
    // memory its connections have used (the kernel zeroes a page on its first touch: for a
    // 1 M-entry table made for a short trace that was most of the start-up time).
  }

  ~ConnTable() {
    conn_table_detail::freeTableMemory(entries_, entries_bytes_);
    conn_table_detail::freeTableMemory(buckets_, buckets_bytes_);
  }
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  // The reclamation domain: readers register here. Any thread.
  Qsbr& qsbr() { return *qsbr_; }

  // The hash find()/insert() expect for key. Pure; any thread.
  uint64_t hashOf(const Key& key) const { return key.hash(seed_); }
  // The seed of hashOf(): key.hash(seed()) == hashOf(key).
  uint64_t seed() const { return seed_; }

  // The live entry of key at time now_ns, or null. hash must be hashOf(key). Never blocks or
  // writes shared memory. Online readers, concurrently with everything. A concurrent insert of
  // the same key may or may not be seen; one that happened-before this call is.
  Entry* find(const Key& key, uint64_t hash, uint64_t now_ns) const {
    const int64_t after = liveAfter(now_ns);
    uint32_t b = homeOf(hash);
    for (uint32_t d = 0; d < probe_limit_; ++d) {
      const Bucket& bk = buckets_[b];
      for (unsigned mask = candidates(bk, hash); mask != 0; mask &= mask - 1) {
        const uint64_t v = bk.slots[std::countr_zero(mask)].load(std::memory_order_seq_cst);
        if (!tagMatches(v, hash)) continue;
        Entry& e = entries_[slotIndex(v)];
        // Relaxed: the expiry publishes nothing; the key is covered by the slot load and the
        // value is the caller's atomics.
        if (e.key.sameFlow(key) && isLive(e.expires_ns.load(std::memory_order_relaxed), after)) {
          return &e;
        }
      }
      // Acquire is enough here: a key published beyond this bucket incremented this count
      // before its publication; if we read 0 that insert is concurrent with us.
      if (bk.overflow.load(std::memory_order_acquire) == 0) return nullptr;
      b = nextBucket(b);
    }
    return nullptr;
  }

  // find() for a burst: out[i] = find(keys[i], hashOf(keys[i]), now_ns) for i < n, and
  // hashes_out[i] = hashOf(keys[i]) for the inserts that follow misses. Hashing, bucket
  // prefetches, candidate-entry prefetches and the key checks run as stages over the whole burst,
  // so that the cache misses of the burst overlap (DPDK's bulk lookup pipeline); hashing and the
  // bucket prefetch share one loop so that reading the keys overlaps the bucket fetches. Same
  // concurrency as find().
  void findBulk(const Key* keys, unsigned n, uint64_t now_ns, Entry** out,
                uint64_t* hashes_out) const {
    bulk<true>(keys, nullptr, hashes_out, n, now_ns, out);
  }
  // The same with hashes[i] = hashOf(keys[i]) already computed.
  void findBulk(const Key* keys, const uint64_t* hashes, unsigned n, uint64_t now_ns,
                Entry** out) const {
    bulk<false>(keys, hashes, nullptr, n, now_ns, out);
  }

  // The stages of findBulk() one key at a time, for callers that overlap a lookup with other work
  // (the engine parses the next packets between the stages). For one key with hash = hashOf(key):
  //   prefetch(hash);                      // stage 1: fetch the home bucket
  //   ...                                  // other work while it arrives
  //   Probe c = probe(hash);               // stage 2: read it, fetch the candidate entry
  //   c = probeNext(hash, c);              // (optional) the same for a key past its home
  //   ...
  //   Entry* e = resolve(key, hash, c, now_ns);  // stage 3: == find(key, hash, now_ns)
  // resolve() gives find()'s answer as of the probe or later: a live entry it returns is live
  // when it runs, an entry killed since the probe is never returned, but a key inserted after
  // probe() saw a certain miss may be reported absent (as findBulk()'s answers date from its
  // lookup: callers that must see such inserts look a miss up again). The calls must be made by
  // the same online reader within one online period (no quiescent point between them). Same
  // concurrency as find().
  using Probe = uint32_t;
  void prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[homeOf(hash)], 0, 3); }
  Probe probe(uint64_t hash) const {
    const Bucket& bk = buckets_[homeOf(hash)];
    const unsigned mask = candidates(bk, hash);
    if (mask != 0) {
      const uint64_t v = bk.slots[std::countr_zero(mask)].load(std::memory_order_seq_cst);
      if (!tagMatches(v, hash)) return kProbeSlow;
      __builtin_prefetch(&entries_[slotIndex(v)], 0, 3);
      return static_cast<uint32_t>(v);  // entry index + 1
    }
    if (bk.overflow.load(std::memory_order_acquire) == 0) return kProbeMiss;
    // The key, if present, is further on: fetch the next bucket now; probeNext() reads it.
    __builtin_prefetch(&buckets_[nextBucket(homeOf(hash))], 0, 3);
    return kProbeNext;
  }
  // For a probe() result that sent the lookup on to the next bucket (a key that overflowed its
  // home bucket, a few percent at the rated load): reads that bucket (fetched by probe()) and
  // fetches its candidate entry, as probe() does for the home bucket. Other results are returned
  // unchanged. Optional: resolve() takes either.
  Probe probeNext(uint64_t hash, Probe c) const {
    if (c != kProbeNext) return c;
    const Bucket& bk = buckets_[nextBucket(homeOf(hash))];
    const unsigned mask = candidates(bk, hash);
    if (mask == 0) return kProbeSlow;
    const uint64_t v = bk.slots[std::countr_zero(mask)].load(std::memory_order_seq_cst);
    if (!tagMatches(v, hash)) return kProbeSlow;
    __builtin_prefetch(&entries_[slotIndex(v)], 0, 3);
    return static_cast<uint32_t>(v);
  }
  Entry* resolve(const Key& key, uint64_t hash, Probe c, uint64_t now_ns) const {
    if (c == kProbeMiss) return nullptr;
    if (c != kProbeSlow && c != kProbeNext) {
      Entry& e = entries_[c - 1];
      if (e.key.sameFlow(key) &&
          isLive(e.expires_ns.load(std::memory_order_relaxed), liveAfter(now_ns))) {
        return &e;
      }
    }
    // Tag collision, dead or pending copy first, or the key overflowed: the full walk.
    return find(key, hash, now_ns);
  }

  // Finds the live entry of key or creates it. On creation the entry is default-constructed,
  // init(Value&) fills it, and it becomes visible with expiry expires_ns (> 1, < 2^63) only
  // after that, so every reader sees an initialised value. Returns {existing, false, false} when
  // a live entry exists (also when another thread won a concurrent insert of the same key),
  // {new, true, false} when ours was inserted, {null, false, true} when the table is full.
  // With an eviction reserve, a table at capacity first makes room (see "Early drop"): an
  // expired entry near the key is reaped, else one that evict claims is evicted (reported in
  // the result); it is full only when neither is found. The capacity is counted, not locked:
  // concurrent inserts may each pass it by one (the reserve covers that too).
  // hash must be hashOf(key); key's direction bit becomes the entry's originator side.
  // Online readers, concurrently with everything; lock-free (see "No duplicates").
  template <class InitFn, class Evict = NoEviction>
  InsertResult insert(const Key& key, uint64_t hash, uint64_t now_ns, uint64_t expires_ns,
                      InitFn&& init, Evict&& evict = Evict{}) {
    if (expires_ns <= kPending || static_cast<int64_t>(expires_ns) < 0) {
      conn_table_detail::fatal("insert: expires_ns must be in [2, 2^63)");
    }
    bool evicted = false, reaped = false;
    for (unsigned attempt = 0;; ++attempt) {
      if (Entry* e = find(key, hash, now_ns)) return {e, false, false, evicted, reaped};
      const uint32_t idx = allocEntry();
      if (idx == kNoIndex) return {nullptr, false, true, evicted, reaped};
      // At capacity (only counted with a reserve): room first, or full. The entry was taken
      // first so that nothing is killed when the reserve has run out.
      if (pool_ != capacity_ && live_.load(std::memory_order_relaxed) >= capacity_) {
        switch (makeRoom(hash, now_ns, evict)) {
          case Room::kNone:
            pushFree(idx);  // never reachable: reusable at once
            return {nullptr, false, true, evicted, reaped};
          case Room::kEvicted:
            evicted = true;
            break;
          case Room::kReaped:
            reaped = true;
            break;
        }
      }
      Entry& e = entries_[idx];
      // Plain writes: no reader can reach this entry (free, and past its grace period).
      const uint32_t gen = nextGeneration(e.key.generation());
      e.key = key;
      e.key.setGeneration(gen);
      std::construct_at(&e.value);
      init(e.value);
      // Relaxed: published together with the key by the slot CAS below.
      e.expires_ns.store(kPending, std::memory_order_relaxed);
      Position pos;
      if (!publish(hash, idx, &pos)) {
        pushFree(idx);  // never reachable: reusable at once
        return {nullptr, false, true, evicted, reaped};
      }
      Entry* winner = nullptr;
      if (resolve(key, hash, now_ns, expires_ns, idx, pos, attempt, &winner)) {
        live_.fetch_add(1, std::memory_order_relaxed);
        return {&e, true, false, evicted, reaped};
      }
      unlink(idx, hash, pos);
      conflicts_.fetch_add(1, std::memory_order_relaxed);
      if (winner != nullptr) return {winner, false, false, evicted, reaped};
      // Lost to a copy that is still being inserted (or was killed): look again.
    }
  }
  InsertResult insert(const Key& key, uint64_t hash, uint64_t now_ns, uint64_t expires_ns) {
    return insert(key, hash, now_ns, expires_ns, [](Value&) {});
  }

  // Sets a live entry's expiry (e.g. now + the timeout of its new state). Fails when the entry
  // has died (expired and swept, erased, or replaced by an insert after it expired): the caller
  // then treats the connection as gone. Revives an expired entry that nobody has killed yet.
  // Online readers holding e, concurrently with everything.
  bool refresh(Entry* e, uint64_t expires_ns) {
    if (expires_ns <= kPending || static_cast<int64_t>(expires_ns) < 0) return false;
    uint64_t st = e->expires_ns.load(std::memory_order_relaxed);
    // Relaxed CAS: the race that matters (refresh vs kill) is decided by the atomicity of the RMW
    // on this one word; the expiry publishes no other data.
    while (static_cast<int64_t>(st) > static_cast<int64_t>(kPending)) {
      if (e->expires_ns.compare_exchange_weak(st, expires_ns, std::memory_order_relaxed,
                                              std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  // Kills a live entry now (RST, flush, control plane). Returns false when it was already dead.
  // Online readers holding e, concurrently with everything.
  bool erase(Entry* e) {
    uint64_t st = e->expires_ns.load(std::memory_order_relaxed);
    while (static_cast<int64_t>(st) > static_cast<int64_t>(kPending)) {
      if (e->expires_ns.compare_exchange_weak(st, kDead, std::memory_order_seq_cst,
                                              std::memory_order_relaxed)) {
        const uint32_t idx = indexOf(e);
        const uint64_t h = hashOf(e->key);
        killedLive(idx, h, locate(idx, h));
        return true;
      }
    }
    return false;
  }

  // One slice of the expiry sweep: visits the next max_buckets buckets of a shared cursor (so
  // threads running slices cover different buckets), kills the entries whose expiry <= now_ns,
  // then lets retired entries whose grace period passed go back to the pool (reclaim()).
  // Returns the number killed. Bounded work: max_buckets * 7 entries. Online readers,
  // concurrently with everything.
  size_t sweep(uint64_t now_ns, size_t max_buckets) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(max_buckets, nbuckets_));
    const uint64_t start = sweep_cursor_.fetch_add(n, std::memory_order_relaxed);
    uint32_t b = static_cast<uint32_t>(start % nbuckets_);
    size_t killed = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Bucket& bk = buckets_[b];
      for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
        const uint64_t v = bk.slots[s].load(std::memory_order_seq_cst);
        if (v == 0) continue;
        const uint32_t idx = slotIndex(v);
        Entry& e = entries_[idx];
        uint64_t st = e.expires_ns.load(std::memory_order_relaxed);
        // Kill with a CAS from the exact expired value we saw: a refresh in between makes it
        // fail, so a connection that just got a packet is never swept.
        if (static_cast<int64_t>(st) > static_cast<int64_t>(kPending) && st <= now_ns &&
            e.expires_ns.compare_exchange_strong(st, kDead, std::memory_order_seq_cst,
                                                 std::memory_order_relaxed)) {
          const uint64_t h = hashOf(e.key);
          killedLive(idx, h, Position{b, distance(homeOf(h), b), s});
          ++killed;
        }
      }
      b = nextBucket(b);
    }
    reclaim();
    return killed;
  }

  // Returns retired entries whose grace period has passed to the pool and starts a grace period
  // for the ones retired since. True when a batch went back to the pool. Any thread; never blocks
  // (when another thread is reclaiming it returns at once) and does O(1) work: the retired chain
  // is spliced onto the free chain whole (see retire()). An entry becomes reusable once every
  // online reader has passed a quiescent point after it was retired (up to two rounds).
  bool reclaim() {
    // Nothing retired and no batch waiting: the common case costs two loads, no RMW.
    if (static_cast<uint32_t>(retired_head_.load(std::memory_order_relaxed)) == 0 &&
        !batch_waiting_.load(std::memory_order_relaxed)) {
      return false;
    }
    if (reclaim_busy_.load(std::memory_order_relaxed) ||
        reclaim_busy_.exchange(true, std::memory_order_acquire)) {
      return false;
    }
    bool freed = false;
    // batch_* are only touched by the holder of reclaim_busy_ (acquire above, release below).
    if (batch_head_ != 0 && batch_tail_ == 0) batch_tail_ = retiredTail(batch_epoch_);
    if (batch_head_ != 0 && batch_tail_ != 0 && qsbr_->poll(batch_token_)) {
      pushFreeChain(batch_head_, batch_tail_);
      batch_head_ = 0;
      freed = true;
    }
    if (batch_head_ == 0) {
      // Detach the whole retired chain and open the next epoch. Acquire: pairs with retire()'s
      // release CAS, so the unlinks and link words are visible here, and the unlinks
      // happen-before the grace period that start() opens (the QSBR argument needs that).
      uint64_t h = retired_head_.load(std::memory_order_relaxed);
      while (static_cast<uint32_t>(h) != 0 &&
             !retired_head_.compare_exchange_weak(
                 h, ((h >> 32) + 1) << 32, std::memory_order_acquire, std::memory_order_relaxed)) {
      }
      if (static_cast<uint32_t>(h) != 0) {
        batch_head_ = static_cast<uint32_t>(h);
        batch_epoch_ = static_cast<uint32_t>(h >> 32);
        batch_tail_ = retiredTail(batch_epoch_);  // 0 while its pusher has not recorded it
        batch_token_ = qsbr_->start();
      }
    }
    batch_waiting_.store(batch_head_ != 0, std::memory_order_relaxed);
    reclaim_busy_.store(false, std::memory_order_release);
    return freed;
  }

  // Calls fn(Entry&) for every live entry (expiry > now_ns) in buckets [first, first + count)
  // (clamped to bucketCount()) and returns the next bucket to visit (bucketCount() at the end).
  // fn may call refresh() or erase() on the entry. Entries inserted or killed meanwhile may or
  // may not be visited. Online readers; a long listing can go in slices with a quiescent point
  // between them, so reclamation does not wait for the control plane.
  template <class Fn>
  uint32_t forEachInRange(uint64_t now_ns, uint32_t first, uint32_t count, Fn&& fn) {
    const int64_t after = liveAfter(now_ns);
    first = std::min(first, nbuckets_);
    const uint32_t end = count >= nbuckets_ - first ? nbuckets_ : first + count;
    for (uint32_t b = first; b < end; ++b) {
      for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
        const uint64_t v = buckets_[b].slots[s].load(std::memory_order_seq_cst);
        if (v == 0) continue;
        Entry& e = entries_[slotIndex(v)];
        if (isLive(e.expires_ns.load(std::memory_order_relaxed), after)) fn(e);
      }
    }
    return end;
  }
  template <class Fn>
  void forEach(uint64_t now_ns, Fn&& fn) {
    forEachInRange(now_ns, 0, nbuckets_, std::forward<Fn>(fn));
  }

  // A connection id, stable for the entry's life and different for the next connection that
  // reuses the same entry (until the 23-bit generation wraps). Never 0. Online readers holding e.
  uint64_t connId(const Entry* e) const {
    return static_cast<uint64_t>(e->key.generation()) << 32 | indexOf(e);
  }

  // The entry a connection id (connId()) names while that connection lives (possibly expired, not
  // yet swept); null once it is dead or its entry holds another connection. The thread that
  // inserts into the table, as an online reader (another inserting thread could be writing the
  // entry's key).
  const Entry* findById(uint64_t id) const {
    const uint64_t idx = id & 0xffffffffu;
    if (idx >= pool_) return nullptr;
    const Entry& e = entries_[idx];
    if (e.expiresNs() == 0 || e.key.generation() != (id >> 32)) return nullptr;
    return &e;
  }

  // Live entries the table holds at most (without a reserve: the entry pool).
  size_t capacity() const { return capacity_; }
  // The eviction reserve the table was made with (0: no early drop).
  size_t evictReserve() const { return pool_ - capacity_; }
  // Live entries, including expired ones not yet swept. Approximate under concurrency.
  size_t size() const {
    const int64_t n = live_.load(std::memory_order_relaxed);
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
  uint32_t bucketCount() const { return nbuckets_; }
  // Inserts that published a copy and then lost to a concurrent insert of the same key. Any
  // thread.
  uint64_t insertConflicts() const { return conflicts_.load(std::memory_order_relaxed); }
  // Everything the table allocated: entries, index, the table object and its own Qsbr if any.
  size_t memoryBytes() const {
    const size_t qsbr = owned_qsbr_ ? sizeof(Qsbr) + size_t{64} * owned_qsbr_->maxThreads() : 0;
    return entries_bytes_ + buckets_bytes_ + sizeof(*this) + qsbr;
  }

  IndexStats indexStats() const {
    IndexStats st;
    st.buckets = nbuckets_;
    for (uint32_t b = 0; b < nbuckets_; ++b) {
      st.overflow_sum += buckets_[b].overflow.load(std::memory_order_relaxed);
      for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
        const uint64_t v = buckets_[b].slots[s].load(std::memory_order_seq_cst);
        if (v == 0) continue;
        ++st.used_slots;
        const uint32_t d = distance(homeOf(hashOf(entries_[slotIndex(v)].key)), b);
        st.max_distance = std::max(st.max_distance, d);
        st.distance_sum += d;
      }
    }
    return st;
  }

 private:
  friend struct ConnTableTestPeer;

  static constexpr uint64_t kDead = 0;
  static constexpr uint64_t kPending = 1;
  static constexpr uint64_t kLinkBit = uint64_t{1} << 63;
  static constexpr uint32_t kNoIndex = ~0u;
  // probe() results other than an entry index + 1.
  static constexpr uint32_t kProbeMiss = 0;        // certain miss (at probe time)
  static constexpr uint32_t kProbeSlow = ~0u;      // resolve() walks the probe sequence
  static constexpr uint32_t kProbeNext = ~0u - 1;  // the same; the next bucket is on its way

  struct alignas(64) Bucket {
    // 0 = empty; else tagBits(hash) | (entry index + 1): the tag is the hash's low half.
    std::atomic<uint64_t> slots[kSlotsPerBucket] = {};
    // Published keys whose probe sequence passed this bucket (they live further on).
    std::atomic<uint32_t> overflow{0};
    uint32_t reserved = 0;
  };
  static_assert(sizeof(Bucket) == 64);

  struct Position {
    uint32_t bucket = 0;
    uint32_t dist = 0;  // buckets past home
    unsigned slot = 0;
    unsigned rank() const { return dist * kSlotsPerBucket + slot; }
  };

  enum class Room : uint8_t { kNone, kEvicted, kReaped };

  // Early drop: kills one entry near hash's home bucket so that an insert at capacity can go
  // ahead. Looks at kEvictBuckets buckets from home and takes its victim from the first bucket
  // that has one: an expired entry (killed as the sweep kills one: a CAS from the value seen,
  // so a refresh in between saves it), else the live entry closest to its expiry among those
  // evict.evictable() accepts, if evict.claim() takes it. Two tries when a race takes the
  // victim away. The victim is retired and a reclaim round is run, so that the victims of a
  // flood go back to the pool after their grace period while the reserve covers them.
  template <class Evict>
  Room makeRoom(uint64_t hash, uint64_t now_ns, Evict& evict) {
    const int64_t after = liveAfter(now_ns);
    const uint32_t nb = std::min<uint32_t>(kEvictBuckets, nbuckets_);
    for (int round = 0; round < 2; ++round) {
      uint32_t victim = kNoIndex;
      uint64_t victim_st = 0;
      uint32_t b = homeOf(hash);
      unsigned victim_slot = 0;
      for (uint32_t d = 0; d < nb && victim == kNoIndex; ++d, b = nextBucket(b)) {
        Bucket& bk = buckets_[b];
        uint64_t v[kSlotsPerBucket];
        for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
          v[s] = bk.slots[s].load(std::memory_order_seq_cst);
          if (v[s] != 0) __builtin_prefetch(&entries_[slotIndex(v[s])], 0, 3);
        }
        for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
          if (v[s] == 0) continue;
          const uint32_t idx = slotIndex(v[s]);
          const Entry& e = entries_[idx];
          const uint64_t st = e.expires_ns.load(std::memory_order_relaxed);
          if (static_cast<int64_t>(st) <= static_cast<int64_t>(kPending)) continue;  // not live
          const bool expired = !isLive(st, after);
          if (!expired && !evict.evictable(e)) continue;
          if (victim == kNoIndex || st < victim_st) {  // an expired one sorts first
            victim = idx;
            victim_st = st;
            victim_slot = s;
          }
        }
        if (victim != kNoIndex) break;
      }
      if (victim == kNoIndex) return Room::kNone;
      Entry& e = entries_[victim];
      const uint64_t h = hashOf(e.key);
      const Position pos{b, distance(homeOf(h), b), victim_slot};
      if (!isLive(victim_st, after)) {
        uint64_t st = victim_st;
        if (!e.expires_ns.compare_exchange_strong(st, kDead, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed)) {
          continue;  // refreshed or killed meanwhile: look again
        }
        killedLive(victim, h, pos);
        reclaim();
        return Room::kReaped;
      }
      if (!evict.claim(e)) continue;
      // Claimed: it dies now, from whatever live expiry it has.
      uint64_t st = e.expires_ns.load(std::memory_order_relaxed);
      while (static_cast<int64_t>(st) > static_cast<int64_t>(kPending)) {
        if (e.expires_ns.compare_exchange_weak(st, kDead, std::memory_order_seq_cst,
                                               std::memory_order_relaxed)) {
          killedLive(victim, h, pos);
          reclaim();
          return Room::kEvicted;
        }
      }
      // Killed by another thread meanwhile (a reply that found the claim, an erase, the sweep):
      // gone all the same, and that thread counted it out of live_.
      return Room::kEvicted;
    }
    return Room::kNone;
  }

  static size_t roundToPage(size_t bytes) { return (bytes + 4095) & ~size_t{4095}; }
  // Lookups treat expires <= now as absent; the max with kPending keeps PENDING (1) invisible
  // even at now = 0, and the signed view makes free-chain links (top bit) invisible too.
  static int64_t liveAfter(uint64_t now_ns) {
    return static_cast<int64_t>(std::max<uint64_t>(now_ns, kPending));
  }
  static bool isLive(uint64_t expires, int64_t after) {
    return static_cast<int64_t>(expires) > after;
  }
  uint32_t homeOf(uint64_t hash) const {
    return static_cast<uint32_t>(((hash >> 32) * static_cast<uint64_t>(nbuckets_)) >> 32);
  }
  // The slot's high half for hash: the low 32 bits of the hash with bit 0 forced to 1, so that
  // no tag is 0 and an empty slot (0) can never match one.
  static uint64_t tagBits(uint64_t hash) { return (hash | 1) << 32; }
  static uint64_t slotValue(uint64_t hash, uint32_t idx) { return tagBits(hash) | (idx + 1); }
  static bool tagMatches(uint64_t v, uint64_t hash) { return (v ^ tagBits(hash)) >> 32 == 0; }
  static uint32_t slotIndex(uint64_t v) { return static_cast<uint32_t>(v) - 1; }
  // kHash: compute the hashes into hashes_out; else read them from hashes_in. The stages run over
  // the whole burst, each after the previous one for every key.
  template <bool kHash>
  void bulk(const Key* keys, const uint64_t* hashes_in, uint64_t* hashes_out, unsigned n,
            uint64_t now_ns, Entry** out) const {
    const uint64_t* hashes = kHash ? hashes_out : hashes_in;
    constexpr unsigned kChunk = 64;
    for (unsigned base = 0; base < n; base += kChunk) {
      const unsigned m = std::min(kChunk, n - base);
      Probe cand[kChunk];
      for (unsigned i = 0; i < m; ++i) {
        if constexpr (kHash) hashes_out[base + i] = hashOf(keys[base + i]);
        prefetch(hashes[base + i]);
      }
      for (unsigned i = 0; i < m; ++i)
        cand[i] = probe(hashes[base + i]);
      for (unsigned i = 0; i < m; ++i)
        out[base + i] = resolve(keys[base + i], hashes[base + i], cand[i], now_ns);
    }
  }

  // The slots of bk whose tag may match hash. A filter: every user re-reads a candidate slot with
  // an atomic seq_cst load and re-checks its tag before following it. Those loads cost nothing
  // over acquire on x86 (a plain load); as acquires they pair with the publishing CAS, so the key
  // and initial value written before publication are visible; seq_cst makes them the reader's
  // half of Qsbr::online()'s argument (qsbr.hpp). Every slot load that leads to an entry is one.
  //
  // With SSE2 the filter compares the 7 tags at once from four 16-byte loads of the bucket, as
  // DPDK compares bucket signatures. Those are plain loads of atomic words, outside the C++ memory
  // model: on x86 each aligned 8-byte half is read single-copy atomically, so a tag seen is one
  // that was stored; a stale view can only hide a slot published concurrently (a miss, which a
  // concurrent insert allows) or offer a candidate that the atomic re-read rejects. The insert
  // protocol's rescan, sweep() and forEach() never use the filter. ThreadSanitizer builds (which
  // would rightly flag the plain loads) and other targets use 7 atomic loads.
  static unsigned candidates(const Bucket& bk, uint64_t hash) {
#if STATEWALL_CONN_TABLE_SIMD
    const __m128i* p = reinterpret_cast<const __m128i*>(&bk);
    const __m128i tag = _mm_set1_epi32(static_cast<int>(static_cast<uint32_t>(hash | 1)));
    // Odd 32-bit lanes of two vectors = the tags (high halves) of four slots.
    const __m128 t03 =
        _mm_shuffle_ps(_mm_castsi128_ps(_mm_load_si128(p)), _mm_castsi128_ps(_mm_load_si128(p + 1)),
                       _MM_SHUFFLE(3, 1, 3, 1));
    const __m128 t47 =
        _mm_shuffle_ps(_mm_castsi128_ps(_mm_load_si128(p + 2)),
                       _mm_castsi128_ps(_mm_load_si128(p + 3)), _MM_SHUFFLE(3, 1, 3, 1));
    const unsigned m =
        static_cast<unsigned>(
            _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(t03), tag)))) |
        static_cast<unsigned>(
            _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(t47), tag))))
            << 4;
    return m & ((1u << kSlotsPerBucket) - 1);  // lane 7 is the overflow word's high half
#else
    const uint64_t tag = tagBits(hash);
    unsigned mask = 0;
    for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
      mask |= static_cast<unsigned>((bk.slots[s].load(std::memory_order_seq_cst) ^ tag) >> 32 == 0)
              << s;
    }
    return mask;
#endif
  }
  uint32_t nextBucket(uint32_t b) const {
    return b + 1 == nbuckets_ ? 0 : b + 1;
  }
  uint32_t distance(uint32_t home, uint32_t b) const {
    return b >= home ? b - home : b + nbuckets_ - home;
  }
  uint32_t indexOf(const Entry* e) const {
    return static_cast<uint32_t>(e - entries_);
  }
  static uint32_t nextGeneration(uint32_t g) {
    const uint32_t n = (g + 1) & Key::kGenerationMask;
    return n == 0 ? 1 : n;
  }
  static uint32_t linkOf(uint64_t expires) {
    return static_cast<uint32_t>(expires);
  }

  // Publishes entry idx in the first empty slot of hash's probe sequence. Before moving past a
  // full bucket it increments that bucket's overflow count, so a lookup that reads the count
  // after our publication keeps walking. All seq_cst: part of the Dekker argument above.
  bool publish(uint64_t hash, uint32_t idx, Position* pos) {
    const uint64_t v = slotValue(hash, idx);
    const uint32_t home = homeOf(hash);
    uint32_t b = home;
    for (uint32_t d = 0; d < probe_limit_; ++d) {
      Bucket& bk = buckets_[b];
      for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
        uint64_t cur = bk.slots[s].load(std::memory_order_relaxed);
        if (cur == 0 && bk.slots[s].compare_exchange_strong(cur, v, std::memory_order_seq_cst,
                                                            std::memory_order_relaxed)) {
          *pos = Position{b, d, s};
          return true;
        }
      }
      bk.overflow.fetch_add(1, std::memory_order_seq_cst);
      b = nextBucket(b);
    }
    b = home;
    for (uint32_t d = 0; d < probe_limit_; ++d) {
      buckets_[b].overflow.fetch_sub(1, std::memory_order_seq_cst);
      b = nextBucket(b);
    }
    return false;
  }

  // The rescan after publish() (see "No duplicates"). True: our copy is LIVE with expires_ns.
  // False: it is dead (the caller unlinks it); *winner is the live copy that won, if any.
  bool resolve(const Key& key, uint64_t hash, uint64_t now_ns, uint64_t expires_ns, uint32_t mine,
               const Position& my_pos, unsigned attempt, Entry** winner) {
    const int64_t after = liveAfter(now_ns);
    bool lose = false;
    uint32_t b = homeOf(hash);
    for (uint32_t d = 0; d < probe_limit_ && !lose; ++d) {
      Bucket& bk = buckets_[b];
      for (unsigned s = 0; s < kSlotsPerBucket && !lose; ++s) {
        const uint64_t v = bk.slots[s].load(std::memory_order_seq_cst);
        if (!tagMatches(v, hash) || slotIndex(v) == mine) continue;
        const uint32_t idx = slotIndex(v);
        Entry& x = entries_[idx];
        if (!x.key.sameFlow(key)) continue;
        uint64_t st = x.expires_ns.load(std::memory_order_seq_cst);
        for (;;) {
          if (st == kPending) {
            if (attempt == 0 && d * kSlotsPerBucket + s < my_pos.rank()) {
              lose = true;  // the lower copy wins; its owner finishes
              break;
            }
            // Kill it; its owner's LIVE CAS will fail and it unlinks its copy.
            if (x.expires_ns.compare_exchange_strong(st, kDead, std::memory_order_seq_cst)) break;
            continue;  // st reloaded
          }
          if (static_cast<int64_t>(st) <= static_cast<int64_t>(kPending)) break;  // dead
          if (isLive(st, after)) {
            lose = true;
            *winner = &x;
            break;
          }
          // LIVE but expired: kill it here (we then own its unlinking) and take its place.
          if (x.expires_ns.compare_exchange_strong(st, kDead, std::memory_order_seq_cst)) {
            killedLive(idx, hash, Position{b, d, s});
            break;
          }
          // st reloaded: refreshed, erased or swept meanwhile.
        }
      }
      // A copy beyond this bucket that was published before our publication incremented this
      // count before it published, and our seq_cst load comes after our publication in S.
      if (lose || bk.overflow.load(std::memory_order_seq_cst) == 0) break;
      b = nextBucket(b);
    }
    uint64_t st = kPending;
    Entry& me = entries_[mine];
    if (lose) {
      // Fails only when another inserter killed us already: dead either way.
      me.expires_ns.compare_exchange_strong(st, kDead, std::memory_order_seq_cst);
      return false;
    }
    return me.expires_ns.compare_exchange_strong(st, expires_ns, std::memory_order_seq_cst);
  }

  // The slot of published entry idx (its hash is h). Only for an entry the caller killed.
  Position locate(uint32_t idx, uint64_t h) const {
    const uint64_t v = slotValue(h, idx);
    uint32_t b = homeOf(h);
    for (uint32_t d = 0; d < probe_limit_; ++d) {
      for (unsigned s = 0; s < kSlotsPerBucket; ++s) {
        if (buckets_[b].slots[s].load(std::memory_order_relaxed) == v) return Position{b, d, s};
      }
      b = nextBucket(b);
    }
    conn_table_detail::fatal("killed entry is not in the index");
  }

  void killedLive(uint32_t idx, uint64_t h, const Position& pos) {
    live_.fetch_sub(1, std::memory_order_relaxed);
    unlink(idx, h, pos);
  }

  // Removes dead entry idx from the index and retires it. Only the thread that killed it (or the
  // owner of a PENDING copy that lost) calls this, exactly once.
  void unlink(uint32_t idx, uint64_t h, const Position& pos) {
    // seq_cst store, then the counts: a reader that sees a decremented count and stops early
    // also sees the slot gone (it only held a dead copy anyway).
    buckets_[pos.bucket].slots[pos.slot].store(0, std::memory_order_seq_cst);
    uint32_t b = homeOf(h);
    for (uint32_t d = 0; d < pos.dist; ++d) {
      buckets_[b].overflow.fetch_sub(1, std::memory_order_seq_cst);
      b = nextBucket(b);
    }
    retire(idx);
  }

  // Pushes a dead, unpublished entry on the retired chain, where it waits for a grace period.
  // The chain head is (epoch << 32) | (index + 1); reclaim() detaches the whole chain and bumps
  // the epoch. The entry pushed onto an empty chain is that chain's tail: it records itself in
  // retired_tail_[epoch & 1], so reclaim() can splice the chain without walking it. Two slots
  // suffice: epoch e + 2 can only start after the batch of epoch e was spliced, which needs its
  // tail. Release CAS: the reclaimer's acquire then sees our unlink and the link word.
  void retire(uint32_t idx) {
    uint64_t h = retired_head_.load(std::memory_order_relaxed);
    do {
      // The link replaces kDead; both read as dead to a reader that still holds the entry.
      entries_[idx].expires_ns.store(kLinkBit | static_cast<uint32_t>(h),
                                     std::memory_order_relaxed);
    } while (!retired_head_.compare_exchange_weak(
        h, (h >> 32) << 32 | (idx + 1), std::memory_order_release, std::memory_order_relaxed));
    if (static_cast<uint32_t>(h) == 0) {
      const uint64_t epoch = h >> 32;
      retired_tail_[epoch & 1].store(epoch << 32 | (idx + 1), std::memory_order_release);
    }
  }

  // The tail (index + 1) of the retired chain of epoch, or 0 if its pusher has not recorded it
  // yet (it is between its CAS and its store; reclaim() looks again next time).
  uint32_t retiredTail(uint32_t epoch) const {
    const uint64_t t = retired_tail_[epoch & 1].load(std::memory_order_acquire);
    return static_cast<uint32_t>(t >> 32) == epoch ? static_cast<uint32_t>(t) : 0;
  }

  // Free chain: a Treiber stack of entry indices, head = (ABA counter << 32) | (index + 1), the
  // links in the entries' expiry words. The counter makes a pop fail when the head was popped
  // and pushed back meanwhile, so the link it read (possibly from an entry being reused) is
  // never installed.
  uint32_t allocEntry() {
    for (int round = 0; round < 2; ++round) {
      // Acquire (load and CAS): pairs with the pushers' release, so the link we read is theirs
      // and the entry's previous life happens-before our writes to it.
      uint64_t h = free_head_.load(std::memory_order_acquire);
      while (static_cast<uint32_t>(h) != 0) {
        const uint32_t idx = static_cast<uint32_t>(h) - 1;
        const uint64_t link = entries_[idx].expires_ns.load(std::memory_order_relaxed);
        const uint64_t next = ((h >> 32) + 1) << 32 | linkOf(link);
        if (free_head_.compare_exchange_weak(h, next, std::memory_order_acquire,
                                             std::memory_order_acquire)) {
          return idx;
        }
      }
      // Never-used entries, in index order. Nobody else can reach one: construct it here.
      uint32_t f = fresh_.load(std::memory_order_relaxed);
      while (f < pool_) {
        if (fresh_.compare_exchange_weak(f, f + 1, std::memory_order_relaxed)) {
          new (&entries_[f]) Entry();
          return f;
        }
      }
      if (!reclaim()) break;
    }
    return kNoIndex;
  }

  void pushFree(uint32_t idx) {
    pushFreeChain(idx + 1, idx + 1);
  }

  // first/last are index + 1 of a chain already linked first -> ... -> last.
  void pushFreeChain(uint32_t first, uint32_t last) {
    uint64_t h = free_head_.load(std::memory_order_relaxed);
    do {
      entries_[last - 1].expires_ns.store(kLinkBit | linkOf(h), std::memory_order_relaxed);
    } while (!free_head_.compare_exchange_weak(
        h, ((h >> 32) + 1) << 32 | first, std::memory_order_release, std::memory_order_relaxed));
  }

  Entry* entries_ = nullptr;
  Bucket* buckets_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t pool_ = 0;  // entries: capacity_ + the eviction reserve
  uint32_t nbuckets_ = 0;
  uint32_t probe_limit_ = 0;
  uint64_t seed_;
  size_t entries_bytes_ = 0;
  size_t buckets_bytes_ = 0;
  Qsbr* qsbr_ = nullptr;
  std::unique_ptr<Qsbr> owned_qsbr_;

  // Shared hot words, one cache line each.
  alignas(64) std::atomic<uint64_t> free_head_{0};
  std::atomic<uint32_t> fresh_{0};  // entries [fresh_, pool_) have never been used
  alignas(64) std::atomic<uint64_t> retired_head_{0};  // (epoch << 32) | (index + 1)
  std::atomic<uint64_t> retired_tail_[2] = {};         // (epoch << 32) | (index + 1)
  alignas(64) std::atomic<int64_t> live_{0};
  alignas(64) std::atomic<uint64_t> sweep_cursor_{0};
  alignas(64) std::atomic<uint64_t> conflicts_{0};
  alignas(64) std::atomic<bool> reclaim_busy_{false};
  std::atomic<bool> batch_waiting_{false};  // hint: batch_head_ != 0
  uint32_t batch_head_ = 0;  // index + 1 of the batch waiting for batch_token_, 0 = none
  uint32_t batch_tail_ = 0;  // index + 1 of its last entry, 0 = not known yet
  uint32_t batch_epoch_ = 0;
  uint64_t batch_token_ = 0;
};

// The layout promise of issue 3: an IPv4 entry with the engine's (at most) 40-byte value is one
// cache line; an IPv6 entry is two.
namespace conn_table_detail {
struct Value40 {
  std::atomic<uint64_t> words[5];
};
static_assert(sizeof(ConnEntry<FlowKey4, Value40>) == 64);
static_assert(alignof(ConnEntry<FlowKey4, Value40>) == 64);
static_assert(sizeof(ConnEntry<FlowKey6, Value40>) == 128);
}  // namespace conn_table_detail

}  // namespace statewall::dataplane
