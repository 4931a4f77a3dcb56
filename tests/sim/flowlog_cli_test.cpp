// `statewall flowlogs` and `statewall gen --flow-log` as a user runs them: the flow logs written
// for a generated workload judge as `statewall replay` judges its trace; `--against` breaks and
// opens the connections `statewall diff` finds on the trace; unused rules; gzip, NODATA, the
// console's --format; broken input exits 2 naming FILE:LINE and judges nothing.
#include <zlib.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_command.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using testing::TempDir;

const std::string kBinary = std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";
const std::string kRepo = std::string(STATEWALL_EXAMPLES_DIR) + "/..";
const std::string kPolicy = kRepo + "/examples/three-tier.yaml";

struct CliRun {
  int rc = -1;
  std::string out, err;
};

CliRun statewall(const std::string& args) {
  const auto r = statewall::testing::runShell("'" + kBinary + "' " + args);
  return CliRun{r.exit_code, r.out, r.err};
}

// A workload over the three-tier example: web, app and database traffic, denied flows (scans, the
// blocked network, SSH from outside the office), IPv6, UDP and ICMP echo. --stop-on-deny makes
// the clients give up after a denied packet, as real stacks do.
std::string genArgs(const std::string& dir, const std::string& policy, uint64_t seed,
                    const std::string& mix, const std::string& extra = "") {
  return "gen -q --seed " + std::to_string(seed) + " --out '" + dir +
         "/w.pcap' --flows 300 --mix " + mix +
         " --clients 198.51.100.0/24,10.0.2.10/32,192.0.2.0/28,203.0.113.0/28,2001:db8:ff00::/64"
         " --servers 10.0.1.10,10.0.1.11,10.0.3.10,2001:db8:1::10 --tcp-ports 443,80,22,5432"
         " --duration 400 --policy '" +
         policy + "' --stop-on-deny --flow-log '" + dir + "/w.log' " + extra;
}

const char* kMix = "tcp=45,tcp-rst=10,refused=5,noanswer=5,udp=10,udp-stream=10,icmp=5,scan=5";

nlohmann::json judge(const std::string& args) {
  CliRun r = statewall("flowlogs --json " + args);
  EXPECT_TRUE(r.rc == 0 || r.rc == 1) << r.err;
  return nlohmann::json::parse(r.out.empty() ? std::string("{}") : r.out);
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// Every record of the generated logs is reproduced: the engine, driven by packets synthesized from
// the records, decides at each interface what the replay of the trace decided.
TEST(FlowLogsCli, GeneratedLogsJudgeAsReplayJudgesTheTrace) {
  TempDir dir;
  // The example policy, and one whose short TCP timeout expires idle connections across windows.
  const std::string short_policy = dir.file("short.yaml");
  testing::writeText(short_policy, replaced(testing::readText(kPolicy), "timeouts: {profile: aws}",
                                            "timeouts: {profile: aws, tcp_established: 120}"));
  struct Case {
    std::string policy;
    uint64_t seed;
    std::string mix;
  };
  for (const Case& c : {Case{kPolicy, 5, kMix}, Case{kPolicy, 6, "tcp=40,flood=2,icmp=10,udp=20"},
                        Case{short_policy, 7, "tcp=30,idle=40,udp-stream=20,icmp=10"}}) {
    CliRun g = statewall(genArgs(dir.path(), c.policy, c.seed, c.mix, "--idle-gap 300"));
    ASSERT_EQ(g.rc, 0) << g.err;
    // The replay of the trace denies some packets: the logs hold REJECT records to reproduce.
    CliRun rp = statewall("replay --json --policy '" + c.policy + "' '" + dir.file("w.pcap") + "'");
    ASSERT_EQ(rp.rc, 0) << rp.err;
    auto replay = nlohmann::json::parse(rp.out);
    auto j = judge("--policy '" + c.policy + "' '" + dir.file("w.log") + "'");
    const uint64_t read = j["records"]["read"];
    ASSERT_GT(read, 100u);
    EXPECT_EQ(j["records"]["judged"], read);
    EXPECT_EQ(j["agreement"]["agree"], read) << j["agreement"].dump(2);
    EXPECT_EQ(j["agreement"]["disagreements"].size(), 0u);
    if (c.mix == kMix) {
      EXPECT_GT(replay["verdicts"]["deny"]["packets"].get<uint64_t>(), 0u);
      EXPECT_NE(testing::readText(dir.file("w.log")).find(" REJECT OK "), std::string::npos);
    }
  }

  // The same logs under another policy: the records it no longer reproduces are named.
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 5, kMix));
  ASSERT_EQ(g.rc, 0) << g.err;
  const std::string other = dir.file("other.yaml");
  testing::writeText(other, replaced(testing::readText(kPolicy), "ports: 443, from: [0.0.0.0/0",
                                     "ports: 8443, from: [0.0.0.0/0"));
  auto j = judge("--policy '" + other + "' '" + dir.file("w.log") + "'");
  EXPECT_GT(j["agreement"]["accept_rejected"].get<uint64_t>(), 0u);
  EXPECT_GT(j["agreement"]["by_cause"]["no-rule"].get<uint64_t>(), 0u);
  bool named = false;
  for (const auto& d : j["agreement"]["disagreements"]) {
    if (d["flow"]["dport"] == 443 && d["logged"] == "ACCEPT" && d["policy"] == "REJECT") {
      named = true;
      EXPECT_NE(d["detail"].get<std::string>().find("deny-sg"), std::string::npos) << d.dump();
      EXPECT_NE(d["where"].get<std::string>().find("w.log:"), std::string::npos) << d.dump();
    }
  }
  EXPECT_TRUE(named) << j["agreement"].dump(2);
}

