// Every lint check with a policy that triggers it and one that does not; the examples give only
// the findings that are real there (no SSH finding: SSH is limited to a prefix list).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/lint.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

const std::string kExamples = STATEWALL_EXAMPLES_DIR;

std::vector<LintFinding> lintTexts(const std::vector<SourceText>& docs) {
  LoadResult loaded = loadPolicyTexts(docs);
  for (const auto& d : loaded.diagnostics)
    if (d.severity == Severity::kError) ADD_FAILURE() << d.str();
  if (!loaded.policy) return {};
  CompileResult c = compile(*loaded.policy);
  for (const auto& d : c.diagnostics)
    ADD_FAILURE() << d.str();
  if (!c.policy) return {};
  return lintPolicy(*c.policy);
}

std::vector<LintFinding> lintYaml(const std::string& yaml) {
  return lintTexts({SourceText{"p.yaml", "version: 1" + yaml}});
}

std::vector<LintFinding> lintFiles(const std::vector<std::string>& files) {
  LoadResult loaded = loadPolicyFiles(files);
  EXPECT_TRUE(loaded.policy);
  if (!loaded.policy) return {};
  CompileResult c = compile(*loaded.policy);
  EXPECT_TRUE(c.policy);
  if (!c.policy) return {};
  return lintPolicy(*c.policy);
}

std::vector<const LintFinding*> withCode(const std::vector<LintFinding>& v,
                                         const std::string& code) {
  std::vector<const LintFinding*> out;
  for (const auto& f : v)
    if (f.code == code) out.push_back(&f);
  return out;
}

std::string dump(const std::vector<LintFinding>& v) {
  std::string s;
  for (const auto& f : v)
    s += f.loc.str() + ": " + std::string(lintSeverityName(f.severity)) + " " + f.code + ": " +
         f.subject + ": " + f.message + "\n";
  return s.empty() ? "(no findings)\n" : s;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Two interfaces in a subnet without ACL unless a test adds one.
const std::string kIfaces = R"(
subnets:
  s1: {cidr: [10.0.1.0/24, "2001:db8:1::/64"]}
interfaces:
  i1: {addresses: [10.0.1.10, "2001:db8:1::10"], groups: [g]}
)";

TEST(LintTable, CodesAreUniqueAndOrdered) {
  std::set<std::string> codes, names;
  std::string last;
  for (const LintCheck& c : lintChecks()) {
    EXPECT_TRUE(codes.insert(std::string(c.code)).second) << c.code;
    EXPECT_TRUE(names.insert(std::string(c.name)).second) << c.name;
    EXPECT_LT(last, std::string(c.code));
    last = std::string(c.code);
    EXPECT_EQ(c.code.substr(0, 2), "SW");
  }
  EXPECT_EQ(codes.size(), 12u);
  EXPECT_EQ(parseLintSeverity("warning"), LintSeverity::kWarning);
  EXPECT_FALSE(parseLintSeverity("fatal"));
}

// ---- SW001 / SW002 / SW003 ----

TEST(LintExposure, SshFromTheInternet) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {proto: tcp, ports: 22, from: 0.0.0.0/0}
      - {proto: udp, ports: 3389, from: "::/0"}
)" + kIfaces);
  const auto hits = withCode(f, "SW001");
  ASSERT_EQ(hits.size(), 2u) << dump(f);
  EXPECT_EQ(hits[0]->loc.str(), "p.yaml:6:9");
  EXPECT_EQ(hits[0]->severity, LintSeverity::kError);
  EXPECT_TRUE(contains(hits[0]->message, "22 (SSH)")) << hits[0]->message;
  EXPECT_TRUE(contains(hits[0]->message, "i1"));
  EXPECT_FALSE(hits[0]->fix.empty());
  EXPECT_EQ(hits[1]->loc.str(), "p.yaml:7:9");
  EXPECT_TRUE(contains(hits[1]->message, "3389 (RDP)"));
  EXPECT_TRUE(contains(hits[1]->message, "::/0"));
  EXPECT_TRUE(withCode(f, "SW002").empty());
  EXPECT_TRUE(withCode(f, "SW003").empty());
}

