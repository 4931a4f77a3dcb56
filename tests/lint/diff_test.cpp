// diffPolicies(): rules added, removed and changed, matched up when reordered; ACL entries
// renumbered; and whether what each scope allows changed, exactly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/policy_diff.hpp"

namespace statewall::rules {
namespace {

const std::string kExamples = STATEWALL_EXAMPLES_DIR;

CompiledPolicyPtr compileYaml(const std::string& yaml, const std::string& name) {
  LoadResult loaded = loadPolicyTexts({SourceText{name, "version: 1" + yaml}});
  for (const auto& d : loaded.diagnostics)
    if (d.severity == Severity::kError) ADD_FAILURE() << d.str();
  if (!loaded.policy) return nullptr;
  CompileResult c = compile(*loaded.policy);
  for (const auto& d : c.diagnostics)
    ADD_FAILURE() << d.str();
  return c.policy;
}

PolicyDiff diffYaml(const std::string& a, const std::string& b) {
  auto pa = compileYaml(a, "old.yaml");
  auto pb = compileYaml(b, "new.yaml");
  if (!pa || !pb) return {};
  return diffPolicies(*pa, *pb);
}

std::string dump(const PolicyDiff& d) {
  std::string s;
  for (const auto& c : d.changes)
    s += c.str() + "\n";
  for (const auto& e : d.effects)
    s += "effect " + e.scope + ": " + (e.same ? "same" : "+" + e.gained + " -" + e.lost) + "\n";
  return s.empty() ? "(empty)\n" : s;
}

std::vector<const PolicyChange*> of(const PolicyDiff& d, ChangeKind k, ObjectKind o) {
  std::vector<const PolicyChange*> v;
  for (const auto& c : d.changes)
    if (c.kind == k && c.object == o) v.push_back(&c);
  return v;
}

const ScopeEffect* effect(const PolicyDiff& d, const std::string& scope) {
  for (const auto& e : d.effects)
    if (e.scope == scope) return &e;
  return nullptr;
}

const std::string kBase = R"(
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
      - {proto: tcp, ports: 80, from: 0.0.0.0/0}
      - {proto: tcp, ports: 22, from: 203.0.113.0/24, description: ssh}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
network_acls:
  a:
    inbound:
      - {rule: 90, action: deny, proto: all, from: 192.0.2.0/24}
      - {rule: 100, action: allow, proto: tcp, ports: 0-65535, from: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: icmp, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  s: {cidr: 10.0.1.0/24, acl: a}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(PolicyDiff, IdenticalPoliciesHaveNoChanges) {
  const PolicyDiff d = diffYaml(kBase, kBase);
  EXPECT_TRUE(d.empty()) << dump(d);
  EXPECT_TRUE(d.effects.empty()) << dump(d);
  EXPECT_FALSE(d.narrows());
}

TEST(PolicyDiff, ReorderedRulesAndPeersChangeNothing) {
  // Rules in another order, the peers of the first rule swapped.
  const std::string moved =
      replace(replace(kBase, R"(      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
      - {proto: tcp, ports: 80, from: 0.0.0.0/0}
)",
                      ""),
              "      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}\n",
              "      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}\n"
              "      - {proto: tcp, ports: 80, from: 0.0.0.0/0}\n"
              "      - {proto: tcp, ports: 443, from: [\"::/0\", 0.0.0.0/0]}\n");
  const PolicyDiff d = diffYaml(kBase, moved);
  EXPECT_TRUE(of(d, ChangeKind::kAdded, ObjectKind::kRule).empty()) << dump(d);
  EXPECT_TRUE(of(d, ChangeKind::kRemoved, ObjectKind::kRule).empty()) << dump(d);
  EXPECT_TRUE(of(d, ChangeKind::kChanged, ObjectKind::kRule).empty()) << dump(d);
  // 443 and 80 went from the front to the back: the other two keep their order.
  EXPECT_EQ(of(d, ChangeKind::kMoved, ObjectKind::kRule).size(), 2u) << dump(d);
  const ScopeEffect* e = effect(d, "group web inbound");
  ASSERT_NE(e, nullptr) << dump(d);
  EXPECT_TRUE(e->same);
  EXPECT_FALSE(d.narrows());
}

TEST(PolicyDiff, ChangedPeersAndPorts) {
  std::string b = replace(kBase, "ports: 22, from: 203.0.113.0/24", "ports: 22, from: 0.0.0.0/0");
  b = replace(b, "ports: 80, from: 0.0.0.0/0}", "ports: 8080, from: 0.0.0.0/0}");
  const PolicyDiff d = diffYaml(kBase, b);
  const auto changed = of(d, ChangeKind::kChanged, ObjectKind::kRule);
  ASSERT_EQ(changed.size(), 2u) << dump(d);
  EXPECT_EQ(changed[0]->detail, "tcp 80 -> tcp 8080");
  EXPECT_EQ(changed[0]->old_loc.line, 6);
  EXPECT_EQ(changed[0]->new_loc.line, 6);
  EXPECT_EQ(changed[1]->detail, "peers +0.0.0.0/0 -203.0.113.0/24");
  EXPECT_NE(changed[1]->old_rule, kNoRule);
  EXPECT_NE(changed[1]->new_rule, kNoRule);
  EXPECT_TRUE(of(d, ChangeKind::kAdded, ObjectKind::kRule).empty());
  const ScopeEffect* e = effect(d, "group web inbound");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->wider);
  EXPECT_TRUE(e->narrower);  // port 80 is gone
  EXPECT_EQ(e->lost, "tcp 80 from 0.0.0.0/0");
  EXPECT_TRUE(d.narrows());
}

TEST(PolicyDiff, AddedAndRemovedRules) {
  std::string b =
      replace(kBase, "      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}\n",
              "      - {proto: udp, ports: 53, from: 10.0.0.0/8}\n");
  const PolicyDiff d = diffYaml(kBase, b);
  // The icmp rule and the udp rule share nothing: one removed, one added.
  ASSERT_EQ(of(d, ChangeKind::kRemoved, ObjectKind::kRule).size(), 1u) << dump(d);
  ASSERT_EQ(of(d, ChangeKind::kAdded, ObjectKind::kRule).size(), 1u) << dump(d);
  EXPECT_EQ(of(d, ChangeKind::kAdded, ObjectKind::kRule)[0]->after, "[3] udp 53 from 10.0.0.0/8");
  EXPECT_TRUE(d.narrows());
  const ScopeEffect* e = effect(d, "interface web-1 inbound");
  ASSERT_NE(e, nullptr) << dump(d);
  EXPECT_EQ(e->gained, "udp 53 from 10.0.0.0/8");
  EXPECT_EQ(e->lost, "icmp type/code 8/0..8/255 from 0.0.0.0/0");
}

TEST(PolicyDiff, AclRenumberingThatKeepsTheOrder) {
  const std::string b = replace(kBase, "rule: 110, action: allow, proto: icmp",
                                "rule: 200, action: allow, proto: icmp");
  const PolicyDiff d = diffYaml(kBase, b);
  const auto moved = of(d, ChangeKind::kMoved, ObjectKind::kAclEntry);
  ASSERT_EQ(moved.size(), 1u) << dump(d);
  EXPECT_EQ(moved[0]->detail, "renumbered 110 -> 200");
  EXPECT_EQ(d.changes.size(), 1u) << dump(d);
  const ScopeEffect* e = effect(d, "network ACL a inbound");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->same);
  EXPECT_FALSE(d.narrows());
}

