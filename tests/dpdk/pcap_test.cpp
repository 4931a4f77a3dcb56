// statewalld on net_pcap vdevs: a trace in, pcaps out. The packets forwarded must be exactly, byte
// for byte and in order, those `statewall replay --allowed` writes for the same policy and trace
// (with two lcores: the same packets, in the same order within each flow). Also: the counters by
// reason, the mbuf pool full again at exit, SIGTERM, non-IP handling and setup errors.
//
// The appliance's clock is real time and replay's is the trace's, so the traces here span a few
// seconds at most: no idle timeout can expire in either, and the verdicts must agree.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "dpdk_test_util.hpp"
#include "pcap_util.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/sim/gen.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;
using dataplane::Bytes;
using dataplane::ipAddr;

// "" when the two packet sequences are equal, else where they first differ (short: a mismatch
// must not print megabytes of frames).
std::string firstDifference(const std::vector<Frame>& got, const std::vector<Frame>& want) {
  const size_t n = std::min(got.size(), want.size());
  for (size_t i = 0; i < n; ++i)
    if (got[i] != want[i])
      return "packet " + std::to_string(i) + " differs (" + std::to_string(got[i].size()) + " vs " +
             std::to_string(want[i].size()) + " bytes)";
  if (got.size() != want.size())
    return std::to_string(got.size()) + " packets where " + std::to_string(want.size()) +
           " were expected";
  return "";
}