TEST(LintExposure, SshFromKnownAddressesIsFine) {
  const auto f = lintYaml(R"(
prefix_lists:
  office: [203.0.113.0/24]
groups:
  g:
    inbound:
      - {proto: tcp, ports: 22, from: pl:office}
      - {proto: tcp, ports: 22, from: 10.0.0.0/8}
      - {proto: tcp, ports: 2222, from: 0.0.0.0/0}
      - {proto: udp, ports: 22, from: 0.0.0.0/0}
)" + kIfaces);
  EXPECT_TRUE(withCode(f, "SW001").empty()) << dump(f);
}

TEST(LintExposure, TwoHalvesMakeTheInternet) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 20-23, from: [0.0.0.0/1, 128.0.0.0/1]}
)" + kIfaces);
  EXPECT_EQ(withCode(f, "SW001").size(), 1u) << dump(f);
}

TEST(LintExposure, AnAclThatBlocksLowersTheSeverity) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 22, from: 0.0.0.0/0}
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: tcp, ports: 22, from: 10.0.1.0/24}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  s1: {cidr: 10.0.1.0/24, acl: a}
interfaces:
  i1: {addresses: [10.0.1.10], groups: [g]}
)");
  const auto hits = withCode(f, "SW001");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->severity, LintSeverity::kWarning);
  EXPECT_TRUE(contains(hits[0]->message, "network ACLs drop it")) << hits[0]->message;
}

TEST(LintExposure, DatabasePorts) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 5432, from: "::/0"}
      - {proto: tcp, ports: 1433-3306, from: 0.0.0.0/0}
      - {proto: tcp, ports: 5432, from: sg:g}
      - {proto: tcp, ports: 27017, from: 10.0.0.0/8}
)" + kIfaces);
  const auto hits = withCode(f, "SW002");
  ASSERT_EQ(hits.size(), 2u) << dump(f);
  EXPECT_TRUE(contains(hits[0]->message, "5432 (PostgreSQL)"));
  EXPECT_TRUE(contains(hits[1]->message, "1433 (SQL Server), 3306 (MySQL)")) << hits[1]->message;
  EXPECT_FALSE(contains(hits[1]->message, "5432"));
  EXPECT_FALSE(contains(hits[1]->message, "27017"));
  EXPECT_TRUE(withCode(f, "SW001").empty()) << dump(f);
}

TEST(LintExposure, AllPorts) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: all, from: 0.0.0.0/0}
      - {proto: tcp, ports: 0-65535, from: "::/0"}
      - {proto: all, from: 10.0.0.0/8}
      - {proto: 47, from: 0.0.0.0/0}
)" + kIfaces);
  const auto hits = withCode(f, "SW003");
  ASSERT_EQ(hits.size(), 2u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 5);
  EXPECT_EQ(hits[1]->loc.line, 6);
  // The all-ports finding stands for the admin and database ports inside it.
  EXPECT_TRUE(withCode(f, "SW001").empty());
  EXPECT_TRUE(withCode(f, "SW002").empty());
}

// ---- SW010 / SW011 ----

TEST(LintRedundant, CoveredBySameGroupRule) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 80-90, from: 10.0.0.0/8}
      - {proto: tcp, ports: 85, from: 10.1.0.0/16}
      - {proto: tcp, ports: 443, from: "2001:db8::/32"}
      - {proto: tcp, ports: 443, from: "2001:db8:1::/48"}
      - {proto: icmp, from: 0.0.0.0/0}
      - {proto: icmp, icmp: {type: 8, code: 0}, from: 10.0.0.0/8}
      - {proto: tcp, ports: 91, from: 10.0.0.0/8}
)" + kIfaces);
  const auto hits = withCode(f, "SW010");
  ASSERT_EQ(hits.size(), 3u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 6);
  EXPECT_TRUE(contains(hits[0]->message, "g inbound[0]")) << hits[0]->message;
  ASSERT_EQ(hits[0]->related.size(), 1u);
  EXPECT_EQ(hits[0]->related[0].loc.line, 5);
  EXPECT_EQ(hits[1]->loc.line, 8);   // IPv6
  EXPECT_EQ(hits[2]->loc.line, 10);  // ICMP type 8 code 0 inside icmp any
  EXPECT_TRUE(contains(hits[2]->message, "g inbound[4]"));
}

