// Packets per second through the statewalld appliance: the same Appliance class, lcore loops and
// engine as statewalld, on two net_ring ports made in-process.
//
//   statewall_bench_dpdk [EAL args] -- [--mix established|new|gwlb|flood] [--lcores N]
//        [--mode M] [--packets N] [--runs R] [--seconds S] [--warmup S] [--flows F]
//        [--table-size N] [--flow-log FILE [--flow-log-flows N] [--flow-log-ring N]]
//
// Traffic mixes (TCP to 10.0.1.10:443, allowed by the policy's one inbound rule, but flood):
//   established: F connections are opened first (SYN, SYN-ACK, ACK each); then data segments and
//                ACKs over them, round robin: every packet is a table lookup and a TCP window
//                check (allow-tracked).
//   new:         every connection is new: SYN, SYN-ACK, ACK, RST with a fresh client address and
//                port: a table insert, three updates, and a CLOSE entry the sweep reclaims.
//   gwlb:        established, each frame in GENEVE with AWS's three options as a Gateway Load
//                Balancer sends it (68 bytes more), through statewalld --gwlb on one port: the
//                GENEVE step, the inner packet judged, the outer addresses swapped on the way
//                back out of the same port.
//   flood:       a scan no rule allows: every packet a SYN to 10.0.1.10:22 from a fresh client
//                address and port, so every packet is a new denied flow (deny-sg), freed, and a
//                new REJECT record for the flow log.
//
// --flow-log FILE: statewalld's --flow-log (/dev/null to measure the cost alone): the forwarding
// lcores aggregate into their tables and hand records over through their rings, and the main
// lcore drains and writes them every 10 ms, as statewalld's main loop does. The records written
// and dropped (ring full) are printed.
//
// Modes:
//   preload (default): N packets are built into the inside port's rx rings (one per lcore, flows
//     never shared between rings) before the lcores start; the figure is N over the time the
//     lcores took to drain them. Nothing else of ours runs meanwhile, so on a small machine the
//     forwarding lcores have the CPUs to themselves. R runs, each with a fresh appliance and
//     table: median, min and max.
//   stream: a generator on the main lcore keeps the rx rings full and frees what comes out, for
//     S seconds after a warm-up; one sample per second. Needs a spare core for the generator.
// Both print the forwarding threads' on-CPU time per packet (/proc schedstat), the per-core cost
// that holds even when other processes share the CPUs.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dpdk/appliance.hpp"
#include "statewall/dpdk/flow_log.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace {

using statewall::dataplane::Bytes;
namespace dp = statewall::dataplane;

constexpr const char* kPolicy = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 100.64.0.0/10}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr unsigned kRingSize = 4096;
constexpr unsigned kGenBurst = 32;

struct Args {
  std::string mix = "established";
  std::string mode = "preload";
  unsigned lcores = 1;
  uint64_t packets = 2'000'000;  // preload
  unsigned runs = 5;             // preload
  double seconds = 5;            // stream
  double warmup = 1;             // stream
  unsigned flows = 10000;
  size_t table_size = size_t{1} << 22;
  std::string flow_log;  // empty: off
  uint32_t flow_log_flows = 65536;
  uint32_t flow_log_ring = 16384;
};

bool parseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "missing value for %s\n", k.c_str());
      return false;
    }
    const std::string v = argv[++i];
    if (k == "--mix") {
      a->mix = v;
    } else if (k == "--mode") {
      a->mode = v;
    } else if (k == "--packets") {
      a->packets = std::stoull(v);
    } else if (k == "--runs") {
      a->runs = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--lcores") {
      a->lcores = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--seconds") {
      a->seconds = std::stod(v);
    } else if (k == "--warmup") {
      a->warmup = std::stod(v);
    } else if (k == "--flows") {
      a->flows = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--table-size") {
      a->table_size = std::stoull(v);
    } else if (k == "--flow-log") {
      a->flow_log = v;
    } else if (k == "--flow-log-flows") {
      a->flow_log_flows = static_cast<uint32_t>(std::stoul(v));
    } else if (k == "--flow-log-ring") {
      a->flow_log_ring = static_cast<uint32_t>(std::stoul(v));
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return false;
    }
  }
  if (a->mix != "established" && a->mix != "new" && a->mix != "gwlb" && a->mix != "flood") {
    std::fprintf(stderr, "--mix is established, new, gwlb or flood\n");
    return false;
  }
  if (a->mode != "preload" && a->mode != "stream") {
    std::fprintf(stderr, "--mode is preload or stream\n");
    return false;
  }
  return a->lcores > 0 && a->flows > 0 && a->runs > 0 && a->packets > 0;
}

