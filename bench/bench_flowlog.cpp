// VPC Flow Logs reader throughput (sim/flowlog.hpp) on a gzip-free log in the page cache, beside
// the floor of `awk` counting the same file's lines in one pass.
//   build/release/bench/statewall_bench_flowlog --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// items_per_second is records per second. The log (1,000,000 version 5 records, about 150 MB,
// written by the project's writer: IPv4 and some IPv6, ACCEPT and REJECT, every v5 field) is made
// once in $TMPDIR (or /tmp) and removed at exit; the first read of each benchmark warms the page
// cache. BM_AwkCount runs `awk 'END{print NR}'` over it (wall time per pass, one process).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>

#include "statewall/rules/ip.hpp"
#include "statewall/sim/flowlog.hpp"

namespace statewall::sim {
namespace {

constexpr uint64_t kRecords = 1000000;

struct LogFile {
  std::string path;
  LogFile() {
    const char* base = std::getenv("TMPDIR");
    path = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
           "/statewall-bench-flowlog-" + std::to_string(::getpid()) + ".log";
    auto opened = FlowLogWriter::open(path, FlowLogWriter::Format::kText);
    if (!opened) {
      std::fprintf(stderr, "%s\n", opened.message().c_str());
      std::exit(1);
    }
    std::unique_ptr<FlowLogWriter> w = std::move(*opened);
    FlowLogRecord r;
    r.version = 5;
    r.account_id = "123456789012";
    r.subnet_id = "subnet-0a1b2c3d4e5f60001";
    r.vpc_id = "vpc-0a1b2c3d4e5f60001";
    r.has_addrs = true;
    r.proto = 6;
    std::string eni;
    for (uint64_t i = 0; i < kRecords; ++i) {
      const bool v6 = i % 10 == 0;
      eni = "eni-0a1b2c3d4e5f6" + std::to_string(1000 + i % 500);
      r.interface_id = eni;
      r.src = r.pkt_src = v6 ? rules::IpAddr::v6(0x20010db8ff000000ull, i)
                             : rules::IpAddr::v4(0xc6336400u + static_cast<uint32_t>(i % 65536));
      r.dst = r.pkt_dst = v6 ? rules::IpAddr::v6(0x20010db800010000ull, 0x10)
                             : rules::IpAddr::v4(0x0a00010au + static_cast<uint32_t>(i % 16));
      r.type = v6 ? "IPv6" : "IPv4";
      r.sport = static_cast<uint16_t>(32768 + i % 28000);
      r.dport = i % 3 == 0 ? 80 : 443;
      r.packets = 1 + i % 40;
      r.bytes = 60 + (i * 7919) % 100000;
      r.start = 1700000000 + i / 2000;
      r.end = r.start + i % 60;
      r.action = i % 17 == 0 ? FlowAction::kReject : FlowAction::kAccept;
      r.tcp_flags = static_cast<int>(i % 4 == 0 ? 2 : i % 4 == 1 ? 18 : i % 4 == 2 ? 3 : 0);
      r.direction = i % 2 ? FlowDirection::kEgress : FlowDirection::kIngress;
      w->write(r);
    }
    if (const auto closed = w->close(); !closed.ok()) {
      std::fprintf(stderr, "%s\n", closed.message().c_str());
      std::exit(1);
    }
  }
  ~LogFile() { std::remove(path.c_str()); }
};

const LogFile& logFile() {
  static const LogFile f;
  return f;
}

void BM_FlowLogRead(benchmark::State& state) {
  const std::string& path = logFile().path;
  uint64_t records = 0;
  for (auto _ : state) {
    FlowLogError err;
    auto r = FlowLogReader::open(path, FlowLogFormat::defaultV2(), &err);
    if (!r) {
      state.SkipWithError(err.str().c_str());
      return;
    }
    FlowLogRecord rec;
    uint64_t n = 0;
    FlowLogReader::Result res;
    while ((res = r->next(&rec)) == FlowLogReader::Result::kRecord) {
      benchmark::DoNotOptimize(rec);
      ++n;
    }
    if (res == FlowLogReader::Result::kError || n != kRecords) {
      state.SkipWithError(("read failed: " + r->error().str()).c_str());
      return;
    }
    records += n;
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
}
BENCHMARK(BM_FlowLogRead)->Unit(benchmark::kMillisecond)->UseRealTime();

// The floor: one awk pass counting the lines of the same file.
void BM_AwkCount(benchmark::State& state) {
  const std::string cmd = "awk 'END{print NR}' '" + logFile().path + "' > /dev/null";
  for (auto _ : state) {
    if (std::system(cmd.c_str()) != 0) {
      state.SkipWithError("awk failed");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRecords));
}
BENCHMARK(BM_AwkCount)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace statewall::sim

BENCHMARK_MAIN();