// The policy, a generated trace (random mix, a jumbo-frame flow, ARP, a non-IP frame and a
// malformed packet) and an empty capture for the other port's rx.
class PcapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "policy.yaml";
    writeText(policy_, kGeneratorPolicy);
    empty_ = dir_ / "empty.pcap";
    writePcap(empty_, {});

    sim::GenOptions g;
    g.seed = 7;
    g.flows = 400;
    g.duration_s = 2.0;
    g.mix = sim::GenOptions::defaultMix();
    // An idle gap longer than a timeout would expire in replay (trace time) but not in the
    // appliance (real time).
    g.mix[static_cast<size_t>(sim::Scenario::kTcpIdle)] = 0;
    g.flood_packets = 200;
    g.scan_ports = 50;
    // Frames far longer than one mbuf: net_pcap hands them over as mbuf chains.
    auto jumbo = sim::parseFlowSpec(
        "tcp 198.51.100.77:40777 -> 10.0.1.10:443 at=0.5 mss=8960 req=9000 resp=30000");
    ASSERT_TRUE(jumbo) << jumbo.message();
    g.explicit_flows.push_back(*jumbo);
    sim::GenStats st;
    const std::string gen = dir_ / "gen.pcap";
    ASSERT_EQ(sim::writeTrace(g, gen, &st).message(), "");

    frames_ = readPcap(gen);
    ASSERT_GT(frames_.size(), 1000u);
    const size_t n = frames_.size();
    frames_.insert(frames_.begin() + static_cast<long>(n / 3),
                   dataplane::buildArp(
                       {.sender_ip = ipAddr("198.51.100.9"), .target_ip = ipAddr("10.0.1.10")}));
    frames_.insert(frames_.begin() + static_cast<long>(n / 2),
                   dataplane::buildEthertype(0x88b5, Bytes(46, 0xab)));  // local experimental
    Bytes bad = dataplane::buildTcp({.src = ipAddr("198.51.100.3"),
                                     .dst = ipAddr("10.0.1.10"),
                                     .dport = 443,
                                     .flags = dataplane::kSyn});
    bad[14] = 0x44;  // IPv4 header length 16 bytes: malformed
    frames_.insert(frames_.begin() + static_cast<long>(2 * n / 3), bad);
    trace_ = dir_ / "trace.pcap";
    writePcap(trace_, frames_, 1700000000ull * 1000000000ull);
  }

  // `statewall replay --allowed`: the reference.
  std::vector<Frame> replayAllowed() {
    const std::string allowed = dir_ / "replay-allowed.pcap";
    RunResult r = run(
        {statewallPath(), "replay", "--policy", policy_, trace_, "--allowed", allowed, "--json"},
        dir_, "replay");
    EXPECT_EQ(r.code, 0) << r.err;
    replay_json_ = r.out;
    return readPcap(allowed);
  }

  // Runs statewalld to completion (--exit-when-idle) and returns its counters file.
  nlohmann::json runAppliance(const std::vector<std::string>& vdevs, unsigned lcores,
                              const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {statewalldPath()};
    for (const auto& a : ealArgs(lcores, "pcap"))
      argv.push_back(a);
    for (const auto& v : vdevs)
      argv.push_back("--vdev=" + v);
    const std::string counters = dir_ / "counters.json";
    const std::vector<std::string> app = {"--",
                                          "--policy",
                                          policy_,
                                          "--inside",
                                          "net_pcap0",
                                          "--outside",
                                          "net_pcap1",
                                          "--lcores",
                                          std::to_string(lcores),
                                          "--exit-when-idle",
                                          "300",
                                          "--counters-file",
                                          counters};
    argv.insert(argv.end(), app.begin(), app.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunResult r = run(argv, dir_, "statewalld");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    appliance_out_ = r.out;
    std::string text = readText(counters);
    if (text.empty()) {
      ADD_FAILURE() << "no counters file; stdout:\n" << r.out << "\nstderr:\n" << r.err;
      return nlohmann::json::object();
    }
    return nlohmann::json::parse(text);
  }

  // Checks what must hold for any run over the whole trace.
  void checkCounters(const nlohmann::json& c, size_t allowed) {
    ASSERT_TRUE(c.contains("reasons")) << c.dump(2);
    EXPECT_EQ(c["packets_in"], frames_.size());
    EXPECT_EQ(c["allowed"], allowed);
    uint64_t sum = 0;
    for (const auto& [code, v] : c["reasons"].items())
      sum += v["packets"].get<uint64_t>();
    EXPECT_EQ(sum, frames_.size());
    EXPECT_EQ(c["io"]["rx_packets"], frames_.size());
    EXPECT_EQ(c["io"]["tx_packets"], allowed);
    EXPECT_EQ(c["io"]["tx_dropped"], 0);
    EXPECT_EQ(c["io"]["denied"], frames_.size() - allowed);
    EXPECT_GT(c["io"]["linearised"].get<uint64_t>(), 0u) << "the jumbo frames came as chains";
    EXPECT_EQ(c["io"]["oversize"], 0);
    EXPECT_EQ(c["mbuf_pool"]["full"], true) << c["mbuf_pool"].dump();
    EXPECT_EQ(c["mbuf_pool"]["size"], c["mbuf_pool"]["available"]);
    // The mix must exercise both verdicts and several reasons, or the comparison proves little.
    EXPECT_GT(c["reasons"]["allow-rule"]["packets"].get<uint64_t>(), 0u);
    EXPECT_GT(c["reasons"]["allow-tracked"]["packets"].get<uint64_t>(), 0u);
    EXPECT_GT(c["reasons"]["deny-sg"]["packets"].get<uint64_t>(), 0u);
    EXPECT_EQ(c["reasons"]["deny-malformed"]["packets"], 2) << "the bad IPv4 header and 0x88b5";
  }

  // Packets and bytes by reason in replay's --json summary must equal the appliance's.
  void compareReasons(const nlohmann::json& c) {
    const nlohmann::json replay = nlohmann::json::parse(replay_json_, nullptr, false);
    ASSERT_FALSE(replay.is_discarded()) << replay_json_;
    const nlohmann::json* reasons = nullptr;
    if (replay.contains("reasons")) reasons = &replay["reasons"];
    ASSERT_NE(reasons, nullptr) << "no 'reasons' in replay --json:\n" << replay_json_;
    for (std::string_view code : dataplane::kReasonCodes) {
      const std::string k(code);
      ASSERT_TRUE(reasons->contains(k)) << k << " missing in replay --json";
      EXPECT_EQ(c["reasons"][k]["packets"], (*reasons)[k]["packets"]) << k;
      EXPECT_EQ(c["reasons"][k]["bytes"], (*reasons)[k]["bytes"]) << k;
    }
  }

  TempDir dir_;
  std::string policy_, empty_, trace_;
  std::vector<Frame> frames_;
  std::string replay_json_;
  std::string appliance_out_;
};

