#include "statewall/dpdk/appliance.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <new>

#include "exception_port.hpp"
#include "gwlb_burst.hpp"
#include "port.hpp"
#include "spsc_ring.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dpdk/flow_log.hpp"
#include "statewall/dpdk/mtu.hpp"
#include "statewall/dpdk/port_lock.hpp"

namespace statewall::dpdk {
namespace {

using dataplane::kMaxBurst;
using dataplane::PacketRef;
using dataplane::Verdict;

// Multi-segment mbufs are copied into one of these per packet so the engine sees a linear frame.
// 16 KiB holds any jumbo frame; longer packets (possible only from pcap files) are dropped.
constexpr uint32_t kScratchSlot = 16 * 1024;
// Expiry work when an lcore is idle (process() does its own slice on every burst): a small slice
// at most every 100 us, so a burst arriving meanwhile waits for at most one slice.
constexpr size_t kIdleSweepBuckets = 64;
constexpr uint64_t kIdleSweepPeriodNs = 100'000;
constexpr unsigned kMempoolCache = 256;
// Denied packets each lcore records for `statewall ctl drops`, at most this many per second (the
// rest are counted as unlogged); the ring holds more than the main loop lets pile up between two
// drains (every 10 ms).
constexpr unsigned kDropRecordsPerSecond = 200;
constexpr uint32_t kDropRingSize = 256;
constexpr uint64_t kNsPerSec = 1'000'000'000;
// Connection table memory per unit of --table-size (IPv4 entry and index plus a quarter IPv6
// entry), measured on the engine of this version (about 114 bytes); only for the up-front check.
constexpr double kTableBytesPerConnection = 120;
constexpr size_t kMaxTableSize = (size_t{1} << 31) - 1;  // the table's index limit

// Converts TSC cycles to nanoseconds on CLOCK_MONOTONIC's scale, anchored once at startup, with
// a 32.32 fixed-point multiplier (no division on the packet path). Every lcore shares the anchor;
// each keeps its own reading monotonic (the engine requires that per worker) in case the TSCs
// of two cores disagree by a few cycles.
class TscClock {
  __extension__ typedef unsigned __int128 U128;

 public:
  TscClock()
      : mult_(static_cast<uint64_t>((static_cast<U128>(kNsPerSec) << 32) / rte_get_tsc_hz())),
        tsc0_(rte_get_tsc_cycles()) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns0_ = static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
  }
  uint64_t ns(uint64_t tsc) const {
    return ns0_ + static_cast<uint64_t>((static_cast<U128>(tsc - tsc0_) * mult_) >> 32);
  }
  uint64_t now() const { return ns(rte_get_tsc_cycles()); }

 private:
  uint64_t mult_;
  uint64_t tsc0_;
  uint64_t ns0_ = 0;
};

struct RxUnit {
  uint16_t port;
  uint16_t queue;
  uint16_t tx_port;
  uint32_t rx_frame_max;  // frames this long may be cut short (PortSetup::rx_frame_max)
  uint8_t port_role;      // 0 inside, 1 outside, 2 the one port of --gwlb (DropRecord::port)
};

}  // namespace

struct LcoreState {
  Appliance::Impl* app = nullptr;
  unsigned lcore_id = 0;
  unsigned index = 0;     // among the forwarding lcores (0 services the exception port)
  uint16_t tx_queue = 0;  // this lcore's tx queue on both ports
  std::vector<RxUnit> units;
  std::vector<uint8_t> scratch;  // kMaxBurst * kScratchSlot, for multi-segment mbufs
  // Made on the main lcore before launch, used only by this lcore from then on.
  std::unique_ptr<dataplane::Engine::Worker> worker;
  LcoreCounters counters;
  alignas(64) std::atomic<bool> idle{false};
  std::atomic<bool> test_stall{false};  // stallLcoreForTest(); read only in empty rounds
  GwlbCounters gwlb;                    // --gwlb only
  // Denied packets for the drop log: filled by this lcore (rate-limited), drained by the main
  // lcore. The limiter's window and budget are this lcore's alone.
  SpscRing<DropRecord, kDropRingSize> drops;
  uint64_t drop_window_ns = 0;
  unsigned drop_budget = 0;
  FlowLogLcore* flow_log = nullptr;  // --flow-log: this lcore's aggregates; null when off
};