TEST(LintRedundant, DuplicateReportsTheLaterRuleOnly) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: udp, ports: 53, from: 10.0.0.0/8}
      - {proto: udp, ports: 53, from: 10.0.0.0/8}
)" + kIfaces);
  const auto hits = withCode(f, "SW010");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 6);
}

TEST(LintRedundant, CoveredOnlyByAUnion) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 80, from: 10.0.0.0/9}
      - {proto: tcp, ports: 80-81, from: 10.128.0.0/9}
      - {proto: tcp, ports: 80, from: 10.0.0.0/8}
      - {proto: tcp, ports: 81, from: 10.0.0.0/8}
)" + kIfaces);
  // Rule 3 (tcp 81 from 10/8) is not covered: 10.0.0.0/9 lacks port 81. Rule 2 (tcp 80 from
  // 10/8) is covered by rules 0 and 1 together; with rule 2 gone rule 0 is not covered.
  const auto hits = withCode(f, "SW010");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 7);
  EXPECT_TRUE(contains(hits[0]->message, "the union of")) << hits[0]->message;
  EXPECT_EQ(hits[0]->related.size(), 2u);
}

TEST(LintRedundant, NotCoveredWhenAPortIsMissing) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 80, from: 10.0.0.0/8}
      - {proto: tcp, ports: 81, from: 10.0.0.0/8}
      - {proto: tcp, ports: 80-81, from: 10.0.0.0/8}
      - {proto: udp, ports: 80-82, from: 10.0.0.0/8}
)" + kIfaces);
  // Rule 2 is covered by 0 and 1 (and reported); nothing covers the udp rule.
  const auto hits = withCode(f, "SW010");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 7);
}

TEST(LintRedundant, AllPeerRuleThatMakesFlowsUntrackedIsKept) {
  // Packet for packet the /0 rule adds nothing to the two halves, but it is the rule that makes
  // inbound flows from 0.0.0.0/0 untracked: removing it would change tracking, so it is kept and
  // the halves are reported instead.
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
    outbound:
      - {proto: tcp, ports: 0-65535, to: [0.0.0.0/1, 128.0.0.0/1]}
      - {proto: tcp, ports: 0-65535, to: 0.0.0.0/0}
)" + kIfaces);
  const auto hits = withCode(f, "SW010");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 7);
}

TEST(LintRedundant, CoveredByAnotherGroupOnEveryInterface) {
  const std::string groups = R"(
groups:
  wide:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
    outbound: []
  narrow:
    inbound:
      - {proto: tcp, ports: 443, from: 10.0.0.0/8}
    outbound: []
)";
  const auto f = lintYaml(groups + R"(
interfaces:
  i1: {addresses: [10.0.1.10], groups: [wide, narrow]}
  i2: {addresses: [10.0.1.11], groups: [narrow, wide]}
)");
  const auto hits = withCode(f, "SW011");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 9);
  EXPECT_TRUE(contains(hits[0]->message, "wide inbound[0]"));
  EXPECT_TRUE(withCode(f, "SW010").empty());

  // On i3 the narrow group stands alone: its rule matters there.
  const auto g = lintYaml(groups + R"(
interfaces:
  i1: {addresses: [10.0.1.10], groups: [wide, narrow]}
  i3: {addresses: [10.0.1.12], groups: [narrow]}
)");
  EXPECT_TRUE(withCode(g, "SW011").empty()) << dump(g);
}

// ---- SW020 / SW021 ----

TEST(LintAcl, ShadowedEntry) {
  const auto f = lintYaml(R"(
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: tcp, ports: 0-65535, from: 10.0.0.0/8}
      - {rule: 110, action: allow, proto: tcp, ports: 443, from: 10.1.0.0/16}
      - {rule: 120, action: allow, proto: tcp, ports: 443, from: 11.0.0.0/8}
      - {rule: 130, action: deny, proto: icmp, from: 0.0.0.0/0}
      - {rule: 140, action: allow, proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
      - {rule: 150, action: allow, proto: tcp, ports: 22, from: "2001:db8::/32"}
      - {rule: 160, action: allow, proto: tcp, ports: 22, from: "2001:db8:5::/48"}
    outbound: []
)");
  const auto hits = withCode(f, "SW020");
  ASSERT_EQ(hits.size(), 3u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 6);
  EXPECT_TRUE(contains(hits[0]->subject, "110 allow tcp 443")) << hits[0]->subject;
  EXPECT_TRUE(contains(hits[0]->message, "100 allow tcp all from 10.0.0.0/8")) << hits[0]->message;
  EXPECT_EQ(hits[1]->loc.line, 9);  // allow icmp echo after deny icmp: never matches
  EXPECT_TRUE(contains(hits[1]->message, "and deny them")) << hits[1]->message;
  EXPECT_EQ(hits[2]->loc.line, 11);  // IPv6
  EXPECT_TRUE(withCode(f, "SW021").empty());
}

