// statewalld's --flow-log (private): AWS VPC Flow Logs records of what the forwarding lcores
// judged, the same records as `statewall replay --flow-log` (statewall/flowlog/flow_log.hpp owns
// what a packet counts in and how a record is written).
//
// Each forwarding lcore aggregates its judged packets into a table of its own, fixed at start
// (--flow-log-flows aggregates): per interface, direction, 5-tuple and action over windows of
// --flow-log-interval seconds aligned to the epoch, as AWS and the replay aggregate. When a window
// ends (seen at the next burst or idle sweep), when the policy changes, or when the table is full
// (then a flow gets several records in one window), the lcore copies its aggregates into its
// single-producer ring (--flow-log-ring plain records, allocated at start) and starts again.
// Records that do not fit are dropped and counted, never the packets. statewalld's main loop
// drains the rings every round and formats and writes the records. The fast path never blocks,
// allocates or formats for the log; with no --flow-log it costs one null test per burst.
//
// Both directions of a flow are separate records (as in AWS), and a record comes from the one
// lcore that saw its packets (one direction of a flow arrives on one port and queue), so
// per-lcore aggregation is exact.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dpdk/appliance.hpp"
#include "statewall/dpdk/options.hpp"
#include "statewall/flowlog/flow_log.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::dpdk {

struct FlowLogSettings {
  std::string path;  // "-": standard output
  bool jsonl = false;
  uint32_t interval_s = 60;
  uint32_t flows = 65536;  // aggregates per lcore
  uint32_t ring = 16384;   // records per lcore ring
};

// A policy as the flow log names it, immutable once published to the lcores.
struct FlowLogPolicy {
  rules::CompiledPolicyPtr policy;
  uint64_t version = 0;
  flowlog::FlowLogNames names;
  FlowLogPolicy(rules::CompiledPolicyPtr p, uint64_t v) : policy(p), version(v), names(*p) {}
};

// What travels through a ring: an aggregate and the policy version whose ids it holds.
struct FlowLogEntry {
  flowlog::FlowLogAgg agg;
  uint64_t version = 0;
};
static_assert(std::is_trivially_copyable_v<FlowLogEntry> && sizeof(FlowLogEntry) % 8 == 0);

// A bounded single-producer single-consumer ring of records, sized at start (SpscRing's
// protocol with a run-time capacity). Never blocks; no allocation after construction.
class FlowLogRing {
 public:
  explicit FlowLogRing(uint32_t capacity) : slots_(capacity) {}
  // Producer only: copies as many of e[0..n) as fit; returns how many.
  uint32_t push(const FlowLogEntry* e, uint32_t n) noexcept;
  // Consumer only: moves up to `max` records to out; returns how many.
  uint32_t pop(FlowLogEntry* out, uint32_t max) noexcept;

 private:
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
  alignas(64) std::vector<FlowLogEntry> slots_;
};

class FlowLogCollector;

// One direction of a flow as a forwarding lcore met it in the window: its addresses, ports
// (flowLogPorts()) and protocol, its source's and destination's interfaces (looked up once per
// window, not per packet), and its aggregates: index + 1 into the lcore's entries, 0 for none,
// per side (egress, ingress) and action (ACCEPT, REJECT).
struct FlowLogFlow {
  rules::IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  rules::IfaceId src_iface = rules::kNoIface, dst_iface = rules::kNoIface;
  uint32_t agg[2][2] = {};
};

// One forwarding lcore's side. count() and tick() are for that lcore only; the counters may be
// read by any thread; pendingAtExit() by the main lcore once the lcore has stopped.
class alignas(64) FlowLogLcore {
 public:
  FlowLogLcore(const FlowLogCollector& collector, uint32_t flows, uint32_t ring);
  ~FlowLogLcore();
  FlowLogLcore(const FlowLogLcore&) = delete;
  FlowLogLcore& operator=(const FlowLogLcore&) = delete;

  // Where Engine::process() writes the burst's parsed packets for count().
  dataplane::ParsedPacket* parsed() noexcept { return parsed_; }
  // Counts a judged burst (parsed() holds its packets) at engine time now_ns.
  void count(uint64_t now_ns, const dataplane::Verdict* v, unsigned n) noexcept;
  // An idle round: ends the window or follows a policy change.
  void tick(uint64_t now_ns) noexcept;
  // The aggregates not yet pushed, once the lcore has stopped (main lcore).
  std::span<const FlowLogEntry> pendingAtExit() const { return {entries_.data(), used_}; }