uint64_t diffCount(const std::string& text, const std::string& what) {
  std::smatch m;
  const std::regex re("([0-9]+) (connections? )?would " + what);
  if (!std::regex_search(text, m, re)) return UINT64_MAX;
  return std::stoull(m[1]);
}

// --against: the connections the new policy breaks and opens are those `statewall diff` finds on
// the workload's trace, grouped by the same rule changes; exit 1 for both.
TEST(FlowLogsCli, AgainstBreaksAndOpensWhatDiffFindsOnTheTrace) {
  TempDir dir;
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 11, "tcp=60,udp=10,icmp=5,scan=5"));
  ASSERT_EQ(g.rc, 0) << g.err;
  std::string text = testing::readText(kPolicy);
  text = replaced(text, "ports: 5432, from: sg:app", "ports: 5433, from: sg:app");
  text = replaced(text, "{rule: 120, action: allow, proto: tcp, ports: 22, from: 203.0.113.0/24}",
                  "{rule: 120, action: allow, proto: tcp, ports: 22, from: 0.0.0.0/0}");
  text = replaced(text, "ports: 22, from: pl:office", "ports: 22, from: 0.0.0.0/0");
  const std::string next = dir.file("next.yaml");
  testing::writeText(next, text);

  CliRun d = statewall("diff --policy '" + kPolicy + "' --against '" + next + "' '" +
                       dir.file("w.pcap") + "'");
  ASSERT_EQ(d.rc, 1) << d.err;
  const uint64_t breaks = diffCount(d.out, "break"), opens = diffCount(d.out, "open");
  ASSERT_NE(breaks, UINT64_MAX) << d.out;
  ASSERT_GT(breaks, 0u);
  ASSERT_GT(opens, 0u);

  CliRun f = statewall("flowlogs --json --policy '" + kPolicy + "' --against '" + next + "' '" +
                       dir.file("w.log") + "'");
  EXPECT_EQ(f.rc, 1) << f.err;
  auto j = nlohmann::json::parse(f.out);
  EXPECT_EQ(j["against"]["break_connections"], breaks);
  EXPECT_EQ(j["against"]["open_connections"], opens);
  bool db = false, ssh = false;
  uint64_t group_breaks = 0, group_opens = 0;
  for (const auto& c : j["against"]["changes"]) {
    const std::string change = c["change"].is_string() ? c["change"].get<std::string>() : "";
    group_breaks += c["break_connections"].get<uint64_t>();
    group_opens += c["open_connections"].get<uint64_t>();
    EXPECT_EQ(c["break_connections"].get<uint64_t>() + c["open_connections"].get<uint64_t>(),
              c["connections"].size());
    for (const auto& conn : c["connections"]) {
      EXPECT_GT(conn["bytes"].get<uint64_t>(), 0u);
      EXPECT_LE(conn["first"].get<uint64_t>(), conn["last"].get<uint64_t>());
      if (conn["effect"] == "breaks") {
        EXPECT_EQ(conn["flow"]["dport"], 5432) << conn.dump();
        EXPECT_NE(change.find("tcp 5432 -> tcp 5433"), std::string::npos) << change;
        db = true;
      } else {
        EXPECT_EQ(conn["flow"]["dport"], 22) << conn.dump();
        ssh = true;
      }
    }
  }
  EXPECT_TRUE(db && ssh) << j["against"].dump(2);
  EXPECT_EQ(group_breaks, breaks);
  EXPECT_EQ(group_opens, opens);

  // Against itself: nothing breaks or opens, exit 0.
  CliRun same = statewall("flowlogs --policy '" + kPolicy + "' --against '" + kPolicy + "' '" +
                          dir.file("w.log") + "'");
  EXPECT_EQ(same.rc, 0) << same.err;
  EXPECT_NE(same.out.find("0 logged connections would break"), std::string::npos) << same.out;
}

