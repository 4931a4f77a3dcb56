// Engine benchmarks (issue 3, "Measure"): packets per second through Engine::process() for
// established IPv4 TCP flows at 1 K, 1 M and 10 M live connections (tracked, with a network ACL on
// the path, untracked, and without the incremental sweep), the same with two workers on two
// threads, new connections per second, and bytes of memory per connection. Figures and the
// command: bench/README.md, "Engine".
//
// Set-up, outside the timed loops:
// - A policy where the flows are TRACKED: group `web` allows tcp 80 from 10.1.0.0/16 only (not
//   0.0.0.0/0) and has `outbound: []`, on four server interfaces 10.0.1.10-13. The clients
//   (10.1.x.x) are unprotected. Variants add a network ACL on the servers' subnet (every packet
//   then runs that ACL's check: inbound for client data, outbound for server ACKs) or make the
//   flows untracked (from 0.0.0.0/0 with the default allow-all outbound rule: every packet runs its
//   rules).
// - The table is populated through the engine: SYN, SYN-ACK and ACK of every flow, in bursts of 32,
//   each verdict checked. The engine's table capacity is the number of connections (its rated
//   fill).
// - The timed stream: 64-byte frames (Ethernet/IPv4/TCP, 10 bytes of data from the client or a
//   pure ACK from the server padded to 64 bytes) drawn at random over the live flows, laid out one
//   per cache line in one buffer, in bursts of 32 that alternate client->server data and
//   server->client ACKs (at least 64 K frames, 2 per connection, at most 8 M). Sequence and
//   acknowledgement numbers follow each flow and move on with every pass over the stream (see
//   buildStream()), so every packet passes the TCP window checks and advances the tracker's
//   bounds, as live traffic does. Frames carry correct checksums (the parser does not check
//   them; they are right anyway). The first pass runs untimed, with every verdict checked.
// - Simulated time advances 1 us per burst, far inside the idle timeouts.
// Every timed packet's verdict is checked; a benchmark whose packets do not all get the expected
// reason reports an error instead of a figure.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "statewall/dataplane/conn_table.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/flow_key.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace {

namespace dp = statewall::dataplane;
namespace rules = statewall::rules;
using dp::Engine;
using dp::PacketRef;
using dp::Reason;
using dp::Verdict;

constexpr unsigned kBurst = 32;
constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr uint64_t kBurstNs = 1000;  // simulated time per burst
constexpr size_t kFrameLen = 64;     // timed frames: 64 bytes captured, one cache line each
constexpr size_t kSynStride = 128;   // SYN frames carry options (66 bytes)
constexpr uint32_t kDataLen = 10;    // client payload: 14 + 20 + 20 + 10 = 64 bytes
constexpr size_t kIpOff = 14;
constexpr size_t kTcpOff = kIpOff + 20;
constexpr unsigned kServers = 4;
constexpr uint32_t kServerBase = 0x0a00010a;  // 10.0.1.10
constexpr uint32_t kClientNet = 0x0a010000;   // 10.1.0.0/16
constexpr uint16_t kServerPort = 80;

enum PolicyKind : int64_t { kTracked = 0, kAcl = 1, kUntracked = 2 };

std::string policyYaml(PolicyKind kind) {
  std::string y = "version: 1\ngroups:\n  web:\n    inbound:\n";
  if (kind == kUntracked) {
    // Peer 0.0.0.0/0 and the default allow-all outbound rule: AWS untracked flows.
    y += "      - {proto: tcp, ports: 80, from: 0.0.0.0/0}\n";
    y += "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n";
    y += "      - {proto: tcp, ports: 22, from: 192.0.2.0/24}\n";
  } else {
    y += "      - {proto: tcp, ports: 80, from: 10.1.0.0/16}\n";
    y += "      - {proto: tcp, ports: 443, from: 10.1.0.0/16}\n";
    y += "      - {proto: tcp, ports: 22, from: 192.0.2.0/24}\n";
    y += "    outbound: []\n";
  }
  if (kind == kAcl) {
    y += "network_acls:\n"
         "  web-acl:\n"
         "    inbound:\n"
         "      - {rule: 90, action: deny, proto: tcp, ports: 80, from: 192.0.2.0/24}\n"
         "      - {rule: 100, action: allow, proto: tcp, ports: 80, from: 10.1.0.0/16}\n"
         "      - {rule: 110, action: allow, proto: tcp, ports: 443, from: 10.1.0.0/16}\n"
         "    outbound:\n"
         "      - {rule: 100, action: allow, proto: tcp, ports: 1024-65535, to: 10.1.0.0/16}\n"
         "subnets:\n"
         "  web: {cidr: [10.0.1.0/24], acl: web-acl}\n";
  }
  y += "interfaces:\n";
  for (unsigned s = 0; s < kServers; ++s) {
    y += "  web-" + std::to_string(s) + ": {addresses: [10.0.1." + std::to_string(10 + s) +
         "], groups: [web]}\n";
  }
  return y;
}

