// The AWS service exemptions' policy keys (docs/design.md "Exempt traffic"): YAML `exempt` and
// `vpc_cidrs`, describe-vpcs JSON, and rules::serviceExemption() on the compiled policy.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rules/rules_test_util.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using testutil::dumpDiagnostics;
using testutil::failsWith;
using testutil::loadYamlText;

Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}
IpAddr addr(const char* text) {
  return *IpAddr::parse(text);
}

TEST(ExemptKeys, DefaultsAreOnWithoutVpcCidrs) {
  auto r = loadYamlText("version: 1\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.policy->exempt);
  EXPECT_TRUE(r.policy->vpc_cidrs.empty());
}

TEST(ExemptKeys, YamlExemptAndVpcCidrs) {
  auto r = loadYamlText("exempt: false\nvpc_cidrs: [10.0.0.0/16, \"2001:db8::/56\"]\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_FALSE(r.policy->exempt);
  EXPECT_EQ(r.policy->vpc_cidrs, (std::vector<Cidr>{cidr("10.0.0.0/16"), cidr("2001:db8::/56")}));
  auto one = loadYamlText("vpc_cidrs: 172.31.0.0/16\n");
  ASSERT_TRUE(one.ok()) << dumpDiagnostics(one);
  EXPECT_EQ(one.policy->vpc_cidrs, std::vector<Cidr>{cidr("172.31.0.0/16")});
}

TEST(ExemptKeys, YamlErrorsNameTheirPlace) {
  EXPECT_TRUE(failsWith(loadYamlText("exempt: maybe\n"), "p.yaml:1:9",
                        "bad exempt 'maybe': expected true or false"));
  EXPECT_TRUE(failsWith(loadYamlText("vpc_cidrs: [10.0.0.0/16, 10.1.0.0/31]\n"), "p.yaml:1:26",
                        "VPC CIDR 10.1.0.0/31 is too small to hold its base + 2"));
  EXPECT_TRUE(failsWith(loadYamlText("vpc_cidrs: [10.0.0.0/16, nonsense]\n"), "p.yaml:1:26",
                        "bad VPC CIDR 'nonsense'"));
  EXPECT_TRUE(failsWith(loadYamlText("vpc_cidrs: {a: 1}\n"), "p.yaml:1:12",
                        "expected a CIDR or a list of CIDRs"));
  auto twice = loadPolicyTexts({{"a.yaml", "exempt: false\n"}, {"b.yaml", "exempt: true\n"}});
  EXPECT_TRUE(failsWith(twice, "b.yaml:1:1", "exempt is set again (first at a.yaml:1:1)"));
}

constexpr const char* kVpcs = R"({"Vpcs": [
  {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "State": "available",
   "CidrBlockAssociationSet": [
     {"AssociationId": "a1", "CidrBlock": "10.0.0.0/16", "CidrBlockState": {"State": "associated"}},
     {"AssociationId": "a2", "CidrBlock": "10.1.0.0/16", "CidrBlockState": {"State": "associated"}},
     {"AssociationId": "a3", "CidrBlock": "10.9.0.0/16", "CidrBlockState": {"State": "disassociated"}}],
   "Ipv6CidrBlockAssociationSet": [
     {"AssociationId": "a4", "Ipv6CidrBlock": "2600:1f18:aa:bb00::/56",
      "Ipv6CidrBlockState": {"State": "associated"}, "NetworkBorderGroup": "us-east-1"}]}]})";

TEST(ExemptKeys, DescribeVpcsGivesTheVpcCidrs) {
  auto r = loadPolicyTexts({{"vpcs.json", kVpcs}, {"p.yaml", "vpc_cidrs: [10.1.0.0/16]\n"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->vpc_cidrs, (std::vector<Cidr>{cidr("10.0.0.0/16"), cidr("10.1.0.0/16"),
                                                    cidr("2600:1f18:aa:bb00::/56")}));
  EXPECT_TRUE(r.policy->exempt);
}

TEST(ExemptKeys, DescribeVpcsErrorsNameTheJsonPath) {
  auto v6 = loadPolicyTexts({{"v.json", R"({"Vpcs": [{"CidrBlockAssociationSet": [
      {"CidrBlock": "2001:db8::/56"}]}]})"}});
  EXPECT_TRUE(failsWith(v6, "v.json: Vpcs[0].CidrBlockAssociationSet[0].CidrBlock",
                        "expected an IPv4 CIDR"));
  auto small = loadPolicyTexts({{"v.json", R"({"Vpcs": [{"CidrBlock": "10.0.0.0/32"}]})"}});
  EXPECT_TRUE(failsWith(small, "v.json: Vpcs[0].CidrBlock", "too small to hold its base + 2"));
  auto type = loadPolicyTexts({{"v.json", R"({"Vpcs": [{"CidrBlock": 10}]})"}});
  EXPECT_TRUE(failsWith(type, "v.json: Vpcs[0].CidrBlock", "expected an IPv4 CIDR"));
}