// Rule usage: the rules the logged traffic used, per interface, and those it never used.
TEST(FlowLogsCli, UnusedRulesPerInterface) {
  TempDir dir;
  CliRun g = statewall("gen -q --out '" + dir.file("w.pcap") +
                       "' --flow 'tcp 198.51.100.7:40000 -> 10.0.1.10:443 data=2' "
                       "--flow 'tcp 198.51.100.8:40001 -> 10.0.1.10:443 at=90' "
                       "--flow 'tcp 10.0.2.10:41000 -> 10.0.3.10:5432 at=200' --policy '" +
                       kPolicy + "' --flow-log '" + dir.file("w.log") + "'");
  ASSERT_EQ(g.rc, 0) << g.err;
  auto j = judge("--policy '" + kPolicy + "' '" + dir.file("w.log") + "'");
  ASSERT_EQ(j["agreement"]["agree"], j["records"]["judged"]) << j.dump(2);
  for (const auto& r : j["rule_usage"]["rules"]) {
    if (r["rule"] == "web inbound[0]") {
      EXPECT_EQ(r["hits"], 2) << r.dump();  // two connections opened by it, at web-1
      EXPECT_EQ(r["by_interface"]["web-1"], 2) << r.dump();
    }
    if (r["rule"] == "db inbound[0]") {
      EXPECT_EQ(r["by_interface"]["db-1"], 1) << r.dump();
    }
    if (r["rule"] == "web inbound[1]") {
      EXPECT_EQ(r["hits"], 0) << r.dump();
    }
  }
  bool web1 = false, absent = false;
  for (const auto& u : j["rule_usage"]["unused"]) {
    if (u["interface"] == "web-1") {
      web1 = true;
      const auto rules = u["rules"].dump();
      EXPECT_NE(rules.find("web inbound[1]"), std::string::npos) << rules;  // HTTP: not used
      EXPECT_EQ(rules.find("web inbound[0]"), std::string::npos) << rules;  // HTTPS: used
      // HTTPS from 0.0.0.0/0 with all outbound allowed is untracked (AWS): its replies leave by
      // the outbound rule, which is therefore used.
      EXPECT_EQ(rules.find("web outbound[0]"), std::string::npos) << rules;
      const auto acl = u["acl_entries"].dump();
      EXPECT_NE(acl.find("public-acl inbound rule 90"), std::string::npos) << acl;
      EXPECT_EQ(acl.find("public-acl inbound rule 110"), std::string::npos) << acl;
    }
    if (u["interface"] == "web-2") absent = u["records"] == 0;
  }
  EXPECT_TRUE(web1 && absent) << j["rule_usage"].dump(2);
  CliRun t = statewall("flowlogs --policy '" + kPolicy + "' '" + dir.file("w.log") + "'");
  EXPECT_EQ(t.rc, 0) << t.err;
  EXPECT_NE(t.out.find("Unused for "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("not in the logs: "), std::string::npos) << t.out;
}

// gen --flow-log-jsonl: the same records as JSON lines, with the deciding rule and reason.
TEST(FlowLogsCli, GenJsonLines) {
  TempDir dir;
  CliRun g = statewall("gen -q --out '" + dir.file("w.pcap") +
                       "' --flow 'tcp 198.51.100.7:40000 -> 10.0.1.10:443' "
                       "--flow 'tcp 198.51.100.8:40001 -> 10.0.1.10:8000' --policy '" +
                       kPolicy + "' --stop-on-deny --flow-log '" + dir.file("w.jsonl") +
                       "' --flow-log-jsonl");
  ASSERT_EQ(g.rc, 0) << g.err;
  const std::string text = testing::readText(dir.file("w.jsonl"));
  bool allowed = false, denied = false;
  for (size_t at = 0; at < text.size();) {
    const size_t eol = text.find('\n', at);
    auto j = nlohmann::json::parse(text.substr(at, eol - at));
    at = eol + 1;
    EXPECT_EQ(j["version"], 5);
    EXPECT_EQ(j["interface-id"], "web-1");
    if (j["dstport"] == 443 && j["flow-direction"] == "ingress") {
      allowed = true;
      EXPECT_EQ(j["action"], "ACCEPT");
      EXPECT_EQ(j["rule"], "web inbound[0]");
      EXPECT_EQ(j["reason"], "allow-untracked");
    }
    if (j["dstport"] == 8000) {  // no rule of web allows port 8000
      denied = true;
      EXPECT_EQ(j["action"], "REJECT");
      EXPECT_EQ(j["tcp-flags"], 2);
      EXPECT_EQ(j["reason"], "deny-sg");
      EXPECT_FALSE(j.contains("rule"));
    }
  }
  EXPECT_TRUE(allowed && denied) << text;
}

// Broken input: exit 2, the error names FILE:LINE, and nothing is reported.
TEST(FlowLogsCli, BrokenLineExitsTwoNamingTheLine) {
  TempDir dir;
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 3, kMix));
  ASSERT_EQ(g.rc, 0) << g.err;
  std::string text = testing::readText(dir.file("w.log"));
  // Line 6 loses its action.
  size_t at = 0;
  for (int i = 0; i < 5; ++i)
    at = text.find('\n', at) + 1;
  const size_t eol = text.find('\n', at);
  std::string line = text.substr(at, eol - at);
  line = std::regex_replace(line, std::regex(" (ACCEPT|REJECT) "), " MAYBE ");
  text = text.substr(0, at) + line + text.substr(eol);
  const std::string bad = dir.file("bad.log");
  testing::writeText(bad, text);
  CliRun r =
      statewall("flowlogs --policy '" + kPolicy + "' '" + dir.file("w.log") + "' '" + bad + "'");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find(bad + ":6: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ACCEPT or REJECT"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");  // nothing judged from a half-read input
  CliRun missing = statewall("flowlogs --policy '" + kPolicy + "' '" + dir.file("nope.log") + "'");
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.err.find("nope.log"), std::string::npos) << missing.err;
}