rules::CompiledPolicyPtr compilePolicy(PolicyKind kind) {
  const std::string yaml = policyYaml(kind);
  rules::LoadResult lr = rules::loadPolicyTexts({{"bench.yaml", yaml}});
  if (!lr.ok()) {
    for (const auto& d : lr.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
    std::abort();
  }
  rules::CompileResult cr = rules::compile(*lr.policy);
  if (!cr.policy) {
    for (const auto& d : cr.diagnostics)
      std::fprintf(stderr, "%s\n", d.str().c_str());
    std::abort();
  }
  return cr.policy;
}

// --- flows and frames ---------------------------------------------------------------------------

uint32_t mix32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return static_cast<uint32_t>(x ^ (x >> 33));
}

// Flow i: a distinct (client, client port, server) for every i < 4 * 65536 * 64512.
struct Flow {
  uint32_t client, server;
  uint16_t sport;
  uint32_t isn_c, isn_s;  // initial sequence numbers
};

Flow flowAt(size_t i) {
  const size_t c = i / kServers;
  Flow f;
  f.server = kServerBase + static_cast<uint32_t>(i % kServers);
  f.client = kClientNet | static_cast<uint32_t>(c & 0xffff);
  f.sport = static_cast<uint16_t>(1024 + (c >> 16));
  f.isn_c = mix32(i * 2 + 1);
  f.isn_s = mix32(i * 2 + 2);
  return f;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// Frame templates from the packet builder; writeTcp() patches addresses, ports and sequence
// numbers into a copy and recomputes both checksums (no allocation: it runs millions of times).
struct Templates {
  dp::Bytes syn, synack, ack, data, reply_ack;
  Templates() {
    const dp::IpAddr c = dp::IpAddr::v4(kClientNet), s = dp::IpAddr::v4(kServerBase);
    syn = dp::buildTcp({.src = c,
                        .dst = s,
                        .sport = 1024,
                        .dport = kServerPort,
                        .flags = dp::kSyn,
                        .window = 64240,
                        .mss = 1460,
                        .wscale = 7,
                        .sack_permitted = true});
    synack = dp::buildTcp({.src = s,
                           .dst = c,
                           .sport = kServerPort,
                           .dport = 1024,
                           .flags = dp::kSyn | dp::kAck,
                           .window = 65160,
                           .mss = 1460,
                           .wscale = 7,
                           .sack_permitted = true});
    ack = dp::buildTcp({.src = c,
                        .dst = s,
                        .sport = 1024,
                        .dport = kServerPort,
                        .flags = dp::kAck,
                        .window = 502});
    data = dp::buildTcp({.src = c,
                         .dst = s,
                         .sport = 1024,
                         .dport = kServerPort,
                         .flags = dp::kAck | dp::kPsh,
                         .window = 502,
                         .payload_len = kDataLen});
    reply_ack = dp::buildTcp(
        {.src = s, .dst = c, .sport = kServerPort, .dport = 1024, .flags = dp::kAck, .window = 509},
        {.trailer_len = kFrameLen - 54});
    if (data.size() != kFrameLen || reply_ack.size() != kFrameLen || syn.size() > kSynStride) {
      std::fprintf(stderr, "unexpected template sizes %zu %zu %zu\n", data.size(), reply_ack.size(),
                   syn.size());
      std::abort();
    }
  }
};

const Templates& templates() {
  static const Templates t;
  return t;
}

// Recomputes the TCP checksum of a frame written by writeTcp().
void fixTcpChecksum(uint8_t* frame) {
  const uint8_t* ip = frame + kIpOff;
  uint8_t* tcp = frame + kTcpOff;
  const size_t l4_len = get16(ip + 2) - 20u;
  uint32_t seed = dp::kIpProtoTcp + static_cast<uint32_t>(l4_len);
  for (size_t i = 12; i < 20; i += 2)
    seed += get16(ip + i);
  put16(tcp + 16, 0);
  put16(tcp + 16, dp::internetChecksum(std::span<const uint8_t>(tcp, l4_len), seed));
}

void writeTcp(const dp::Bytes& tmpl, uint8_t* out, uint32_t src, uint32_t dst, uint16_t sport,
              uint16_t dport, uint32_t seq, uint32_t ack) {
  std::memcpy(out, tmpl.data(), tmpl.size());
  uint8_t* ip = out + kIpOff;
  uint8_t* tcp = out + kTcpOff;
  put32(ip + 12, src);
  put32(ip + 16, dst);
  put16(ip + 10, 0);
  put16(ip + 10, dp::internetChecksum(std::span<const uint8_t>(ip, 20)));
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, ack);
  fixTcpChecksum(out);
}