  FlowLogRing& ring() { return ring_; }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t ackedVersion() const { return acked_.load(std::memory_order_acquire); }

 private:
  void follow(uint64_t epoch_ns) noexcept;  // window end, policy change
  void flush() noexcept;                    // aggregates -> ring
  // The packet's flow, added when new (null when the table is full: flush() first; unlogged_,
  // with no interfaces, when neither address is an interface's).
  FlowLogFlow* flowOf(const dataplane::ParsedPacket& p, const rules::CompiledPolicy& policy,
                      uint64_t h, uint16_t sport, uint16_t dport) noexcept;
  // Counts packet p in the aggregate of `side` of flow f; false when the table is full.
  bool countSide(FlowLogFlow& f, const flowlog::FlowLogSide& side, uint64_t ts_ns,
                 const dataplane::Verdict& v, const dataplane::ParsedPacket& p) noexcept;
  void countOne(uint64_t ts_ns, const dataplane::Verdict& v, const dataplane::ParsedPacket& p,
                const rules::CompiledPolicy& policy) noexcept;

  const FlowLogCollector& collector_;
  FlowLogRing ring_;
  const FlowLogPolicy* policy_ = nullptr;
  uint64_t window_end_ns_ = 0;  // epoch ns
  uint32_t capacity_;           // aggregates
  uint32_t used_ = 0;
  uint32_t flows_used_ = 0;
  uint32_t mask_;  // of slots_
  // Open addressing over flows_: the flow's hash's high half as a tag << 32 | index + 1 into
  // flows_; 0 = empty. A flow has at least one aggregate, so there are no more flows than
  // aggregates.
  std::vector<uint64_t> slots_;
  std::vector<FlowLogFlow> flows_;
  FlowLogFlow unlogged_;  // flowOf() for a packet between two addresses of no interface
  std::vector<FlowLogEntry> entries_;  // in order of first packet
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> acked_{0};  // the newest policy version this lcore follows
  alignas(64) dataplane::ParsedPacket parsed_[dataplane::kMaxBurst];
};

// The main lcore's side: owns the rings, the lcores' tables and the writer.
class FlowLogCollector {
 public:
  // Opens the file and makes one ring and table per forwarding lcore. null + *err on failure.
  static std::unique_ptr<FlowLogCollector> open(const FlowLogSettings& s, size_t lcores,
                                                rules::CompiledPolicyPtr policy,
                                                uint64_t policy_version, std::string* err);
  ~FlowLogCollector();

  FlowLogLcore* lcore(size_t i) { return lcores_[i].get(); }
  // Main loop, every round: follows the engine's policy, drains the rings, writes the records.
  void poll(const dataplane::Engine& engine);
  // After the lcores stopped: their last aggregates, then closes the file. false + *err on a
  // write error.
  bool finish(std::string* err);

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }  // any thread
  uint64_t dropped() const;                                                      // any thread

  // For the lcores.
  const FlowLogPolicy* current() const noexcept { return current_.load(std::memory_order_acquire); }
  uint64_t epochNs(uint64_t engine_ns) const noexcept { return engine_ns + epoch_offset_ns_; }
  uint64_t windowNs() const noexcept { return window_ns_; }

 private:
  FlowLogCollector() = default;
  void drain();
  const FlowLogPolicy* byVersion(uint64_t v) const;

  std::unique_ptr<flowlog::FlowLogWriter> writer_;
  std::vector<std::unique_ptr<FlowLogLcore>> lcores_;
  std::vector<std::unique_ptr<FlowLogPolicy>> policies_;  // current last; older until unused
  std::atomic<const FlowLogPolicy*> current_{nullptr};
  uint64_t epoch_offset_ns_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC at open
  uint64_t window_ns_ = 0;
  std::atomic<uint64_t> written_{0};
  std::vector<FlowLogEntry> batch_;
};

// With --flow-log: opens the collector for the appliance's forwarding lcores into *out and
// attaches it (Appliance::attachFlowLog). true when off or done; false + *err (the file cannot
// be created). Before Appliance::start().
bool attachFlowLog(const Options& options, Appliance& app, std::unique_ptr<FlowLogCollector>* out,
                   std::string* err);

}  // namespace statewall::dpdk