// gzip (as S3 delivers), NODATA/SKIPDATA (counted, never judged), and a log without its header
// line read with the console's --format.
TEST(FlowLogsCli, GzipNoDataAndConsoleFormat) {
  TempDir dir;
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 4, kMix));
  ASSERT_EQ(g.rc, 0) << g.err;
  const std::string text = testing::readText(dir.file("w.log"));
  const std::string header = text.substr(0, text.find('\n'));
  const std::string body = text.substr(text.find('\n') + 1);
  auto plain = judge("--policy '" + kPolicy + "' '" + dir.file("w.log") + "'");

  // NODATA and SKIPDATA records in the v5 layout, then gzip.
  const std::string nodata =
      "5 123456789012 web-1 - - - - - - - 1700000000 1700000060 - NODATA - - - - - - - -\n"
      "5 123456789012 app-1 - - - - - - - 1700000000 1700000060 - SKIPDATA - - - - - - - -\n";
  const std::string all = header + "\n" + nodata + body;
  const std::string gz = dir.file("w.log.gz");
  gzFile f = gzopen(gz.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, all.data(), static_cast<unsigned>(all.size()));
  gzclose(f);
  auto j = judge("--policy '" + kPolicy + "' '" + gz + "'");
  EXPECT_EQ(j["records"]["skipped"]["nodata"], 1);
  EXPECT_EQ(j["records"]["skipped"]["skipdata"], 1);
  EXPECT_EQ(j["records"]["judged"], plain["records"]["judged"]);
  EXPECT_EQ(j["agreement"]["agree"], plain["agreement"]["agree"]);
  EXPECT_NE(j["logs"][0]["path"].get<std::string>().find("(gzip)"), std::string::npos);

  // No header line: the default format does not fit (exit 2 at line 1); --format does.
  const std::string bare = dir.file("bare.log");
  testing::writeText(bare, body);
  CliRun r = statewall("flowlogs --policy '" + kPolicy + "' '" + bare + "'");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find(bare + ":1: expected 14 fields"), std::string::npos) << r.err;
  std::string console;
  for (size_t i = 0; i < header.size();) {
    size_t sp = header.find(' ', i);
    if (sp == std::string::npos) sp = header.size();
    console += (console.empty() ? "${" : " ${") + header.substr(i, sp - i) + "}";
    i = sp + 1;
  }
  auto c = judge("--policy '" + kPolicy + "' --format '" + console + "' '" + bare + "'");
  EXPECT_EQ(c["records"]["judged"], plain["records"]["judged"]);
  EXPECT_EQ(c["agreement"]["agree"], plain["agreement"]["agree"]);
}