// The packet builder and writeTcp() must produce the same bytes (else the frames are not what
// the comments say they are).
void checkWriteTcp() {
  const Flow f = flowAt(123457);
  uint8_t buf[kSynStride] = {};
  writeTcp(templates().data, buf, f.client, f.server, f.sport, kServerPort, f.isn_c + 11,
           f.isn_s + 1);
  const dp::Bytes want = dp::buildTcp({.src = dp::IpAddr::v4(f.client),
                                       .dst = dp::IpAddr::v4(f.server),
                                       .sport = f.sport,
                                       .dport = kServerPort,
                                       .flags = dp::kAck | dp::kPsh,
                                       .seq = f.isn_c + 11,
                                       .ack = f.isn_s + 1,
                                       .window = 502,
                                       .payload_len = kDataLen});
  if (want.size() != kFrameLen || std::memcmp(want.data(), buf, kFrameLen) != 0) {
    std::fprintf(stderr, "writeTcp() disagrees with buildTcp()\n");
    std::abort();
  }
}

// A 64-byte aligned frame buffer.
struct FrameBuf {
  std::unique_ptr<uint8_t[], void (*)(uint8_t*)> bytes{nullptr, [](uint8_t* p) { std::free(p); }};
  size_t stride = 0;
  size_t count = 0;
  void allocate(size_t n, size_t frame_stride) {
    stride = frame_stride;
    count = n;
    bytes.reset(static_cast<uint8_t*>(std::aligned_alloc(64, n * frame_stride)));
    if (!bytes) std::abort();
    std::memset(bytes.get(), 0, n * frame_stride);
  }
  uint8_t* at(size_t i) const { return bytes.get() + i * stride; }
};

size_t residentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * 4096ul : 0;
}

std::string reasonSummary(const uint64_t (&by_reason)[dp::kReasonCount]) {
  std::string s;
  for (size_t r = 0; r < dp::kReasonCount; ++r) {
    if (by_reason[r] == 0) continue;
    if (!s.empty()) s += ", ";
    s += std::string(dp::kReasonCodes[r]) + "=" + std::to_string(by_reason[r]);
  }
  return s;
}

void advanceTo(std::atomic<uint64_t>& clock, uint64_t t) {
  uint64_t cur = clock.load(std::memory_order_relaxed);
  while (cur < t && !clock.compare_exchange_weak(cur, t, std::memory_order_relaxed)) {
  }
}

// --- established flows -------------------------------------------------------------------------

struct EstFixture {
  size_t n = 0;
  PolicyKind kind = kTracked;
  std::unique_ptr<Engine> engine;
  FrameBuf stream;  // bursts of kBurst frames: even bursts client data, odd bursts server ACKs
  size_t bursts = 0;
  // Per frame: bytes its flow's client sends in one pass over the stream (T below).
  std::vector<uint32_t> advance;
  Reason expect = Reason::kAllowTracked;
  std::atomic<uint64_t> clock{kNsPerSec};
  std::barrier<> pass_barrier{2};  // the 2-thread runs meet here at the end of every pass
  double engine_bytes = 0;         // resident memory the engine added, table populated
  double populate_sec = 0;
  std::string error;
};

// Opens flows [0, n) through the engine: SYN, SYN-ACK, ACK in bursts of kBurst.
std::string populate(Engine& engine, size_t n, Reason expect, std::atomic<uint64_t>& clock) {
  const Templates& t = templates();
  auto w = engine.makeWorker();
  FrameBuf buf;
  buf.allocate(kBurst, kSynStride);
  PacketRef refs[kBurst];
  Verdict out[kBurst];
  uint64_t now = clock.load();
  uint64_t by_reason[dp::kReasonCount] = {};
  size_t bad = 0;
  for (size_t base = 0; base < n; base += kBurst) {
    const unsigned m = static_cast<unsigned>(std::min<size_t>(kBurst, n - base));
    for (int step = 0; step < 3; ++step) {
      for (unsigned i = 0; i < m; ++i) {
        const Flow f = flowAt(base + i);
        uint8_t* p = buf.at(i);
        const dp::Bytes& tmpl = step == 0 ? t.syn : step == 1 ? t.synack : t.ack;
        if (step == 0) writeTcp(tmpl, p, f.client, f.server, f.sport, kServerPort, f.isn_c, 0);
        if (step == 1)
          writeTcp(tmpl, p, f.server, f.client, kServerPort, f.sport, f.isn_s, f.isn_c + 1);
        if (step == 2)
          writeTcp(tmpl, p, f.client, f.server, f.sport, kServerPort, f.isn_c + 1, f.isn_s + 1);
        refs[i] = PacketRef{p, static_cast<uint32_t>(tmpl.size())};
      }
      engine.process(*w, refs, m, now, out);
      now += kBurstNs;
      for (unsigned i = 0; i < m; ++i) {
        const Reason want = step == 0 ? (expect == Reason::kAllowTracked ? Reason::kAllowRule
                                                                         : Reason::kAllowUntracked)
                                      : expect;
        const bool ok = out[i].reason == want &&
                        (step != 0 || (out[i].flags & dp::kFlagNewConnection) != 0) &&
                        (step != 2 || out[i].tcp_after == dp::TcpState::kEstablished);
        bad += !ok;
        ++by_reason[static_cast<size_t>(out[i].reason)];
      }
    }
  }
  advanceTo(clock, now);
  if (bad != 0) return "handshake verdicts not as expected: " + reasonSummary(by_reason);
  if (engine.connectionCount() != n) {
    return "table holds " + std::to_string(engine.connectionCount()) + " connections, want " +
           std::to_string(n);
  }
  return {};
}

