// The example policies through loader + compiler: YAML and AWS JSON compile to the same
// decisions, and the three-tier example behaves as its comments say.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/compile_policy.hpp"
#include "common/decision_grid.hpp"
#include "compiler/policy_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using statewall::testing::compileFiles;
using statewall::testing::forEachGridFlow;
using testing::A;

const std::string kDir = STATEWALL_EXAMPLES_DIR;

std::vector<std::string> awsFiles() {
  return {kDir + "/aws/security-groups.json", kDir + "/aws/network-acls.json",
          kDir + "/aws/network-interfaces.json", kDir + "/aws/subnets.json",
          kDir + "/aws/prefix-lists.json"};
}

// A decision in names only (ids may differ between the two sources).
std::string describe(const CompiledPolicy& cp, const Evaluation& e) {
  std::string s = e.allowed ? "allow" : "deny";
  s += e.untracked ? " untracked" : "";
  s += e.unprotected ? " unprotected" : "";
  for (int i = 0; i < e.n_checks; ++i) {
    const Check& c = e.checks[static_cast<size_t>(i)];
    s += " | " + cp.iface(c.iface).name + " " + std::string(directionName(c.dir)) + " ";
    if (c.kind == CheckKind::kSg) {
      s += c.sg.allowed()
               ? cp.rule(c.sg.rule).group_name + "#" + std::to_string(cp.rule(c.sg.rule).index) +
                     " " + cp.rule(c.sg.rule).text
               : "sg-deny";
    } else {
      s += cp.aclEntry(c.acl.entry).acl_name + "#" + cp.aclEntry(c.acl.entry).ruleNumberStr();
    }
  }
  return s;
}

TEST(Examples, YamlAndAwsJsonDecideAlike) {
  auto yaml = compileFiles({kDir + "/three-tier.yaml"});
  auto aws = compileFiles(awsFiles());
  ASSERT_TRUE(yaml && aws);
  ASSERT_EQ(yaml->ruleCount(), aws->ruleCount());
  ASSERT_EQ(yaml->ifaceCount(), aws->ifaceCount());
  ASSERT_EQ(yaml->aclEntryCount(), aws->aclEntryCount());

  // Every interface address, a few outside addresses, all protocols and interesting ports.
  size_t allowed = 0;
  const size_t n = forEachGridFlow(*yaml, 7, [&](const Flow5& f) {
    Evaluation ey, ea;
    evaluate(*yaml, f, EvalMode::kFull, &ey);
    evaluate(*aws, f, EvalMode::kFull, &ea);
    ASSERT_EQ(describe(*yaml, ey), describe(*aws, ea))
        << int{f.proto} << " " << f.src.str() << " -> " << f.dst.str() << ":" << f.dport;
    allowed += ey.allowed;
  });
  if (HasFatalFailure()) return;
  EXPECT_GT(n, 1000u);
  EXPECT_GT(allowed, 50u);
  EXPECT_LT(allowed, n);
}

TEST(Examples, ThreeTierBehavesAsDocumented) {
  auto cp = compileFiles({kDir + "/three-tier.yaml"});
  ASSERT_TRUE(cp);
  auto eval = [&](uint8_t proto, const char* src, const char* dst, uint16_t dport) {
    Flow5 f;
    f.proto = proto;
    f.src = A(src);
    f.dst = A(dst);
    f.sport = 50000;
    f.dport = dport;
    f.icmp_type = 8;
    Evaluation e;
    evaluate(*cp, f, EvalMode::kFull, &e);
    return describe(*cp, e);
  };
  EXPECT_EQ(eval(kProtoTcp, "198.51.100.7", "10.0.1.10", 443),
            "allow untracked | web-1 inbound public-acl#110 | web-1 inbound web#0 tcp 443 from "
            "0.0.0.0/0, ::/0");
  EXPECT_EQ(eval(kProtoTcp, "192.0.2.5", "10.0.1.10", 443).substr(0, 40),
            "deny | web-1 inbound public-acl#90 | web");
  EXPECT_EQ(eval(kProtoTcp, "10.0.1.10", "10.0.2.10", 8080),
            "allow | web-1 outbound web#0 all to 0.0.0.0/0, ::/0 | web-1 outbound public-acl#100 "
            "| app-1 inbound default-acl#100 | app-1 inbound app#0 tcp 8080 from sg:web");
  EXPECT_EQ(eval(kProtoTcp, "10.0.3.10", "10.0.3.11", 9999),
            "deny | db-1 outbound sg-deny | db-2 inbound db#1 all from sg:db");
}

}  // namespace
}  // namespace statewall::rules