TEST(PolicyDiff, AclRenumberingThatChangesWhatPasses) {
  // The deny moves after the allow: 192.0.2.0/24 now gets tcp through.
  const std::string b = replace(kBase, "rule: 90, action: deny", "rule: 105, action: deny");
  const PolicyDiff d = diffYaml(kBase, b);
  ASSERT_EQ(of(d, ChangeKind::kMoved, ObjectKind::kAclEntry).size(), 1u) << dump(d);
  const ScopeEffect* e = effect(d, "network ACL a inbound");
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(e->same);
  EXPECT_EQ(e->gained, "tcp all from 192.0.2.0/24");
  EXPECT_FALSE(e->narrower);
  const ScopeEffect* s = effect(d, "subnet s inbound");
  ASSERT_NE(s, nullptr) << dump(d);
  EXPECT_TRUE(s->wider);
  EXPECT_FALSE(d.narrows());
}

TEST(PolicyDiff, AclEntryChangedInPlace) {
  const std::string b = replace(kBase, "rule: 110, action: allow, proto: icmp, from: 0.0.0.0/0",
                                "rule: 110, action: deny, proto: icmp, from: 0.0.0.0/0");
  const PolicyDiff d = diffYaml(kBase, b);
  const auto changed = of(d, ChangeKind::kChanged, ObjectKind::kAclEntry);
  ASSERT_EQ(changed.size(), 1u) << dump(d);
  EXPECT_EQ(changed[0]->detail, "allow -> deny");
  EXPECT_TRUE(d.narrows());
}

