// Runs the built `statewall` binary: `lint` and `diff` (with and without a trace) on the
// examples and on edited copies of them; exit codes, text and --json.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/cli_fixture.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kExamples = STATEWALL_EXAMPLES_DIR;

using Result = statewall::testing::CommandResult;

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class LintDiffCli : public statewall::testing::CliTest {
 protected:
  // A copy of the example policy with one piece of text replaced.
  std::string edited(const std::string& name, const std::string& from, const std::string& to) {
    std::string text = readFile(yaml());
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return write(name, text);
  }

  static std::string yaml() { return kExamples + "/three-tier.yaml"; }
  static std::string trace() { return kExamples + "/three-tier.pcap"; }

  // The db tier's PostgreSQL rule moved to another port: the app tier's tracked connection in
  // the example trace breaks.
  std::string breaking() {
    return edited("break.yaml", "ports: 5432, from: sg:app", "ports: 5433, from: sg:app");
  }
  // The web tier may now reach the database: its denied attempt in the trace opens.
  std::string opening() {
    return edited("open.yaml",
                  "      - {proto: tcp, ports: 5432, from: sg:app, description: queries from the "
                  "app tier}\n",
                  "      - {proto: tcp, ports: 5432, from: sg:app, description: queries from the "
                  "app tier}\n      - {proto: tcp, ports: 5432, from: sg:web}\n");
  }
  // The web tier's first two rules swapped, the peers of one written the other way round.
  std::string reordered() {
    return edited(
        "reorder.yaml",
        "      - {proto: tcp, ports: 443, from: [0.0.0.0/0, \"::/0\"], description: HTTPS from "
        "anywhere}\n      - {proto: tcp, ports: 80, from: [0.0.0.0/0, \"::/0\"], description: "
        "HTTP from anywhere}\n",
        "      - {proto: tcp, ports: 80, from: [0.0.0.0/0, \"::/0\"], description: HTTP from "
        "anywhere}\n      - {proto: tcp, ports: 443, from: [\"::/0\", 0.0.0.0/0], description: "
        "HTTPS from anywhere}\n");
  }
};

// ---- lint ----

TEST_F(LintDiffCli, LintExampleFindsTheUdpReplyTrapOnly) {
  Result r = run({"lint", "--policy", yaml()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "warning SW030 stateless-reply-dropped")) << r.out;
  EXPECT_TRUE(has(r.out, "three-tier.yaml:14:3")) << r.out;
  EXPECT_TRUE(has(r.out, "    fix: add an inbound entry to public-acl")) << r.out;
  EXPECT_FALSE(has(r.out, "SW001")) << r.out;  // SSH is limited to the office prefix list
  EXPECT_TRUE(has(r.out, "1 below it not shown")) << r.out;

  Result e = run({"lint", "--policy", yaml(), "--min-severity", "error"});
  EXPECT_EQ(e.exit_code, 0) << e.out;
  EXPECT_TRUE(has(e.out, "no findings at or above error")) << e.out;
}

TEST_F(LintDiffCli, LintJsonOnAwsFiles) {
  std::vector<std::string> args{"lint", "--json", "--min-severity", "info", "--policy"};
  for (const auto& f : awsFiles())
    args.push_back(f);
  Result r = run(args);
  ASSERT_EQ(r.exit_code, 1) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  std::multiset<std::string> codes;
  for (const auto& f : j["findings"]) {
    codes.insert(f["code"].get<std::string>());
    EXPECT_FALSE(f["fix"].get<std::string>().empty());
    EXPECT_TRUE(has(f["location"].get<std::string>(), "security-groups.json: SecurityGroups[0]"))
        << f["location"];
  }
  EXPECT_EQ(codes, (std::multiset<std::string>{"SW030", "SW043"}));
  EXPECT_EQ(j["counts"]["warning"], 1);
  EXPECT_EQ(j["counts"]["info"], 1);
  EXPECT_EQ(j["below_min_severity"], 0);
}

TEST_F(LintDiffCli, LintOpenSshIsAnError) {
  const std::string p =
      edited("ssh.yaml", "ports: 22, from: pl:office", "ports: 22, from: 0.0.0.0/0");
  Result r = run({"lint", "--policy", p, "--min-severity", "error"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, p + ":19:9: error SW001 admin-port-open")) << r.out;
  EXPECT_TRUE(has(r.out, "22 (SSH)")) << r.out;
}

TEST_F(LintDiffCli, LintBadInput) {
  EXPECT_EQ(run({"lint", "--policy", dir_ + "/missing.yaml"}).exit_code, 2);
  EXPECT_EQ(run({"lint", "--policy", yaml(), "--min-severity", "fatal"}).exit_code, 2);
  EXPECT_EQ(run({"lint", "--policy", yaml(), "--ephemeral-ports", "9-1"}).exit_code, 2);
  EXPECT_EQ(run({"lint"}).exit_code, 2);
  const std::string bad =
      write("bad.yaml", "version: 1\ngroups:\n  g: {inbound: [{proto: tcp}]}\n");
  EXPECT_EQ(run({"lint", "--policy", bad}).exit_code, 2);
  Result list = run({"lint", "--list-checks"});
  EXPECT_EQ(list.exit_code, 0);
  for (const char* code : {"SW001", "SW003", "SW011", "SW021", "SW030", "SW043"})
    EXPECT_TRUE(has(list.out, code)) << list.out;
}