struct Appliance::Impl {
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
  // Released last (members are destroyed in reverse order): after the ports are closed.
  std::vector<PortLock> locks;
  Options options;
  rules::CompiledPolicyPtr policy;
  std::unique_ptr<dataplane::Engine> engine;
  PortSetup ports[2];  // inside, outside; with --gwlb only ports[0], the one port
  int nports = 2;
  // --gwlb: GENEVE to this address is judged on its inner packet and returned (gwlb.hpp).
  bool gwlb = false;
  rules::IpAddr gwlb_address{};
  dataplane::ParseOptions gwlb_parse{};
  // --exception-tap: the Linux stack's port for ARP, ICMP and health checks to gwlb_address.
  std::unique_ptr<ExceptionPort> exception;
  rte_mempool* pool = nullptr;
  std::vector<std::unique_ptr<LcoreState>> lcores;
  TscClock clock;
  uint64_t idle_ns = 0;
  std::atomic<bool> stop{false};
  bool ports_configured[2] = {false, false};
  bool started = false;
  bool ports_started[2] = {false, false};
  bool stopped = false;
  bool closed = false;
  std::atomic<uint64_t> start_ns{0};
  std::atomic<uint64_t> end_ns{0};
  PortReport final_ports[2];
  bool have_final_ports = false;
  PoolReport pool_report;
  // setManualClock(): the engine's time comes from here instead of the TSC.
  std::atomic<bool> manual_clock{false};
  std::atomic<uint64_t> manual_ns{0};
  const FlowLogCollector* flow_log = nullptr;  // attachFlowLog()

  ~Impl();
  // The engine's notion of now: the TSC, or the manual clock. Acquire pairs with the release in
  // setManualClock() so that a packet enqueued after a clock change sees the new time.
  uint64_t engineNow() const {
    return manual_clock.load(std::memory_order_acquire) ? manual_ns.load(std::memory_order_acquire)
                                                        : clock.now();
  }
  PortReport portReport(int i) const;
};

namespace {

// Records the denied packets of a burst for the drop log, at most kDropRecordsPerSecond per
// lcore and second of wall time (what the log's reader and its memory see; the engine's time may
// stand still under a manual clock); called only when the burst has some, before they are
// freed. Each record carries the engine's time, now_ns.
void recordDrops(Appliance::Impl& app, LcoreState& me, const RxUnit& u, const PacketRef* refs,
                 const Verdict* verdicts, unsigned k, uint64_t now_ns) {
  // now_ns is the TSC's time unless a manual clock is set: read the TSC only then.
  const uint64_t wall_ns =
      app.manual_clock.load(std::memory_order_relaxed) ? app.clock.now() : now_ns;
  if (wall_ns - me.drop_window_ns >= kNsPerSec) {
    me.drop_window_ns = wall_ns;
    me.drop_budget = kDropRecordsPerSecond;
  }
  uint64_t unlogged = 0;
  const uint64_t version = app.engine->policyVersion();
  for (unsigned i = 0; i < k; ++i) {
    const Verdict& v = verdicts[i];
    if (v.allowed()) continue;
    if (me.drop_budget == 0) {
      ++unlogged;
      continue;
    }
    --me.drop_budget;
    dataplane::ParsedPacket p;
    dataplane::parsePacket(refs[i].data, refs[i].len, refs[i].link, &p);
    DropRecord r;
    r.time_ns = now_ns;
    r.policy_version = version;
    r.ip = p.l3 == dataplane::L3::kIpv4 || p.l3 == dataplane::L3::kIpv6;
    if (r.ip) {
      r.src = p.src;
      r.dst = p.dst;
      r.proto = p.proto;
      const bool icmp = p.proto == rules::kProtoIcmp || p.proto == rules::kProtoIcmpV6;
      r.sport = icmp ? p.icmp_type : p.sport;
      r.dport = icmp ? p.icmp_code : p.dport;
    }
    r.port = u.port_role;
    r.reason = v.reason;
    r.deny_dir = v.deny_dir;
    r.deny_iface = v.deny_iface;
    r.acl_entry = v.acl_entry;
    r.why = v.why != nullptr ? v.why : p.malformed_why;
    if (!me.drops.push(r)) ++unlogged;
  }
  if (unlogged > 0) LcoreCounters::add(me.counters.drops_unlogged, unlogged);
}

// Receives one burst from `u`, decides it and forwards what is allowed. *engine_ns is the
// worker's last engine time, kept monotonic.
void pollUnit(Appliance::Impl& app, LcoreState& me, dataplane::Engine::Worker& worker,
              const RxUnit& u, uint64_t* engine_ns, unsigned* received) {
  rte_mbuf* rx[kMaxBurst];
  const uint16_t n = rte_eth_rx_burst(u.port, u.queue, rx, app.options.burst);
  *received = n;
  if (n == 0) return;
  // Read after the burst arrived: the time of receipt.
  const uint64_t now_ns = std::max(*engine_ns, app.engineNow());
  *engine_ns = now_ns;

  // The mbuf headers (and then the frames) are usually in another core's cache or in memory:
  // ask for all of them before touching any, so the misses overlap.
  for (uint16_t i = 0; i < n; ++i)
    rte_prefetch0(rx[i]);
  PacketRef refs[kMaxBurst];
  rte_mbuf* pkts[kMaxBurst];
  unsigned k = 0;
  uint64_t rx_bytes = 0, linearised = 0, oversize = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx[i];
    rte_prefetch0(rte_pktmbuf_mtod(m, const void*));
    rx_bytes += m->pkt_len;
    if (m->nb_segs == 1 && m->pkt_len < u.rx_frame_max) {
      refs[k] = {rte_pktmbuf_mtod(m, const uint8_t*), m->data_len};
    } else if (m->nb_segs == 1) {
      // As long as the device's slots: maybe cut short (a jumbo frame into a smaller slot).
      // Dropped as oversize then, never judged: the engine would call it malformed.
      const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
      if (frameCutShort(f, m->data_len)) {
        rte_pktmbuf_free(m);
        ++oversize;
        continue;
      }
      refs[k] = {f, m->data_len};
    } else if (m->pkt_len <= kScratchSlot) {
      const void* p = rte_pktmbuf_read(m, 0, m->pkt_len, me.scratch.data() + k * kScratchSlot);
      refs[k] = {static_cast<const uint8_t*>(p), m->pkt_len};
      ++linearised;
    } else {
      rte_pktmbuf_free(m);
      ++oversize;
      continue;
    }
    pkts[k++] = m;
  }