TEST(PolicyDiff, GroupsAndInterfaces) {
  std::string b = kBase + R"(  admin-1: {addresses: [10.0.1.20], groups: [admin]}
)";
  b = replace(b, "network_acls:", R"(  admin:
    inbound:
      - {proto: tcp, ports: 22, from: 10.0.0.0/8}
network_acls:)");
  b = replace(b, "web-1: {addresses: [10.0.1.10], groups: [web]}",
              "web-1: {addresses: [10.0.1.10], groups: [web, admin]}");
  const PolicyDiff d = diffYaml(kBase, b);
  EXPECT_EQ(of(d, ChangeKind::kAdded, ObjectKind::kGroup).size(), 1u) << dump(d);
  EXPECT_EQ(of(d, ChangeKind::kAdded, ObjectKind::kRule).size(), 2u) << dump(d);  // in and out
  EXPECT_EQ(of(d, ChangeKind::kAdded, ObjectKind::kInterface).size(), 1u);
  const auto changed = of(d, ChangeKind::kChanged, ObjectKind::kInterface);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0]->detail, "groups +admin");
  const ScopeEffect* e = effect(d, "interface web-1 inbound");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->gained, "tcp 22 from 10.0.0.0/8");
  EXPECT_FALSE(e->narrower);
  EXPECT_FALSE(d.narrows()) << dump(d);
}

TEST(PolicyDiff, YamlAndAwsExamplesDifferOnlyInDescriptions) {
  LoadResult y = loadPolicyFiles({kExamples + "/three-tier.yaml"});
  LoadResult a = loadPolicyFiles(
      {kExamples + "/aws/security-groups.json", kExamples + "/aws/network-acls.json",
       kExamples + "/aws/network-interfaces.json", kExamples + "/aws/subnets.json",
       kExamples + "/aws/prefix-lists.json"});
  ASSERT_TRUE(y.policy && a.policy);
  auto cy = compile(*y.policy).policy;
  auto ca = compile(*a.policy).policy;
  ASSERT_TRUE(cy && ca);
  const PolicyDiff d = diffPolicies(*cy, *ca);
  for (const auto& c : d.changes) {
    EXPECT_EQ(c.kind, ChangeKind::kChanged) << c.str();
    EXPECT_EQ(c.detail.rfind("description", 0), 0u) << c.str();
  }
  for (const auto& e : d.effects)
    EXPECT_TRUE(e.same) << e.scope;
  EXPECT_FALSE(d.narrows());
}

}  // namespace
}  // namespace statewall::rules