// One's-complement checksum fix-up after a 16-bit word changed from `from` to `to` (RFC 1624).
uint16_t csumFix(uint16_t csum, uint16_t from, uint16_t to) {
  uint32_t s =
      static_cast<uint16_t>(~csum) + static_cast<uint32_t>(static_cast<uint16_t>(~from)) + to;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Rewrites the client's address (low 16 bits) and port in an IPv4/TCP frame built by the
// packet builder (Ethernet, 20-byte IP header), fixing both checksums.
void setClient(uint8_t* f, bool client_is_src, uint16_t addr_lo, uint16_t port) {
  uint8_t* ip = f + 14;
  uint8_t* tcp = ip + 20;
  uint8_t* a = ip + (client_is_src ? 14 : 18);  // low half of saddr / daddr
  uint8_t* p = tcp + (client_is_src ? 0 : 2);
  const uint16_t old_a = get16(a), old_p = get16(p);
  put16(a, addr_lo);
  put16(p, port);
  put16(ip + 10, csumFix(get16(ip + 10), old_a, addr_lo));
  uint16_t c = csumFix(get16(tcp + 16), old_a, addr_lo);
  put16(tcp + 16, csumFix(c, old_p, port));
}

constexpr const char* kGwlbAddress = "10.9.0.5";

// --mix gwlb: each frame in GENEVE from a load balancer node to the appliance, with AWS's options
// (class 0x0108: endpoint id 8 bytes, attachment id 8 bytes, flow cookie 4 bytes) and the IP
// packet as payload.
dp::FrameOptions gwlbFrame() {
  dp::FrameOptions f;
  dp::TunnelSpec t;
  t.kind = dp::EncapHeader::Kind::kGeneve;
  t.outer_src = dp::ipAddr("10.9.0.1");
  t.outer_dst = dp::ipAddr(kGwlbAddress);
  t.sport = 61234;
  t.geneve_ip = true;
  t.geneve_options = {0x01, 0x08, 1, 2, 1, 2, 3, 4, 5,    6,    7, 8, 0x01, 0x08, 2,    2,
                      1,    2,    3, 4, 5, 6, 7, 8, 0x01, 0x08, 3, 1, 0xc0, 0x0c, 0x1e, 0x5e};
  f.tunnels.push_back(t);
  return f;
}

// Frames for one ring: a fixed sequence for `established` (handshakes once, then data forever),
// a template rewritten with a new client for each connection for `new` (4 packets) and `flood`
// (1 packet).
class Source {
 public:
  Source(const Args& a, unsigned ring) : mix_new_(a.mix == "new" || a.mix == "flood"), ring_(ring) {
    const auto client = dp::ipAddr("100.64.0.1"), server = dp::ipAddr("10.0.1.10");
    const dp::FrameOptions fo = a.mix == "gwlb" ? gwlbFrame() : dp::FrameOptions{};
    if (a.mix == "flood") {
      tmpl_ = {dp::buildTcp({.src = client,
                             .dst = server,
                             .sport = 1,
                             .dport = 22,
                             .flags = dp::kSyn,
                             .seq = 100,
                             .mss = 1460})};
    } else if (mix_new_) {
      tmpl_ = {
          dp::buildTcp({.src = client,
                        .dst = server,
                        .sport = 1,
                        .dport = 443,
                        .flags = dp::kSyn,
                        .seq = 100,
                        .mss = 1460}),
          dp::buildTcp({.src = server,
                        .dst = client,
                        .sport = 443,
                        .dport = 1,
                        .flags = dp::kSyn | dp::kAck,
                        .seq = 900,
                        .ack = 101,
                        .mss = 1460}),
          dp::buildTcp({.src = client,
                        .dst = server,
                        .sport = 1,
                        .dport = 443,
                        .flags = dp::kAck,
                        .seq = 101,
                        .ack = 901}),
          dp::buildTcp({.src = client,
                        .dst = server,
                        .sport = 1,
                        .dport = 443,
                        .flags = dp::kRst | dp::kAck,
                        .seq = 101,
                        .ack = 901}),
      };
    } else {
      // This ring's flows: f = ring, ring + lcores, ...
      for (unsigned f = ring; f < a.flows; f += a.lcores) {
        const auto c = dp::ipAddr(
            ("100.64." + std::to_string(f >> 8 & 0xff) + "." + std::to_string(f & 0xff)).c_str());
        const uint16_t sp = static_cast<uint16_t>(10000 + (f >> 16));
        handshake_.push_back(dp::buildTcp({.src = c,
                                           .dst = server,
                                           .sport = sp,
                                           .dport = 443,
                                           .flags = dp::kSyn,
                                           .seq = 100,
                                           .mss = 1460},
                                          fo));
        handshake_.push_back(dp::buildTcp({.src = server,
                                           .dst = c,
                                           .sport = 443,
                                           .dport = sp,
                                           .flags = dp::kSyn | dp::kAck,
                                           .seq = 900,
                                           .ack = 101,
                                           .mss = 1460},
                                          fo));
        handshake_.push_back(dp::buildTcp({.src = c,
                                           .dst = server,
                                           .sport = sp,
                                           .dport = 443,
                                           .flags = dp::kAck,
                                           .seq = 101,
                                           .ack = 901},
                                          fo));
        // The same in-window segment again and again: a retransmission to the tracker, which
        // checks it like any other.
        data_.push_back(dp::buildTcp({.src = c,
                                      .dst = server,
                                      .sport = sp,
                                      .dport = 443,
                                      .flags = dp::kAck | dp::kPsh,
                                      .seq = 101,
                                      .ack = 901,
                                      .payload_len = 64},
                                     fo));
        data_.push_back(dp::buildTcp({.src = server,
                                      .dst = c,
                                      .sport = 443,
                                      .dport = sp,
                                      .flags = dp::kAck,
                                      .seq = 901,
                                      .ack = 165},
                                     fo));
      }
    }
  }
  bool handshakeDone() const { return mix_new_ || next_hs_ >= handshake_.size(); }
  size_t handshakePackets() const { return handshake_.size(); }

  // Fills m with the next frame.
  void next(rte_mbuf* m) {
    const Bytes* f;
    if (mix_new_) {
      f = &tmpl_[step_];
    } else if (next_hs_ < handshake_.size()) {
      f = &handshake_[next_hs_++];
    } else {
      f = &data_[next_data_];
      next_data_ = next_data_ + 1 == data_.size() ? 0 : next_data_ + 1;
    }
    uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(d, f->data(), f->size());
    m->data_len = static_cast<uint16_t>(f->size());
    m->pkt_len = static_cast<uint32_t>(f->size());
    if (mix_new_) {
      // Connection number -> client 100.64.A.B port P, unique for 3.9e9 connections in all.
      const uint64_t c = conn_ * 64 + ring_;
      setClient(d, step_ != 1, static_cast<uint16_t>(c / 60000),
                static_cast<uint16_t>(1024 + c % 60000));
      if (++step_ == tmpl_.size()) {
        step_ = 0;
        ++conn_;
      }
    }
  }

 private:
  bool mix_new_;  // new, flood: tmpl_ rewritten per connection
  unsigned ring_;
  std::vector<Bytes> tmpl_;
  size_t step_ = 0;
  uint64_t conn_ = 0;
  std::vector<Bytes> handshake_, data_;
  size_t next_hs_ = 0, next_data_ = 0;
};

struct Rings {
  std::vector<rte_ring*> in_rx, in_tx, out_rx, out_tx;
  ~Rings() {
    for (auto* v : {&in_rx, &in_tx, &out_rx, &out_tx})
      for (rte_ring* r : *v)
        rte_ring_free(r);
  }
};

rte_ring* makeRing(const std::string& name, unsigned size) {
  rte_ring* r = rte_ring_create(name.c_str(), size, static_cast<int>(rte_socket_id()),
                                RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
  if (r == nullptr) {
    std::fprintf(stderr, "ring %s: %s\n", name.c_str(), rte_strerror(rte_errno));
    std::exit(2);
  }
  return r;
}

// Rings of `size` per lcore and the two ports over them ("net_ring_bi<run>", "net_ring_bo<run>").
// With `one_arm` (--mix gwlb) the inside port transmits too: its tx rings get `size` as well.
void makePorts(Rings& r, unsigned lcores, unsigned size, unsigned run, bool one_arm) {
  const std::string tag = std::to_string(run);
  for (unsigned q = 0; q < lcores; ++q) {
    const std::string qs = tag + "_" + std::to_string(q);
    r.in_rx.push_back(makeRing("irx" + qs, size));
    r.in_tx.push_back(makeRing("itx" + qs, one_arm ? size : 64));
    r.out_rx.push_back(makeRing("orx" + qs, 64));
    r.out_tx.push_back(makeRing("otx" + qs, size));
  }
  const unsigned socket = rte_socket_id();
  const uint16_t n = static_cast<uint16_t>(lcores);
  if (rte_eth_from_rings(("bi" + tag).c_str(), r.in_rx.data(), n, r.in_tx.data(), n, socket) < 0 ||
      rte_eth_from_rings(("bo" + tag).c_str(), r.out_rx.data(), n, r.out_tx.data(), n, socket) <
          0) {
    std::fprintf(stderr, "cannot create ring ports: %s\n", rte_strerror(rte_errno));
    std::exit(2);
  }
}

// With --flow-log, *flow_log gets the collector attached to the appliance (statewalld's
// attachFlowLog()); the caller keeps it alive until the appliance has stopped.
std::unique_ptr<statewall::dpdk::Appliance> makeAppliance(
    const Args& args, const statewall::rules::CompiledPolicyPtr& policy, unsigned run,
    std::unique_ptr<statewall::dpdk::FlowLogCollector>* flow_log) {
  statewall::dpdk::Options o;
  if (args.mix == "gwlb") {
    o.gwlb = true;
    o.port = "net_ring_bi" + std::to_string(run);
    o.address = kGwlbAddress;
  } else {
    o.inside = "net_ring_bi" + std::to_string(run);
    o.outside = "net_ring_bo" + std::to_string(run);
  }
  o.lcores = args.lcores;
  o.table_size = args.table_size;
  o.rx_desc = 512;
  o.tx_desc = 512;
  o.flow_log = args.flow_log;
  o.flow_log_flows = args.flow_log_flows;
  o.flow_log_ring = args.flow_log_ring;
  std::string err;
  auto app = statewall::dpdk::Appliance::create(o, policy, &err);
  if (!app || !statewall::dpdk::attachFlowLog(o, *app, flow_log, &err)) {
    std::fprintf(stderr, "appliance: %s\n", err.c_str());
    std::exit(2);
  }
  return app;
}

// The main lcore's share of --flow-log, as statewalld's main loop does it: a drain every 10 ms.
class FlowLogPump {
 public:
  static constexpr double kPeriodS = 0.010;
  void poll(statewall::dpdk::FlowLogCollector* c, statewall::dpdk::Appliance& app, double t) {
    if (c == nullptr || t < next_) return;
    c->poll(app.engine());
    next_ = t + kPeriodS;
  }

 private:
  double next_ = 0;
};

// After the lcores stopped: the last records, then the file closed; the totals go to *written and
// *dropped.
void finishFlowLog(statewall::dpdk::FlowLogCollector* c, uint64_t* written, uint64_t* dropped) {
  if (c == nullptr) return;
  std::string err;
  if (!c->finish(&err)) {
    std::fprintf(stderr, "--flow-log: %s\n", err.c_str());
    std::exit(2);
  }
  *written += c->written();
  *dropped += c->dropped();
}

void printFlowLog(const Args& args, uint64_t written, uint64_t dropped, unsigned runs) {
  if (args.flow_log.empty()) return;
  std::printf("  flow log %s: %llu records written, %llu dropped (ring full)%s\n",
              args.flow_log.c_str(), static_cast<unsigned long long>(written),
              static_cast<unsigned long long>(dropped), runs > 1 ? ", all runs" : "");
}

void freeAll(rte_ring* r) {
  rte_mbuf* b[64];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(r, reinterpret_cast<void**>(b), 64, nullptr)) > 0)
    rte_pktmbuf_free_bulk(b, n);
}