// Records come in any order within a window (AWS writes them so): the reorder buffer orders them
// by time, SYN before SYN-ACK, client before server. Beyond the window a record is judged at the
// time already reached and counted as late, with a warning naming the first.
TEST(FlowLogsCli, OutOfOrderRecords) {
  TempDir dir;
  // (No ICMP: flow logs do not say which end of an ICMP pair sent the request; records of one
  // second in reverse order would swap them. The README says so.)
  CliRun g =
      statewall(genArgs(dir.path(), kPolicy, 12,
                        "tcp=50,tcp-rst=10,refused=5,noanswer=5,udp=10,udp-stream=10,scan=5"));
  ASSERT_EQ(g.rc, 0) << g.err;
  const std::string text = testing::readText(dir.file("w.log"));
  std::vector<std::string> lines;
  for (size_t at = 0; at < text.size();) {
    size_t eol = text.find('\n', at);
    lines.push_back(text.substr(at, eol - at));
    at = eol + 1;
  }
  std::string reversed = lines[0] + "\n";
  for (size_t i = lines.size() - 1; i >= 1; --i)
    reversed += lines[i] + "\n";
  const std::string rev = dir.file("rev.log");
  testing::writeText(rev, reversed);
  auto j = judge("--policy '" + kPolicy + "' '" + rev + "'");
  EXPECT_EQ(j["records"]["late"], 0);
  EXPECT_EQ(j["agreement"]["agree"], j["records"]["judged"]) << j["agreement"].dump(2);

  // A connection already open when the logs begin, its server's record first in the file: the
  // client's side goes first (the database's groups allow no outbound traffic of its own).
  const std::string mid = dir.file("mid.log");
  testing::writeText(
      mid, lines[0] + "\n" +
               "5 123456789012 db-1 10.0.3.10 10.0.2.10 5432 40000 6 4 900 1700000100 1700000110 "
               "ACCEPT OK - - 0 IPv4 10.0.3.10 10.0.2.10 egress -\n"
               "5 123456789012 app-1 10.0.2.10 10.0.3.10 40000 5432 6 4 300 1700000100 1700000110 "
               "ACCEPT OK - - 0 IPv4 10.0.2.10 10.0.3.10 egress -\n"
               "5 123456789012 db-1 10.0.2.10 10.0.3.10 40000 5432 6 4 300 1700000100 1700000110 "
               "ACCEPT OK - - 0 IPv4 10.0.2.10 10.0.3.10 ingress -\n");
  auto m = judge("--policy '" + kPolicy + "' '" + mid + "'");
  EXPECT_EQ(m["agreement"]["agree"], 3) << m["agreement"].dump(2);

  auto late = judge("--reorder 0 --policy '" + kPolicy + "' '" + rev + "'");
  EXPECT_GT(late["records"]["late"].get<uint64_t>(), 0u);
  EXPECT_NE(late["records"]["late_first"].get<std::string>().find("rev.log:"), std::string::npos);
  CliRun t = statewall("flowlogs --reorder 0 --policy '" + kPolicy + "' '" + rev + "'");
  EXPECT_EQ(t.rc, 0) << t.err;
  EXPECT_NE(t.out.find("records arrived later than the reorder window allows"), std::string::npos)
      << t.out;
}

// interface-id: AWS JSON policies carry ENI ids (gen writes them), YAML names are matched by
// name, and an id the policy does not know falls back to the record's addresses; a record whose
// interface and addresses are unknown is counted, not judged.
TEST(FlowLogsCli, InterfaceIdsMapToThePolicy) {
  TempDir dir;
  std::string aws;
  for (const char* f :
       {"network-acls", "network-interfaces", "prefix-lists", "security-groups", "subnets"})
    aws += " --policy '" + kRepo + "/examples/aws/" + f + ".json'";
  CliRun g = statewall("gen -q --seed 2 --out '" + dir.file("w.pcap") +
                       "' --flows 150 --mix tcp=60,udp=20,scan=5 --clients "
                       "198.51.100.0/24,10.0.2.10/32 --servers 10.0.1.10,10.0.3.10 --duration 200" +
                       aws + " --stop-on-deny --flow-log '" + dir.file("w.log") + "'");
  ASSERT_EQ(g.rc, 0) << g.err;
  std::string text = testing::readText(dir.file("w.log"));
  EXPECT_NE(text.find(" eni-0a1b2c3d4e5f60001 "), std::string::npos);
  auto by_id = judge(aws + " '" + dir.file("w.log") + "'");
  auto by_addr = judge("--policy '" + kPolicy + "' '" + dir.file("w.log") + "'");
  for (const auto* j : {&by_id, &by_addr}) {
    EXPECT_EQ((*j)["records"]["judged"], (*j)["records"]["read"]);
    EXPECT_EQ((*j)["agreement"]["agree"], (*j)["records"]["judged"]);
  }
  text +=
      "5 123456789012 eni-ffffffffffffffff0 192.0.2.200 198.51.100.9 1 2 6 1 40 1700000000 "
      "1700000000 ACCEPT OK - - 2 IPv4 192.0.2.200 198.51.100.9 egress -\n";
  testing::writeText(dir.file("x.log"), text);
  auto x = judge("--policy '" + kPolicy + "' '" + dir.file("x.log") + "'");
  EXPECT_EQ(x["records"]["skipped"]["unknown-interface"], 1);
}

