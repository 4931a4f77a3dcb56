// examples/terraform/: the three-tier policy as the JSON of `terraform show -json` of a plan. Its
// planned values compile to the same policy as examples/three-tier.yaml and examples/aws/ (every
// decision over a grid of flows, with the deciding rule's text, and the canonical model); its
// prior state is the same policy without the ping6 rule the plan adds.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "common/compile_policy.hpp"
#include "common/decision_grid.hpp"
#include "rules/rules_test_util.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using statewall::testing::compileFiles;
using statewall::testing::forEachGridFlow;
using testutil::dumpDiagnostics;

const std::string kDir = STATEWALL_EXAMPLES_DIR;
const std::string kPlan = kDir + "/terraform/three-tier-plan.json";

std::vector<std::string> awsFiles() {
  return {kDir + "/aws/security-groups.json", kDir + "/aws/network-acls.json",
          kDir + "/aws/network-interfaces.json", kDir + "/aws/subnets.json",
          kDir + "/aws/prefix-lists.json"};
}

// A decision in names and rule texts (a Terraform plan orders a group's rules by protocol and
// port, the YAML file as written: the rule's index is left out).
std::string describe(const CompiledPolicy& cp, const Evaluation& e) {
  std::string s = e.allowed ? "allow" : "deny";
  s += e.untracked ? " untracked" : "";
  s += e.unprotected ? " unprotected" : "";
  for (int i = 0; i < e.n_checks; ++i) {
    const Check& c = e.checks[static_cast<size_t>(i)];
    s += " | " + cp.iface(c.iface).name + " " + std::string(directionName(c.dir)) + " ";
    if (c.kind == CheckKind::kSg) {
      s += c.sg.allowed() ? cp.rule(c.sg.rule).group_name + " " + cp.rule(c.sg.rule).text
                          : "sg-deny";
    } else {
      s += cp.aclEntry(c.acl.entry).acl_name + "#" + cp.aclEntry(c.acl.entry).ruleNumberStr();
    }
  }
  return s;
}

// Every decision of `b` equals `a`'s over all interface addresses, a few outside addresses, five
// protocols and interesting ports; returns how many were allowed.
size_t expectSameDecisions(const CompiledPolicy& a, const CompiledPolicy& b) {
  size_t allowed = 0;
  const size_t n = forEachGridFlow(a, 11, [&](const Flow5& f) {
    Evaluation ea, eb;
    evaluate(a, f, EvalMode::kFull, &ea);
    evaluate(b, f, EvalMode::kFull, &eb);
    EXPECT_EQ(describe(a, ea), describe(b, eb))
        << int{f.proto} << " " << f.src.str() << " -> " << f.dst.str() << ":" << f.dport;
    allowed += ea.allowed;
  });
  EXPECT_GT(n, 1000u);
  return allowed;
}

// The canonical model with rule indices left out, sorted.
std::string unordered(const Policy& p) {
  std::string text = std::regex_replace(testutil::canonical(p), std::regex(R"(\[\d+\])"), "[]");
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines)
    out += l + "\n";
  return out;
}

TEST(TerraformExamples, PlanLoadsCleanly) {
  for (const std::string& f : {kPlan, kPlan + "#prior", kPlan + "#planned"}) {
    auto r = loadPolicyFiles({f});
    ASSERT_TRUE(r.ok()) << f << "\n" << dumpDiagnostics(r);
    EXPECT_TRUE(r.diagnostics.empty()) << f << "\n" << dumpDiagnostics(r);
    EXPECT_EQ(r.policy->files, std::vector<std::string>{f});
  }
}

TEST(TerraformExamples, PlannedValuesCompileLikeYamlAndAws) {
  auto yaml = compileFiles({kDir + "/three-tier.yaml"});
  auto aws = compileFiles(awsFiles());
  auto tf = compileFiles({kPlan});
  ASSERT_TRUE(yaml && aws && tf);
  EXPECT_EQ(tf->ruleCount(), yaml->ruleCount());
  EXPECT_EQ(tf->ifaceCount(), yaml->ifaceCount());
  EXPECT_EQ(tf->aclEntryCount(), yaml->aclEntryCount());
  EXPECT_EQ(tf->subnetCount(), yaml->subnetCount());
  const size_t allowed = expectSameDecisions(*yaml, *tf);
  EXPECT_GT(allowed, 50u);
  expectSameDecisions(*aws, *tf);

  // The model itself, object by object (rule order aside).
  auto ry = loadPolicyFiles({kDir + "/three-tier.yaml"});
  auto rt = loadPolicyFiles({kPlan});
  ASSERT_TRUE(ry.ok() && rt.ok());
  EXPECT_EQ(unordered(*ry.policy), unordered(*rt.policy));
  // Names come from the Name tags; the db tier (module.db) is there.
  const std::string text = testutil::canonical(*rt.policy);
  for (const char* line : {"interface db-2: 10.0.3.11 groups db\n",
                           "interface web-1: 10.0.1.10 2001:db8:1::10 groups web\n",
                           "subnet app-subnet acl=default-acl: 10.0.2.0/24\n",
                           "subnet public-subnet acl=public-acl: 10.0.1.0/24 2001:db8:1::/64\n",
                           "group db inbound[1] tcp 5432 from sg:app\n",
                           "acl public-acl inbound[0] 90 deny all from 192.0.2.0/24\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

TEST(TerraformExamples, PriorStateIsThePolicyWithoutPing6) {
  auto prior = loadPolicyFiles({kPlan + "#prior"});
  auto planned = loadPolicyFiles({kPlan});
  ASSERT_TRUE(prior.ok() && planned.ok()) << dumpDiagnostics(prior) << dumpDiagnostics(planned);
  const auto& web_prior = prior.policy->groups[0];
  ASSERT_EQ(web_prior.name, "web");
  EXPECT_EQ(web_prior.inbound.size() + 1, planned.policy->groups[0].inbound.size());
  for (const auto& r : web_prior.inbound)
    EXPECT_NE(r.match.proto, kProtoIcmpV6) << r.str(Direction::kInbound);
  EXPECT_NE(unordered(*prior.policy), unordered(*planned.policy));
}

}  // namespace
}  // namespace statewall::rules
