// `statewall ... --policy plan.json` and `statewall diff --plan plan.json TRACE` on the Terraform
// examples (examples/terraform/), run through the built binary.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/cli_fixture.hpp"

namespace {

using Result = statewall::testing::CommandResult;

class TerraformCli : public statewall::testing::CliTest {
 protected:
  static std::string plan() { return example("terraform/three-tier-plan.json"); }
  static std::string breaking() { return example("terraform/db-port-change-plan.json"); }
  static std::string trace() { return example("three-tier.pcap"); }
};

TEST_F(TerraformCli, CommandsTakeAPlanAsPolicy) {
  Result c = run({"check", plan()});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("security groups: 3 (10 rules"), std::string::npos) << c.out;

  Result q = run({"query", "--policy", plan(), "tcp 10.0.2.10:40000 -> 10.0.3.10:5432"});
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("allow"), std::string::npos) << q.out;

  // The replay of the example trace under the plan's planned values matches the YAML's.
  Result ry = run({"replay", "--policy", example("three-tier.yaml"), trace(), "--json"});
  Result rt = run({"replay", "--policy", plan(), trace(), "--json"});
  ASSERT_EQ(rt.exit_code, ry.exit_code) << rt.err;
  const auto jy = nlohmann::json::parse(ry.out, nullptr, false);
  const auto jt = nlohmann::json::parse(rt.out, nullptr, false);
  ASSERT_FALSE(jy.is_discarded() || jt.is_discarded()) << rt.out;
  EXPECT_EQ(jy["reasons"], jt["reasons"]) << rt.out;
  EXPECT_EQ(jy["verdicts"], jt["verdicts"]) << rt.out;
  EXPECT_EQ(jy["packets"], 124) << ry.out;

  Result l = run({"lint", "--policy", plan()});
  EXPECT_NE(l.exit_code, 2) << l.err;
}