// Memory follows the connections alive, not the log: the state of a connection that closed is
// dropped once the engine's closing timeouts have passed.
TEST(FlowLogsCli, StateFollowsLiveConnections) {
  TempDir dir;
  CliRun g = statewall("gen -q --seed 8 --out '" + dir.file("w.pcap") +
                       "' --flows 3000 --mix tcp=100 --duration 3600 --policy '" + kPolicy +
                       "' --flow-log '" + dir.file("w.log") + "'");
  ASSERT_EQ(g.rc, 0) << g.err;
  auto j = judge("--policy '" + kPolicy + "' '" + dir.file("w.log") + "'");
  EXPECT_EQ(j["agreement"]["agree"], j["records"]["judged"]);
  EXPECT_EQ(j["records"]["connections"], 3000);
  // About 3000 / 3600 s * (the 120 s TIME_WAIT + one 60 s sweep) are alive at once.
  EXPECT_LT(j["records"]["peak_connections_held"].get<uint64_t>(), 600u) << j["records"].dump();
}

// Each disagreement gets its likely cause.
TEST(FlowLogsCli, DisagreementCauses) {
  TempDir dir;
  const std::string short_policy = dir.file("short.yaml");
  testing::writeText(short_policy, replaced(testing::readText(kPolicy), "timeouts: {profile: aws}",
                                            "timeouts: {profile: aws, tcp_established: 60}"));
  const std::string h =
      "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
      "start end action log-status tcp-flags flow-direction\n";
  auto rec = [](const std::string& eni, const std::string& src, const std::string& dst, int sp,
                int dp, int packets, uint64_t t, const std::string& action, int flags,
                const std::string& direction) {
    return "5 123456789012 " + eni + " " + src + " " + dst + " " + std::to_string(sp) + " " +
           std::to_string(dp) + " 6 " + std::to_string(packets) + " 100 " + std::to_string(t) +
           " " + std::to_string(t) + " " + action + " OK " + std::to_string(flags) + " " +
           direction + "\n";
  };
  struct Case {
    std::string name, log, cause;
  };
  const Case cases[] = {
      // The database's groups allow nothing out on its own: AWS must have been tracking it.
      {"began-before-logs",
       rec("db-1", "10.0.3.10", "10.0.2.10", 5432, 40000, 1, 1000, "ACCEPT", 0, "egress"),
       "began-before-logs"},
      // Logged arriving at app-1, but the database's side would not have let it out.
      {"denied-at-source",
       rec("app-1", "10.0.3.10", "10.0.2.10", 5432, 40000, 1, 1000, "ACCEPT", 0, "ingress"),
       "denied-at-source"},
      // A connection idle longer than the policy's 60 s established timeout, then a reply.
      {"after-idle",
       rec("app-1", "10.0.2.10", "10.0.3.10", 40000, 5432, 3, 1000, "ACCEPT", 2, "egress") +
           rec("db-1", "10.0.3.10", "10.0.2.10", 5432, 40000, 2, 1000, "ACCEPT", 18, "egress") +
           rec("db-1", "10.0.3.10", "10.0.2.10", 5432, 40000, 1, 1500, "ACCEPT", 0, "egress"),
       "after-idle"},
      // AWS rejected HTTPS that the loaded policy allows.
      {"rule-allows",
       rec("web-1", "198.51.100.7", "10.0.1.10", 40000, 443, 1, 1000, "REJECT", 2, "ingress"),
       "rule-allows"},
      // AWS accepted SSH from outside the office.
      {"no-rule",
       rec("web-1", "198.51.100.7", "10.0.1.10", 40000, 22, 1, 1000, "ACCEPT", 2, "ingress"),
       "no-rule"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.file(c.name + ".log");
    testing::writeText(path, h + c.log);
    auto j = judge("--policy '" + short_policy + "' '" + path + "'");
    ASSERT_EQ(j["agreement"]["disagreements"].size(), 1u) << c.name << j["agreement"].dump(2);
    EXPECT_EQ(j["agreement"]["disagreements"][0]["cause"], c.cause)
        << c.name << j["agreement"].dump(2);
  }
}

// ---- statewall replay --flow-log ----

// The flow-log text read by splitting fields under its header line (independent of the reader).
struct TextRecord {
  std::string iface, src, dst, action, direction;
  uint64_t sport = 0, dport = 0, proto = 0, packets = 0, bytes = 0;
};
std::vector<TextRecord> readTextLog(const std::string& text) {
  std::vector<TextRecord> out;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string t; fields >> t;)
      f.push_back(t);
    if (names.empty()) {
      names = f;
      continue;
    }
    EXPECT_EQ(f.size(), names.size()) << line;
    std::map<std::string, std::string> v;
    for (size_t i = 0; i < f.size() && i < names.size(); ++i)
      v[names[i]] = f[i];
    EXPECT_EQ(v["version"], "5");
    EXPECT_EQ(v["log-status"], "OK");
    out.push_back(TextRecord{v["interface-id"], v["srcaddr"], v["dstaddr"], v["action"],
                             v["flow-direction"], std::stoull(v["srcport"]),
                             std::stoull(v["dstport"]), std::stoull(v["protocol"]),
                             std::stoull(v["packets"]), std::stoull(v["bytes"])});
  }
  EXPECT_FALSE(names.empty()) << "no header line";
  return out;
}