  // --gwlb: the engine judges the packets inside the GENEVE frames to us; the rest are freed, or
  // with --exception-tap given to the kernel when they are its (exception.hpp).
  GwlbOuter outer[kMaxBurst];
  if (app.gwlb && k > 0) {
    // --exception-tap: the frames for the kernel leave the burst here.
    rte_mbuf* to_kernel[kMaxBurst];
    unsigned nkernel = 0;
    ExceptionPort* x = app.exception.get();
    k = gwlbDecapBurst(app.gwlb_address, app.gwlb_parse, me.gwlb, refs, pkts, outer, k,
                       x != nullptr ? to_kernel : nullptr, &nkernel);
    if (nkernel > 0) x->toKernel(me.index, to_kernel, nkernel, me.gwlb);
  }

  Verdict verdicts[kMaxBurst];
  if (k > 0) {
    FlowLogLcore* fl = me.flow_log;
    app.engine->process(worker, refs, k, now_ns, verdicts, fl ? fl->parsed() : nullptr);
    if (fl) fl->count(now_ns, verdicts, k);
  }

  rte_mbuf* tx[kMaxBurst];
  rte_mbuf* drop[kMaxBurst];
  unsigned ntx = 0, ndrop = 0;
  uint64_t tx_bytes = 0;
  for (unsigned i = 0; i < k; ++i) {
    if (verdicts[i].allowed()) {
      if (app.gwlb) gwlbReturnMbuf(pkts[i], outer[i]);
      tx_bytes += pkts[i]->pkt_len;
      tx[ntx++] = pkts[i];
    } else {
      drop[ndrop++] = pkts[i];
    }
  }
  if (app.gwlb && ntx > 0) GwlbCounters::add(me.gwlb.returned, ntx);
  if (ndrop > 0) {
    recordDrops(app, me, u, refs, verdicts, k, now_ns);
    rte_pktmbuf_free_bulk(drop, ndrop);
  }

  unsigned sent = 0, retries = 0;
  if (ntx > 0) {
    sent = rte_eth_tx_burst(u.tx_port, me.tx_queue, tx, static_cast<uint16_t>(ntx));
    while (sent < ntx && retries < app.options.tx_retries) {
      ++retries;
      rte_pause();
      sent +=
          rte_eth_tx_burst(u.tx_port, me.tx_queue, tx + sent, static_cast<uint16_t>(ntx - sent));
    }
    if (sent < ntx) {
      for (unsigned i = sent; i < ntx; ++i)
        tx_bytes -= tx[i]->pkt_len;
      rte_pktmbuf_free_bulk(tx + sent, ntx - sent);
    }
  }