CompiledPolicyPtr compiled(const std::string& yaml) {
  auto r = loadYamlText(yaml);
  EXPECT_TRUE(r.ok()) << dumpDiagnostics(r);
  if (!r.ok()) return nullptr;
  auto c = compile(*r.policy);
  return c.policy;
}

Exemption exemptionOf(const CompiledPolicy& p, const char* src, uint16_t sport, const char* dst,
                      uint16_t dport, uint8_t proto = 17) {
  Flow5 f;
  f.proto = proto;
  f.src = addr(src);
  f.dst = addr(dst);
  f.sport = sport;
  f.dport = dport;
  return serviceExemption(p, f);
}

TEST(ServiceExemption, BetweenAnInterfaceAndTheVpcServices) {
  auto p = compiled(
      "vpc_cidrs: [10.0.0.0/16, \"2001:db8::/56\"]\n"
      "groups: {g: {}}\n"
      "interfaces: {i: {addresses: [10.0.1.5, \"2001:db8::5\"], groups: [g]}}\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 1000, "169.254.169.254", 80, 6),
            Exemption::kInstanceMetadata);
  EXPECT_EQ(exemptionOf(*p, "169.254.169.254", 80, "10.0.1.5", 1000, 6),
            Exemption::kInstanceMetadata);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 1000, "169.254.169.253", 53), Exemption::kAmazonDns);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 1000, "10.0.0.2", 53), Exemption::kAmazonDns);
  EXPECT_EQ(exemptionOf(*p, "2001:db8::5", 1000, "2001:db8::2", 53), Exemption::kAmazonDns);
  EXPECT_EQ(exemptionOf(*p, "2001:db8::5", 1000, "fd00:ec2::253", 53), Exemption::kAmazonDns);
  EXPECT_EQ(exemptionOf(*p, "2001:db8::5", 1000, "fd00:ec2::254", 80),
            Exemption::kInstanceMetadata);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 123, "169.254.169.123", 123), Exemption::kTimeSync);
  EXPECT_EQ(exemptionOf(*p, "2001:db8::5", 123, "fd00:ec2::123", 123), Exemption::kTimeSync);
  EXPECT_EQ(exemptionOf(*p, "0.0.0.0", 68, "255.255.255.255", 67), Exemption::kDhcp);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 68, "10.0.0.1", 67), Exemption::kDhcp);
  EXPECT_EQ(exemptionOf(*p, "10.0.0.1", 67, "10.0.1.5", 68), Exemption::kDhcp);
  EXPECT_EQ(exemptionOf(*p, "10.0.0.1", 67, "255.255.255.255", 68), Exemption::kDhcp);
  // Not the services: another address, another host's traffic, DHCP from outside the VPC.
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 1000, "10.0.0.3", 53), Exemption::kNone);
  EXPECT_EQ(exemptionOf(*p, "192.0.2.1", 1000, "169.254.169.254", 80), Exemption::kNone);
  EXPECT_EQ(exemptionOf(*p, "198.51.100.1", 67, "10.0.1.5", 68), Exemption::kNone);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 68, "198.51.100.1", 67), Exemption::kNone);
  EXPECT_EQ(exemptionOf(*p, "10.0.1.5", 67, "10.0.0.1", 67), Exemption::kNone);

  auto off = compiled(
      "exempt: false\nvpc_cidrs: [10.0.0.0/16]\ngroups: {g: {}}\n"
      "interfaces: {i: {addresses: [10.0.1.5], groups: [g]}}\n");
  ASSERT_TRUE(off);
  EXPECT_EQ(exemptionOf(*off, "10.0.1.5", 1000, "169.254.169.254", 80, 6), Exemption::kNone);
  EXPECT_EQ(exemptionOf(*off, "10.0.1.5", 1000, "10.0.0.2", 53), Exemption::kNone);
  EXPECT_EQ(exemptionOf(*off, "0.0.0.0", 68, "255.255.255.255", 67), Exemption::kNone);
}

}  // namespace
}  // namespace statewall::rules