// The replay's flow-log records agree, flow by flow, with its --connections records for the same
// trace: every direction of every connection (allowed, denied, replies of tracked connections) is
// logged at each interface that sees it with the connection's packets and IP bytes for that
// direction; allowed flows are ACCEPT everywhere; a denied flow is REJECT at the interface that
// denied it (and ACCEPT only at the source's interface, when its destination denied it). Over
// windows of 60 s and of 10 s (flows then span several windows, whose records add up).
TEST(ReplayFlowLog, RecordsAgreeWithConnectionsFlowByFlow) {
  TempDir dir;
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 5, kMix));
  ASSERT_EQ(g.rc, 0) << g.err;
  CliRun c = statewall("replay -p '" + kPolicy + "' '" + dir.file("w.pcap") + "' --connections '" +
                       dir.file("c.jsonl") + "'");
  ASSERT_EQ(c.rc, 0) << c.err;

  // Per direction of each flow (proto, src, dst, sport, dport): packets, IP bytes, denied.
  using Key = std::tuple<uint64_t, std::string, std::string, uint64_t, uint64_t>;
  struct Dir {
    uint64_t packets = 0, bytes = 0;
    bool denied = false;
  };
  std::map<Key, Dir> conns;
  size_t denied_flows = 0, tracked_replies = 0;
  std::istringstream cin(testing::readText(dir.file("c.jsonl")));
  for (std::string line; std::getline(cin, line);) {
    const auto r = nlohmann::json::parse(line);
    const std::string p = r["proto"];
    const uint64_t proto = p == "tcp" ? 6 : p == "udp" ? 17 : p == "icmp" ? 1 : 0;
    const std::string oh = r["id.orig_h"], rh = r["id.resp_h"];
    const bool icmp = proto == 1;
    const uint64_t op = icmp ? 0 : r["id.orig_p"].get<uint64_t>();
    const uint64_t rp = icmp ? 0 : r["id.resp_p"].get<uint64_t>();
    // ICMPv6 is logged as 58.
    const uint64_t pr = icmp && oh.find(':') != std::string::npos ? 58 : proto;
    const uint64_t orig = r["orig_pkts"], resp = r["resp_pkts"], denied = r["denied_pkts"];
    // A flow here is wholly allowed or wholly denied.
    ASSERT_TRUE(denied == 0 || denied == orig + resp) << line;
    denied_flows += denied > 0 ? 1 : 0;
    tracked_replies += r["tracked"].get<bool>() && resp > 0 ? 1 : 0;
    Dir& o = conns[Key{pr, oh, rh, op, rp}];
    o.packets += orig;
    o.bytes += r["orig_ip_bytes"].get<uint64_t>();
    o.denied = denied > 0;
    if (resp > 0) {
      Dir& b = conns[Key{pr, rh, oh, rp, op}];
      b.packets += resp;
      b.bytes += r["resp_ip_bytes"].get<uint64_t>();
      b.denied = denied > 0;
    }
  }
  ASSERT_GT(denied_flows, 10u);
  ASSERT_GT(tracked_replies, 50u);

  size_t records60 = 0;
  for (const char* interval : {"60", "10"}) {
    SCOPED_TRACE(interval);
    const std::string log = dir.file(std::string("r") + interval + ".log");
    CliRun r = statewall("replay -p '" + kPolicy + "' '" + dir.file("w.pcap") + "' --flow-log '" +
                         log + "' --flow-log-interval " + interval);
    ASSERT_EQ(r.rc, 0) << r.err;
    const std::vector<TextRecord> recs = readTextLog(testing::readText(log));
    if (std::string(interval) == "60") records60 = recs.size();
    if (std::string(interval) == "10") {
      EXPECT_GT(recs.size(), records60);
    }
    // Per flow direction, per interface and direction: packets, bytes, actions.
    struct At {
      uint64_t packets = 0, bytes = 0;
      std::set<std::string> actions;
    };
    std::map<Key, std::map<std::pair<std::string, std::string>, At>> logged;
    for (const TextRecord& t : recs) {
      At& a = logged[Key{t.proto, t.src, t.dst, t.sport, t.dport}][{t.iface, t.direction}];
      a.packets += t.packets;
      a.bytes += t.bytes;
      a.actions.insert(t.action);
    }
    for (const auto& [key, d] : conns) {
      const std::string flow = std::get<1>(key) + ":" + std::to_string(std::get<3>(key)) + " > " +
                               std::get<2>(key) + ":" + std::to_string(std::get<4>(key)) + " " +
                               std::to_string(std::get<0>(key));
      auto it = logged.find(key);
      ASSERT_NE(it, logged.end()) << flow << " has no flow-log record";
      size_t rejects = 0;
      for (const auto& [where, a] : it->second) {
        EXPECT_EQ(a.packets, d.packets) << flow << " at " << where.first;
        EXPECT_EQ(a.bytes, d.bytes) << flow << " at " << where.first;
        ASSERT_EQ(a.actions.size(), 1u) << flow << " at " << where.first;
        const std::string& action = *a.actions.begin();
        if (!d.denied) {
          EXPECT_EQ(action, "ACCEPT") << flow << " at " << where.first;
        } else if (action == "REJECT") {
          ++rejects;
        } else {
          EXPECT_EQ(where.second, "egress") << flow << " accepted at its destination";
        }
      }
      if (d.denied) {
        EXPECT_EQ(rejects, 1u) << flow;
      }
    }
    // And no record of a flow the connection log does not know.
    for (const auto& [key, at] : logged)
      EXPECT_TRUE(conns.count(key)) << std::get<1>(key) << " > " << std::get<2>(key);
  }
}

