// Packets per second through the statewalld appliance (the same Appliance class, lcore loops and
// engine), with two net_ring ports made in-process: a generator on the main lcore builds frames
// into the inside port's rx rings and frees what comes out of the outside port's tx rings.
//
//   statewall_bench_dpdk [EAL args] -- [--mix established|new] [--lcores N] [--seconds S]
//                        [--warmup S] [--flows F] [--table-size N]
//
//   established: F TCP connections are opened first (SYN, SYN-ACK, ACK each); then an endless
//                stream of data segments and ACKs over them, round robin: every packet is a table
//                lookup and a TCP window check (allow-tracked).
//   new:         every connection is new: SYN, SYN-ACK, ACK, RST with a fresh client address and
//                port (a table insert, three updates, and a CLOSE entry the sweep reclaims).
//
// Each generator ring feeds one forwarding lcore (flows never move between rings). The figure is
// what the forwarding lcores processed (allowed + denied) per second, sampled once a second after
// the warm-up: median, min and max. Because a shared machine may deschedule either side, it also
// prints the cost per packet in the lcores' busy rounds (rounds that received something), which
// is the per-core capacity, and the mean burst (near --burst: the appliance was the bottleneck;
// small: the generator was).
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
  unsigned lcores = 1;
  double seconds = 5;
  double warmup = 1;
  unsigned flows = 10000;
  size_t table_size = size_t{1} << 22;
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
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return false;
    }
  }
  if (a->mix != "established" && a->mix != "new") {
    std::fprintf(stderr, "--mix is established or new\n");
    return false;
  }
  return a->lcores > 0 && a->flows > 0;
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

// Frames for one ring: a fixed sequence for `established` (handshakes once, then data forever),
// a rewritten 4-packet template for `new`.
class Source {
 public:
  Source(const Args& a, unsigned ring) : mix_new_(a.mix == "new"), ring_(ring) {
    const auto client = dp::ipAddr("100.64.0.1"), server = dp::ipAddr("10.0.1.10");
    if (mix_new_) {
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
                                           .mss = 1460}));
        handshake_.push_back(dp::buildTcp({.src = server,
                                           .dst = c,
                                           .sport = 443,
                                           .dport = sp,
                                           .flags = dp::kSyn | dp::kAck,
                                           .seq = 900,
                                           .ack = 101,
                                           .mss = 1460}));
        handshake_.push_back(dp::buildTcp({.src = c,
                                           .dst = server,
                                           .sport = sp,
                                           .dport = 443,
                                           .flags = dp::kAck,
                                           .seq = 101,
                                           .ack = 901}));
        // The same in-window segment again and again: a retransmission to the tracker, which
        // checks it like any other.
        data_.push_back(dp::buildTcp({.src = c,
                                      .dst = server,
                                      .sport = sp,
                                      .dport = 443,
                                      .flags = dp::kAck | dp::kPsh,
                                      .seq = 101,
                                      .ack = 901,
                                      .payload_len = 64}));
        data_.push_back(dp::buildTcp({.src = server,
                                      .dst = c,
                                      .sport = 443,
                                      .dport = sp,
                                      .flags = dp::kAck,
                                      .seq = 901,
                                      .ack = 165}));
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
  bool mix_new_;
  unsigned ring_;
  std::vector<Bytes> tmpl_;
  size_t step_ = 0;
  uint64_t conn_ = 0;
  std::vector<Bytes> handshake_, data_;
  size_t next_hs_ = 0, next_data_ = 0;
};

struct Rings {
  std::vector<rte_ring*> in_rx, in_tx, out_rx, out_tx;
};