TEST(LintAcl, ShadowedOnlyByTwoEntries) {
  const auto f = lintYaml(R"(
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: udp, ports: 0-1023, from: 0.0.0.0/0}
      - {rule: 110, action: deny, proto: udp, ports: 1024-65535, from: 0.0.0.0/0}
      - {rule: 120, action: allow, proto: udp, ports: 53, from: 10.0.0.0/8}
      - {rule: 130, action: allow, proto: udp, ports: 1000-2000, from: 10.0.0.0/8}
      - {rule: 140, action: allow, proto: udp, ports: 1000-2000, from: "::/0"}
    outbound: []
)");
  const auto hits = withCode(f, "SW020");
  ASSERT_EQ(hits.size(), 2u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 7);
  EXPECT_EQ(hits[1]->loc.line, 8);
  EXPECT_EQ(hits[1]->related.size(), 2u);  // 100 and 110 decide it together
}

TEST(LintAcl, DenyAfterAllow) {
  const auto f = lintYaml(R"(
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: all, from: 0.0.0.0/0}
      - {rule: 110, action: deny, proto: tcp, ports: 22, from: 192.0.2.0/24}
    outbound:
      - {rule: 90, action: deny, proto: tcp, ports: 25, to: 0.0.0.0/0}
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
)");
  const auto hits = withCode(f, "SW021");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 6);
  EXPECT_EQ(hits[0]->severity, LintSeverity::kError);
  EXPECT_TRUE(contains(hits[0]->fix, "below 100")) << hits[0]->fix;
  EXPECT_TRUE(withCode(f, "SW020").empty()) << dump(f);
}

// ---- SW030 ----

const std::string kWebGroup = R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
    outbound: []
subnets:
  s1: {cidr: [10.0.1.0/24, "2001:db8:1::/64"], acl: a}
interfaces:
  i1: {addresses: [10.0.1.10, "2001:db8:1::10"], groups: [g]}
)";

TEST(LintStateless, RepliesDroppedByTheOutboundAcl) {
  const auto f = lintYaml(kWebGroup + R"(
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: all, from: 0.0.0.0/0}
      - {rule: 101, action: allow, proto: all, from: "::/0"}
    outbound:
      - {rule: 100, action: allow, proto: tcp, ports: 443, to: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: tcp, ports: 32768-65535, to: "::/0"}
)");
  const auto hits = withCode(f, "SW030");
  ASSERT_EQ(hits.size(), 2u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 5);
  // IPv4 replies are dropped on every ephemeral port; IPv6 ones only on 1024-32767.
  EXPECT_TRUE(contains(hits[0]->message, "tcp replies to 0.0.0.0/0 except 10.0.1.0/24"))
      << hits[0]->message;
  EXPECT_TRUE(contains(hits[0]->message, "::/0 except 2001:db8:1::/64")) << hits[0]->message;
  EXPECT_TRUE(contains(hits[0]->message, "is dropped by a outbound \"* deny")) << hits[0]->message;
  EXPECT_TRUE(contains(hits[0]->fix, "1024-65535"));
  EXPECT_EQ(hits[1]->loc.line, 6);
  EXPECT_TRUE(contains(hits[1]->message, "icmp echo replies")) << hits[1]->message;
  EXPECT_TRUE(contains(hits[1]->message, "type 0 code 0")) << hits[1]->message;
}

