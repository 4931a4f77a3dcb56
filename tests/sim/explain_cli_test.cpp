// `statewall explain` as a user runs it: the text and JSON explanations of chosen packets of the
// example trace as golden files (tests/sim/golden/explain/three-tier.*), selection by flow,
// --no-contrast, the limit, and the exit codes and messages for bad input.
// Regenerate the golden files after an intended change with STATEWALL_UPDATE_GOLDEN=1.
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "common/text_diff.hpp"

#include "common/run_command.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using statewall::testing::firstDifference;

const std::string kBinary = std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";
const std::string kExamples = STATEWALL_EXAMPLES_DIR;
const std::string kGolden = kExamples + "/../tests/sim/golden/explain/";

statewall::testing::CommandResult explain(std::vector<std::string> args) {
  std::vector<std::string> argv = {kBinary, "explain", "--policy", kExamples + "/three-tier.yaml",
                                   kExamples + "/three-tier.pcap"};
  argv.insert(argv.end(), args.begin(), args.end());
  return statewall::testing::runCommand(argv);
}

// One packet of each kind the example trace has (examples/README.md lists its flows):
// untracked HTTPS and its reply, a ping and its tracked reply, SSH from the office (allow-rule,
// tracked reply), SSH from elsewhere (deny-acl by '*', near misses), the port scan (deny-sg, near
// misses), the blocked network (deny-acl by rule 90, the allow rule it shadows), web -> app
// (internal, tracked on both sides), the db reply that needs tracking (stateless: denied),
// web -> db and db -> db (deny-sg), the DNS answer the public ACL drops, the ICMP error (related)
// and the DNS answer that comes after the UDP timeout.
const char* kPackets = "1,2,22,23,56,57,68,70,80,84,96,111,113,116,122,124";

TEST(ExplainCli, ExamplePacketsMatchGoldenFiles) {
  for (bool json : {false, true}) {
    std::vector<std::string> args = {"--packet", kPackets};
    if (json) args.push_back("--json");
    auto r = explain(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    const std::string golden = kGolden + (json ? "three-tier.json" : "three-tier.txt");
    // The JSON names the files as given: make them relative to the repository.
    std::string out = r.out;
    for (size_t at; (at = out.find(kExamples)) != std::string::npos;)
      out.replace(at, kExamples.size(), "examples");
    if (std::getenv("STATEWALL_UPDATE_GOLDEN") != nullptr) testing::writeText(golden, out);
    EXPECT_EQ(firstDifference(out, testing::readText(golden)), "")
        << golden << " differs (STATEWALL_UPDATE_GOLDEN=1 rewrites it after an intended change)";
    if (json) {
      auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["selected"], 16);
      EXPECT_EQ(j["shown"], 16);
      EXPECT_EQ(j["packets_in_trace"], 124);
      EXPECT_EQ(j["complete"], true);
      ASSERT_EQ(j["packets"].size(), 16u);
      EXPECT_EQ(j["packets"][0]["reason"], "allow-untracked");
      EXPECT_EQ(j["packets"][3]["reason"], "allow-tracked");
      EXPECT_EQ(j["packets"][3]["connection"]["opened_by_packet"], 22);
      EXPECT_EQ(j["packets"][7]["near_misses"].size(), 2u);  // the scan: rules 0 and 1
      EXPECT_EQ(j["packets"][10]["stateless"]["changed"], true);
      EXPECT_EQ(j["packets"][14]["reason"], "allow-related");
    }
  }
}

// The capture of real Linux traffic (examples/README.md): the SYN to a port the policy does not
// open (deny-sg, near misses) and the host's RST/ACK, which opens nothing and is INVALID for the
// TCP tracker but passes by the server's outbound rule.
TEST(ExplainCli, LinuxCapturePacketsMatchGoldenFile) {
  auto r = statewall::testing::runCommand({kBinary, "explain", "--policy",
                                           kExamples + "/linux-capture.yaml",
                                           kExamples + "/linux-capture.pcap", "--packet", "23-24"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string golden = kGolden + "linux-capture.txt";
  if (std::getenv("STATEWALL_UPDATE_GOLDEN") != nullptr) testing::writeText(golden, r.out);
  EXPECT_EQ(firstDifference(r.out, testing::readText(golden)), "")
      << golden << " differs (STATEWALL_UPDATE_GOLDEN=1 rewrites it after an intended change)";
  EXPECT_NE(r.out.find("verdict: deny (deny-sg)"), std::string::npos);
  EXPECT_NE(r.out.find("The TCP tracker marks it INVALID"), std::string::npos);
}

TEST(ExplainCli, FlowSelectsBothDirections) {
  auto r = explain({"--flow", "tcp 10.0.2.10 -> 10.0.3.10:5432", "--json", "--no-contrast"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["packets"].size(), 15u);  // packets 95..109
  for (const auto& p : j["packets"]) {
    EXPECT_TRUE(p["stateless"].is_null());
    EXPECT_TRUE(p["index"].get<int>() >= 95 && p["index"].get<int>() <= 109) << p["index"];
  }
  EXPECT_EQ(j["packets"][1]["packet"]["src"], "10.0.3.10");
}

TEST(ExplainCli, EveryPacketIsCappedByTheLimit) {
  auto r = explain({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("packet 100 at"), std::string::npos);
  EXPECT_EQ(r.out.find("packet 101 at"), std::string::npos);
  EXPECT_NE(r.out.find("(explained the first 100 of 124 selected packets"), std::string::npos);
  r = explain({"--limit", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["packets"].size(), 124u);
  EXPECT_EQ(j["truncated"], false);
}

TEST(ExplainCli, BadInputExitsTwoWithAMessage) {
  struct Bad {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Bad> bad = {
      {{"--packet", "0"}, "bad --packet '0'"},
      {{"--packet", "9-3"}, "bad --packet '9-3'"},
      {{"--packet", "125"}, "packet 125 is beyond the end of the trace (124 packets)"},
      {{"--flow", "tcp 1.2.3.4"}, "bad --flow 'tcp 1.2.3.4'"},
      {{"--flow", "udp * -> *:9"}, "no packet of the trace matches the flow 'udp * -> *:9'"},
  };
  for (const Bad& b : bad) {
    auto r = explain(b.args);
    EXPECT_EQ(r.exit_code, 2) << b.message;
    EXPECT_NE(r.err.find(b.message), std::string::npos) << r.err;
  }
  testing::TempDir dir;
  testing::writeText(dir.file("p.yaml"), "version: 1\ngroups: {web: {inbound: [{proto: tcp}]}}\n");
  auto r = statewall::testing::runCommand(
      {kBinary, "explain", "--policy", dir.file("p.yaml"), kExamples + "/three-tier.pcap"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("p.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the policy has errors; nothing explained"), std::string::npos) << r.err;
  testing::writeText(dir.file("t.pcap"), "not a pcap file at all");
  r = statewall::testing::runCommand(
      {kBinary, "explain", "--policy", kExamples + "/three-tier.yaml", dir.file("t.pcap")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("t.pcap"), std::string::npos) << r.err;
  r = statewall::testing::runCommand({kBinary, "explain", kExamples + "/three-tier.pcap"});
  EXPECT_EQ(r.exit_code, 2) << "--policy is required";
}

}  // namespace
}  // namespace statewall::sim
