// Runs the built `statewall` binary: `check` and `query` on the examples, exit codes and output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/cli_fixture.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kExamples = STATEWALL_EXAMPLES_DIR;

using Result = statewall::testing::CommandResult;

class Cli : public statewall::testing::CliTest {
 protected:
  static std::string yaml() { return kExamples + "/three-tier.yaml"; }
  static std::vector<std::string> awsPolicyArgs() {
    std::vector<std::string> args;
    for (const auto& f : awsFiles()) {
      args.push_back("--policy");
      args.push_back(f);
    }
    return args;
  }
};

TEST_F(Cli, CheckValidYaml) {
  Result r = run({"check", yaml()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("valid policy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("security groups: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("interfaces:      5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("network ACLs:    2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warnings:        0"), std::string::npos) << r.out;
}

TEST_F(Cli, CheckAwsJsonGivesTheSameSummary) {
  std::vector<std::string> args{"check"};
  for (const auto& f : awsFiles())
    args.push_back(f);
  Result aws = run(args);
  Result yml = run({"check", yaml()});
  ASSERT_EQ(aws.exit_code, 0) << aws.err;
  // Same counts line for line (the first line names the files).
  EXPECT_EQ(aws.out.substr(aws.out.find('\n')), yml.out.substr(yml.out.find('\n')));
}

TEST_F(Cli, CheckJson) {
  Result r = run({"check", "--json", yaml()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["valid"].get<bool>());
  EXPECT_EQ(j["summary"]["groups"], 3);
  EXPECT_EQ(j["summary"]["interfaces"], 5);
  EXPECT_EQ(j["summary"]["subnets"], 3);
  EXPECT_TRUE(j["errors"].empty());
}

TEST_F(Cli, CheckInvalidPrintsFileLineColErrors) {
  const std::string bad = write("bad.yaml",
                                "version: 1\n"
                                "groups:\n"
                                "  web:\n"
                                "    inbound:\n"
                                "      - {proto: tcp, ports: 22, from: sg:nope}\n");
  Result r = run({"check", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":5:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  Result j = run({"check", "--json", bad});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_FALSE(nlohmann::json::parse(j.out)["valid"].get<bool>());
}

TEST_F(Cli, CheckUsageAndMissingFile) {
  EXPECT_EQ(run({"check"}).exit_code, 2);
  EXPECT_EQ(run({"check", "--no-such-option", yaml()}).exit_code, 2);
  Result r = run({"check", dir_ + "/missing.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.yaml"), std::string::npos) << r.err;
}

TEST_F(Cli, QueryAllowedUntrackedHttps) {
  Result r = run({"query", "--policy", yaml(), "tcp 198.51.100.7:50000 -> 10.0.1.10:443"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict: allow (allow-untracked)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("network ACL public-acl inbound: allow by rule 110"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("web inbound rule 0: tcp 443 from 0.0.0.0/0, ::/0"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("untracked, the reply needs its own outbound rule"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("=> replies pass"), std::string::npos) << r.out;
}

TEST_F(Cli, QueryDeniedByAclAndBySecurityGroups) {
  Result acl = run({"query", "--policy", yaml(), "tcp 192.0.2.5:40000 -> 10.0.1.10:443"});
  EXPECT_EQ(acl.exit_code, 1);
  EXPECT_NE(acl.out.find("verdict: deny (deny-acl)"), std::string::npos) << acl.out;
  EXPECT_NE(acl.out.find("deny by rule 90"), std::string::npos) << acl.out;
  // db has no outbound rules.
  Result sg = run({"query", "-p", yaml(), "tcp 10.0.3.10:40000 -> 10.0.2.10:5432"});
  EXPECT_EQ(sg.exit_code, 1);
  EXPECT_NE(sg.out.find("verdict: deny (deny-sg)"), std::string::npos) << sg.out;
  EXPECT_NE(sg.out.find("no outbound rule of db-1"), std::string::npos) << sg.out;
}

TEST_F(Cli, QueryTrackedBetweenTiersAndSelfReference) {
  Result r = run({"query", "-p", yaml(), "tcp 10.0.2.10:40000 -> 10.0.3.10:5432"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict: allow (allow-rule)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("db inbound rule 0: tcp 5432 from sg:app"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("db-1: tracked"), std::string::npos) << r.out;
  Result self = run({"query", "-p", yaml(), "udp 10.0.3.11:5000 -> 10.0.3.10:5000"});
  EXPECT_NE(self.out.find("db inbound rule 1: all from sg:db"), std::string::npos) << self.out;
}

TEST_F(Cli, QueryReplyDroppedByStatelessAcl) {
  // web-1 opens a connection from a low source port: the public ACL lets replies in only on
  // 1024-65535.
  Result r = run({"query", "-p", yaml(), "tcp 10.0.1.10:800 -> 93.184.216.34:443"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("network ACL drops the replies"), std::string::npos) << r.out;
  Result j = run({"query", "-p", yaml(), "--json", "tcp 10.0.1.10:800 -> 93.184.216.34:443"});
  const auto out = nlohmann::json::parse(j.out);
  EXPECT_TRUE(out["reply"]["acl_drops"].get<bool>());
  EXPECT_EQ(out["reply"]["verdict"], "deny");
}

// The headline must not say a plain "allow" when the connection cannot complete: the first packet
// passes, but the stateless ACL drops every reply (issue 20: the headline alone misled).
TEST_F(Cli, QueryHeadlineSaysWhenRepliesAreDropped) {
  Result r = run({"query", "-p", yaml(), "tcp 10.0.1.10:800 -> 93.184.216.34:443"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict: allow (allow-rule), but the replies are dropped by network ACL "
                       "public-acl (inbound): the connection cannot complete\n"),
            std::string::npos)
      << r.out;
  const auto j = nlohmann::json::parse(run({"query", "-p", yaml(), "--json",
                                            "tcp 10.0.1.10:800 -> "
                                            "93.184.216.34:443"})
                                           .out);
  EXPECT_EQ(j["replies"], "dropped");
  // Replies that pass, no reply at all, and no connection keep the plain headline.
  Result ok = run({"query", "-p", yaml(), "tcp 10.0.1.10:40000 -> 93.184.216.34:443"});
  EXPECT_NE(ok.out.find("verdict: allow (allow-rule)\n"), std::string::npos) << ok.out;
  EXPECT_EQ(nlohmann::json::parse(
                run({"query", "-p", yaml(), "--json", "tcp 10.0.1.10:40000 -> 93.184.216.34:443"})
                    .out)["replies"],
            "pass");
  EXPECT_EQ(nlohmann::json::parse(
                run({"query", "-p", yaml(), "--json", "tcp 192.0.2.5:40000 -> 10.0.1.10:443"})
                    .out)["replies"],
            "no connection");
}

// An ICMP error is judged by the rules only when it is about no tracked connection; query must say
// so, and warn that denying "fragmentation needed" / "packet too big" breaks path-MTU discovery
// (issue 20: it said only "deny (deny-sg)").
TEST_F(Cli, QueryIcmpErrorSaysWhenItIsRelated) {
  Result r = run({"query", "-p", yaml(), "icmp 93.184.216.34 -> 10.0.1.10 type=3,code=4"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("icmp destination unreachable, fragmentation needed is an ICMP error"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("passes as related (allow-related) without a security-group rule"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("path-MTU discovery"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(
      run({"query", "-p", yaml(), "--json", "icmp 93.184.216.34 -> 10.0.1.10 type=3,code=4"}).out);
  EXPECT_TRUE(j["icmp_error"]["error"].get<bool>());
  EXPECT_TRUE(j["icmp_error"]["path_mtu"].get<bool>());
  EXPECT_EQ(j["icmp_error"]["name"], "destination unreachable, fragmentation needed");
  // ICMPv6 packet too big, and an error the public ACL drops even when related.
  Result v6 = run({"query", "-p", yaml(), "icmpv6 2001:db8:ff::1 -> 2001:db8:1::10 type=2"});
  EXPECT_NE(v6.out.find("icmpv6 packet too big is an ICMP error"), std::string::npos) << v6.out;
  EXPECT_NE(v6.out.find("path-MTU discovery"), std::string::npos) << v6.out;
  // Dropped by the ACL (rule 90 blocks 192.0.2.0/24): related or not, the error never arrives.
  Result acl = run({"query", "-p", yaml(), "icmp 192.0.2.5 -> 10.0.1.10 type=3,code=4"});
  EXPECT_NE(acl.out.find("verdict: deny (deny-acl)"), std::string::npos) << acl.out;
  EXPECT_NE(acl.out.find("the network ACL drops this error even when it is related"),
            std::string::npos)
      << acl.out;
  EXPECT_NE(acl.out.find("reply: none (an ICMP error has no reply)"), std::string::npos) << acl.out;
  // A redirect is never related (docs/design.md): the note says the rules decide.
  Result redirect = run({"query", "-p", yaml(), "icmp 93.184.216.34 -> 10.0.1.10 type=5,code=1"});
  EXPECT_NE(redirect.out.find("icmp redirect is an ICMP error that is never related"),
            std::string::npos)
      << redirect.out;
  // An echo request is no error: no such note.
  Result ping = run({"query", "-p", yaml(), "icmp 198.51.100.7 -> 10.0.1.10 type=8,code=0"});
  EXPECT_EQ(ping.out.find("is an ICMP error"), std::string::npos) << ping.out;
}

TEST_F(Cli, QueryJson) {
  Result r = run({"query", "-p", yaml(), "--json", "tcp 198.51.100.7:50000 -> 10.0.1.10:443"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["verdict"], "allow");
  EXPECT_EQ(j["reason"], "allow-untracked");
  ASSERT_EQ(j["sides"].size(), 2u);
  EXPECT_FALSE(j["sides"][0]["protected"].get<bool>());
  const auto& dst = j["sides"][1];
  EXPECT_EQ(dst["interface"], "web-1");
  ASSERT_EQ(dst["checks"].size(), 2u);
  EXPECT_EQ(dst["checks"][0]["kind"], "acl");
  EXPECT_EQ(dst["checks"][0]["entry"]["number"], "110");  // the canonical ACL-entry key
  EXPECT_EQ(dst["checks"][1]["kind"], "sg");
  EXPECT_EQ(dst["checks"][1]["rule"]["group"], "web");
  EXPECT_EQ(dst["checks"][1]["rule"]["index"], 0);
  EXPECT_TRUE(j["reply"]["expected"].get<bool>());
  EXPECT_EQ(j["reply"]["sides"][0]["tracking"], "untracked");

  Result deny = run({"query", "-p", yaml(), "--json", "tcp 192.0.2.5:40000 -> 10.0.1.10:443"});
  EXPECT_EQ(deny.exit_code, 1);
  const auto d = nlohmann::json::parse(deny.out);
  EXPECT_EQ(d["verdict"], "deny");
  EXPECT_EQ(d["reason"], "deny-acl");
  EXPECT_TRUE(d["sides"][1]["checks"][0]["decisive"].get<bool>());

  Result unprot = run({"query", "-p", yaml(), "--json", "udp 1.1.1.1:53 -> 8.8.8.8:53"});
  EXPECT_EQ(nlohmann::json::parse(unprot.out)["reason"], "allow-unprotected");
}

// Traffic with the VPC's own services is exempt, as the engine judges it (the db tier has no
// outbound rules at all); `exempt: false` puts it back under the rules.
TEST_F(Cli, QueryExemptServices) {
  Result r = run({"query", "-p", yaml(), "tcp 10.0.3.10:40000 -> 169.254.169.254:80"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict: allow (allow-exempt: instance-metadata)"), std::string::npos)
      << r.out;
  Result j = run({"query", "-p", yaml(), "--json", "udp 10.0.3.10:40000 -> 169.254.169.253:53"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto d = nlohmann::json::parse(j.out);
  EXPECT_EQ(d["reason"], "allow-exempt");
  EXPECT_EQ(d["exemption"], "amazon-dns");

  const std::string off = write("off.yaml", "exempt: false\n" + readFile(yaml()));
  Result o = run({"query", "-p", off, "tcp 10.0.3.10:40000 -> 169.254.169.254:80"});
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  EXPECT_NE(o.out.find("verdict: deny (deny-sg)"), std::string::npos) << o.out;
}

TEST_F(Cli, QueryIcmpAndIpv6) {
  Result ping = run({"query", "-p", yaml(), "icmp 198.51.100.7 -> 10.0.1.10 type=8,code=0"});
  EXPECT_EQ(ping.exit_code, 0) << ping.err;
  EXPECT_NE(ping.out.find("web inbound rule 3: icmp type 8 code any"), std::string::npos)
      << ping.out;
  EXPECT_NE(ping.out.find("type=0,code=0"), std::string::npos) << ping.out;  // the echo reply
  Result v6 = run({"query", "-p", yaml(), "tcp [2001:db8::1]:5000 -> [2001:db8:1::10]:443"});
  EXPECT_EQ(v6.exit_code, 0) << v6.err;
  EXPECT_NE(v6.out.find("allow by rule 111"), std::string::npos) << v6.out;
  Result ping6 = run({"query", "-p", yaml(), "icmpv6 2001:db8:ff::1 -> 2001:db8:1::10 type=128"});
  EXPECT_EQ(ping6.exit_code, 0) << ping6.err;
  // SSH from outside the office: denied by the ACL's '*' default.
  Result ssh = run({"query", "-p", yaml(), "tcp 198.51.100.7:50000 -> 10.0.1.10:22"});
  EXPECT_EQ(ssh.exit_code, 1);
  EXPECT_NE(ssh.out.find("deny by rule *"), std::string::npos) << ssh.out;
}

TEST_F(Cli, QuerySameAnswersFromYamlAndAwsJson) {
  const std::vector<std::string> flows = {
      "tcp 198.51.100.7:50000 -> 10.0.1.10:443", "tcp 192.0.2.5:40000 -> 10.0.1.10:443",
      "tcp 10.0.1.10:40000 -> 10.0.2.10:8080",   "tcp 10.0.3.10:40000 -> 10.0.2.10:5432",
      "tcp 203.0.113.9:40000 -> 10.0.1.11:22",   "icmp 198.51.100.7 -> 10.0.1.10",
      "tcp 10.0.1.10:800 -> 93.184.216.34:443",  "udp 10.0.3.11:5000 -> 10.0.3.10:5000"};
  for (const auto& f : flows) {
    std::vector<std::string> aws_args{"query", "--json"};
    for (const auto& a : awsPolicyArgs())
      aws_args.push_back(a);
    aws_args.push_back(f);
    Result a = run(aws_args);
    Result y = run({"query", "--json", "-p", yaml(), f});
    ASSERT_EQ(a.exit_code, y.exit_code) << f << "\n" << a.err;
    auto ja = nlohmann::json::parse(a.out);
    auto jy = nlohmann::json::parse(y.out);
    EXPECT_EQ(ja["verdict"], jy["verdict"]) << f;
    EXPECT_EQ(ja["reason"], jy["reason"]) << f;
    EXPECT_EQ(ja["reply"]["verdict"], jy["reply"]["verdict"]) << f;
    for (size_t s = 0; s < 2; ++s) {
      EXPECT_EQ(ja["sides"][s]["interface"], jy["sides"][s]["interface"]) << f;
      EXPECT_EQ(ja["sides"][s]["checks"].size(), jy["sides"][s]["checks"].size()) << f;
    }
  }
}

TEST_F(Cli, QueryBadFlowIsAUsageError) {
  for (const std::string flow :
       {"tcp 1.2.3.4 -> 10.0.1.10", "tcp 1.2.3.4:1 10.0.1.10:2", "sctp 1.2.3.4 -> 1.2.3.5",
        "icmp 1.2.3.4:5 -> 10.0.1.10", "tcp 1.2.3.4:1 -> [2001:db8::10]:443",
        "tcp 2001:db8::1:5000 -> [2001:db8::10]:443", "icmp 1.2.3.4 -> 1.2.3.5 type=300",
        "tcp 1.2.3.4:99999 -> 1.2.3.5:1", "tcp 1.2.3.400:1 -> 1.2.3.5:1", ""}) {
    Result r = run({"query", "-p", yaml(), flow});
    EXPECT_EQ(r.exit_code, 2) << flow;
    if (!flow.empty()) {
      EXPECT_NE(r.err.find("bad flow"), std::string::npos) << flow << ": " << r.err;
    }
    EXPECT_EQ(r.out, "") << flow;
  }
  EXPECT_EQ(run({"query", "tcp 1.2.3.4:1 -> 1.2.3.5:2"}).exit_code, 2);  // no --policy
}

TEST_F(Cli, QueryWithABrokenPolicy) {
  const std::string bad = write("bad.yaml", "version: 1\nbogus_key: 1\n");
  Result r = run({"query", "-p", bad, "tcp 1.2.3.4:1 -> 1.2.3.5:2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad + ":2:"), std::string::npos) << r.err;
}

}  // namespace
