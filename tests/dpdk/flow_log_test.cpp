// statewalld --flow-log on net_pcap vdevs: the records equal, field by field, those of
// `statewall replay --flow-log` for the same trace and policy (AWS version 5 text, read here by
// splitting fields under the header line, and JSON lines with the rule and reason); and a flood
// of denied flows with a tiny ring drops records, counted in /metrics, never packets.
//
// start and end differ by design: replay's are the trace's seconds, statewalld's the wall
// clock's. Everything else must agree.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../common/wait_for.hpp"
#include "dpdk_test_util.hpp"
#include "pcap_util.hpp"
#include "statewall/control/client.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/ip.hpp"
#include "statewall/sim/gen.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// A record as field name -> value, without start and end.
using Record = std::map<std::string, std::string>;

// The text format read independently of statewall's reader: the first line names the fields,
// every other line has as many space-separated values.
std::vector<Record> parseText(const std::string& text,
                              std::vector<std::pair<uint64_t, uint64_t>>* times = nullptr) {
  std::vector<Record> out;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string w; ls >> w;)
      f.push_back(w);
    if (names.empty()) {
      names = f;
      continue;
    }
    EXPECT_EQ(f.size(), names.size()) << line;
    Record r;
    uint64_t start = 0, end = 0;
    for (size_t i = 0; i < std::min(f.size(), names.size()); ++i) {
      if (names[i] == "start") {
        start = std::stoull(f[i]);
      } else if (names[i] == "end") {
        end = std::stoull(f[i]);
      } else {
        r[names[i]] = f[i];
      }
    }
    if (times != nullptr) times->emplace_back(start, end);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> parseJsonl(const std::string& text) {
  std::vector<Record> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    if (j.is_discarded()) continue;
    Record r;
    for (const auto& [k, v] : j.items())
      if (k != "start" && k != "end") r[k] = v.dump();
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> sorted(const std::vector<Record>& recs) {
  std::vector<std::string> out;
  for (const Record& r : recs) {
    std::string s;
    for (const auto& [k, v] : r)
      s += k + "=" + v + " ";
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class FlowLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "policy.yaml";
    writeText(policy_, kGeneratorPolicy);
    empty_ = dir_ / "empty.pcap";
    writePcap(empty_, {});
  }

  // A generated trace of `flows` flows over 2 s (no idle gaps: the timeouts of trace time and of
  // real time must not matter).
  void makeTrace(uint32_t flows, uint32_t scan_ports) {
    sim::GenOptions g;
    g.seed = 11;
    g.flows = flows;
    g.duration_s = 2.0;
    g.mix = sim::GenOptions::defaultMix();
    g.mix[static_cast<size_t>(sim::Scenario::kTcpIdle)] = 0;
    g.flood_packets = 100;
    g.scan_ports = scan_ports;
    sim::GenStats st;
    trace_ = dir_ / "trace.pcap";
    ASSERT_EQ(sim::writeTrace(g, trace_, &st).message(), "");
    packets_ = readPcap(trace_).size();
    ASSERT_GT(packets_, 100u);
  }

  std::string replayLog(const std::vector<std::string>& extra) {
    const std::string log = dir_ / "replay.log";
    std::vector<std::string> argv = {
        statewallPath(),       "replay", "--policy", policy_, trace_, "--flow-log", log,
        "--flow-log-interval", "3600"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunResult r = run(argv, dir_, "replay");
    EXPECT_EQ(r.code, 0) << r.err;
    return readText(log);
  }

  // statewalld over the trace (or, with `vdevs`, those devices) with `lcores` forwarding lcores.
  std::vector<std::string> applianceArgv(const std::vector<std::string>& extra,
                                         std::vector<std::string> vdevs = {}, unsigned lcores = 1) {
    std::vector<std::string> argv = {statewalldPath()};
    for (const auto& a : ealArgs(lcores, "flowlog"))
      argv.push_back(a);
    if (vdevs.empty())
      vdevs = {"net_pcap0,rx_pcap=" + trace_ + ",tx_pcap=" + (dir_ / "o0.pcap"),
               "net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / "o1.pcap")};
    for (const std::string& v : vdevs)
      argv.push_back("--vdev=" + v);
    const std::vector<std::string> app = {"--",
                                          "--policy",
                                          policy_,
                                          "--inside",
                                          "net_pcap0",
                                          "--outside",
                                          "net_pcap1",
                                          "--lcores",
                                          std::to_string(lcores),
                                          "--counters-file",
                                          dir_ / "counters.json"};
    argv.insert(argv.end(), app.begin(), app.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  TempDir dir_;
  std::string policy_, empty_, trace_;
  size_t packets_ = 0;
};

TEST_F(FlowLogTest, TextRecordsEqualReplaysFieldByField) {
  makeTrace(300, 40);
  const std::string want_text = replayLog({});
  const uint64_t before = static_cast<uint64_t>(std::time(nullptr));
  const std::string log = dir_ / "statewalld.log";
  RunResult r = run(
      applianceArgv({"--exit-when-idle", "300", "--flow-log", log, "--flow-log-interval", "3600"}),
      dir_, "statewalld");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const uint64_t after = static_cast<uint64_t>(std::time(nullptr));
  const std::string got_text = readText(log);
  // The same header line: a reader of AWS's logs reads both.
  EXPECT_EQ(got_text.substr(0, got_text.find('\n')), want_text.substr(0, want_text.find('\n')));

  std::vector<std::pair<uint64_t, uint64_t>> times;
  const std::vector<Record> got = parseText(got_text, &times);
  const std::vector<Record> want = parseText(want_text);
  ASSERT_GT(want.size(), 20u);
  // Both verdicts, both directions: the comparison proves something.
  size_t rejects = 0, egress = 0;
  for (const Record& w : want) {
    rejects += w.at("action") == "REJECT";
    egress += w.at("flow-direction") == "egress";
  }
  EXPECT_GT(rejects, 0u);
  EXPECT_GT(egress, 0u);
  // statewalld's times are the wall clock's, in one window of an hour unless the run crossed
  // the hour (then a flow may have two records, and only the totals can be compared).
  bool one_window = true;
  for (const auto& [s, e] : times) {
    EXPECT_LE(before, s);
    EXPECT_LE(s, e);
    EXPECT_LE(e, after);
    one_window = one_window && s / 3600 == before / 3600 && e / 3600 == before / 3600;
  }
  if (one_window) {
    EXPECT_EQ(sorted(got), sorted(want));
  } else {
    GTEST_SKIP() << "the run crossed an hour boundary: records split by window";
  }
  const json c = json::parse(readText(dir_ / "counters.json"));
  EXPECT_EQ(c["flow_log"]["records"], got.size()) << c.dump(2);
  EXPECT_EQ(c["flow_log"]["dropped"], 0);

  // `statewall flowlogs` reads statewalld's log as it reads AWS's and replay's: every record
  // judged, and the policy that ran reproduces every logged action (issue 18).
  RunResult f =
      run({statewallPath(), "flowlogs", "--policy", policy_, log, "--json"}, dir_, "flowlogs");
  ASSERT_EQ(f.code, 0) << f.out << f.err;
  const json fj = json::parse(f.out);
  EXPECT_EQ(fj["records"]["read"], got.size()) << fj["records"].dump(2);
  EXPECT_EQ(fj["records"]["judged"], got.size());
  EXPECT_EQ(fj["agreement"]["agree"], got.size()) << fj["agreement"].dump(2);
  EXPECT_EQ(fj["agreement"]["disagreements"].size(), 0u);
}

TEST_F(FlowLogTest, JsonLinesEqualReplaysWithRuleAndReason) {
  makeTrace(200, 30);
  const std::vector<Record> want = parseJsonl(replayLog({"--flow-log-jsonl"}));
  const uint64_t before = static_cast<uint64_t>(std::time(nullptr));
  const std::string log = dir_ / "statewalld.jsonl";
  RunResult r = run(applianceArgv({"--exit-when-idle", "300", "--flow-log", log,
                                   "--flow-log-interval", "3600", "--flow-log-jsonl"}),
                    dir_, "statewalld");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const uint64_t after = static_cast<uint64_t>(std::time(nullptr));
  const std::vector<Record> got = parseJsonl(readText(log));
  ASSERT_GT(want.size(), 20u);
  size_t rules = 0;
  for (const Record& w : want)
    rules += w.count("rule");
  EXPECT_GT(rules, 0u);
  if (before / 3600 != after / 3600) GTEST_SKIP() << "the run crossed an hour boundary";
  EXPECT_EQ(sorted(got), sorted(want));
}

// Two lcores, each receiving half of the flows (both directions of a flow on one queue, as
// symmetric RSS keeps them): each record comes from the one lcore that saw its packets, so the
// records are still exactly replay's (in another order).
TEST_F(FlowLogTest, TwoLcoresWriteTheSameRecords) {
  makeTrace(300, 40);
  const std::string want_text = replayLog({});
  std::vector<Frame> part[2];
  for (const Frame& f : readPcap(trace_)) {
    dataplane::ParsedPacket p;
    dataplane::parsePacket(f.data(), static_cast<uint32_t>(f.size()),
                           dataplane::LinkType::kEthernet, &p);
    const uint64_t x = rules::IpAddrHash{}(p.src), y = rules::IpAddrHash{}(p.dst);
    part[((std::min(x, y) * 0x9e3779b97f4a7c15ull) ^ std::max(x, y)) % 2].push_back(f);
  }
  ASSERT_FALSE(part[0].empty());
  ASSERT_FALSE(part[1].empty());
  const std::string in0 = dir_ / "in0.pcap", in1 = dir_ / "in1.pcap";
  writePcap(in0, part[0]);
  writePcap(in1, part[1]);
  const uint64_t before = static_cast<uint64_t>(std::time(nullptr));
  const std::string log = dir_ / "statewalld.log";
  RunResult r = run(
      applianceArgv({"--exit-when-idle", "300", "--flow-log", log, "--flow-log-interval", "3600"},
                    {"net_pcap0,rx_pcap=" + in0 + ",rx_pcap=" + in1 +
                         ",tx_pcap=" + (dir_ / "o00.pcap") + ",tx_pcap=" + (dir_ / "o01.pcap"),
                     "net_pcap1,rx_pcap=" + empty_ + ",rx_pcap=" + empty_ +
                         ",tx_pcap=" + (dir_ / "o10.pcap") + ",tx_pcap=" + (dir_ / "o11.pcap")},
                    2),
      dir_, "statewalld2");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const uint64_t after = static_cast<uint64_t>(std::time(nullptr));
  const json c = json::parse(readText(dir_ / "counters.json"));
  ASSERT_EQ(c["lcores"].size(), 2u);
  for (const auto& l : c["lcores"])
    EXPECT_GT(l["rx_packets"].get<uint64_t>(), 0u) << c.dump(2);
  if (before / 3600 != after / 3600) GTEST_SKIP() << "the run crossed an hour boundary";
  EXPECT_EQ(sorted(parseText(readText(log))), sorted(parseText(want_text)));
}

// "-": the records alone on standard output (statewalld's messages go to standard error); a
// file that cannot be created is a setup error that names it.
TEST_F(FlowLogTest, StandardOutputHoldsOnlyTheRecordsAndABadPathIsAnError) {
  makeTrace(50, 10);
  const std::string want = replayLog({});
  RunResult r = run(
      applianceArgv({"--exit-when-idle", "300", "--flow-log", "-", "--flow-log-interval", "3600"}),
      dir_, "stdout");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), want.substr(0, want.find('\n'))) << r.out;
  EXPECT_EQ(r.out.find("statewalld:"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("statewalld: running"), std::string::npos) << r.err;
  EXPECT_EQ(parseText(r.out).size(), parseText(want).size());

  const std::string bad = dir_ / "no-such-dir/x.log";
  r = run(applianceArgv({"--exit-when-idle", "300", "--flow-log", bad}), dir_, "bad");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--flow-log " + bad + ": cannot create"), std::string::npos) << r.err;
}

// Many denied flows (a port scan of thousands of ports), an lcore table of 8 flows and a ring of
// 4 records: most records cannot be handed over and are dropped, and counted; every packet is
// still judged and the allowed ones forwarded.
TEST_F(FlowLogTest, TinyRingDropsRecordsCountedNeverPackets) {
  makeTrace(100, 3000);
  const std::string replay = dir_ / "replay-allowed.pcap";
  RunResult rr = run({statewallPath(), "replay", "--policy", policy_, trace_, "--allowed", replay},
                     dir_, "replay-allowed");
  ASSERT_EQ(rr.code, 0) << rr.err;
  const size_t allowed = readPcap(replay).size();

  const std::string socket = dir_ / "ctl.sock";
  Process p(
      applianceArgv({"--flow-log", dir_ / "flood.log", "--flow-log-flows", "8", "--flow-log-ring",
                     "4", "--control-socket", socket, "--idle-sleep", "1000"}),
      dir_ / "d.out", dir_ / "d.err");
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(p.waitForOutput("statewalld: running", 60s)) << p.out() << p.err();
  control::ClientOptions o;
  o.unix_socket = socket;
  std::string metrics;
  auto metric = [&](const std::string& name) -> uint64_t {
    const size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? 0 : std::stoull(metrics.substr(at + name.size() + 2));
  };
  // Every packet received and the flow log's counters in /metrics (a bounded wait).
  const bool seen = statewall::testing::waitFor(
      [&] {
        control::ClientResponse r;
        if (!control::ControlClient(o).request("GET", "/metrics", "", "", &r).ok()) return false;
        metrics = r.body;
        return metrics.find(
                   "statewall_port_rx_packets_total{port=\"inside\",device=\"net_pcap0\"} " +
                   std::to_string(packets_) + "\n") != std::string::npos &&
               metric("statewall_flow_log_dropped_total") > 0;
      },
      60s, 20ms);
  EXPECT_TRUE(seen) << metrics;
  EXPECT_GT(metric("statewall_flow_log_dropped_total"), 0u) << metrics;
  EXPECT_NE(metrics.find("# TYPE statewall_flow_log_records_total counter"), std::string::npos);
  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(60s), 0) << p.out() << p.err();
  const json c = json::parse(readText(dir_ / "counters.json"));
  EXPECT_EQ(c["io"]["rx_packets"], packets_) << c.dump(2);
  EXPECT_EQ(c["io"]["tx_packets"], allowed);
  EXPECT_EQ(c["io"]["tx_packets"].get<uint64_t>() + c["io"]["denied"].get<uint64_t>(), packets_);
  EXPECT_GT(c["flow_log"]["dropped"].get<uint64_t>(), 0u);
  EXPECT_GT(c["flow_log"]["records"].get<uint64_t>(), 0u);
  EXPECT_NE(p.out().find("flow log: "), std::string::npos) << p.out();
}

}  // namespace
}  // namespace statewall::dpdk_test
