// Memory of the connection log and the report under a SYN flood of many distinct flows through a
// small connection table (issue 14): bounded by the live connections and the caps, not by the
// number of flows. Each run is measured in a child process (its peak resident set, from
// getrusage(RUSAGE_CHILDREN)), so that nothing else of the test binary counts. The bound is loose
// (several times what the bounded run takes, a fraction of what keeping every flow took).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "policy_util.hpp"
#include "sim_test_util.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/replay.hpp"
#include "statewall/sim/report.hpp"

namespace statewall::sim {
namespace {

using testing::compilePolicy;
using testing::TempDir;

constexpr const char* kPolicy = R"(version: 1
groups:
  srv:
    inbound:
      - {proto: tcp, ports: 22, from: 0.0.0.0/0}
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)";

constexpr uint64_t kFlows = 400000;

// Runs `fn` in a child process; its peak resident set in MiB, or -1 when it failed.
template <class Fn>
double childPeakMib(Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn() ? 0 : 1);
  int status = 0;
  struct rusage ru {};
  if (pid < 0 || ::wait4(pid, &status, 0, &ru) != pid) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

std::string floodTrace(TempDir& dir) {
  GenOptions o;
  o.explicit_flows.push_back(*parseFlowSpec(
      "flood 100.64.0.0/10 -> 10.0.1.10:22 count=" + std::to_string(kFlows) + " rate=1000000"));
  const std::string path = dir.file("flood.pcap");
  EXPECT_EQ(writeTrace(o, path, nullptr).message(), "");
  return path;
}

// Resident-memory bounds mean nothing under AddressSanitizer (shadow memory, and a quarantine that
// keeps freed blocks): the bounds are checked in the release build.
#if defined(__SANITIZE_ADDRESS__)
#define STATEWALL_SKIP_UNDER_ASAN() GTEST_SKIP() << "RSS bounds are not meaningful under ASan"
#else
#define STATEWALL_SKIP_UNDER_ASAN() (void)0
#endif

TEST(FloodMemory, ConnectionLogIsBoundedByTheTableNotTheFlows) {
  STATEWALL_SKIP_UNDER_ASAN();
  auto policy = compilePolicy(kPolicy);
  ASSERT_TRUE(policy);
  TempDir dir;
  const std::string trace = floodTrace(dir);
  const std::string log = dir.file("conns.jsonl");
  const double peak = childPeakMib([&] {
    ReplayOptions o;
    o.table_capacity = 4096;
    o.connections_path = log;
    Replay r(policy, o);
    std::string err;
    if (!r.openOutputs(&err) || !r.runFiles({trace})) return false;
    return r.finish(&err) && r.summary().connection_records >= kFlows - 100;
  });
  ASSERT_GT(peak, 0) << "the replay failed";
  std::printf("connection log, %llu SYN flows, 4096-entry table: peak RSS %.1f MiB\n",
              static_cast<unsigned long long>(kFlows), peak);
  // Every flow kept took about 0.7 KB each (280 MB here).
  EXPECT_LT(peak, 150.0);
  std::ifstream in(log);
  uint64_t lines = 0;
  for (std::string line; std::getline(in, line);)
    ++lines;
  EXPECT_GE(lines, kFlows - 100);
}

TEST(FloodMemory, ReportIsBoundedByTheLiveConnectionsAndTheCaps) {
  STATEWALL_SKIP_UNDER_ASAN();
  auto policy = compilePolicy(kPolicy);
  ASSERT_TRUE(policy);
  TempDir dir;
  const std::string trace = floodTrace(dir);
  const double peak = childPeakMib([&] {
    ReportData data;
    std::string err;
    ReportOptions o;
    o.table_capacity = 4096;
    if (!buildReport(policy, {trace}, o, &data, &err)) return false;
    return data.connections_total >= kFlows - 100 && data.connections.size() == o.max_connections;
  });
  ASSERT_GT(peak, 0) << "the report failed";
  std::printf("report, %llu SYN flows, 4096-entry table: peak RSS %.1f MiB\n",
              static_cast<unsigned long long>(kFlows), peak);
  EXPECT_LT(peak, 180.0);
}

}  // namespace
}  // namespace statewall::sim