// Moves the frames of bursts first, first + step, ... one pass on: client data by T bytes (the
// next T bytes of the flow), server ACKs by T (acknowledging what the previous pass sent).
void nextPass(EstFixture& fx, size_t first, size_t step) {
  for (size_t b = first; b < fx.bursts; b += step) {
    const size_t field = b % 2 == 0 ? 4 : 8;  // TCP seq or ack
    for (unsigned i = 0; i < kBurst; ++i) {
      const size_t k = b * kBurst + i;
      uint8_t* p = fx.stream.at(k);
      uint8_t* tcp = p + kTcpOff;
      const uint32_t v = static_cast<uint32_t>(tcp[field]) << 24 | tcp[field + 1] << 16 |
                         tcp[field + 2] << 8 | tcp[field + 3];
      put32(tcp + field, v + fx.advance[k]);
      fixTcpChecksum(p);
    }
  }
}

// The timed stream (see the file comment) and one untimed pass over it (pass 0).
//
// Sequence numbers: say flow k's client sends T bytes per pass (10 per data frame of k in the
// stream) and s is what it sent before a frame within the pass. In pass P its data frames carry
// seq = isn + 1 + (P + 1) T + s and its server's ACKs ack = isn + 1 + P T + s: every packet
// advances the tracker's bounds (sequence end, highest ACK, window edge), and an ACK never
// acknowledges more than the client had sent by the end of the previous pass, so two threads
// may run one pass apart in either order (the data of pass 0 starts T bytes ahead, inside the
// window; pass 0 runs on one thread, in order).
std::string buildStream(EstFixture& fx) {
  const Templates& t = templates();
  const size_t want = std::clamp<size_t>(2 * fx.n, 65536, size_t{8} << 20);
  fx.bursts = want / (2 * kBurst) * 2;
  const size_t frames = fx.bursts * kBurst;
  fx.stream.allocate(frames, kFrameLen);
  fx.advance.assign(frames, 0);
  std::vector<uint32_t> flow_of(frames);
  std::vector<uint32_t> total(fx.n, 0);  // T per flow
  std::mt19937_64 rng(0x5eed0000 + fx.n);
  std::uniform_int_distribution<size_t> pick(0, fx.n - 1);
  for (size_t k = 0; k < frames; ++k) {
    flow_of[k] = static_cast<uint32_t>(pick(rng));
    if ((k / kBurst) % 2 == 0) total[flow_of[k]] += kDataLen;
  }
  std::vector<uint32_t> sent(fx.n, 0);
  for (size_t k = 0; k < frames; ++k) {
    const uint32_t j = flow_of[k];
    const Flow f = flowAt(j);
    uint8_t* p = fx.stream.at(k);
    fx.advance[k] = total[j];
    if ((k / kBurst) % 2 == 0) {
      writeTcp(t.data, p, f.client, f.server, f.sport, kServerPort,
               f.isn_c + 1 + total[j] + sent[j], f.isn_s + 1);
      sent[j] += kDataLen;
    } else {
      writeTcp(t.reply_ack, p, f.server, f.client, kServerPort, f.sport, f.isn_s + 1,
               f.isn_c + 1 + sent[j]);
    }
  }
  // Pass 0, in order, checked.
  auto w = fx.engine->makeWorker();
  uint64_t now = fx.clock.load();
  uint64_t by_reason[dp::kReasonCount] = {};
  PacketRef refs[kBurst];
  Verdict out[kBurst];
  for (size_t b = 0; b < fx.bursts; ++b) {
    for (unsigned i = 0; i < kBurst; ++i)
      refs[i] = PacketRef{fx.stream.at(b * kBurst + i), kFrameLen};
    fx.engine->process(*w, refs, kBurst, now, out);
    now += kBurstNs;
    for (unsigned i = 0; i < kBurst; ++i)
      ++by_reason[static_cast<size_t>(out[i].reason)];
  }
  advanceTo(fx.clock, now);
  nextPass(fx, 0, 1);
  if (by_reason[static_cast<size_t>(fx.expect)] != frames)
    return "stream verdicts not as expected: " + reasonSummary(by_reason);
  return {};
}

