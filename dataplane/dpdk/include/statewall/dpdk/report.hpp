// What statewalld reports: verdict counters by reason (from the engine), the appliance's own I/O
// counters per lcore, port statistics and the mbuf pool state. Plain data, no DPDK, so that the
// text and JSON forms can be tested without an EAL.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/dpdk/gwlb.hpp"

namespace statewall::dpdk {

// One forwarding lcore's I/O counters. Written only by that lcore (relaxed load + store, no
// read-modify-write), read by any thread; one cache line of its own so lcores never share one.
struct alignas(64) LcoreCounters {
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> rx_bursts{0};   // non-empty rx bursts
  std::atomic<uint64_t> tx_packets{0};  // accepted by the tx queue of the other port
  std::atomic<uint64_t> tx_bytes{0};
  std::atomic<uint64_t> tx_dropped{0};  // allowed, but the tx queue stayed full after the retries
  std::atomic<uint64_t> tx_retries{0};
  std::atomic<uint64_t> denied{0};          // freed because the verdict denies them
  std::atomic<uint64_t> linearised{0};      // multi-segment mbufs copied for the engine
  std::atomic<uint64_t> oversize{0};        // multi-segment packets too long to linearise: dropped
  std::atomic<uint64_t> sweeps{0};          // idle-time expiry sweep slices
  std::atomic<uint64_t> busy_ns{0};         // time in polling rounds that received something
  std::atomic<uint64_t> drops_unlogged{0};  // denied packets not recorded: rate limit or ring full

  // Owner lcore only.
  static void add(std::atomic<uint64_t>& c, uint64_t v) {
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
};
static_assert(sizeof(LcoreCounters) % 64 == 0 && alignof(LcoreCounters) == 64);

// A denied packet as a forwarding lcore recorded it (rate-limited) for `statewall ctl drops`.
// Plain data: copied through the lcore's single-producer ring.
struct DropRecord {
  uint64_t time_ns = 0;           // the engine's clock when it was judged
  uint64_t policy_version = 0;    // the policy running then (rule ids are that policy's)
  rules::IpAddr src{}, dst{};     // zero when not IP
  uint16_t sport = 0, dport = 0;  // TCP/UDP ports; ICMP: type and code
  uint8_t proto = 0;              // IP protocol, 0 when not IP
  bool ip = false;
  uint8_t port = 0;  // received on: 0 inside, 1 outside, 2 the one port of --gwlb
  dataplane::Reason reason = dataplane::Reason::kDenyMalformed;
  rules::Direction deny_dir = rules::Direction::kInbound;  // deny-sg
  rules::IfaceId deny_iface = rules::kNoIface;             // deny-sg
  rules::AclEntryId acl_entry = rules::kNoAclEntry;        // deny-acl
  const char* why = nullptr;                               // static detail (malformed, invalid)
};

// A plain snapshot of LcoreCounters (or their sum).
struct IoCounters {
  unsigned lcore = 0;  // EAL lcore id (for per-lcore rows)
  uint64_t rx_packets = 0, rx_bytes = 0, rx_bursts = 0;
  uint64_t tx_packets = 0, tx_bytes = 0, tx_dropped = 0, tx_retries = 0;
  uint64_t denied = 0, linearised = 0, oversize = 0, sweeps = 0;
  uint64_t busy_ns = 0;         // busy / elapsed = lcore utilisation; busy / rx = cost per packet
  uint64_t drops_unlogged = 0;  // denied packets the drop log did not get (rate limit, ring full)

  static IoCounters snapshot(const LcoreCounters& c, unsigned lcore);
  IoCounters& operator+=(const IoCounters& o);
};

struct PortReport {
  std::string role;  // "inside" / "outside"
  std::string name;  // device name
  uint16_t port_id = 0;
  uint16_t rx_queues = 0, tx_queues = 0;
  bool rss = false;
  uint32_t mtu = 0;  // the port MTU statewalld set; 0: the device's default (af_packet: slots)
  // rte_eth_stats
  uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
  uint64_t imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
};

struct PoolReport {
  size_t size = 0;       // mbufs in the pool
  size_t available = 0;  // free mbufs (including per-lcore caches)
  bool full() const { return available == size; }
};

struct Report {
  double seconds = 0;  // since forwarding started
  // Engine counters by reason. Packets in = sum of reason_packets.
  std::array<uint64_t, dataplane::kReasonCount> reason_packets{};
  std::array<uint64_t, dataplane::kReasonCount> reason_bytes{};
  uint64_t connections_created = 0;
  uint64_t connections_expired = 0;
  uint64_t connections_evicted = 0;  // unreplied, to make room in a full table
  uint64_t connections_live = 0;
  uint64_t tcp_invalid = 0;
  IoCounters io;                   // summed over lcores
  std::vector<IoCounters> lcores;  // one per forwarding lcore
  std::vector<PortReport> ports;   // inside, outside (--gwlb: the one port)
  bool gwlb_mode = false;          // --gwlb: `gwlb` counts its frames, summed over lcores
  GwlbStats gwlb;
  PoolReport pool;            // while running: a live reading (mbufs in flight are not free)
  bool pool_checked = false;  // set after the ports were closed: `pool.full()` then means no leak
  // --flow-log: records written, and dropped because an lcore's ring was full.
  bool flow_log = false;
  uint64_t flow_log_records = 0, flow_log_dropped = 0;

  uint64_t packetsIn() const;  // sum over reasons
  uint64_t allowedPackets() const;
  uint64_t deniedPackets() const;
};

// What one forwarding lcore received per second between two reports of the same appliance.
struct LcoreRxRate {
  unsigned lcore = 0;
  double packets_per_second = 0;
  double bytes_per_second = 0;
};
// One entry per lcore of `now` (rates 0 when the reports are not at least 1 ms apart, or when
// `previous` does not have the lcore). For the control API's per-lcore rates.
std::vector<LcoreRxRate> lcoreRxRates(const Report& previous, const Report& now);

// The final report for people: counters by reason, then lcores, ports and the pool.
std::string formatReport(const Report& r);
// One line for --stats-interval.
std::string formatStatsLine(const Report& r, const Report* previous);
// The same content as JSON (the --counters-file format): {"seconds", "packets_in",
// "reasons": {"allow-rule": {"packets", "bytes"}, ...}, "connections": {...}, "io": {...},
// "lcores": [...], "ports": [...], "mbuf_pool": {"size", "available", "full"}}.
std::string reportJson(const Report& r);

}  // namespace statewall::dpdk