struct Stats {
  double median = 0, lo = 0, hi = 0;
};
Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = v[v.size() / 2];
  s.lo = v.front();
  s.hi = v.back();
  return s;
}

void printReasons(const statewall::dpdk::Report& rep) {
  std::printf("  reasons (last run):");
  for (size_t i = 0; i < dp::kReasonCount; ++i)
    if (rep.reason_packets[i] != 0)
      std::printf(" %s=%llu", std::string(dp::kReasonCodes[i]).c_str(),
                  static_cast<unsigned long long>(rep.reason_packets[i]));
  std::printf("\n  connections created %llu, live %llu; tx dropped %llu\n",
              static_cast<unsigned long long>(rep.connections_created),
              static_cast<unsigned long long>(rep.connections_live),
              static_cast<unsigned long long>(rep.io.tx_dropped));
}

// Frees what the appliance transmitted (both ports) and tops up the rx rings.
void generate(std::vector<Source>& src, Rings& r, rte_mempool* pool, uint64_t* produced) {
  rte_mbuf* b[kGenBurst];
  for (size_t q = 0; q < src.size(); ++q) {
    for (rte_ring* t : {r.out_tx[q], r.in_tx[q]}) {
      unsigned n;
      while ((n = rte_ring_dequeue_burst(t, reinterpret_cast<void**>(b), kGenBurst, nullptr)) > 0)
        rte_pktmbuf_free_bulk(b, n);
    }
    if (rte_ring_free_count(r.in_rx[q]) < kGenBurst) continue;
    if (rte_pktmbuf_alloc_bulk(pool, b, kGenBurst) != 0) continue;
    for (unsigned i = 0; i < kGenBurst; ++i)
      src[q].next(b[i]);
    const unsigned n =
        rte_ring_enqueue_burst(r.in_rx[q], reinterpret_cast<void**>(b), kGenBurst, nullptr);
    if (n < kGenBurst) rte_pktmbuf_free_bulk(b + n, kGenBurst - n);
    *produced += n;
  }
}