EstFixture& estFixture(size_t n, PolicyKind kind, unsigned sweep) {
  static std::mutex mu;
  static std::map<std::tuple<size_t, int64_t, unsigned>, std::unique_ptr<EstFixture>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{n, kind, sweep}];
  if (slot) return *slot;
  slot = std::make_unique<EstFixture>();
  EstFixture& fx = *slot;
  fx.n = n;
  fx.kind = kind;
  fx.expect = kind == kUntracked ? Reason::kAllowUntracked : Reason::kAllowTracked;
  const auto t0 = std::chrono::steady_clock::now();
  const size_t rss0 = residentBytes();
  dp::EngineConfig cfg;
  cfg.table_capacity = n;
  cfg.sweep_buckets_per_burst = sweep;
  fx.engine = std::make_unique<Engine>(cfg, compilePolicy(kind));
  fx.error = populate(*fx.engine, n, fx.expect, fx.clock);
  fx.engine_bytes = static_cast<double>(residentBytes() - rss0);
  fx.populate_sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (fx.error.empty()) fx.error = buildStream(fx);
  return fx;
}

// One worker per thread. With 2 threads, thread t takes the bursts b with b % 2 == t: thread 0
// all client->server packets, thread 1 all server->client packets, so the two directions of
// every flow are handled on different threads (and cores). At the end of a pass over the stream
// each thread moves its own frames to the next pass (untimed); two threads then wait for each
// other (untimed), which keeps them within one pass of each other as the ACKs require.
// Both threads run the same number of iterations, so they meet equally often.
void established(benchmark::State& state, PolicyKind kind, unsigned sweep = 8,
                 bool advance = true) {
  EstFixture& fx = estFixture(static_cast<size_t>(state.range(0)), kind, sweep);
  if (!fx.error.empty()) {
    state.SkipWithError(fx.error.c_str());
    return;
  }
  auto w = fx.engine->makeWorker();
  const size_t step = static_cast<size_t>(state.threads());
  const size_t first = static_cast<size_t>(state.thread_index());
  if (step > 2) {
    state.SkipWithError("at most 2 threads");
    return;
  }
  size_t b = first;
  uint64_t now = fx.clock.load() + kBurstNs;
  PacketRef refs[kBurst];
  Verdict out[kBurst];
  size_t good = 0;
  for (auto _ : state) {
    const uint8_t* base = fx.stream.at(b * kBurst);
    for (unsigned i = 0; i < kBurst; ++i)
      refs[i] = PacketRef{base + i * kFrameLen, kFrameLen};
    fx.engine->process(*w, refs, kBurst, now, out);
    for (unsigned i = 0; i < kBurst; ++i)
      good += out[i].reason == fx.expect;
    now += kBurstNs;
    b += step;
    if (b >= fx.bursts) {
      state.PauseTiming();
      if (advance) nextPass(fx, first, step);
      if (step == 2) fx.pass_barrier.arrive_and_wait();
      b = first;
      state.ResumeTiming();
    }
  }
  advanceTo(fx.clock, now);
  const size_t packets = static_cast<size_t>(state.iterations()) * kBurst;
  if (good != packets) {
    const std::string msg =
        "a timed packet did not get the expected verdict: " + std::to_string(packets - good) +
        " of " + std::to_string(packets);
    state.SkipWithError(msg.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  // kAvgThreads: with 2 threads Google Benchmark would otherwise add the two threads' values.
  const auto avg = benchmark::Counter::kAvgThreads;
  state.counters["conns"] =
      benchmark::Counter(static_cast<double>(fx.engine->connectionCount()), avg);
  state.counters["engine_bytes_per_conn"] =
      benchmark::Counter(fx.engine_bytes / static_cast<double>(fx.n), avg);
  state.counters["populate_s"] = benchmark::Counter(fx.populate_sec, avg);
}

void BM_EngineEstablished(benchmark::State& state) {
  established(state, kTracked);
}
void BM_EngineEstablishedAcl(benchmark::State& state) {
  established(state, kAcl);
}
void BM_EngineEstablishedUntracked(benchmark::State& state) {
  established(state, kUntracked);
}
void BM_EngineEstablishedNoSweep(benchmark::State& state) {
  established(state, kTracked, 0);
}
// The stream replayed without moving on: after its first pass every packet is a retransmission
// or an old ACK, which the tracker accepts without writing its bounds (the cost of those writes).
void BM_EngineEstablishedRetransmit(benchmark::State& state) {
  established(state, kTracked, 8, false);
}

// --- new connections ---------------------------------------------------------------------------

enum Recycle : int64_t { kExpire = 0, kErase = 1 };

struct NewFixture {
  size_t n = 0;
  std::unique_ptr<Engine> engine;
  FrameBuf syns;  // n SYNs of distinct flows
  std::atomic<uint64_t> clock{kNsPerSec};
  uint64_t syn_timeout_ns = 0;
};

NewFixture& newFixture(size_t n, Recycle recycle) {
  static std::mutex mu;
  static std::map<std::pair<size_t, int64_t>, std::unique_ptr<NewFixture>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{n, recycle}];
  if (slot) return *slot;
  slot = std::make_unique<NewFixture>();
  NewFixture& fx = *slot;
  fx.n = n;
  dp::EngineConfig cfg;
  // kExpire: n live (expired) connections are replaced one by one while the sweep reclaims
  // them, so a quarter of headroom; kErase: the previous round is erased (untimed) and is
  // reclaimed during the next round, so twice n.
  cfg.table_capacity = recycle == kExpire ? n + n / 4 : 2 * n;
  auto policy = compilePolicy(kTracked);
  fx.syn_timeout_ns =
      uint64_t{policy->timeouts().seconds[static_cast<size_t>(rules::TimeoutKey::kTcpSynSent)]} *
      kNsPerSec;
  fx.engine = std::make_unique<Engine>(cfg, policy);
  fx.syns.allocate(n, kSynStride);
  // Flows in a random order, so consecutive SYNs do not come from neighbouring entries.
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i)
    order[i] = static_cast<uint32_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(77 + n));
  for (size_t i = 0; i < n; ++i) {
    const Flow f = flowAt(order[i]);
    writeTcp(templates().syn, fx.syns.at(i), f.client, f.server, f.sport, kServerPort, f.isn_c, 0);
  }
  return fx;
}