// ---- diff without a trace ----

TEST_F(LintDiffCli, DiffSamePolicyAndYamlAgainstAws) {
  Result same = run({"diff", "--policy", yaml(), "--against", yaml()});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_TRUE(has(same.out, "no rule changes")) << same.out;

  std::vector<std::string> args{"diff", "--json", "--policy", yaml(), "--against"};
  for (const auto& f : awsFiles())
    args.push_back(f);
  Result aws = run(args);
  ASSERT_EQ(aws.exit_code, 0) << aws.err;
  const auto j = nlohmann::json::parse(aws.out);
  EXPECT_EQ(j["summary"]["added"], 0);
  EXPECT_EQ(j["summary"]["removed"], 0);
  for (const auto& e : j["effects"])
    EXPECT_TRUE(e["same"].get<bool>()) << e;
}

TEST_F(LintDiffCli, DiffRuleLevel) {
  Result r = run({"diff", "--policy", yaml(), "--against", reordered()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "0 added, 0 removed, 0 changed, 1 moved")) << r.out;
  EXPECT_TRUE(has(r.out, "=> same packets allowed as before")) << r.out;

  Result b = run({"diff", "--policy", yaml(), "--against", breaking()});
  EXPECT_EQ(b.exit_code, 1) << b.out << b.err;
  EXPECT_TRUE(has(b.out, "group db inbound:")) << b.out;
  EXPECT_TRUE(has(b.out, "(tcp 5432 -> tcp 5433)")) << b.out;
  EXPECT_TRUE(has(b.out,
                  "interface db-1 inbound: now also allows tcp 5433 from 10.0.2.10/32; "
                  "no longer allows tcp 5432 from 10.0.2.10/32"))
      << b.out;

  Result o = run({"diff", "--policy", yaml(), "--against", opening(), "--json"});
  EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["summary"]["added"], 1);
  EXPECT_FALSE(j["summary"]["narrows"].get<bool>());
}

// ---- diff on the trace ----

TEST_F(LintDiffCli, DiffTraceBreaksATrackedConnection) {
  Result r = run({"diff", "--json", "--policy", yaml(), "--against", breaking(), trace()});
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["packets"], 124);
  EXPECT_EQ(j["summary"]["connections_that_break"], 1);
  EXPECT_EQ(j["summary"]["connections_that_open"], 0);
  EXPECT_GT(j["summary"]["allowed_to_denied_packets"].get<int>(), 1);  // the whole connection
  ASSERT_EQ(j["groups"].size(), 1u);
  const auto& g = j["groups"][0];
  EXPECT_EQ(g["change"]["scope"], "group db inbound");
  EXPECT_EQ(g["change"]["kind"], "changed");
  ASSERT_EQ(g["flows"].size(), 1u);
  EXPECT_EQ(g["flows"][0]["flow"], "tcp 10.0.2.10:42000 -> 10.0.3.10:5432");
  EXPECT_EQ(g["flows"][0]["old"]["reason"], "allow-rule");
  EXPECT_EQ(g["flows"][0]["new"]["reason"], "deny-sg");

  const std::string packets = dir_ + "/packets.jsonl";
  Result t =
      run({"diff", "--policy", yaml(), "--against", breaking(), trace(), "--packets", packets});
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_TRUE(has(t.out, "1 connection would break, 0 would open (exit 1)")) << t.out;
  EXPECT_TRUE(has(t.out, "old: allow-rule")) << t.out;
  // Every changed packet, one JSON object a line.
  std::istringstream lines(readFile(packets));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const auto p = nlohmann::json::parse(line);
    EXPECT_TRUE(p["old"]["reason"].get<std::string>().rfind("allow", 0) == 0) << line;
    EXPECT_TRUE(p["new"]["reason"].get<std::string>().rfind("deny", 0) == 0) << line;
    EXPECT_TRUE(has(p["flow"].get<std::string>(), "10.0.3.10")) << line;
    ++n;
  }
  EXPECT_EQ(n, j["summary"]["changed_packets"].get<int>());
}

TEST_F(LintDiffCli, DiffTraceOpensAConnection) {
  Result r = run({"diff", "--json", "--policy", yaml(), "--against", opening(), trace()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["summary"]["connections_that_break"], 0);
  EXPECT_EQ(j["summary"]["connections_that_open"], 1);
  EXPECT_EQ(j["summary"]["allowed_to_denied_packets"], 0);
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["change"]["kind"], "added");
  EXPECT_EQ(j["groups"][0]["flows"][0]["flow"], "tcp 10.0.1.10:41001 -> 10.0.3.10:5432");
  EXPECT_EQ(j["groups"][0]["flows"][0]["old"]["reason"], "deny-sg");
  EXPECT_EQ(j["groups"][0]["flows"][0]["new"]["reason"], "allow-rule");
}