  LcoreCounters& c = me.counters;
  LcoreCounters::add(c.rx_packets, n);
  LcoreCounters::add(c.rx_bytes, rx_bytes);
  LcoreCounters::add(c.rx_bursts, 1);
  LcoreCounters::add(c.denied, ndrop);
  LcoreCounters::add(c.tx_packets, sent);
  LcoreCounters::add(c.tx_bytes, tx_bytes);
  if (sent < ntx) LcoreCounters::add(c.tx_dropped, ntx - sent);
  if (retries > 0) LcoreCounters::add(c.tx_retries, retries);
  if (linearised > 0) LcoreCounters::add(c.linearised, linearised);
  if (oversize > 0) LcoreCounters::add(c.oversize, oversize);
}

int lcoreMain(void* arg) {
  LcoreState& me = *static_cast<LcoreState*>(arg);
  Appliance::Impl& app = *me.app;
  dataplane::Engine::Worker& worker = *me.worker;
  // Two clocks: engine time (process(), sweep(); the TSC or the manual clock, monotonic for
  // this worker) and wall time (the TSC: idle detection, sweep pacing, busy accounting).
  uint64_t engine_ns = 0;
  uint64_t empty_since_ns = 0;
  uint64_t next_sweep_ns = app.clock.now() + kIdleSweepPeriodNs;
  bool idle = false;
  bool offline = false;  // told the engine we are not in process(); reset by process()/sweep()

  while (!app.stop.load(std::memory_order_relaxed)) {
    const uint64_t now_ns = app.clock.now();
    unsigned total = 0;
    for (const RxUnit& u : me.units) {
      unsigned got = 0;
      pollUnit(app, me, worker, u, &engine_ns, &got);
      total += got;
    }
    if (me.index == 0 && app.exception)
      total += app.exception->service(app.ports[0].port_id, me.tx_queue, me.gwlb);
    if (total > 0) {
      LcoreCounters::add(me.counters.busy_ns, app.clock.now() - now_ns);
      offline = false;
      empty_since_ns = 0;
      if (idle) {
        idle = false;
        me.idle.store(false, std::memory_order_relaxed);
      }
      continue;
    }
    // An empty round: expiry work in small slices, idle detection, optional sleep.
    if (now_ns >= next_sweep_ns) {
      engine_ns = std::max(engine_ns, app.engineNow());
      app.engine->sweep(worker, engine_ns, kIdleSweepBuckets);
      if (me.flow_log) me.flow_log->tick(engine_ns);
      LcoreCounters::add(me.counters.sweeps, 1);
      next_sweep_ns = now_ns + kIdleSweepPeriodNs;
      offline = false;
    }
    // While idle, reclamation in the table must not wait for this lcore.
    if (!offline) {
      app.engine->offline(worker);
      offline = true;
    }
    // The test hook: stuck here, neither receiving nor sweeping, until released (or stopped).
    while (me.test_stall.load(std::memory_order_relaxed) &&
           !app.stop.load(std::memory_order_relaxed))
      rte_delay_us_sleep(1000);
    if (empty_since_ns == 0) {
      empty_since_ns = now_ns;
    } else if (!idle && app.idle_ns > 0 && now_ns - empty_since_ns >= app.idle_ns) {
      idle = true;
      me.idle.store(true, std::memory_order_relaxed);
    }
    if (app.options.idle_sleep_us > 0)
      rte_delay_us_sleep(app.options.idle_sleep_us);
    else
      rte_pause();
  }
  app.engine->offline(worker);
  return 0;
}

// Mbufs the rings and lcores can hold at once: every rx descriptor filled, every tx descriptor
// waiting, and per lcore one burst in hand plus its mempool cache.
size_t mbufsNeeded(const PortSetup ports[2], int nports, unsigned lcores, unsigned burst) {
  size_t n = 0;
  for (int i = 0; i < nports; ++i)
    n += size_t{ports[i].rx_queues} * ports[i].rx_desc +
         size_t{ports[i].tx_queues} * ports[i].tx_desc;
  n += size_t{lcores} * (2 * size_t{burst} + kMempoolCache);
  return n;
}

// MemAvailable from /proc/meminfo in bytes, 0 when unknown.
double memAvailableBytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  double kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "MemAvailable: %lf kB", &kib) == 1) break;
  std::fclose(f);
  return kib * 1024;
}

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

