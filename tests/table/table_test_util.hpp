// Shared helpers for the connection table tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "statewall/dataplane/conn_table.hpp"
#include "statewall/dataplane/flow_key.hpp"
#include "statewall/dataplane/qsbr.hpp"

namespace statewall::dataplane::testing {

// 40 bytes of atomics, the size the engine's IPv4 value is allowed.
struct TestValue {
  std::atomic<uint64_t> tag{0};
  std::atomic<uint64_t> fwd{0};
  std::atomic<uint64_t> rev{0};
  std::atomic<uint64_t> state{0};
  std::atomic<uint64_t> spare{0};
};
static_assert(sizeof(TestValue) == 40);

using Table4 = ConnTable<FlowKey4, TestValue>;
using Table6 = ConnTable<FlowKey6, TestValue>;

// A key whose hash the test chooses, to build collisions and probe chains on purpose.
struct ForcedKey {
  uint64_t id = 0;
  uint64_t forced_hash = 0;
  uint8_t meta[3] = {};
  static constexpr uint32_t kGenerationMask = (1u << 23) - 1;

  uint64_t hash(uint64_t /*seed*/) const { return forced_hash; }
  bool sameFlow(const ForcedKey& o) const { return id == o.id; }
  bool loToHi() const { return (meta[0] & 1u) != 0; }
  uint32_t generation() const {
    return (static_cast<uint32_t>(meta[0]) | static_cast<uint32_t>(meta[1]) << 8 |
            static_cast<uint32_t>(meta[2]) << 16) >>
           1;
  }
  void setGeneration(uint32_t g) {
    const uint32_t v = ((g & kGenerationMask) << 1) | (meta[0] & 1u);
    meta[0] = static_cast<uint8_t>(v);
    meta[1] = static_cast<uint8_t>(v >> 8);
    meta[2] = static_cast<uint8_t>(v >> 16);
  }
};

inline FlowKey4 key4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto = 6,
                     bool* lo_to_hi = nullptr) {
  FlowKey4 k;
  bool dir = false;
  makeKey4(src, dst, sport, dport, proto, &k, &dir);
  if (lo_to_hi != nullptr) *lo_to_hi = dir;
  return k;
}

// Distinct keys from an index: 10.x.y.z:port -> 192.168.0.1:443.
inline FlowKey4 nthKey(uint32_t i, bool reply = false) {
  const uint32_t client = 0x0A000000u + (i >> 6);
  const uint16_t port = static_cast<uint16_t>(1024 + (i & 63));
  return reply ? key4(0xC0A80001u, client, 443, port) : key4(client, 0xC0A80001u, port, 443);
}

// Early drop on TestValue: its `state` word plays the engine's meta word. An entry whose state
// has neither bit may be evicted; the claim is one CAS that sets kStateClaimed (conn_table.hpp,
// "Eviction"). claims counts the claims this policy won.
constexpr uint64_t kStateReplied = 1;
constexpr uint64_t kStateClaimed = 2;
struct EvictUnrepliedTest {
  uint64_t claims = 0;
  template <class Entry>
  bool evictable(const Entry& e) const {
    return (e.value.state.load(std::memory_order_acquire) & (kStateReplied | kStateClaimed)) == 0;
  }
  template <class Entry>
  bool claim(Entry& e) {
    uint64_t s = e.value.state.load(std::memory_order_acquire);
    while ((s & (kStateReplied | kStateClaimed)) == 0) {
      if (e.value.state.compare_exchange_weak(s, s | kStateClaimed, std::memory_order_acq_rel)) {
        ++claims;
        return true;
      }
    }
    return false;
  }
};

// Lets retired entries come back to the pool: the calling reader quiesces between rounds.
template <class Table>
inline void drainRetired(Table& table, QsbrReader& reader) {
  for (int i = 0; i < 3; ++i) {
    reader.quiescent();
    table.reclaim();
  }
}

}  // namespace statewall::dataplane::testing