// The replay's flow log reads back through `statewall flowlogs --policy` in full agreement, and
// is, record for record, the one `statewall gen --flow-log` writes for the same workload (text
// and JSON lines): the same aggregation of the same verdicts.
TEST(ReplayFlowLog, ReadsBackAndEqualsGen) {
  TempDir dir;
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 6, kMix));
  ASSERT_EQ(g.rc, 0) << g.err;
  CliRun r = statewall("replay -p '" + kPolicy + "' '" + dir.file("w.pcap") + "' --flow-log '" +
                       dir.file("r.log") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = judge("--policy '" + kPolicy + "' '" + dir.file("r.log") + "'");
  const uint64_t read = j["records"]["read"];
  ASSERT_GT(read, 100u);
  EXPECT_EQ(j["records"]["judged"], read);
  EXPECT_EQ(j["agreement"]["agree"], read) << j["agreement"].dump(2);
  EXPECT_EQ(j["agreement"]["disagreements"].size(), 0u);
  EXPECT_NE(testing::readText(dir.file("r.log")).find(" REJECT OK "), std::string::npos);
  EXPECT_EQ(testing::readText(dir.file("r.log")), testing::readText(dir.file("w.log")));

  g = statewall(genArgs(dir.path(), kPolicy, 6, kMix, "--flow-log-jsonl"));
  ASSERT_EQ(g.rc, 0) << g.err;
  r = statewall("replay -p '" + kPolicy + "' '" + dir.file("w.pcap") + "' --flow-log '" +
                dir.file("r.jsonl") + "' --flow-log-jsonl");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string jl = testing::readText(dir.file("r.jsonl"));
  EXPECT_NE(jl.find("\"reason\""), std::string::npos);
  EXPECT_EQ(jl, testing::readText(dir.file("w.log")));
}

// --flow-log - writes the records to standard output (the summary then goes to standard error);
// a path that cannot be created exits 2 naming the option, the path and why, and replays nothing.
TEST(ReplayFlowLog, StdoutAndBadPath) {
  TempDir dir;
  CliRun g = statewall(genArgs(dir.path(), kPolicy, 5, "tcp=50,scan=10"));
  ASSERT_EQ(g.rc, 0) << g.err;
  const std::string replay = "replay --json -p '" + kPolicy + "' '" + dir.file("w.pcap") + "'";
  CliRun f = statewall(replay + " --flow-log '" + dir.file("r.log") + "'");
  ASSERT_EQ(f.rc, 0) << f.err;
  CliRun s = statewall(replay + " --flow-log -");
  ASSERT_EQ(s.rc, 0) << s.err;
  EXPECT_EQ(s.out, testing::readText(dir.file("r.log")));
  EXPECT_EQ(s.out.rfind("version account-id interface-id", 0), 0u) << s.out.substr(0, 200);
  EXPECT_EQ(nlohmann::json::parse(s.err)["packets"], nlohmann::json::parse(f.out)["packets"]);

  CliRun bad = statewall(replay + " --flow-log '" + dir.file("no/such/dir/r.log") + "'");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("--flow-log " + dir.file("no/such/dir/r.log") + ": cannot create"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.out, "");
}

}  // namespace
}  // namespace statewall::sim