rte_ring* makeRing(const std::string& name) {
  rte_ring* r = rte_ring_create(name.c_str(), kRingSize, static_cast<int>(rte_socket_id()),
                                RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (r == nullptr) {
    std::fprintf(stderr, "ring %s: %s\n", name.c_str(), rte_strerror(rte_errno));
    std::exit(2);
  }
  return r;
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

  Rings r;
  const uint16_t n = static_cast<uint16_t>(args.lcores);
  for (unsigned q = 0; q < n; ++q) {
    r.in_rx.push_back(makeRing("in_rx" + std::to_string(q)));
    r.in_tx.push_back(makeRing("in_tx" + std::to_string(q)));
    r.out_rx.push_back(makeRing("out_rx" + std::to_string(q)));
    r.out_tx.push_back(makeRing("out_tx" + std::to_string(q)));
  }
  const unsigned socket = rte_socket_id();
  if (rte_eth_from_rings("sw_in", r.in_rx.data(), n, r.in_tx.data(), n, socket) < 0 ||
      rte_eth_from_rings("sw_out", r.out_rx.data(), n, r.out_tx.data(), n, socket) < 0) {
    std::fprintf(stderr, "cannot create ring ports: %s\n", rte_strerror(rte_errno));
    return 2;
  }
  // Generator mbufs: the rings' worth per queue, twice, plus caches.
  rte_mempool* pool = rte_pktmbuf_pool_create("bench_gen", n * kRingSize * 4 - 1, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(socket));
  if (pool == nullptr) {
    std::fprintf(stderr, "generator pool: %s\n", rte_strerror(rte_errno));
    return 2;
  }

  statewall::dpdk::Options o;
  o.inside = "net_ring_sw_in";
  o.outside = "net_ring_sw_out";
  o.lcores = args.lcores;
  o.table_size = args.table_size;
  o.rx_desc = 512;
  o.tx_desc = 512;
  std::string err;
  auto app = statewall::dpdk::Appliance::create(o, compiled.policy, &err);
  if (!app || !app->start(&err)) {
    std::fprintf(stderr, "appliance: %s\n", err.c_str());
    return 2;
  }

  std::vector<Source> src;
  for (unsigned q = 0; q < n; ++q)
    src.emplace_back(args, q);
  uint64_t produced = 0;
  // Established: open every connection before the clock starts.
  if (args.mix == "established") {
    size_t hs = 0;
    for (const Source& s : src)
      hs += s.handshakePackets();
    while (!std::all_of(src.begin(), src.end(), [](const Source& s) { return s.handshakeDone(); }))
      generate(src, r, pool, &produced);
    while (app->report().packetsIn() < hs)
      generate(src, r, pool, &produced);
  }
  const double t0 = now();
  while (now() - t0 < args.warmup)
    generate(src, r, pool, &produced);

  std::vector<double> samples;
  const std::vector<unsigned> lcores = app->lcores();
  auto last = app->report();
  const auto first = last;
  double last_t = now();
  const double m0 = last_t;
  const uint64_t cpu0 = forwardingCpuNs(lcores);
  produced = 0;
  while (samples.size() < static_cast<size_t>(args.seconds)) {
    generate(src, r, pool, &produced);
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
  const auto rep = app->report();

  if (samples.empty()) return 2;
  std::sort(samples.begin(), samples.end());
  const double median = samples[samples.size() / 2];
  const double lo = *std::min_element(samples.begin(), samples.end());
  const double hi = *std::max_element(samples.begin(), samples.end());
  std::printf(
      "mix=%s lcores=%u flows=%u table=%zu: %.2f Mpps median (min %.2f, max %.2f) "
      "over %zu x 1 s\n",
      args.mix.c_str(), args.lcores, args.mix == "new" ? 0u : args.flows, args.table_size,
      median / 1e6, lo / 1e6, hi / 1e6, samples.size());
  const double busy_ns = static_cast<double>(last.io.busy_ns - first.io.busy_ns);
  const double rx = static_cast<double>(last.io.rx_packets - first.io.rx_packets);
  const double bursts = static_cast<double>(last.io.rx_bursts - first.io.rx_bursts);
  std::printf("  busy rounds: %.1f ns/packet = %.2f Mpps per busy lcore (mean burst %.1f)\n",
              rx > 0 ? busy_ns / rx : 0.0, busy_ns > 0 ? rx / busy_ns * 1e3 : 0.0,
              bursts > 0 ? rx / bursts : 0.0);
  std::printf(
      "  the forwarding threads were on a CPU %.0f%% of the time (%.1f ns on-CPU per "
      "packet)\n",
      100.0 * static_cast<double>(cpu_ns) / 1e9 / (last_t - m0) / args.lcores,
      measured ? static_cast<double>(cpu_ns) / static_cast<double>(measured) : 0.0);
  std::printf("  reasons:");
  for (size_t i = 0; i < dp::kReasonCount; ++i)
    if (rep.reason_packets[i] != 0)
      std::printf(" %s=%llu", std::string(dp::kReasonCodes[i]).c_str(),
                  static_cast<unsigned long long>(rep.reason_packets[i]));
  std::printf("\n  connections created %llu, live %llu; tx dropped %llu\n",
              static_cast<unsigned long long>(rep.connections_created),
              static_cast<unsigned long long>(rep.connections_live),
              static_cast<unsigned long long>(rep.io.tx_dropped));
  app->close();
  app.reset();
  rte_eal_cleanup();
  return 0;
}
