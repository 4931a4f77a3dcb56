// `statewall replay` end to end: a large generated trace, already in the page cache, read with
// libpcap, judged by the engine in bursts, summarised. Figures and commands in bench/README.md.
//
// The trace is generated once (deterministic: seed 1) into $STATEWALL_BENCH_TRACE, default
// /tmp/statewall-bench-replay.pcap, and reused by later runs when it is already there.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace {

using namespace statewall;

// The example policy's shape, inline so that the benchmark does not depend on the working
// directory: HTTPS/HTTP to two web servers behind a stateless ACL, an app and a db tier.
constexpr const char* kPolicy = R"(version: 1
prefix_lists:
  office: [203.0.113.0/24]
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
      - {proto: tcp, ports: 80, from: [0.0.0.0/0, "::/0"]}
      - {proto: tcp, ports: 22, from: pl:office}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
      - {proto: icmpv6, icmp: {type: 128, code: -1}, from: "::/0"}
      - {proto: udp, ports: 53, from: 198.51.100.0/24}
  app:
    inbound:
      - {proto: tcp, ports: 8080, from: sg:web}
  db:
    inbound:
      - {proto: tcp, ports: 5432, from: sg:app}
    outbound: []
network_acls:
  public-acl:
    inbound:
      - {rule: 90, action: deny, proto: all, from: 192.0.2.0/24}
      - {rule: 100, action: allow, proto: tcp, ports: 80, from: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {rule: 111, action: allow, proto: tcp, ports: 443, from: "::/0"}
      - {rule: 130, action: allow, proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}
      - {rule: 140, action: allow, proto: icmp, from: 0.0.0.0/0}
      - {rule: 141, action: allow, proto: icmpv6, from: "::/0"}
      - {rule: 150, action: allow, proto: udp, ports: 53, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
      - {rule: 101, action: allow, proto: all, to: "::/0"}
subnets:
  public: {cidr: [10.0.1.0/24, "2001:db8:1::/64"], acl: public-acl}
interfaces:
  web-1: {addresses: [10.0.1.10, "2001:db8:1::10"], groups: [web]}
  web-2: {addresses: [10.0.1.11], groups: [web]}
  app-1: {addresses: [10.0.2.10], groups: [app]}
  db-1: {addresses: [10.0.3.10], groups: [db]}
)";

// The trace: 250,000 random flows over 120 s (mostly TCP request/response with 8 exchanges on
// average, some UDP, ICMP, refused and reset connections): 6,485,658 packets of 54 to 1514 bytes
// (300 on average), 2.05 GB. The same command line reproduces it byte for byte:
//   statewall gen --seed 1 --flows 250000 --exchanges 8 --req-bytes 40-300 --resp-bytes 100-1400
//     --duration 120 --mix tcp=80,udp=8,udp-stream=4,icmp=4,refused=2,tcp-rst=2
//     --servers 10.0.1.10,10.0.1.11,2001:db8:1::10 --out /tmp/statewall-bench-replay.pcap
sim::GenOptions traceOptions() {
  sim::GenOptions o;
  o.seed = 1;
  o.flows = 250000;
  o.exchanges = 8;
  o.req_lo = 40;
  o.req_hi = 300;
  o.resp_lo = 100;
  o.resp_hi = 1400;
  o.duration_s = 120;
  o.mix = *sim::parseMix("tcp=80,udp=8,udp-stream=4,icmp=4,refused=2,tcp-rst=2");
  o.servers = {*rules::IpAddr::parse("10.0.1.10"), *rules::IpAddr::parse("10.0.1.11"),
               *rules::IpAddr::parse("2001:db8:1::10")};
  return o;
}

std::string tracePath() {
  const char* env = std::getenv("STATEWALL_BENCH_TRACE");
  return env != nullptr && *env != '\0' ? env : "/tmp/statewall-bench-replay.pcap";
}

// Generates the trace when missing, then reads it once so that it sits in the page cache.
const std::string& trace() {
  static const std::string path = [] {
    std::string p = tracePath();
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      sim::GenStats s;
      std::fprintf(stderr, "generating %s ...\n", p.c_str());
      if (const base::Status written = sim::writeTrace(traceOptions(), p, &s); !written.ok()) {
        std::fprintf(stderr, "%s\n", written.message().c_str());
        std::abort();
      }
    }
    FILE* f = std::fopen(p.c_str(), "rb");
    std::vector<char> buf(1 << 20);
    while (f != nullptr && std::fread(buf.data(), 1, buf.size(), f) > 0) {
    }
    if (f != nullptr) std::fclose(f);
    return p;
  }();
  return path;
}

rules::CompiledPolicyPtr policy() {
  static const rules::CompiledPolicyPtr p = [] {
    auto loaded = rules::loadPolicyTexts({{"bench.yaml", kPolicy}});
    if (!loaded.ok()) std::abort();
    return rules::compile(*loaded.policy).policy;
  }();
  return p;
}

void report(benchmark::State& state, uint64_t packets, uint64_t bytes) {
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["packets"] =
      static_cast<double>(packets) / static_cast<double>(state.iterations());
}

// Reading the trace with libpcap alone: the floor under everything else.
void BM_ReadTrace(benchmark::State& state) {
  const std::string& path = trace();
  uint64_t packets = 0, bytes = 0;
  for (auto _ : state) {
    sim::TraceError err;
    auto r = sim::TraceReader::open(path, &err);
    if (!r) {
      state.SkipWithError(err.str().c_str());
      return;
    }
    sim::TracePacket p;
    uint64_t sum = 0;
    while (r->next(&p) == sim::TraceReader::Status::kPacket) {
      sum += p.data[p.caplen - 1];
      ++packets;
      bytes += p.caplen;
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, packets, bytes);
}
BENCHMARK(BM_ReadTrace)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();

// The whole replay as `statewall replay --policy P TRACE` runs it (summary only), minus the
// printing of the summary. Arg: 0 = summary only, 1 = also --verdicts to /dev/null,
// 2 = also --connections to /dev/null, 3 = also --stateless.
void BM_Replay(benchmark::State& state) {
  const std::string& path = trace();
  uint64_t packets = 0, bytes = 0;
  for (auto _ : state) {
    sim::ReplayOptions o;
    if (state.range(0) == 1) o.verdicts_path = "/dev/null";
    if (state.range(0) == 2) o.connections_path = "/dev/null";
    if (state.range(0) == 3) o.stateless = true;
    sim::Replay r(policy(), o);
    std::string err;
    if (!r.openOutputs(&err) || !r.runFiles({path}) || !r.finish(&err)) {
      state.SkipWithError("replay failed");
      return;
    }
    packets += r.summary().packets;
    bytes += r.summary().bytes;
  }
  report(state, packets, bytes);
}
BENCHMARK(BM_Replay)
    ->ArgName("outputs")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