TEST_F(PcapTest, OneLcoreForwardsExactlyWhatReplayAllows) {
  const std::vector<Frame> expected = replayAllowed();
  ASSERT_FALSE(expected.empty());
  ASSERT_LT(expected.size(), frames_.size());

  const std::string out0 = dir_ / "out0.pcap", out1 = dir_ / "out1.pcap";
  nlohmann::json c = runAppliance({"net_pcap0,rx_pcap=" + trace_ + ",tx_pcap=" + out0,
                                   "net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + out1},
                                  1);
  // Every packet entered on the inside port, so everything allowed left by the outside port.
  const std::vector<Frame> got = readPcap(out1);
  EXPECT_TRUE(readPcap(out0).empty());
  EXPECT_EQ(firstDifference(got, expected), "") << "forwarded vs replay --allowed";
  checkCounters(c, expected.size());
  compareReasons(c);
  EXPECT_NE(appliance_out_.find("mbuf pool: "), std::string::npos);
  EXPECT_NE(appliance_out_.find("(full)"), std::string::npos) << appliance_out_;
}

// Flow identity for the two-lcore test: the unordered address pair, so both directions of a
// connection (and its fragments and the ICMP errors its endpoints send) stay together.
uint64_t pairKey(const Frame& f) {
  dataplane::ParsedPacket p;
  dataplane::parsePacket(f.data(), static_cast<uint32_t>(f.size()), dataplane::LinkType::kEthernet,
                         &p);
  if (p.l3 != dataplane::L3::kIpv4 && p.l3 != dataplane::L3::kIpv6) return 0;
  auto h = [](const rules::IpAddr& a) { return rules::IpAddrHash{}(a); };
  const uint64_t x = h(p.src), y = h(p.dst);
  return (std::min(x, y) * 0x9e3779b97f4a7c15ull) ^ std::max(x, y);
}

TEST_F(PcapTest, TwoLcoresForwardWhatReplayAllowsInFlowOrder) {
  const std::vector<Frame> expected = replayAllowed();
  ASSERT_FALSE(expected.empty());

  // Two rx queues on the inside port, one capture each, split by flow as symmetric RSS would:
  // both lcores forward at once and share the connection table.
  std::vector<Frame> part[2];
  for (const Frame& f : frames_)
    part[pairKey(f) % 2].push_back(f);
  ASSERT_FALSE(part[0].empty());
  ASSERT_FALSE(part[1].empty());
  const std::string in0 = dir_ / "in0.pcap", in1 = dir_ / "in1.pcap";
  writePcap(in0, part[0]);
  writePcap(in1, part[1]);
  const std::string o00 = dir_ / "o00.pcap", o01 = dir_ / "o01.pcap", o10 = dir_ / "o10.pcap",
                    o11 = dir_ / "o11.pcap";
  nlohmann::json c = runAppliance(
      {"net_pcap0,rx_pcap=" + in0 + ",rx_pcap=" + in1 + ",tx_pcap=" + o00 + ",tx_pcap=" + o01,
       "net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + o10 + ",tx_pcap=" + o11},
      2);
  EXPECT_TRUE(readPcap(o00).empty());
  EXPECT_TRUE(readPcap(o01).empty());
  ASSERT_EQ(c["lcores"].size(), 2u);
  for (const auto& l : c["lcores"])
    EXPECT_GT(l["rx_packets"].get<uint64_t>(), 0u) << c.dump(2);

  // Per flow, the forwarded packets in order must be replay's allowed packets of that flow.
  std::map<uint64_t, std::vector<Frame>> want, got;
  for (const Frame& f : expected)
    want[pairKey(f)].push_back(f);
  size_t total = 0;
  for (const std::string& path : {o10, o11})
    for (Frame& f : readPcap(path)) {
      ++total;
      got[pairKey(f)].push_back(std::move(f));
    }
  EXPECT_EQ(total, expected.size());
  EXPECT_EQ(got.size(), want.size());
  size_t flows_differing = 0;
  std::string first;
  for (const auto& [key, frames] : want) {
    auto it = got.find(key);
    const std::string d =
        it == got.end() ? "not forwarded at all" : firstDifference(it->second, frames);
    if (!d.empty() && flows_differing++ == 0) first = d;
  }
  EXPECT_EQ(flows_differing, 0u) << "flows whose forwarded packets differ from replay's; the "
                                    "first: "
                                 << first;
  checkCounters(c, expected.size());
  compareReasons(c);
}

// ARP always passes; another EtherType is dropped (deny-malformed) unless --pass-non-ip.
TEST_F(PcapTest, NonIpFrames) {
  const std::vector<Frame> frames = {
      dataplane::buildArp({}),
      dataplane::buildEthertype(0x88b5, Bytes(46, 0xcd)),
      dataplane::buildArp({.op = 2}),
  };
  const std::string in = dir_ / "nonip.pcap";
  writePcap(in, frames);
  for (bool pass : {false, true}) {
    SCOPED_TRACE(pass ? "--pass-non-ip" : "default");
    const std::string out0 = dir_ / "n0.pcap", out1 = dir_ / "n1.pcap";
    std::vector<std::string> extra;
    if (pass) extra.push_back("--pass-non-ip");
    nlohmann::json c = runAppliance({"net_pcap0,rx_pcap=" + in + ",tx_pcap=" + out0,
                                     "net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + out1},
                                    1, extra);
    std::vector<Frame> want = {frames[0]};
    if (pass) want.push_back(frames[1]);
    want.push_back(frames[2]);
    EXPECT_EQ(firstDifference(readPcap(out1), want), "");
    EXPECT_EQ(c["packets_in"], 3);
    EXPECT_EQ(c["reasons"]["deny-malformed"]["packets"], pass ? 0 : 1);
    EXPECT_EQ(c["mbuf_pool"]["full"], true);
  }
}

// SIGTERM: rx stops, the final counters by reason are printed and written, the pool is full.
TEST_F(PcapTest, SigtermPrintsFinalCounters) {
  const std::string out0 = dir_ / "s0.pcap", out1 = dir_ / "s1.pcap";
  const std::string counters = dir_ / "sig.json";
  std::vector<std::string> argv = {statewalldPath()};
  for (const auto& a : ealArgs(1, "sig"))
    argv.push_back(a);
  argv.push_back("--vdev=net_pcap0,rx_pcap=" + trace_ + ",tx_pcap=" + out0);
  argv.push_back("--vdev=net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + out1);
  const std::vector<std::string> app = {"--",   "--policy",        policy_, "--inside",
                                        "0",    "--outside",       "1",     "--stats-interval",
                                        "0.05", "--counters-file", counters};
  argv.insert(argv.end(), app.begin(), app.end());
  Process p(argv, dir_ / "sig.out", dir_ / "sig.err");
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(p.waitForOutput("statewalld: running", 60s)) << p.out() << p.err();
  // Let it take the whole trace (the stats line shows the count), then stop it.
  const std::string done = " in " + std::to_string(frames_.size()) + " (";
  EXPECT_TRUE(p.waitForOutput(done, 60s)) << p.out();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
  const std::string out = p.out();
  EXPECT_NE(out.find("Terminated: stopping"), std::string::npos) << out;
  for (std::string_view code : dataplane::kReasonCodes)
    EXPECT_NE(out.find("  " + std::string(code) + " "), std::string::npos) << code;
  const nlohmann::json c = nlohmann::json::parse(readText(counters));
  EXPECT_EQ(c["packets_in"], frames_.size());
  EXPECT_EQ(c["mbuf_pool"]["full"], true);
  EXPECT_EQ(readPcap(out1).size(), c["io"]["tx_packets"].get<size_t>());
}

// Setup errors end with exit code 2 and a message that says what to change.
TEST_F(PcapTest, SetupErrors) {
  const std::string v0 = "--vdev=net_pcap0,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / "e0.pcap");
  const std::string v1 = "--vdev=net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / "e1.pcap");
  struct Case {
    unsigned lcores;                     // worker lcores EAL gets
    std::vector<std::string> eal_extra;  // after the common EAL args
    std::vector<std::string> app;        // after --policy
    std::string expect;
  };
  const std::vector<Case> cases = {
      {1,
       {v0, v1},
       {"--inside", "net_pcap0", "--outside", "net_pcap7"},
       "no DPDK port 'net_pcap7'"},
      {2, {v0, v1}, {"--inside", "0", "--outside", "1", "--lcores", "2"}, "1 tx queue(s)"},
      {1, {v0, v1}, {"--inside", "0", "--outside", "1", "--lcores", "2"}, "needs 2 worker lcores"},
      {1,
       {v0, v1},
       {"--inside", "0", "--outside", "1", "--mbufs", "100"},
       "--mbufs 100 is too few"},
      {1,
       {v0, v1, "-m", "64"},
       {"--inside", "0", "--outside", "1", "--mbufs", "200000"},
       "cannot create the mbuf pool"},
      {1, {v0, v1}, {"--inside", "0", "--outside", "0"}, "different"},
  };
  // A table larger than the machine's memory is refused up front (with about 120 bytes per
  // connection, the maximum needs some 240 GiB).
  std::vector<Case> all = cases;
  if (memAvailableBytes() < 200e9)
    all.push_back({1,
                   {v0, v1},
                   {"--inside", "0", "--outside", "1", "--table-size", "2147483647"},
                   "lower --table-size"});
  int i = 0;
  for (const Case& k : all) {
    SCOPED_TRACE(k.expect);
    std::vector<std::string> argv = {statewalldPath()};
    for (const auto& a : ealArgs(k.lcores, "err"))
      argv.push_back(a);
    for (const auto& a : k.eal_extra)
      argv.push_back(a);
    argv.push_back("--");
    argv.push_back("--policy");
    argv.push_back(policy_);
    for (const auto& a : k.app)
      argv.push_back(a);
    RunResult r = run(argv, dir_, "err" + std::to_string(i++), 60s);
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find(k.expect), std::string::npos) << r.err;
  }
  // A policy that does not load: its diagnostics, and nothing forwarded.
  const std::string bad = dir_ / "bad.yaml";
  writeText(bad, "version: 1\ngroups:\n  web:\n    inbound:\n      - {proto: tcp, ports: 99999}\n");
  std::vector<std::string> argv = {statewalldPath()};
  for (const auto& a : ealArgs(1, "bad"))
    argv.push_back(a);
  const std::vector<std::string> app = {v0,         v1,  "--",        "--policy", bad,
                                        "--inside", "0", "--outside", "1"};
  argv.insert(argv.end(), app.begin(), app.end());
  RunResult r = run(argv, dir_, "badpolicy", 60s);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.yaml:5:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace statewall::dpdk_test
