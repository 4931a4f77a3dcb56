// `statewall gen --encap` and `statewall replay --decap` as a user runs them: a trace of two
// connections inside VXLAN (and other tunnels) is judged by the inner ports with --decap (443
// allowed, 3306 denied) and as the outer tunnel packets without it; bad flags are refused.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "common/run_command.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using testing::TempDir;

const std::string kBinary = std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";
const std::string kRepo = std::string(STATEWALL_EXAMPLES_DIR) + "/..";
const char* kPolicy = "--policy examples/three-tier.yaml";

struct CliRun {
  int rc = -1;
  std::string out;
  std::string err;
};

CliRun statewall(const std::string& args) {
  const auto r = statewall::testing::runShell("cd '" + kRepo + "' && '" + kBinary + "' " + args);
  return CliRun{r.exit_code, r.out, r.err};
}

std::vector<nlohmann::json> jsonLines(const std::string& path) {
  std::istringstream in(testing::readText(path));
  std::vector<nlohmann::json> v;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

// Generates the two-connection trace inside `encap`; returns the pcap's path.
std::string genTrace(const TempDir& dir, const std::string& encap, const std::string& name,
                     bool v6 = false) {
  const std::string path = dir.file(name + ".pcap");
  const std::string client = v6 ? "[2001:db8:ff00::7]" : "198.51.100.7";
  const std::string server = v6 ? "[2001:db8:1::10]" : "10.0.1.10";
  const CliRun g =
      statewall("gen -q -o '" + path + "' --encap " + encap + " --flow 'tcp " + client + " -> " +
                server + ":443' --flow 'tcp " + client + " -> " + server + ":3306 at=1'");
  EXPECT_EQ(g.rc, 0) << g.err;
  return path;
}

TEST(DecapCli, InnerConnectionsAreJudgedByTheirOwnPorts) {
  TempDir dir;
  struct Case {
    std::string encap;
    bool v6;
  } cases[] = {{"vlan:100,vxlan:vni=42", false},
               {"geneve:vni=7", false},
               {"gre:key=5", false},
               {"erspan:session=3", false},
               {"gtp-u:teid=0x1234", false},
               {"ayiya", false},
               {"ip-in-ip", false},
               {"aruba", false},
               {"vlan:5,aruba:proto=0x8210", true},
               {"teredo", true},
               {"vxlan:vni=1,vlan:7,gre,ip-in-ip", false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.encap);
    const std::string trace = genTrace(dir, c.encap, "t", c.v6);
    const std::string verdicts = dir.file("v.jsonl");
    const std::string conns = dir.file("c.jsonl");
    CliRun r = statewall(std::string("replay ") + kPolicy + " '" + trace +
                         "' --decap --verdicts '" + verdicts + "' --connections '" + conns + "'");
    ASSERT_EQ(r.rc, 0) << r.err;
    size_t allowed_443 = 0, denied_3306 = 0;
    for (const auto& v : jsonLines(verdicts)) {
      if (v["dport"] == 443 && v["verdict"] == "allow") ++allowed_443;
      if (v["dport"] == 3306 && v["reason"] == "deny-sg") ++denied_3306;
    }
    EXPECT_GT(allowed_443, 0u);
    EXPECT_EQ(denied_3306, 3u);  // the SYN and its two retransmissions
    // The connection log names the inner connections (the tunnels' own records, kind "tunnel",
    // are listed too: left out here).
    std::vector<nlohmann::json> cl;
    for (auto& rec : jsonLines(conns)) {
      if (rec.value("kind", "") != "tunnel") cl.push_back(std::move(rec));
    }
    ASSERT_GE(cl.size(), 2u);
    EXPECT_EQ(cl[0]["id.resp_p"], 443);
    EXPECT_EQ(cl[0]["conn_state"], "SF");
    EXPECT_EQ(cl[1]["id.resp_p"], 3306);
    EXPECT_EQ(cl[1]["first_reason"], "deny-sg");

    // Without --decap: only the unprotected tunnel endpoints, every packet allowed.
    r = statewall(std::string("replay ") + kPolicy + " '" + trace + "' --json");
    ASSERT_EQ(r.rc, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["verdicts"]["deny"]["packets"], 0);
  }
}

// Cisco FabricPath and MetaData are layer-2.5 headers: unwrapped with or without --decap, and
// named in --verdicts' "encap"; inside a VXLAN frame too.
TEST(DecapCli, CiscoLayer25HeadersAreUnwrappedAndNamed) {
  TempDir dir;
  const std::string trace = genTrace(dir, "fabricpath:5,vlan:12,cmd:42", "t");
  const std::string verdicts = dir.file("v.jsonl");
  CliRun r = statewall(std::string("replay ") + kPolicy + " '" + trace + "' --verdicts '" +
                       verdicts + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  size_t denied_3306 = 0;
  for (const auto& v : jsonLines(verdicts)) {
    EXPECT_EQ(v["encap"], nlohmann::json::parse(R"(["fabricpath:5","vlan:12","cmd:42"])"));
    if (v["dport"] == 3306 && v["reason"] == "deny-sg") ++denied_3306;
  }
  EXPECT_EQ(denied_3306, 3u);

  const std::string inner = genTrace(dir, "vxlan:vni=9,fabricpath:1,cmd:7", "u");
  r = statewall(std::string("replay ") + kPolicy + " '" + inner + "' --decap --verdicts '" +
                verdicts + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto lines = jsonLines(verdicts);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0]["encap"], nlohmann::json::parse(R"(["vxlan:vni=9","fabricpath:1","cmd:7"])"));
}

// A non-standard VXLAN port is a tunnel only once --tunnel-port names it.
TEST(DecapCli, TunnelPortFlag) {
  TempDir dir;
  const std::string trace = genTrace(dir, "vxlan:vni=42:port=8472", "t");
  CliRun r = statewall(std::string("replay ") + kPolicy + " '" + trace + "' --decap --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["verdicts"]["deny"]["packets"], 0);
  r = statewall(std::string("replay ") + kPolicy + " '" + trace +
                "' --decap --tunnel-port vxlan=8472 --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["verdicts"]["deny"]["packets"], 3);

  r = statewall(std::string("replay ") + kPolicy + " '" + trace + "' --decap --tunnel-port vx=1");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("'vx' is not a UDP tunnel"), std::string::npos) << r.err;
  r = statewall(std::string("replay ") + kPolicy + " '" + trace + "' --tunnel-port vxlan=8472");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--tunnel-port needs --decap"), std::string::npos) << r.err;
}

// diff --decap compares the policies on the inner connections: without the HTTPS rule the 443
// connection inside VXLAN breaks; without --decap only the unprotected tunnel is seen.
TEST(DecapCli, DiffJudgesTheInnerConnections) {
  TempDir dir;
  const std::string trace = genTrace(dir, "vxlan:vni=42", "t");
  std::string policy = testing::readText(kRepo + "/examples/three-tier.yaml");
  const size_t at = policy.find("      - {proto: tcp, ports: 443, from: [0.0.0.0/0");
  ASSERT_NE(at, std::string::npos);
  policy.erase(at, policy.find('\n', at) + 1 - at);
  const std::string no_https = dir.file("no-https.yaml");
  testing::writeText(no_https, policy);
  const std::string base =
      std::string("diff ") + kPolicy + " --against '" + no_https + "' '" + trace + "' --json";
  CliRun r = statewall(base + " --decap");
  EXPECT_EQ(r.rc, 1) << r.err;  // the new policy allows less
  const auto with = nlohmann::json::parse(r.out);
  EXPECT_GT(with["summary"]["allowed_to_denied_packets"].get<int>(), 0) << r.out;
  EXPECT_EQ(with["summary"]["connections_that_break"], 1) << r.out;
  r = statewall(base);
  EXPECT_EQ(r.rc, 0) << r.err;
  const auto without = nlohmann::json::parse(r.out);
  EXPECT_EQ(without["summary"]["changed_packets"], 0) << r.out;
}

TEST(DecapCli, GenRefusesEncapsulationsItCannotFrame) {
  TempDir dir;
  const std::string out = dir.file("x.pcap");
  struct Case {
    std::string args;
    std::string want;
  } cases[] = {
      {"--encap vxlan:42", "vni=N"},
      {"--encap wormhole", "unknown encapsulation"},
      {"--encap gre,vlan:5", "only vxlan, geneve and erspan carry"},
      {"--link raw --encap vlan:5", "need a link with an EtherType"},
      {"--encap pw-eth", "follows an MPLS label"},
      {"--encap mpls:16,vlan:5", "after an MPLS label"},
      {"--encap pppoe:1,vlan:5", "PPPoE must be the last"},
      {"--encap teredo,vxlan", "innermost tunnel"},
      {"--encap teredo", "carries IPv6 only"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const CliRun r =
        statewall("gen -q -o '" + out + "' " + c.args + " --flow 'tcp 10.0.0.1 -> 10.0.0.2:80'");
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.err.find(c.want), std::string::npos) << r.err;
  }
}

// PPP traces: written with the PPP link types and read back.
TEST(DecapCli, PppLinkTypes) {
  TempDir dir;
  for (const char* link : {"ppp", "ppp-hdlc"}) {
    SCOPED_TRACE(link);
    const std::string trace = dir.file(std::string(link) + ".pcap");
    CliRun r = statewall("gen -q -o '" + trace + "' --link " + link +
                         " --flow 'tcp 198.51.100.7 -> 10.0.1.10:3306'");
    ASSERT_EQ(r.rc, 0) << r.err;
    r = statewall(std::string("replay ") + kPolicy + " '" + trace + "' --json");
    ASSERT_EQ(r.rc, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["reasons"]["deny-sg"]["packets"], 3) << r.out;
  }
}

}  // namespace
}  // namespace statewall::sim