TEST(LintStateless, EphemeralRuleFixesIt) {
  const auto f = lintYaml(kWebGroup + R"(
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: all, from: 0.0.0.0/0}
      - {rule: 101, action: allow, proto: all, from: "::/0"}
    outbound:
      - {rule: 100, action: allow, proto: tcp, ports: 1024-65535, to: 0.0.0.0/0}
      - {rule: 101, action: allow, proto: tcp, ports: 1024-65535, to: "::/0"}
      - {rule: 110, action: allow, proto: icmp, icmp: {type: 0, code: -1}, to: 0.0.0.0/0}
)");
  EXPECT_TRUE(withCode(f, "SW030").empty()) << dump(f);
}

TEST(LintStateless, RequestsTheAclDropsAnywayAreNotATrap) {
  // The inbound ACL lets no request in, so no reply is ever expected.
  const auto f = lintYaml(kWebGroup + R"(
network_acls:
  a:
    inbound:
      - {rule: 100, action: allow, proto: tcp, ports: 22, from: 0.0.0.0/0}
    outbound: []
)");
  EXPECT_TRUE(withCode(f, "SW030").empty()) << dump(f);
}

TEST(LintStateless, DeliberateDenyIsNotATrap) {
  // Replies from a blocked network are dropped by a deny meant for it, not for lack of a rule.
  const auto f = lintYaml(R"(
groups:
  g:
    inbound: []
network_acls:
  a:
    inbound:
      - {rule: 90, action: deny, proto: all, from: 192.0.2.0/24}
      - {rule: 100, action: allow, proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}
      - {rule: 32000, action: deny, proto: all, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  s1: {cidr: 10.0.1.0/24, acl: a}
interfaces:
  i1: {addresses: [10.0.1.10], groups: [g]}
)");
  // The default outbound rule allows udp and icmp too: their replies fall through (rule 32000
  // is a catch-all deny, which counts like '*'). TCP replies pass, except from 192.0.2.0/24,
  // which rule 90 blocks on purpose.
  const auto hits = withCode(f, "SW030");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_TRUE(contains(hits[0]->message, "udp replies from 0.0.0.0/0 except 10.0.1.0/24"))
      << hits[0]->message;
  EXPECT_TRUE(contains(hits[0]->message, "icmp echo replies from 0.0.0.0/0 except 10.0.1.0/24"))
      << hits[0]->message;
  EXPECT_FALSE(contains(hits[0]->message, "tcp replies")) << hits[0]->message;
  EXPECT_TRUE(contains(hits[0]->message, "32000 deny all")) << hits[0]->message;
}

// ---- SW040 / SW041 / SW042 / SW043 ----

TEST(LintGroups, UnattachedGroupAndEmptyReferences) {
  const auto f = lintYaml(R"(
prefix_lists:
  empty: []
groups:
  g:
    inbound:
      - {proto: tcp, ports: 5432, from: [sg:lonely, 10.0.0.0/8]}
      - {proto: tcp, ports: 6379, from: sg:lonely}
      - {proto: tcp, ports: 8080, from: pl:empty}
  lonely:
    inbound: []
)" + kIfaces);
  const auto unattached = withCode(f, "SW040");
  ASSERT_EQ(unattached.size(), 1u) << dump(f);
  EXPECT_EQ(unattached[0]->severity, LintSeverity::kInfo);
  EXPECT_TRUE(contains(unattached[0]->subject, "lonely"));
  const auto empty = withCode(f, "SW041");
  ASSERT_EQ(empty.size(), 3u) << dump(f);
  EXPECT_FALSE(contains(empty[0]->message, "allows nothing"));
  EXPECT_TRUE(contains(empty[1]->message, "allows nothing"));
  EXPECT_TRUE(contains(empty[2]->message, "prefix list empty has no entries"));
  // A rule that matches nothing is not also called redundant.
  EXPECT_TRUE(withCode(f, "SW010").empty()) << dump(f);
}

TEST(LintGroups, AttachedGroupsAreFine) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 5432, from: sg:other}
  other:
    inbound:
      - {proto: tcp, ports: 80, from: sg:g}
subnets:
  s1: {cidr: 10.0.1.0/24}
interfaces:
  i1: {addresses: [10.0.1.10], groups: [g]}
  i2: {addresses: [10.0.1.11], groups: [other]}
)");
  EXPECT_TRUE(withCode(f, "SW040").empty()) << dump(f);
  EXPECT_TRUE(withCode(f, "SW041").empty()) << dump(f);
  EXPECT_TRUE(withCode(f, "SW042").empty()) << dump(f);
}

