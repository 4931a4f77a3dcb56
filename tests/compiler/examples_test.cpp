// The example policies through loader + compiler: YAML and AWS JSON compile to the same
// decisions, and the three-tier example behaves as its comments say.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "compiler/policy_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using testing::A;

CompiledPolicyPtr load(const std::vector<std::string>& files) {
  LoadResult r = loadPolicyFiles(files);
  for (const auto& d : r.diagnostics)
    ADD_FAILURE() << d.str();
  if (!r.policy) return nullptr;
  CompileResult c = compile(*r.policy);
  for (const auto& d : c.diagnostics)
    ADD_FAILURE() << d.str();
  return c.policy;
}

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
  auto yaml = load({kDir + "/three-tier.yaml"});
  auto aws = load(awsFiles());
  ASSERT_TRUE(yaml && aws);
  ASSERT_EQ(yaml->ruleCount(), aws->ruleCount());
  ASSERT_EQ(yaml->ifaceCount(), aws->ifaceCount());
  ASSERT_EQ(yaml->aclEntryCount(), aws->aclEntryCount());

  // Every interface address, a few outside addresses, all protocols and interesting ports.
  std::vector<IpAddr> addrs;
  for (size_t i = 0; i < yaml->ifaceCount(); ++i)
    for (const IpAddr& a : yaml->iface(static_cast<IfaceId>(i)).addresses)
      addrs.push_back(a);
  for (const char* a : {"198.51.100.7", "192.0.2.5", "203.0.113.9", "10.0.1.99", "2001:db8::1",
                        "2001:db8:1::99", "8.8.8.8"})
    addrs.push_back(A(a));
  std::mt19937 rng(7);
  const uint16_t ports[] = {22, 80, 443, 800, 5432, 8080, 40000};
  const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, 47};
  size_t n = 0, allowed = 0;
  for (const IpAddr& src : addrs) {
    for (const IpAddr& dst : addrs) {
      if (src.family != dst.family || src == dst) continue;
      for (uint8_t proto : protos) {
        for (uint16_t port : ports) {
          Flow5 f;
          f.proto = proto;
          f.src = src;
          f.dst = dst;
          f.sport = static_cast<uint16_t>(1024 + rng() % 60000);
          f.dport = port;
          f.icmp_type = proto == kProtoIcmp ? 8 : 128;
          Evaluation ey, ea;
          evaluate(*yaml, f, EvalMode::kFull, &ey);
          evaluate(*aws, f, EvalMode::kFull, &ea);
          ASSERT_EQ(describe(*yaml, ey), describe(*aws, ea))
              << int{proto} << " " << src.str() << " -> " << dst.str() << ":" << port;
          ++n;
          allowed += ey.allowed;
        }
      }
    }
  }
  EXPECT_GT(n, 1000u);
  EXPECT_GT(allowed, 50u);
  EXPECT_LT(allowed, n);
}

TEST(Examples, ThreeTierBehavesAsDocumented) {
  auto cp = load({kDir + "/three-tier.yaml"});
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