TEST_F(TerraformCli, DiffPlanBreaksARecordedFlow) {
  Result r = run({"diff", "--plan", breaking(), trace()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("tcp 5432 -> tcp 5433"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tcp 10.0.2.10:42000 -> 10.0.3.10:5432"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 connection would break"), std::string::npos) << r.out;
}

TEST_F(TerraformCli, DiffPlanThatOnlyOpens) {
  Result r = run({"diff", "--plan", plan(), trace(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["summary"]["connections_that_break"], 0);
  EXPECT_EQ(j["summary"]["connections_that_open"], 1);  // the ping6 the plan allows
  EXPECT_EQ(j["old"][0], plan() + "#prior");
  EXPECT_EQ(j["new"][0], plan() + "#planned");
}

TEST_F(TerraformCli, DiffPlanWithSharedDocuments) {
  // The office prefix list managed outside Terraform: the plan without it loads only with the
  // describe-managed-prefix-lists document given to both sides.
  auto plan_json = nlohmann::json::parse(readFile(breaking()));
  for (auto* values : {&plan_json["planned_values"], &plan_json["prior_state"]["values"]}) {
    auto& res = (*values)["root_module"]["resources"];
    ASSERT_EQ(res[0]["type"], "aws_ec2_managed_prefix_list");
    res.erase(0);
  }
  const std::string p = write("plan.json", plan_json.dump());
  Result without = run({"diff", "--plan", p, trace()});
  EXPECT_EQ(without.exit_code, 2);
  EXPECT_NE(without.err.find("unknown prefix list 'pl-0a1b2c3d4e5f60001'"), std::string::npos)
      << without.err;
  Result with =
      run({"diff", "--plan", p, "--policy", example("aws/prefix-lists.json"), trace(), "--json"});
  EXPECT_EQ(with.exit_code, 1) << with.err;
  const auto j = nlohmann::json::parse(with.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << with.out;
  EXPECT_EQ(j["old"].size(), 2u);
  EXPECT_EQ(j["new"][1], example("aws/prefix-lists.json"));
  EXPECT_EQ(j["summary"]["connections_that_break"], 1);
}

TEST_F(TerraformCli, BadPlanIsExit2WithThePath) {
  std::string text = readFile(breaking());
  const std::string from = "\"rule_no\": 90";
  const auto pos = text.find(from);
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, from.size(), "\"rule_no\": \"ninety\"");
  const std::string bad = write("plan.json", text);
  Result r = run({"diff", "--plan", bad, trace()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad + "#planned: planned_values.root_module.resources[8].values.ingress"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("aws_network_acl.public: ingress"), std::string::npos) << r.err;
  Result rp = run({"replay", "--policy", bad, trace()});
  EXPECT_EQ(rp.exit_code, 2) << rp.err;

  Result both = run({"diff", "--plan", plan(), "--against", plan(), trace()});
  EXPECT_EQ(both.exit_code, 2);
}

// ---- diff --plan --flow-logs: the plan judged on VPC Flow Logs (issue 18) ----

// Flow logs of a small workload under the plan's prior state (interface ids are its ENI ids): a
// web request, the app server's database connection, and SSH from outside the office (denied).
std::string genFlowLog(const std::string& dir, const std::string& plan) {
  const std::string log = dir + "/flows.log";
  Result g = statewall::testing::runStatewall(
      {"gen", "-q", "--seed", "7", "--out", dir + "/w.pcap", "--flow",
       "tcp 198.51.100.7 -> 10.0.1.10:443 data=2", "--flow",
       "tcp 10.0.2.10 -> 10.0.3.10:5432 at=30", "--flow", "tcp 198.51.100.66 -> 10.0.1.11:22 at=70",
       "--policy", plan + "#prior", "--stop-on-deny", "--flow-log", log});
  EXPECT_EQ(g.exit_code, 0) << g.err;
  return log;
}

TEST_F(TerraformCli, DiffPlanOnFlowLogsBreaksTheDatabaseConnection) {
  const std::string log = genFlowLog(dir_, breaking());
  Result r = run({"diff", "--plan", breaking(), "--flow-logs", log});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("tcp 5432 -> tcp 5433"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("breaks  tcp 10.0.2.10:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-> 10.0.3.10:5432 at db-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 logged connections would break"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;  // the prior state reproduces

  Result j = run({"diff", "--plan", breaking(), "--flow-logs", log, "--json"});
  EXPECT_EQ(j.exit_code, 1) << j.err;
  const auto d = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_FALSE(d.is_discarded()) << j.out;
  EXPECT_EQ(d["old"][0], breaking() + "#prior");
  EXPECT_EQ(d["break_connections"], 1);
  EXPECT_EQ(d["open_connections"], 0);
  EXPECT_EQ(d["old_agreement"]["accept_rejected"], 0);
  ASSERT_EQ(d["changes"].size(), 1u);
  EXPECT_EQ(d["changes"][0]["connections"][0]["effect"], "breaks");
  EXPECT_EQ(d["changes"][0]["connections"][0]["flow"]["dport"], 5432);
  EXPECT_EQ(d["flow_logs"][0]["path"], log);
}

TEST_F(TerraformCli, DiffPlanOnFlowLogsThatChangesNothingThere) {
  // three-tier-plan.json only opens ping6, which the logs do not have.
  const std::string log = genFlowLog(dir_, plan());
  Result r = run({"diff", "--plan", plan(), "--flow-logs", log});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 logged connections would break"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 would open"), std::string::npos) << r.out;
}

TEST_F(TerraformCli, DiffPlanOnABrokenFlowLogIsExit2WithTheLine) {
  std::string text = readFile(genFlowLog(dir_, breaking()));
  const size_t second = text.find('\n', text.find('\n') + 1);  // after the header and a record
  ASSERT_NE(second, std::string::npos);
  text.insert(second + 1, "5 123456789012 eni-0a1b2c3d4e5f60004 not-an-address\n");
  const std::string bad = write("bad.log", text);
  Result r = run({"diff", "--plan", breaking(), "--flow-logs", bad});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find(bad + ":3:"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;  // nothing reported from a half-read input

  Result both = run({"diff", "--plan", breaking(), "--flow-logs", bad, "--", trace()});
  EXPECT_EQ(both.exit_code, 2);
}

}  // namespace