TEST(LintGroups, InterfaceWithNothingInbound) {
  const auto f = lintYaml(R"(
groups:
  client:
    inbound: []
  g:
    inbound:
      - {proto: tcp, ports: 22, from: sg:nobody}
  nobody:
    inbound: []
interfaces:
  i1: {addresses: [10.0.1.10], groups: [client]}
  i2: {addresses: [10.0.1.11], groups: []}
  i3: {addresses: [10.0.1.12], groups: [g]}
  i4: {addresses: [10.0.1.13], groups: [g, client]}
)");
  const auto hits = withCode(f, "SW042");
  ASSERT_EQ(hits.size(), 4u) << dump(f);
  EXPECT_TRUE(contains(hits[0]->subject, "i1"));
  EXPECT_TRUE(contains(hits[1]->message, "no security groups")) << hits[1]->message;
}

TEST(LintUntracked, OutboundAllowAllMakesInternetFlowsUntracked) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {proto: tcp, ports: 22, from: 10.0.0.0/8}
    outbound:
      - {proto: all, to: 0.0.0.0/0}
)" + kIfaces);
  const auto hits = withCode(f, "SW043");
  ASSERT_EQ(hits.size(), 1u) << dump(f);
  EXPECT_EQ(hits[0]->loc.line, 8);
  ASSERT_EQ(hits[0]->related.size(), 1u);  // only the /0 rule's flows are untracked
  EXPECT_EQ(hits[0]->related[0].loc.line, 5);
  EXPECT_EQ(hits[0]->severity, LintSeverity::kInfo);
}

TEST(LintUntracked, NarrowOutboundKeepsFlowsTracked) {
  const auto f = lintYaml(R"(
groups:
  g:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
    outbound:
      - {proto: tcp, ports: 443, to: 0.0.0.0/0}
      - {proto: all, to: 10.0.0.0/8}
)" + kIfaces);
  EXPECT_TRUE(withCode(f, "SW043").empty()) << dump(f);
}

// ---- the examples ----

TEST(LintExamples, OnlyRealFindings) {
  for (const auto& files :
       {std::vector<std::string>{kExamples + "/three-tier.yaml"},
        std::vector<std::string>{
            kExamples + "/aws/security-groups.json", kExamples + "/aws/network-acls.json",
            kExamples + "/aws/network-interfaces.json", kExamples + "/aws/subnets.json",
            kExamples + "/aws/prefix-lists.json"}}) {
    const auto f = lintFiles(files);
    std::multiset<std::string> codes;
    for (const auto& x : f)
      codes.insert(x.code);
    // The web tier's default outbound rule: UDP replies (DNS, NTP to servers outside the
    // subnet) have no inbound entry in public-acl, and the rule makes the internet flows to
    // ports 80 and 443 untracked. Nothing else: SSH is limited to the office prefix list.
    EXPECT_EQ(codes, (std::multiset<std::string>{"SW030", "SW043"})) << dump(f);
    const auto trap = withCode(f, "SW030");
    ASSERT_EQ(trap.size(), 1u);
    EXPECT_TRUE(contains(trap[0]->subject, "web outbound[0]"));
    EXPECT_TRUE(contains(trap[0]->message, "udp replies")) << trap[0]->message;
    EXPECT_FALSE(contains(trap[0]->message, "tcp replies")) << trap[0]->message;
  }
}

TEST(LintExamples, YamlAndAwsGiveTheSameFindings) {
  const auto y = lintFiles({kExamples + "/three-tier.yaml"});
  const auto a =
      lintFiles({kExamples + "/aws/security-groups.json", kExamples + "/aws/network-acls.json",
                 kExamples + "/aws/network-interfaces.json", kExamples + "/aws/subnets.json",
                 kExamples + "/aws/prefix-lists.json"});
  ASSERT_EQ(y.size(), a.size());
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_EQ(y[i].code, a[i].code);
    EXPECT_EQ(y[i].message, a[i].message);
    EXPECT_NE(y[i].loc.str(), a[i].loc.str());
  }
}

}  // namespace
}  // namespace statewall::rules