// One item = one SYN of a flow without a live connection: rules, then a new entry (allow-rule
// with kFlagNewConnection, checked for every packet). kExpire: each round of n SYNs starts
// after the SYN_SENT timeout of the previous round, so every SYN meets an expired entry of its
// flow; the sweep and the inserts kill and reclaim those inside the timed loop (the steady state
// of a table that stays full). kErase: between rounds the connections are erased outside the
// timed loop.
void BM_EngineNewConnections(benchmark::State& state) {
  const auto recycle = static_cast<Recycle>(state.range(1));
  NewFixture& fx = newFixture(static_cast<size_t>(state.range(0)), recycle);
  Engine& engine = *fx.engine;
  auto w = engine.makeWorker();
  const size_t syn_len = templates().syn.size();
  const size_t rounds_bursts = fx.n / kBurst;
  auto newRound = [&](uint64_t* now) {
    if (recycle == kExpire) {
      *now += fx.syn_timeout_ns + kNsPerSec;
    } else {
      engine.eraseConnections([](const dp::ConnectionInfo&) { return true; });
    }
  };
  uint64_t now = fx.clock.load();
  newRound(&now);
  size_t b = 0;
  PacketRef refs[kBurst];
  Verdict out[kBurst];
  size_t created = 0;
  uint64_t by_reason[dp::kReasonCount] = {};
  for (auto _ : state) {
    const uint8_t* base = fx.syns.at(b * kBurst);
    for (unsigned i = 0; i < kBurst; ++i)
      refs[i] = PacketRef{base + i * kSynStride, static_cast<uint32_t>(syn_len)};
    engine.process(*w, refs, kBurst, now, out);
    for (unsigned i = 0; i < kBurst; ++i) {
      created += (out[i].flags & dp::kFlagNewConnection) != 0;
      ++by_reason[static_cast<size_t>(out[i].reason)];
    }
    now += kBurstNs;
    if (++b == rounds_bursts) {
      b = 0;
      if (recycle == kErase) state.PauseTiming();
      newRound(&now);
      if (recycle == kErase) state.ResumeTiming();
    }
  }
  advanceTo(fx.clock, now);
  const size_t packets = static_cast<size_t>(state.iterations()) * kBurst;
  if (created != packets || by_reason[static_cast<size_t>(Reason::kAllowRule)] != packets) {
    const std::string msg = "not every SYN created a connection: " + reasonSummary(by_reason);
    state.SkipWithError(msg.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["capacity"] = static_cast<double>(engine.capacity());
  state.counters["live_at_end"] = static_cast<double>(engine.connectionCount());
}

// --- SYN flood into a full table (early drop) ---------------------------------------------------

struct FloodFixture {
  size_t capacity = 0;
  std::unique_ptr<Engine> engine;
  FrameBuf syns;  // 4 x capacity SYNs of distinct flows, never answered
  size_t n = 0;
};

FloodFixture& floodFixture(size_t capacity) {
  static std::mutex mu;
  static std::map<size_t, std::unique_ptr<FloodFixture>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[capacity];
  if (slot) return *slot;
  slot = std::make_unique<FloodFixture>();
  FloodFixture& fx = *slot;
  fx.capacity = capacity;
  fx.n = 4 * capacity;
  dp::EngineConfig cfg;
  cfg.table_capacity = capacity;
  fx.engine = std::make_unique<Engine>(cfg, compilePolicy(kTracked));
  fx.syns.allocate(fx.n, kSynStride);
  std::vector<uint32_t> order(fx.n);
  for (size_t i = 0; i < fx.n; ++i)
    order[i] = static_cast<uint32_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(14 + capacity));
  for (size_t i = 0; i < fx.n; ++i) {
    const Flow f = flowAt(order[i]);
    writeTcp(templates().syn, fx.syns.at(i), f.client, f.server, f.sport, kServerPort, f.isn_c, 0);
  }
  return fx;
}

// One item = one SYN of a new flow while the table is full of unanswered SYNs: rules, then an
// early drop (the oldest unreplied entry near the key is evicted, conn_table.hpp) and a new
// entry. The table is filled untimed; the timed SYNs cycle through 4 x capacity flows, so a flow
// comes back after 3 x capacity other SYNs, by when its entry was usually evicted (the victim is
// the oldest near the key, not the oldest in the table: a SYN that finds its entry alive is a
// retransmission, allow-tracked, and evicts nothing, so evicted_per_syn is a little below 1).
// Also reports the share of SYNs refused (deny-table-full: 0 with one worker).
void BM_EngineSynFlood(benchmark::State& state) {
  FloodFixture& fx = floodFixture(static_cast<size_t>(state.range(0)));
  Engine& engine = *fx.engine;
  auto w = engine.makeWorker();
  const size_t syn_len = templates().syn.size();
  PacketRef refs[kBurst];
  Verdict out[kBurst];
  uint64_t now = kNsPerSec;
  size_t b = 0;
  const size_t bursts = fx.n / kBurst;
  auto burst = [&] {
    const uint8_t* base = fx.syns.at(b * kBurst);
    for (unsigned i = 0; i < kBurst; ++i)
      refs[i] = PacketRef{base + i * kSynStride, static_cast<uint32_t>(syn_len)};
    engine.process(*w, refs, kBurst, now, out);
    now += kBurstNs;
    if (++b == bursts) b = 0;
  };
  if (engine.connectionCount() < fx.capacity) {
    while (engine.connectionCount() < fx.capacity)
      burst();
  }
  const dp::Counters before = engine.counters();
  for (auto _ : state)
    burst();
  const dp::Counters after = engine.counters();
  const size_t packets = static_cast<size_t>(state.iterations()) * kBurst;
  const uint64_t full = after.packets[static_cast<size_t>(Reason::kDenyTableFull)] -
                        before.packets[static_cast<size_t>(Reason::kDenyTableFull)];
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["evicted_per_syn"] =
      static_cast<double>(after.connections_evicted - before.connections_evicted) /
      static_cast<double>(packets);
  state.counters["refused_share"] = static_cast<double>(full) / static_cast<double>(packets);
  state.counters["live_at_end"] = static_cast<double>(engine.connectionCount());
}

// --- memory ------------------------------------------------------------------------------------

// Bytes per connection of the connection table at its rated fill (capacity = connections):
// entries, hash index and the table object, for IPv4 and IPv6 entries with the engine's 40-byte
// value (conn_table.hpp's Value40 stand-in; engine.cpp static_asserts its value fits). The
// engine-level figure (resident memory added by an Engine with both tables, populated) is the
// engine_bytes_per_conn counter of the established benchmarks.
void BM_MemoryPerConnection(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  using Value = dp::conn_table_detail::Value40;
  dp::ConnTable<dp::FlowKey4, Value> t4(n);
  dp::ConnTable<dp::FlowKey6, Value> t6(n);
  for (auto _ : state)
    benchmark::DoNotOptimize(t4.capacity() + t6.capacity());
  state.counters["v4_bytes_per_conn"] =
      static_cast<double>(t4.memoryBytes()) / static_cast<double>(t4.capacity());
  state.counters["v6_bytes_per_conn"] =
      static_cast<double>(t6.memoryBytes()) / static_cast<double>(t6.capacity());
  state.counters["v4_entry_bytes"] = sizeof(dp::ConnTable<dp::FlowKey4, Value>::Entry);
  state.counters["v6_entry_bytes"] = sizeof(dp::ConnTable<dp::FlowKey6, Value>::Entry);
}

constexpr int64_t k1K = 1000;
constexpr int64_t k1M = 1000000;
constexpr int64_t k10M = 10000000;

BENCHMARK(BM_EngineEstablished)->ArgName("conns")->Arg(k1K)->Arg(k1M)->Arg(k10M);
BENCHMARK(BM_EngineEstablishedAcl)->ArgName("conns")->Arg(k1K)->Arg(k1M);
BENCHMARK(BM_EngineEstablishedUntracked)->ArgName("conns")->Arg(k1K)->Arg(k1M);
BENCHMARK(BM_EngineEstablishedNoSweep)->ArgName("conns")->Arg(k1M);
BENCHMARK(BM_EngineEstablishedRetransmit)->ArgName("conns")->Arg(k1M);
// items_per_second is computed from the threads' summed CPU time: the rate per core while both
// cores work. Total = 2 x that.
BENCHMARK(BM_EngineEstablished)->ArgName("conns")->Arg(k1K)->Arg(k1M)->Arg(k10M)->Threads(2);
BENCHMARK(BM_EngineNewConnections)
    ->ArgNames({"flows", "recycle"})
    ->Args({k1M, kExpire})
    ->Args({k1M, kErase});
BENCHMARK(BM_EngineSynFlood)->ArgName("capacity")->Arg(65536)->Arg(262144);
BENCHMARK(BM_MemoryPerConnection)->ArgName("conns")->Arg(k1M)->Iterations(1);

}  // namespace