// Nanoseconds the forwarding lcores' threads spent on a CPU (/proc schedstat). On a shared or
// oversubscribed machine, packets per on-CPU second is the per-core figure; wall-clock packets
// per second also counts the time the threads waited for a CPU.
uint64_t lcoreCpuNs(unsigned lcore) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "rte-worker-" + std::to_string(lcore)) {
      std::ifstream st(task.path() / "schedstat");
      uint64_t ns = 0;
      st >> ns;
      return ns;
    }
  }
  return 0;
}

uint64_t forwardingCpuNs(const std::vector<unsigned>& lcores) {
  uint64_t total = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    for (unsigned l : lcores)
      if (name == "rte-worker-" + std::to_string(l)) {
        std::ifstream st(task.path() / "schedstat");
        uint64_t ns = 0;
        st >> ns;
        total += ns;
      }
  }
  return total;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Preload mode: fill, start, time the drain.
int runPreload(const Args& args, const statewall::rules::CompiledPolicyPtr& policy) {
  const unsigned per_ring = static_cast<unsigned>(args.packets / args.lcores);
  // Frames are at most 128 bytes: small mbufs keep a few million of them in a few hundred MiB.
  rte_mempool* pool =
      rte_pktmbuf_pool_create("bench_pre", per_ring * args.lcores + 1024, 256, 0,
                              RTE_PKTMBUF_HEADROOM + 256, static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    std::fprintf(stderr, "mbuf pool for %u packets: %s (give EAL more memory: -m)\n",
                 per_ring * args.lcores, rte_strerror(rte_errno));
    return 2;
  }
  std::vector<double> wall_pps, cpu_pps, cpu_ns_per_packet;
  statewall::dpdk::Report last;
  uint64_t fl_written = 0, fl_dropped = 0;
  for (unsigned run = 0; run < args.runs; ++run) {
    Rings r;
    makePorts(r, args.lcores, per_ring + 64, run, args.mix == "gwlb");
    std::unique_ptr<statewall::dpdk::FlowLogCollector> flow_log;  // outlives the lcores
    FlowLogPump pump;
    auto app = makeAppliance(args, policy, run, &flow_log);
    uint64_t total = 0;
    for (unsigned q = 0; q < args.lcores; ++q) {
      Source src(args, q);
      for (unsigned i = 0; i < per_ring; ++i) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool);
        if (m == nullptr) {
          std::fprintf(stderr, "out of mbufs\n");
          return 2;
        }
        src.next(m);
        if (rte_ring_enqueue(r.in_rx[q], m) != 0) {
          rte_pktmbuf_free(m);
          break;
        }
        ++total;
      }
    }
    std::string err;
    const std::vector<unsigned> lcores = [&] {
      std::vector<unsigned> v;
      unsigned id;
      RTE_LCORE_FOREACH_WORKER(id) {
        if (v.size() < args.lcores) v.push_back(id);
      }
      return v;
    }();
    // Each lcore's on-CPU time up to the moment its own ring is drained (an lcore that finishes
    // first then spins on an empty ring; that must not count).
    std::vector<uint64_t> cpu_start, cpu_end(lcores.size(), 0);
    for (unsigned l : lcores)
      cpu_start.push_back(lcoreCpuNs(l));
    const double t0 = now();
    if (!app->start(&err)) {
      std::fprintf(stderr, "appliance: %s\n", err.c_str());
      return 2;
    }
    size_t done = 0;
    while (done < lcores.size()) {
      timespec ts{0, 50'000};
      nanosleep(&ts, nullptr);
      pump.poll(flow_log.get(), *app, now());
      const statewall::dpdk::Report rep = app->report();
      for (size_t i = 0; i < lcores.size() && i < rep.lcores.size(); ++i)
        if (cpu_end[i] == 0 && rep.lcores[i].rx_packets >= per_ring) {
          cpu_end[i] = lcoreCpuNs(lcores[i]);
          ++done;
        }
    }
    const double t1 = now();
    uint64_t cpu = 0;
    for (size_t i = 0; i < lcores.size(); ++i)
      cpu += cpu_end[i] - cpu_start[i];
    app->requestStop();
    app->stop();
    finishFlowLog(flow_log.get(), &fl_written, &fl_dropped);
    last = app->report();
    app->close();
    app.reset();
    for (rte_ring* q : r.out_tx)
      freeAll(q);
    for (rte_ring* q : r.in_tx)
      freeAll(q);
    wall_pps.push_back(static_cast<double>(total) / (t1 - t0));
    // Each packet costs one lcore cpu/total ns; N lcores with a CPU each do N times the rate.
    // (Once its ring is empty an lcore spins until the stop: at most ~100 us counted extra.)
    cpu_pps.push_back(static_cast<double>(total) / (static_cast<double>(cpu) / 1e9) * args.lcores);
    cpu_ns_per_packet.push_back(static_cast<double>(cpu) / static_cast<double>(total));
  }
  const Stats w = stats(wall_pps), c = stats(cpu_pps), n = stats(cpu_ns_per_packet);
  std::printf("mix=%s lcores=%u packets=%llu table=%zu runs=%u (preload)\n", args.mix.c_str(),
              args.lcores, static_cast<unsigned long long>(args.packets), args.table_size,
              args.runs);
  std::printf("  wall clock:       %.2f Mpps median (min %.2f, max %.2f)\n", w.median / 1e6,
              w.lo / 1e6, w.hi / 1e6);
  std::printf(
      "  per on-CPU second: %.2f Mpps median (min %.2f, max %.2f) for %u lcore(s): "
      "%.0f ns/packet on each\n",
      c.median / 1e6, c.lo / 1e6, c.hi / 1e6, args.lcores, n.median);
  printReasons(last);
  printFlowLog(args, fl_written, fl_dropped, args.runs);
  rte_mempool_free(pool);
  return 0;
}