Appliance::Impl::~Impl() {
  exception.reset();  // before the pool its rings' mbufs come from
  for (int i = 0; i < nports; ++i)
    if (ports_configured[i] && !closed) {
      if (ports_started[i]) rte_eth_dev_stop(ports[i].port_id);
      rte_eth_dev_close(ports[i].port_id);
    }
  if (pool != nullptr) rte_mempool_free(pool);
}

PortReport Appliance::Impl::portReport(int i) const {
  return dpdk::portReport(ports[i], ports_configured[i] && !closed);
}

Appliance::Appliance(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Appliance::~Appliance() {
  if (impl_ && impl_->started && !impl_->stopped) {
    requestStop();
    stop();
  }
}

std::unique_ptr<Appliance> Appliance::create(const Options& options,
                                             rules::CompiledPolicyPtr policy, std::string* error) {
  auto impl = std::make_unique<Impl>();
  Impl& a = *impl;
  a.options = options;
  a.policy = std::move(policy);
  a.idle_ns = uint64_t{options.exit_when_idle_ms} * 1'000'000;
  if (a.options.burst == 0 || a.options.burst > kMaxBurst) {
    *error = "--burst must lie in 1.." + std::to_string(kMaxBurst);
    return nullptr;
  }

  // Forwarding lcores: the first N workers; the main lcore runs control (signals, stats).
  std::vector<unsigned> workers;
  unsigned id;
  RTE_LCORE_FOREACH_WORKER(id) workers.push_back(id);
  if (workers.empty()) {
    *error =
        "no worker lcore: statewalld forwards on worker lcores and keeps the main lcore for "
        "control; give EAL at least two lcores (e.g. -l 0,1)";
    return nullptr;
  }
  const unsigned n = options.lcores == 0 ? static_cast<unsigned>(workers.size()) : options.lcores;
  if (n > workers.size()) {
    *error = "--lcores " + std::to_string(n) + " needs " + std::to_string(n) +
             " worker lcores besides the main lcore, but EAL has " +
             std::to_string(workers.size()) + "; give EAL -l 0-" + std::to_string(n) +
             " (or --lcores '0@0,(1-" + std::to_string(n) + ")@(...)' to share CPUs)";
    return nullptr;
  }
  if (n > dataplane::kMaxWorkers) {
    *error = "--lcores " + std::to_string(n) + " exceeds the engine's " +
             std::to_string(dataplane::kMaxWorkers) + " workers";
    return nullptr;
  }

  uint16_t ids[2] = {0, 0};
  const char* roles[2] = {"inside", "outside"};
  if (options.gwlb) {
    // One arm: frames go back out of the port they came in on.
    a.nports = 1;
    a.gwlb = true;
    a.gwlb_parse = gwlbParseOptions();
    const std::optional<GwlbAddress> address = parseGwlbAddress(options.address);
    if (!address) {
      *error = "--address " + options.address + ": expected an IPv4 or IPv6 address[/prefix]";
      return nullptr;
    }
    a.gwlb_address = address->ip;
    roles[0] = "gwlb";
    if (!resolvePort(options.port, "gwlb", &ids[0], error)) return nullptr;
  } else {
    if (!resolvePort(options.inside, "inside", &ids[0], error)) return nullptr;
    if (!resolvePort(options.outside, "outside", &ids[1], error)) return nullptr;
    if (ids[0] == ids[1]) {
      *error = "--inside and --outside name the same port (" + std::to_string(ids[0]) + ")";
      return nullptr;
    }
  }
  const int np = a.nports;
  for (int i = 0; i < np; ++i)
    if (!lockPort(ids[i], roles[i], options.lock_dir, &a.locks, error)) return nullptr;
  // One MTU for both ports (a frame crosses both), chosen from what the devices and links allow.
  PortMtuLimits limits[2];
  for (int i = 0; i < np; ++i)
    if (!portMtuLimits(ids[i], roles[i], &limits[i], error)) return nullptr;
  if (np == 1) limits[1] = limits[0];
  const MtuChoice mtu = choosePortMtu(limits, options.mtu);
  if (mtu.mtu != 0) a.notes.push_back(mtu.note);
  for (const std::string& w : mtu.warnings)
    a.warnings.push_back(w);
  for (int i = 0; i < np; ++i) {
    if (!configurePort(ids[i], roles[i], n, options.rx_desc, options.tx_desc, mtu.mtu, &a.ports[i],
                       error))
      return nullptr;
    if (!a.ports[i].warning.empty()) a.warnings.push_back(a.ports[i].warning);
    a.ports_configured[i] = true;
  }

  // Queue -> lcore: the rx queues of both ports in turn, round robin, so that with one queue per
  // lcore on each port lcore i polls queue i of both ports.
  for (unsigned i = 0; i < n; ++i) {
    auto l = std::make_unique<LcoreState>();
    l->app = &a;
    l->lcore_id = workers[i];
    l->index = i;
    l->tx_queue = static_cast<uint16_t>(i);
    a.lcores.push_back(std::move(l));
  }
  unsigned k = 0;
  for (int p = 0; p < np; ++p)
    for (uint16_t q = 0; q < a.ports[p].rx_queues; ++q, ++k)
      a.lcores[k % n]->units.push_back({a.ports[p].port_id, q, a.ports[np == 1 ? 0 : 1 - p].port_id,
                                        a.ports[p].rx_frame_max,
                                        static_cast<uint8_t>(np == 1 ? 2 : p)});
  if (k < n && np == 1) {
    *error = "--lcores " + std::to_string(n) + " but port " + portLabel(a.ports[0]) + " has only " +
             std::to_string(k) + " rx queue(s): an lcore would idle; use " + "--lcores " +
             std::to_string(k) + " or a port with more queues";
    return nullptr;
  }
  if (k < n) {
    *error = "--lcores " + std::to_string(n) + " but the ports have only " + std::to_string(k) +
             " rx queues together (inside " + std::to_string(a.ports[0].rx_queues) + ", outside " +
             std::to_string(a.ports[1].rx_queues) + "): an lcore would idle; use " + "--lcores " +
             std::to_string(k) + " or ports with more queues";
    return nullptr;
  }

  if (options.gwlb && !options.exception_tap.empty()) {
    // The tap's MTU: the port's, or the device's own when statewalld set none.
    uint32_t port_mtu = a.ports[0].mtu;
    if (uint16_t m = 0; port_mtu == 0 && rte_eth_dev_get_mtu(a.ports[0].port_id, &m) == 0)
      port_mtu = m;
    a.exception = ExceptionPort::create(options.exception_tap, a.ports[0].port_id, port_mtu,
                                        *parseGwlbAddress(options.address), n, error);
    if (!a.exception) return nullptr;
    a.notes.push_back(a.exception->note());
  }

  // The mbuf pool, on the inside port's socket.
  const size_t needed =
      mbufsNeeded(a.ports, np, n, options.burst) + (a.exception ? a.exception->mbufsNeeded() : 0);
  size_t count = options.mbufs;
  if (count == 0) {
    count = 1;
    while (count - 1 < needed + needed / 4)
      count <<= 1;
    count -= 1;  // 2^k - 1 is the mempool's most compact size
  } else if (count < needed) {
    *error = "--mbufs " + std::to_string(count) + " is too few: the rings and lcores can hold " +
             std::to_string(needed) + " at once (" + std::to_string(a.ports[0].rx_desc) + " rx / " +
             std::to_string(a.ports[0].tx_desc) +
             " tx descriptors per queue); raise --mbufs or lower --rx-desc / --tx-desc";
    return nullptr;
  }
  const int socket = a.ports[0].socket;
  // Larger mbufs when a port receives whole jumbo frames into one (af_packet slots, or a device
  // that cannot chain mbufs).
  const uint32_t data_room =
      std::max<uint32_t>({RTE_MBUF_DEFAULT_BUF_SIZE, a.ports[0].data_room, a.ports[1].data_room});
  if (data_room > UINT16_MAX) {
    *error = "the ports need " + std::to_string(data_room) +
             "-byte mbufs, more than an mbuf holds (65535): lower framesz= or --mtu";
    return nullptr;
  }
  a.pool = rte_pktmbuf_pool_create("statewall_mbufs", static_cast<unsigned>(count), kMempoolCache,
                                   0, static_cast<uint16_t>(data_room), socket);
  if (a.pool == nullptr) {
    const int err = rte_errno;
    const double bytes = static_cast<double>(count) * (sizeof(rte_mbuf) + data_room + 64);
    rte_malloc_socket_stats st{};
    rte_malloc_get_socket_stats(socket, &st);
    *error = "cannot create the mbuf pool: " + std::to_string(count) + " mbufs (about " +
             mib(bytes) + ") on socket " + std::to_string(socket) + ": " + rte_strerror(err) +
             "; EAL has " + mib(static_cast<double>(st.heap_freesz_bytes)) +
             " free there. Reserve more hugepages (see dataplane/dpdk/README.md), give EAL more "
             "memory (--socket-mem, or -m with --no-huge), or lower --mbufs";
    return nullptr;
  }
  for (int i = 0; i < np; ++i)
    if (!setupQueues(a.ports[i], a.pool, error)) return nullptr;
  if (a.exception && !a.exception->setupQueues(a.pool, error)) return nullptr;

  dataplane::EngineConfig config;
  config.table_capacity = options.table_size;
  config.pass_non_ip = options.pass_non_ip;
  // The table is ordinary memory (not hugepages) and the engine aborts when it cannot have it,
  // so say it here first, from an estimate, when it clearly will not fit.
  const double table_bytes = static_cast<double>(options.table_size) * kTableBytesPerConnection;
  const double available = memAvailableBytes();
  if (options.table_size > kMaxTableSize) {
    *error = "--table-size " + std::to_string(options.table_size) + " exceeds the maximum " +
             std::to_string(kMaxTableSize);
    return nullptr;
  }
  if (available > 0 && table_bytes > available) {
    *error = "the connection table for " + std::to_string(options.table_size) + " IPv4 + " +
             std::to_string(options.table_size / 4) + " IPv6 connections needs about " +
             mib(table_bytes) + ", but only " + mib(available) +
             " of memory is available; lower --table-size";
    return nullptr;
  }
  try {
    a.engine = std::make_unique<dataplane::Engine>(config, a.policy);
  } catch (const std::bad_alloc&) {
    *error = "cannot allocate the connection table for " + std::to_string(options.table_size) +
             " IPv4 + " + std::to_string(options.table_size / 4) +
             " IPv6 connections: out of memory; lower --table-size";
    return nullptr;
  }
  for (auto& l : a.lcores) {
    try {
      l->scratch.resize(size_t{kMaxBurst} * kScratchSlot);
    } catch (const std::bad_alloc&) {
      *error = "out of memory for the per-lcore linearisation buffers";
      return nullptr;
    }
    l->worker = a.engine->makeWorker();
    if (!l->worker) {
      *error = "the engine has no free worker slot for lcore " + std::to_string(l->lcore_id) +
               " (at most " + std::to_string(dataplane::kMaxWorkers) + ")";
      return nullptr;
    }
  }
  return std::unique_ptr<Appliance>(new Appliance(std::move(impl)));
}

bool Appliance::start(std::string* error) {
  Impl& a = *impl_;
  if (a.started) return true;
  for (int i = 0; i < a.nports; ++i) {
    if (int rc = rte_eth_dev_start(a.ports[i].port_id); rc != 0) {
      *error = a.ports[i].role + " port " + portLabel(a.ports[i]) +
               ": cannot start: " + rte_strerror(-rc);
      return false;
    }
    a.ports_started[i] = true;
  }
  if (a.exception && !a.exception->start(error)) return false;
  a.start_ns.store(a.clock.now(), std::memory_order_relaxed);
  for (auto& l : a.lcores) {
    if (int rc = rte_eal_remote_launch(lcoreMain, l.get(), l->lcore_id); rc != 0) {
      a.stop.store(true);
      for (auto& m : a.lcores)
        if (m.get() != l.get()) rte_eal_wait_lcore(m->lcore_id);
      *error = "cannot launch lcore " + std::to_string(l->lcore_id) + ": " + rte_strerror(-rc);
      a.started = true;
      a.stopped = true;
      return false;
    }
  }
  a.started = true;
  return true;
}

void Appliance::requestStop() noexcept {
  impl_->stop.store(true, std::memory_order_relaxed);
}

bool Appliance::stopRequested() const noexcept {
  return impl_->stop.load(std::memory_order_relaxed);
}

bool Appliance::allIdle() const noexcept {
  if (impl_->idle_ns == 0) return false;
  for (const auto& l : impl_->lcores)
    if (!l->idle.load(std::memory_order_relaxed)) return false;
  return true;
}

void Appliance::stop() {
  Impl& a = *impl_;
  if (!a.started || a.stopped) return;
  a.stop.store(true, std::memory_order_relaxed);
  for (auto& l : a.lcores)
    rte_eal_wait_lcore(l->lcore_id);
  a.end_ns.store(a.clock.now(), std::memory_order_relaxed);
  // Drain: let the devices send what is queued and hand back its mbufs (up to ~100 ms; vdevs
  // that transmit synchronously report nothing to clean, or ENOTSUP).
  for (int i = 0; i < a.nports; ++i)
    for (uint16_t q = 0; q < a.ports[i].tx_queues; ++q)
      for (int tries = 0; tries < 100; ++tries) {
        if (rte_eth_tx_done_cleanup(a.ports[i].port_id, q, 0) <= 0) break;
        rte_delay_us_sleep(1000);
      }
  for (int i = 0; i < a.nports; ++i)
    a.final_ports[i] = a.portReport(i);
  a.have_final_ports = true;
  if (a.exception) a.exception->stop();
  for (int i = 0; i < a.nports; ++i)
    if (a.ports_started[i]) {
      rte_eth_dev_stop(a.ports[i].port_id);
      a.ports_started[i] = false;
    }
  a.stopped = true;
}

void Appliance::close() {
  Impl& a = *impl_;
  if (a.closed) return;
  if (a.started && !a.stopped) {
    requestStop();
    stop();
  }
  for (int i = 0; i < a.nports; ++i)
    if (a.ports_configured[i]) rte_eth_dev_close(a.ports[i].port_id);
  if (a.exception) a.exception->close();
  a.closed = true;
  a.pool_report.size = a.pool->size;
  a.pool_report.available = rte_mempool_avail_count(a.pool);
}

Report Appliance::report() const {
  const Impl& a = *impl_;
  Report r;
  const uint64_t start = a.start_ns.load(std::memory_order_relaxed);
  const uint64_t end = a.end_ns.load(std::memory_order_relaxed);
  if (start != 0) r.seconds = static_cast<double>((end != 0 ? end : a.clock.now()) - start) / 1e9;
  const dataplane::Counters c = a.engine->counters();
  for (size_t i = 0; i < dataplane::kReasonCount; ++i) {
    r.reason_packets[i] = c.packets[i];
    r.reason_bytes[i] = c.bytes[i];
  }
  r.connections_created = c.connections_created;
  r.connections_expired = c.connections_expired;
  r.connections_evicted = c.connections_evicted;
  r.tcp_invalid = c.tcp_invalid;
  r.connections_live = a.engine->connectionCount();
  for (const auto& l : a.lcores) {
    IoCounters s = IoCounters::snapshot(l->counters, l->lcore_id);
    r.io += s;
    r.lcores.push_back(s);
    if (a.gwlb) r.gwlb += GwlbStats::snapshot(l->gwlb);
  }
  r.gwlb_mode = a.gwlb;
  for (int i = 0; i < a.nports; ++i)
    r.ports.push_back(a.have_final_ports ? a.final_ports[i] : a.portReport(i));
  if (a.exception) r.ports.push_back(a.exception->report());
  if (a.closed) {
    r.pool = a.pool_report;
    r.pool_checked = true;
  } else {
    // While it runs: the count includes the lcores' caches, read without stopping them.
    r.pool.size = a.pool->size;
    r.pool.available = rte_mempool_avail_count(a.pool);
  }
  if (a.flow_log != nullptr) {
    r.flow_log = true;
    r.flow_log_records = a.flow_log->written();
    r.flow_log_dropped = a.flow_log->dropped();
  }
  return r;
}

void Appliance::attachFlowLog(FlowLogCollector& collector) {
  impl_->flow_log = &collector;
  for (size_t i = 0; i < impl_->lcores.size(); ++i)
    impl_->lcores[i]->flow_log = collector.lcore(i);
}

dataplane::Engine& Appliance::engine() {
  return *impl_->engine;
}

void Appliance::setManualClock(uint64_t now_ns) noexcept {
  impl_->manual_ns.store(now_ns, std::memory_order_release);
  impl_->manual_clock.store(true, std::memory_order_release);
}

uint64_t Appliance::engineNowNs() const noexcept {
  return impl_->engineNow();
}

bool Appliance::stallLcoreForTest(unsigned lcore, bool stall) noexcept {
  for (const auto& l : impl_->lcores) {
    if (l->lcore_id != lcore) continue;
    l->test_stall.store(stall, std::memory_order_relaxed);
    return true;
  }
  return false;
}

size_t Appliance::drainDrops(std::vector<DropRecord>* out) {
  size_t n = 0;
  DropRecord r;
  for (auto& l : impl_->lcores)
    while (l->drops.pop(&r)) {
      out->push_back(r);
      ++n;
    }
  return n;
}

const std::vector<std::string>& Appliance::warnings() const {
  return impl_->warnings;
}

const std::vector<std::string>& Appliance::notes() const {
  return impl_->notes;
}

std::vector<unsigned> Appliance::lcores() const {
  std::vector<unsigned> v;
  for (const auto& l : impl_->lcores)
    v.push_back(l->lcore_id);
  return v;
}

}  // namespace statewall::dpdk