// --- instruction profiling ----------------------------------------------------------------------
//
// `statewall_bench_engine --profile=established:CONNS:BURSTS` (or `new:FLOWS:BURSTS`) runs the
// timed loop of BM_EngineEstablished (BM_EngineNewConnections/recycle:0) for BURSTS bursts
// outside Google Benchmark, so that a profiler sees a fixed amount of work. The loop is its own
// function, so callgrind can count it alone:
//   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*profileLoop*' (one line)
//     build/release/bench/statewall_bench_engine --profile=established:1000:20000
// Instructions per packet = the loop's instruction count / (BURSTS * 32).

namespace {

[[gnu::noinline]] size_t profileLoop(Engine& engine, Engine::Worker& w, const FrameBuf& frames,
                                     size_t frame_len, size_t bursts_in_buf, size_t bursts,
                                     uint64_t now, uint64_t round_ns, Reason expect) {
  PacketRef refs[kBurst];
  Verdict out[kBurst];
  size_t good = 0;
  size_t b = 0;
  for (size_t k = 0; k < bursts; ++k) {
    const uint8_t* base = frames.at(b * kBurst);
    for (unsigned i = 0; i < kBurst; ++i)
      refs[i] = PacketRef{base + i * frames.stride, static_cast<uint32_t>(frame_len)};
    engine.process(w, refs, kBurst, now, out);
    for (unsigned i = 0; i < kBurst; ++i)
      good += out[i].reason == expect;
    now += kBurstNs;
    if (++b == bursts_in_buf) {
      b = 0;
      now += round_ns;
    }
  }
  return good;
}

int runProfile(const char* spec) {
  char kind[16] = {};
  size_t n = 0, bursts = 0;
  if (std::sscanf(spec, "%15[a-z]:%zu:%zu", kind, &n, &bursts) != 3 || n == 0) {
    std::fprintf(stderr, "--profile=established|new:CONNS:BURSTS\n");
    return 2;
  }
  size_t good = 0;
  if (std::strcmp(kind, "established") == 0) {
    EstFixture& fx = estFixture(n, kTracked, 8);
    if (!fx.error.empty()) {
      std::fprintf(stderr, "%s\n", fx.error.c_str());
      return 1;
    }
    // Sequence numbers are not moved on between passes here: keep BURSTS within one pass so that
    // every packet advances the tracker, as in the benchmark.
    bursts = std::min(bursts, fx.bursts);
    auto w = fx.engine->makeWorker();
    good = profileLoop(*fx.engine, *w, fx.stream, kFrameLen, fx.bursts, bursts,
                       fx.clock.load() + kBurstNs, 0, fx.expect);
  } else if (std::strcmp(kind, "new") == 0) {
    NewFixture& fx = newFixture(n, kExpire);
    auto w = fx.engine->makeWorker();
    good = profileLoop(*fx.engine, *w, fx.syns, templates().syn.size(), fx.n / kBurst, bursts,
                       fx.clock.load() + fx.syn_timeout_ns + kNsPerSec,
                       fx.syn_timeout_ns + kNsPerSec, Reason::kAllowRule);
  } else {
    std::fprintf(stderr, "unknown profile kind %s\n", kind);
    return 2;
  }
  std::printf("%zu bursts, %zu packets, %zu with the expected verdict\n", bursts, bursts * kBurst,
              good);
  return good == bursts * kBurst ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  checkWriteTcp();
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--profile=", 10) == 0) return runProfile(argv[i] + 10);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