// Stream mode: a live generator on the main lcore.
int runStream(const Args& args, const statewall::rules::CompiledPolicyPtr& policy) {
  Rings r;
  makePorts(r, args.lcores, kRingSize, 0, args.mix == "gwlb");
  rte_mempool* pool =
      rte_pktmbuf_pool_create("bench_gen", args.lcores * kRingSize * 4 - 1, 256, 0,
                              RTE_PKTMBUF_HEADROOM + 256, static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    std::fprintf(stderr, "generator pool: %s\n", rte_strerror(rte_errno));
    return 2;
  }
  std::unique_ptr<statewall::dpdk::FlowLogCollector> flow_log;  // outlives the lcores
  FlowLogPump pump;
  auto app = makeAppliance(args, policy, 0, &flow_log);
  std::string err;
  if (!app->start(&err)) {
    std::fprintf(stderr, "appliance: %s\n", err.c_str());
    return 2;
  }
  std::vector<Source> src;
  for (unsigned q = 0; q < args.lcores; ++q)
    src.emplace_back(args, q);
  uint64_t produced = 0;
  auto generateAndDrain = [&] {
    generate(src, r, pool, &produced);
    pump.poll(flow_log.get(), *app, now());
  };
  // Established: open every connection before the clock starts.
  if (args.mix != "new" && args.mix != "flood") {
    size_t hs = 0;
    for (const Source& s : src)
      hs += s.handshakePackets();
    while (!std::all_of(src.begin(), src.end(), [](const Source& s) { return s.handshakeDone(); }))
      generateAndDrain();
    while (app->report().packetsIn() < hs)
      generateAndDrain();
  }
  const double t0 = now();
  while (now() - t0 < args.warmup)
    generateAndDrain();

  std::vector<double> samples;
  const std::vector<unsigned> lcores = app->lcores();
  auto last = app->report();
  const auto first = last;
  double last_t = now();
  const uint64_t cpu0 = forwardingCpuNs(lcores);
  while (samples.size() < static_cast<size_t>(args.seconds)) {
    generateAndDrain();
    const double t = now();
    if (t - last_t >= 1.0) {
      auto rep = app->report();
      samples.push_back(static_cast<double>(rep.packetsIn() - last.packetsIn()) / (t - last_t));
      last = std::move(rep);
      last_t = t;
    }
  }
  const uint64_t cpu_ns = forwardingCpuNs(lcores) - cpu0;
  const uint64_t measured = last.packetsIn() - first.packetsIn();
  app->requestStop();
  app->stop();
  uint64_t fl_written = 0, fl_dropped = 0;
  finishFlowLog(flow_log.get(), &fl_written, &fl_dropped);
  const auto rep = app->report();
  const Stats w = stats(samples);
  std::printf("mix=%s lcores=%u flows=%u table=%zu (stream, %zu x 1 s)\n", args.mix.c_str(),
              args.lcores, args.mix == "new" || args.mix == "flood" ? 0u : args.flows,
              args.table_size, samples.size());
  std::printf("  wall clock: %.2f Mpps median (min %.2f, max %.2f)\n", w.median / 1e6, w.lo / 1e6,
              w.hi / 1e6);
  const double busy_ns = static_cast<double>(last.io.busy_ns - first.io.busy_ns);
  const double rx = static_cast<double>(last.io.rx_packets - first.io.rx_packets);
  const double bursts = static_cast<double>(last.io.rx_bursts - first.io.rx_bursts);
  std::printf("  busy rounds: %.0f ns/packet (mean burst %.1f; near 32: appliance-bound)\n",
              rx > 0 ? busy_ns / rx : 0.0, bursts > 0 ? rx / bursts : 0.0);
  std::printf("  on-CPU: %.0f ns/packet per lcore (idle polling included)\n",
              measured ? static_cast<double>(cpu_ns) / static_cast<double>(measured) : 0.0);
  printReasons(rep);
  printFlowLog(args, fl_written, fl_dropped, 1);
  app->close();
  app.reset();
  for (rte_ring* q : r.out_tx)
    freeAll(q);
  for (rte_ring* q : r.in_tx)
    freeAll(q);
  for (rte_ring* q : r.in_rx)
    freeAll(q);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
    return 2;
  }
  Args args;
  if (!parseArgs(argc - eal, argv + eal, &args)) return 2;
  auto loaded = statewall::rules::loadPolicyTexts({{"bench.yaml", kPolicy}});
  if (!loaded.ok()) return 2;
  auto compiled = statewall::rules::compile(*loaded.policy);
  if (!compiled.policy) return 2;
  const int rc =
      args.mode == "preload" ? runPreload(args, compiled.policy) : runStream(args, compiled.policy);
  rte_eal_cleanup();
  return rc;
}