TEST_F(LintDiffCli, DiffTraceAttributesAnAclChange) {
  // SSH from the office now denied by the public subnet's ACL rather than allowed.
  const std::string p = edited("acl.yaml", "{rule: 120, action: allow, proto: tcp, ports: 22",
                               "{rule: 120, action: deny, proto: tcp, ports: 22");
  Result r = run({"diff", "--json", "--policy", yaml(), "--against", p, trace()});
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["groups"].size(), 1u) << r.out;
  const auto& g = j["groups"][0];
  EXPECT_EQ(g["change"]["object"], "ACL entry");
  EXPECT_EQ(g["change"]["scope"], "network ACL public-acl inbound");
  EXPECT_EQ(g["change"]["detail"], "allow -> deny");
  ASSERT_GE(g["flows"].size(), 1u);
  for (const auto& f : g["flows"]) {
    EXPECT_TRUE(has(f["flow"].get<std::string>(), ":22")) << f["flow"];
    EXPECT_EQ(f["new"]["reason"], "deny-acl");
  }
}

TEST_F(LintDiffCli, DiffTraceReorderChangesNothing) {
  Result r = run({"diff", "--json", "--policy", yaml(), "--against", reordered(), trace()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["summary"]["changed_packets"], 0);
  EXPECT_TRUE(j["groups"].empty());

  // The same policy as AWS JSON files (the trace follows the --against files).
  std::vector<std::string> args{"diff", "--json", "--policy", yaml(), "--against"};
  for (const auto& f : awsFiles())
    args.push_back(f);
  args.push_back(trace());
  Result aws = run(args);
  ASSERT_EQ(aws.exit_code, 0) << aws.out << aws.err;
  EXPECT_EQ(nlohmann::json::parse(aws.out)["summary"]["changed_packets"], 0);
}

TEST_F(LintDiffCli, DiffTraceOverManyChunksAgreesWithReplay) {
  // A generated trace of more than one chunk (8192 packets) and a change that only narrows: the
  // packets that go from allowed to denied are exactly the extra packets `statewall replay`
  // denies under the new policy.
  const std::string pcap = dir_ + "/gen.pcap";
  Result g = run({"gen", "--seed", "7", "-o", pcap, "--flows", "600", "--clients",
                  "198.51.100.0/24", "203.0.113.0/24", "--servers", "10.0.1.10", "10.0.1.11",
                  "--tcp-ports", "443", "80", "--ipv6-share", "0", "-q"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  const std::string narrow = edited("narrow.yaml", "ports: 443, from: [0.0.0.0/0, \"::/0\"]",
                                    "ports: 443, from: [198.51.100.0/24, \"::/0\"]");
  Result d = run({"diff", "--json", "--policy", yaml(), "--against", narrow, pcap});
  ASSERT_EQ(d.exit_code, 1) << d.out << d.err;
  const auto j = nlohmann::json::parse(d.out);
  const uint64_t packets = j["packets"].get<uint64_t>();
  EXPECT_GT(packets, 3 * 8192u);
  EXPECT_EQ(j["summary"]["denied_to_allowed_packets"], 0);
  auto denied = [&](const std::string& policy) {
    Result r = run({"replay", "--json", "--policy", policy, pcap});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto rj = nlohmann::json::parse(r.out);
    EXPECT_EQ(rj["packets"].get<uint64_t>(), packets);
    return rj["verdicts"]["deny"]["packets"].get<uint64_t>();
  };
  const uint64_t more = denied(narrow) - denied(yaml());
  EXPECT_GT(more, 0u);
  EXPECT_EQ(j["summary"]["allowed_to_denied_packets"].get<uint64_t>(), more);
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["change"]["scope"], "group web inbound");
  // Only sources outside 198.51.100.0/24 (still allowed) lose port 443.
  for (const auto& f : j["groups"][0]["flows"]) {
    EXPECT_FALSE(has(f["flow"].get<std::string>(), "198.51.100.")) << f["flow"];
    EXPECT_TRUE(has(f["flow"].get<std::string>(), ":443")) << f["flow"];
  }
}

TEST_F(LintDiffCli, DiffTraceBadInput) {
  // A damaged trace: the header and part of the first record only.
  const std::string whole = readFile(trace());
  const std::string cut = write("cut.pcap", whole.substr(0, 40));
  Result r = run({"diff", "--policy", yaml(), "--against", breaking(), cut});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "cut.pcap")) << r.err;
  EXPECT_EQ(run({"diff", "--policy", yaml(), "--against", dir_ + "/none.yaml"}).exit_code, 2);
  EXPECT_EQ(run({"diff", "--policy", yaml()}).exit_code, 2);
}

}  // namespace
