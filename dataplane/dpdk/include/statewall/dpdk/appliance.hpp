// The inline appliance: two DPDK ports (inside, outside), forwarding lcores that receive bursts,
// run the verdict engine on them and transmit what it allows to the other port.
//
// Lifecycle, all on the EAL main lcore after rte_eal_init():
//   create() -> start() -> [requestStop() from anywhere, or allIdle()] -> stop() -> close()
// Each forwarding lcore polls its share of the (port, rx queue) pairs and owns one tx queue on
// each port, so no queue is shared and nothing on the packet path takes a lock. The connection
// table inside the engine is shared by all lcores, which is what makes it correct for the two
// directions of one flow to arrive on different lcores.
//
// This header has no DPDK types so that tests and tools can use it without DPDK include paths.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "statewall/dpdk/options.hpp"
#include "statewall/dpdk/report.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::dataplane {
class Engine;
}

namespace statewall::dpdk {

class FlowLogCollector;

class Appliance {
 public:
  ~Appliance();
  Appliance(const Appliance&) = delete;
  Appliance& operator=(const Appliance&) = delete;

  // Resolves and configures both ports, creates the mbuf pool and the engine. Uses the first
  // options.lcores worker lcores (all of them when 0). Nothing runs until start(). On failure
  // returns null and sets *error to a message that says what to change (memory, queues, ports).
  static std::unique_ptr<Appliance> create(const Options& options, rules::CompiledPolicyPtr policy,
                                           std::string* error);

  // Starts the ports and launches the forwarding loops. Main lcore only.
  bool start(std::string* error);

  // Asks the forwarding lcores to stop receiving; they finish the burst in hand. Any thread;
  // async-signal-safe (one atomic store).
  void requestStop() noexcept;
  bool stopRequested() const noexcept;

  // True when every forwarding lcore has seen only empty polls for options.exit_when_idle_ms
  // (measured by the lcore itself, so a descheduled lcore is never mistaken for an idle one).
  bool allIdle() const noexcept;

  // Waits for the lcores, gives the tx queues back their mbufs and stops the ports. Main lcore.
  void stop();
  // Closes the ports (flushing pcap writers and freeing ring mbufs) and records whether the mbuf
  // pool is full again. After stop(). Main lcore.
  void close();

  // Counters so far (any time, any thread but concurrently with close()); includes the pool
  // state once close() ran.
  Report report() const;

  // The engine, e.g. to publish() a new policy. Any thread (see engine.hpp).
  dataplane::Engine& engine();

  // From now on the engine's time is `now_ns` instead of the TSC; call again to move it. For
  // tests that replay timed scenarios through the DPDK path: call it before start(), since each
  // lcore never lets the engine's time go back. A packet put into an rx queue after this call is
  // judged at `now_ns` (or at a later time set before it was received). Any thread.
  void setManualClock(uint64_t now_ns) noexcept;
  // The engine's time now: the TSC in nanoseconds on CLOCK_MONOTONIC's scale, or the manual
  // clock once set. What the control plane needs to say how long a connection has left. Any
  // thread.
  uint64_t engineNowNs() const noexcept;
  // Moves the denied packets the lcores recorded since the last call to *out (in lcore order;
  // each lcore's in time order); returns how many. Main lcore only (the rings' one consumer).
  size_t drainDrops(std::vector<DropRecord>* out);
  // What create() found that the operator should know (e.g. an interface MTU larger than the
  // port receives).
  const std::vector<std::string>& warnings() const;
  // How create() set the ports up where it chose (e.g. the port MTU), for the startup log.
  const std::vector<std::string>& notes() const;
  // --flow-log: each forwarding lcore i aggregates into collector.lcore(i), and report() counts
  // the records. Before start(); the collector outlives the last report(). Main lcore.
  void attachFlowLog(FlowLogCollector& collector);
  // The lcore ids that forward, in tx queue order.
  std::vector<unsigned> lcores() const;

  // Test hook (only statewalld-test-hooks, a test build, reaches it; see RunOptions in
  // apps/statewalld/statewalld.hpp): the forwarding lcore `lcore` stops making progress at its
  // next empty poll round (it neither receives nor sweeps, as a stuck lcore would) until called
  // again with stall = false. Returns false when `lcore` does not forward. Any thread.
  bool stallLcoreForTest(unsigned lcore, bool stall) noexcept;

  // Opaque; named here so the implementation's lcore loops can reach it.
  struct Impl;

 private:
  explicit Appliance(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace statewall::dpdk
