// Unit tests of compile() and CompiledPolicy: every rule form, union of groups, references,
// prefix lists, ICMP, IPv6, ACLs and the untracked rule.
#include <gtest/gtest.h>

#include <string>

#include "compiler/policy_builder.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::rules {
namespace {

using namespace testing;  // NOLINT

constexpr Direction kIn = Direction::kInbound;
constexpr Direction kOut = Direction::kOutbound;

// "group/inbound/2", "none"; plus "+untracked".
std::string who(const CompiledPolicy& cp, const SgVerdict& v) {
  if (!v.allowed()) return "none";
  const RuleInfo& r = cp.rule(v.rule);
  return r.group_name + "/" + std::string(directionName(r.dir)) + "/" + std::to_string(r.index) +
         (v.untracked ? "+untracked" : "");
}

std::string who(const CompiledPolicy& cp, const AclVerdict& v) {
  if (v.acl == kNoAcl) return "no-acl";
  const AclEntryInfo& e = cp.aclEntry(v.entry);
  EXPECT_EQ(e.rule_number, v.rule_number);
  EXPECT_EQ(e.allow, v.allow);
  return e.ruleNumberStr() + (v.allow ? " allow" : " deny");
}

Policy onePolicy(std::vector<SgRule> in, std::vector<SgRule> out = {}) {
  Policy p;
  p.groups.push_back(G("g", std::move(in), std::move(out)));
  p.interfaces.push_back(I("eni", {"10.0.1.10", "2001:db8::10"}, {"g"}));
  return p;
}

TEST(Classifier, TcpPortRange) {
  auto cp = compileOrFail(onePolicy({R(tcp(1000, 2000), {"0.0.0.0/0"})}));
  const IfaceId i = cp->interfaceOf(A("10.0.1.10"));
  ASSERT_NE(i, kNoIface);
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("1.2.3.4", 999))), "none");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("1.2.3.4", 1000))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("1.2.3.4", 1500))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("1.2.3.4", 2000))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("1.2.3.4", 2001))), "none");
  // Other protocol, other direction: nothing.
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, udpTo("1.2.3.4", 1500))), "none");
  EXPECT_EQ(who(*cp, cp->classify(i, kOut, tcpTo("1.2.3.4", 1500))), "none");
}

TEST(Classifier, SinglePortAndFullRangeAndUdp) {
  auto cp =
      compileOrFail(onePolicy({R(tcp(443), {"203.0.113.0/24"}),
                               R(udp(0, 65535), {"198.51.100.7/32"}), R(udp(53), {"10.0.0.0/8"})}));
  const IfaceId i = 0;
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("203.0.113.99", 443))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("203.0.114.1", 443))), "none");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, tcpTo("203.0.113.99", 444))), "none");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, udpTo("198.51.100.7", 0))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, udpTo("198.51.100.7", 65535))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, udpTo("198.51.100.8", 53))), "none");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, udpTo("10.200.0.1", 53))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(i, kIn, udpTo("10.200.0.1", 54))), "none");
}

TEST(Classifier, ProtoAllMatchesEverything) {
  auto cp = compileOrFail(onePolicy({R(all(), {"10.9.0.0/16"})}));
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.9.1.1", 1))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, udpTo("10.9.1.1", 65535))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("10.9.1.1", 8, 0))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, protoTo("10.9.1.1", 47))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, protoTo("10.9.1.1", 0))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, protoTo("10.10.1.1", 47))), "none");
}

TEST(Classifier, ProtocolNumberRuleMatchesOnlyThatProtocolOnAllPorts) {
  Match gre = protoNum(47);
  gre.port_lo = 5;  // ports of a non-TCP/UDP protocol are meaningless and must be ignored
  gre.port_hi = 6;
  auto cp = compileOrFail(onePolicy({R(gre, {"0.0.0.0/0"}), R(protoNum(kProtoTcp), {"10.0.0.1"})}));
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, protoTo("1.1.1.1", 47))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, protoTo("1.1.1.1", 50))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("1.1.1.1", 5))), "none");
  // A numeric 6 with the default ports is TCP on all ports.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.0.0.1", 5))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.0.0.1", 65535))), "g/inbound/1");
}

TEST(Classifier, IcmpTypeCodeWildcards) {
  auto cp = compileOrFail(onePolicy({
      R(icmp(8, kAny), {"0.0.0.0/0"}),      // echo request, any code
      R(icmp(3, 4), {"192.0.2.0/24"}),      // frag needed only
      R(icmp(kAny, kAny), {"10.0.0.0/8"}),  // any ICMP
      R(icmp6(128, kAny), {"::/0"}),        // ICMPv6 echo request
      R(icmp6(1, 3), {"2001:db8:1::/48"}),  // ICMPv6 unreachable code 3
  }));
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("1.1.1.1", 8, 0))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("1.1.1.1", 8, 255))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("1.1.1.1", 0, 0))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("192.0.2.1", 3, 4))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("192.0.2.1", 3, 3))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("10.1.1.1", 3, 3))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("10.1.1.1", 255, 255))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("10.1.1.1", 8, 0))), "g/inbound/0");
  // ICMP rules do not match ICMPv6 and the other way round.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("2001:db8:9::1", 128, 0, kProtoIcmpV6))),
            "g/inbound/3");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("2001:db8:9::1", 8, 0, kProtoIcmpV6))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("2001:db8:1::5", 1, 3, kProtoIcmpV6))),
            "g/inbound/4");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("2001:db8:1::5", 1, 4, kProtoIcmpV6))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("1.1.1.1", 128, 0))), "none");
}

TEST(Classifier, Ipv6AndFamiliesAreSeparate) {
  auto cp =
      compileOrFail(onePolicy({R(tcp(443), {"0.0.0.0/0"}), R(tcp(443, 444), {"2001:db8::/32"}),
                               R(tcp(22), {"2001:db8:100::/48", "203.0.113.0/24"})}));
  EXPECT_EQ(cp->interfaceOf(A("2001:db8::10")), 0);
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("1.2.3.4", 443))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8:5::1", 443))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8:5::1", 444))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db9::1", 443))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8:100:ffff::1", 22))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8:101::1", 22))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("203.0.113.1", 22))), "g/inbound/2");
  // An IPv4 rule never matches an IPv4-looking IPv6 address.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("::ffff:1.2.3.4", 443))), "none");
}

TEST(Classifier, FirstMatchingRuleWinsAndSpecificPrefixesDoNotShadow) {
  // Rule 0 covers a /8, rule 1 a /24 inside it, rule 2 a /32 inside that; the first rule in
  // order wins wherever it matches, however specific the others are.
  auto cp = compileOrFail(onePolicy({R(tcp(80), {"10.0.0.0/8"}), R(tcp(80, 81), {"10.1.2.0/24"}),
                                     R(tcp(0, 65535), {"10.1.2.3/32", "0.0.0.0/1"})}));
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.1.2.3", 80))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.1.2.3", 81))), "g/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.1.2.3", 82))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.1.3.3", 81))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("127.255.255.255", 1))), "g/inbound/2");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("128.0.0.0", 80))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("255.255.255.255", 80))), "none");
}

TEST(Classifier, UnionOfGroupsInInterfaceOrder) {
  Policy p;
  p.groups.push_back(G("a", {R(tcp(22), {"10.0.0.0/8"})}, {}));
  p.groups.push_back(G("b", {R(tcp(0, 65535), {"10.0.0.0/8"}), R(udp(53), {"0.0.0.0/0"})}, {}));
  p.interfaces.push_back(I("ab", {"10.0.1.1"}, {"a", "b"}));
  p.interfaces.push_back(I("ba", {"10.0.1.2"}, {"b", "a"}));
  p.interfaces.push_back(I("a-only", {"10.0.1.3"}, {"a"}));
  p.interfaces.push_back(I("none", {"10.0.1.4"}, {}));
  auto cp = compileOrFail(p);
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.5.5.5", 22))), "a/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(1, kIn, tcpTo("10.5.5.5", 22))), "b/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.5.5.5", 23))), "b/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, udpTo("8.8.8.8", 53))), "b/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(2, kIn, tcpTo("10.5.5.5", 23))), "none");
  EXPECT_EQ(who(*cp, cp->classify(2, kIn, udpTo("8.8.8.8", 53))), "none");
  EXPECT_EQ(who(*cp, cp->classify(3, kIn, tcpTo("10.5.5.5", 22))), "none");
  EXPECT_EQ(who(*cp, cp->classify(3, kOut, tcpTo("10.5.5.5", 22))), "none");
  EXPECT_EQ(who(*cp, cp->classify(kNoIface, kIn, tcpTo("10.5.5.5", 22))), "none");
  EXPECT_EQ(cp->iface(1).group_names, (std::vector<std::string>{"b", "a"}));
}

TEST(Classifier, SelfAndCrossGroupReferences) {
  Policy p;
  p.groups.push_back(G("web", {R(tcp(443), {"0.0.0.0/0"})}, {R(all(), {"0.0.0.0/0"})}));
  p.groups.push_back(
      G("db", {R(tcp(5432), {"sg:web"}), R(all(), {"sg:db"})}, {R(tcp(5432), {"sg:db"})}));
  p.groups.push_back(G("unused", {}, {}));
  p.groups.push_back(G("x", {R(tcp(1), {"sg:unused"})}, {}));
  p.interfaces.push_back(I("web-1", {"10.0.1.10", "2001:db8::10"}, {"web"}));
  p.interfaces.push_back(I("web-2", {"10.0.1.11"}, {"web"}));
  p.interfaces.push_back(I("db-1", {"10.0.2.20"}, {"db", "x"}));
  p.interfaces.push_back(I("db-2", {"10.0.2.21", "2001:db8::21"}, {"db"}));
  auto cp = compileOrFail(p);
  const IfaceId db1 = cp->interfaceOf(A("10.0.2.20"));
  ASSERT_EQ(db1, 2);
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, tcpTo("10.0.1.10", 5432))), "db/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, tcpTo("10.0.1.11", 5432))), "db/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, tcpTo("2001:db8::10", 5432))), "db/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, tcpTo("10.0.1.12", 5432))), "none");
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, tcpTo("10.0.1.10", 22))), "none");
  // Self reference: all interfaces carrying db, including db-1 itself.
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, udpTo("10.0.2.21", 9))), "db/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, udpTo("2001:db8::21", 9))), "db/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, udpTo("10.0.2.20", 9))), "db/inbound/1");
  EXPECT_EQ(who(*cp, cp->classify(db1, kOut, tcpTo("10.0.2.21", 5432))), "db/outbound/0");
  EXPECT_EQ(who(*cp, cp->classify(db1, kOut, tcpTo("10.0.1.10", 5432))), "none");
  // A reference to a group no interface carries matches nothing.
  EXPECT_EQ(who(*cp, cp->classify(db1, kIn, tcpTo("0.0.0.0", 1))), "none");
}

TEST(Classifier, PrefixListsExpand) {
  Policy p = onePolicy({R(tcp(22), {"pl:office"}), R(tcp(22), {"pl:empty"})});
  PrefixList pl;
  pl.name = "office";
  pl.id = "pl-0123";
  pl.cidrs = {C("203.0.113.0/24"), C("2001:db8:100::/48")};
  p.prefix_lists.push_back(pl);
  PrefixList empty;
  empty.name = "empty";
  p.prefix_lists.push_back(empty);
  // AWS ids resolve too.
  p.groups[0].inbound.push_back(R(tcp(23), {"pl:pl-0123"}));
  auto cp = compileOrFail(p);
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("203.0.113.50", 22))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8:100::50", 22))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("203.0.112.50", 22))), "none");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("203.0.113.50", 23))), "g/inbound/2");
}

TEST(Classifier, RuleInfoDescribesRules) {
  Policy p;
  p.groups.push_back(G("a", {R(tcp(22), {"10.0.0.0/8"}, "ssh")}, {R(all(), {"0.0.0.0/0"})}));
  p.groups.push_back(G("b", {R(udp(53), {"0.0.0.0/0", "::/0"})}, {}));
  p.groups[1].inbound[0].loc = SourceLoc{"p.yaml", 7, 9, ""};
  p.interfaces.push_back(I("i", {"10.0.0.1"}, {"b", "a"}));
  auto cp = compileOrFail(p);
  ASSERT_EQ(cp->ruleCount(), 3u);
  // RuleIds: groups in policy order, inbound then outbound.
  EXPECT_EQ(cp->rule(0).group_name, "a");
  EXPECT_EQ(cp->rule(0).description, "ssh");
  EXPECT_EQ(cp->rule(0).text, "tcp 22 from 10.0.0.0/8");
  EXPECT_EQ(cp->rule(1).dir, kOut);
  EXPECT_EQ(cp->rule(1).text, "all to 0.0.0.0/0");
  EXPECT_EQ(cp->rule(2).group, 1);
  EXPECT_EQ(cp->rule(2).text, "udp 53 from 0.0.0.0/0, ::/0");
  EXPECT_EQ(cp->rule(2).loc.str(), "p.yaml:7:9");
  EXPECT_EQ(cp->classify(0, kIn, udpTo("::1", 53)).rule, 2u);
}

TEST(Classifier, InterfacesAndSubnets) {
  Policy p;
  p.groups.push_back(G("g", {}, {}));
  p.subnets.push_back(S("wide", {"10.0.0.0/16"}));
  p.subnets.push_back(S("narrow", {"10.0.1.0/24", "2001:db8:1::/64"}));
  p.subnets.push_back(S("v6only", {"2001:db8:2::/64"}));
  p.interfaces.push_back(I("a", {"10.0.1.5", "2001:db8:1::5"}, {"g"}));
  p.interfaces.push_back(I("b", {"10.0.2.5"}, {"g"}));
  p.interfaces.push_back(I("c", {"2001:db8:2::7"}, {}));
  p.interfaces.push_back(I("d", {"192.168.0.1"}, {"g"}));
  auto cp = compileOrFail(p);
  EXPECT_EQ(cp->interfaceOf(A("10.0.1.5")), 0);
  EXPECT_EQ(cp->interfaceOf(A("2001:db8:1::5")), 0);
  EXPECT_EQ(cp->interfaceOf(A("10.0.2.5")), 1);
  EXPECT_EQ(cp->interfaceOf(A("2001:db8:2::7")), 2);
  EXPECT_EQ(cp->interfaceOf(A("10.0.1.6")), kNoIface);
  EXPECT_EQ(cp->interfaceOf(A("::")), kNoIface);
  EXPECT_EQ(cp->subnetOfIface(0), 1);  // most specific
  EXPECT_EQ(cp->subnetOfIface(1), 0);
  EXPECT_EQ(cp->subnetOfIface(2), 2);
  EXPECT_EQ(cp->subnetOfIface(3), kNoSubnet);
  EXPECT_TRUE(cp->subnetContains(1, A("10.0.1.200")));
  EXPECT_TRUE(cp->subnetContains(1, A("2001:db8:1::ffff")));
  EXPECT_FALSE(cp->subnetContains(1, A("10.0.2.1")));
  EXPECT_FALSE(cp->subnetContains(kNoSubnet, A("10.0.2.1")));
  EXPECT_FALSE(cp->hasAcl(0));
  EXPECT_EQ(cp->ifaceCount(), 4u);
  EXPECT_EQ(cp->subnetCount(), 3u);
}

TEST(Classifier, ManyInterfacesInTheAddressHash) {
  Policy p;
  p.groups.push_back(G("g", {R(tcp(1), {"sg:g"})}, {}));
  for (int i = 0; i < 3000; ++i) {
    const std::string a = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1";
    p.interfaces.push_back(
        I("i" + std::to_string(i), {a, "2001:db8::" + std::to_string(i + 1)}, {"g"}));
  }
  auto cp = compileOrFail(p);
  for (int i = 0; i < 3000; ++i) {
    const std::string a = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1";
    ASSERT_EQ(cp->interfaceOf(A(a)), i);
    ASSERT_EQ(cp->interfaceOf(A("2001:db8::" + std::to_string(i + 1))), i);
  }
  EXPECT_EQ(cp->interfaceOf(A("10.0.0.2")), kNoIface);
  EXPECT_EQ(who(*cp, cp->classify(7, kIn, tcpTo("10.11.1.1", 1))), "g/inbound/0");
  EXPECT_EQ(who(*cp, cp->classify(7, kIn, tcpTo("10.11.1.2", 1))), "none");
}

// --- network ACLs ---

Policy aclPolicy(std::vector<AclEntry> in, std::vector<AclEntry> out = {}) {
  Policy p;
  p.groups.push_back(G("g", {}, {}));
  NetworkAcl acl;
  acl.name = "acl";
  acl.inbound = std::move(in);
  acl.outbound = std::move(out);
  p.acls.push_back(acl);
  p.subnets.push_back(S("sub", {"10.0.1.0/24", "2001:db8::/64"}, "acl"));
  p.subnets.push_back(S("bare", {"10.0.2.0/24"}));
  p.interfaces.push_back(I("eni", {"10.0.1.10"}, {"g"}));
  return p;
}

TEST(Acl, FirstMatchByRuleNumberThenDefaultDeny) {
  // Given out of order: 200 allow is listed before 100 deny, but 100 comes first.
  auto cp = compileOrFail(
      aclPolicy({E(200, true, tcp(0, 65535), "0.0.0.0/0"), E(100, false, tcp(22), "0.0.0.0/0"),
                 E(150, true, tcp(22), "192.0.2.0/24")}));
  ASSERT_TRUE(cp->hasAcl(0));
  EXPECT_FALSE(cp->hasAcl(1));
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, tcpTo("192.0.2.1", 22))), "100 deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, tcpTo("192.0.2.1", 23))), "200 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, udpTo("192.0.2.1", 23))), "* deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, tcpTo("2001:db8:5::1", 23))), "* deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kOut, tcpTo("192.0.2.1", 23))), "* deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(1, kIn, tcpTo("192.0.2.1", 23))), "no-acl");
  EXPECT_TRUE(cp->aclCheck(1, kIn, tcpTo("192.0.2.1", 23)).allow);
  const AclVerdict star = cp->aclCheck(0, kOut, tcpTo("192.0.2.1", 23));
  EXPECT_EQ(cp->aclEntry(star.entry).ruleNumberStr(), "*");
  EXPECT_EQ(cp->aclEntry(star.entry).dir, kOut);
  EXPECT_EQ(cp->aclEntry(star.entry).acl_name, "acl");
}

TEST(Acl, ProtocolsIcmpAndIpv6) {
  auto cp = compileOrFail(
      aclPolicy({E(10, false, icmp(8, 0), "0.0.0.0/0"), E(20, true, icmp(), "0.0.0.0/0"),
                 E(30, true, protoNum(47), "10.0.0.0/8"), E(40, true, udp(1024, 65535), "::/0"),
                 E(50, false, all(), "2001:db8:bad::/48"), E(60, true, all(), "::/0")},
                {E(100, true, all(), "0.0.0.0/0")}));
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, icmpTo("1.1.1.1", 8, 0))), "10 deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, icmpTo("1.1.1.1", 8, 1))), "20 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, icmpTo("1.1.1.1", 0, 0))), "20 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, protoTo("10.1.1.1", 47))), "30 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, protoTo("11.1.1.1", 47))), "* deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, udpTo("2001:db8:bad::1", 5000))), "40 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, udpTo("2001:db8:bad::1", 53))), "50 deny");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kIn, udpTo("2001:db8:beef::1", 53))), "60 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kOut, udpTo("8.8.8.8", 53))), "100 allow");
  EXPECT_EQ(who(*cp, cp->aclCheck(0, kOut, udpTo("2001:4860::8888", 53))), "* deny");
  EXPECT_EQ(cp->aclCount(), 1u);
  // 6 inbound + '*' + 1 outbound + '*'
  EXPECT_EQ(cp->aclEntryCount(), 9u);
}

// --- untracked flows (AWS) ---

TEST(Untracked, AllAddressesBothWaysIsUntracked) {
  auto cp = compileOrFail(
      onePolicy({R(tcp(443), {"0.0.0.0/0"}), R(tcp(22), {"203.0.113.0/24"}),
                 R(udp(53), {"0.0.0.0/0"}), R(icmp(), {"0.0.0.0/0"}), R(tcp(443), {"::/0"})},
                {R(all(), {"0.0.0.0/0"})}));
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("1.2.3.4", 443))), "g/inbound/0+untracked");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, udpTo("1.2.3.4", 53))), "g/inbound/2+untracked");
  // Peer narrower than all addresses: tracked.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("203.0.113.1", 22))), "g/inbound/1");
  // ICMP is always tracked.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, icmpTo("1.2.3.4", 8, 0))), "g/inbound/3");
  // IPv6: the reverse direction allows only IPv4 everything, so tracked.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8::1", 443))), "g/inbound/4");
  // Outbound: the inbound side does not allow everything, so tracked.
  EXPECT_EQ(who(*cp, cp->classify(0, kOut, tcpTo("1.2.3.4", 443))), "g/outbound/0");
}

TEST(Untracked, ReverseRuleMustCoverAllPortsOfTheProtocol) {
  auto cp = compileOrFail(
      onePolicy({R(tcp(443), {"0.0.0.0/0"}), R(udp(53), {"0.0.0.0/0"}), R(tcp(80), {"::/0"})},
                {R(tcp(0, 65535), {"0.0.0.0/0", "::/0"}), R(udp(1, 65535), {"0.0.0.0/0"})}));
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("1.2.3.4", 443))), "g/inbound/0+untracked");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("2001:db8::1", 80))), "g/inbound/2+untracked");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, udpTo("1.2.3.4", 53))), "g/inbound/1");
}

TEST(Untracked, ReportsTheFirstRuleEvenWhenALaterOneMakesItUntracked) {
  // The flow from 10.1.1.1 matches rule 0 (narrow peer) first; rule 1 (0.0.0.0/0) also
  // allows it, and the reverse direction allows everything: untracked, reported as rule 0.
  Policy p;
  p.groups.push_back(G("narrow", {R(tcp(443), {"10.0.0.0/8"})}, {}));
  p.groups.push_back(G("wide", {R(tcp(400, 500), {"0.0.0.0/0"})}, {R(all(), {"0.0.0.0/0"})}));
  p.interfaces.push_back(I("i", {"10.0.0.1"}, {"narrow", "wide"}));
  auto cp = compileOrFail(p);
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.1.1.1", 443))), "narrow/inbound/0+untracked");
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("10.1.1.1", 501))), "none");
  // The reverse rule comes from another group of the same interface: still counts.
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("11.1.1.1", 450))), "wide/inbound/0+untracked");
}

TEST(Untracked, PrefixListWithAllAddressesCounts) {
  Policy p = onePolicy({R(tcp(443), {"pl:any"})}, {R(all(), {"0.0.0.0/0"})});
  PrefixList pl;
  pl.name = "any";
  pl.cidrs = {C("0.0.0.0/0")};
  p.prefix_lists.push_back(pl);
  auto cp = compileOrFail(p);
  EXPECT_EQ(who(*cp, cp->classify(0, kIn, tcpTo("1.2.3.4", 443))), "g/inbound/0+untracked");
}

// --- compile errors ---

TEST(CompileErrors, UnresolvedReferencesAndDuplicates) {
  Policy p;
  p.groups.push_back(G("g", {R(tcp(1), {"sg:nope"}), R(tcp(1), {"pl:nolist"})}, {}));
  p.subnets.push_back(S("s", {"10.0.0.0/8"}, "noacl"));
  p.interfaces.push_back(I("a", {"10.0.0.1"}, {"g", "missing"}));
  p.interfaces.push_back(I("b", {"10.0.0.1"}, {"g"}));
  Interface many = I("c", {"10.0.0.3"}, {});
  for (int i = 0; i < 17; ++i)
    many.groups.push_back("g");
  p.interfaces.push_back(many);
  CompileResult r = compile(p);
  EXPECT_FALSE(r.policy);
  std::string all_msgs;
  for (const auto& d : r.diagnostics) {
    EXPECT_EQ(d.severity, Severity::kError);
    all_msgs += d.message + "\n";
  }
  EXPECT_NE(all_msgs.find("unknown security group 'nope'"), std::string::npos) << all_msgs;
  EXPECT_NE(all_msgs.find("unknown prefix list 'nolist'"), std::string::npos) << all_msgs;
  EXPECT_NE(all_msgs.find("unknown network ACL 'noacl'"), std::string::npos) << all_msgs;
  EXPECT_NE(all_msgs.find("unknown security group 'missing'"), std::string::npos) << all_msgs;
  EXPECT_NE(all_msgs.find("address 10.0.0.1 of interface 'b' also belongs to interface 'a'"),
            std::string::npos)
      << all_msgs;
  EXPECT_NE(all_msgs.find("has 17 security groups"), std::string::npos) << all_msgs;
}

TEST(CompileErrors, EmptyPolicyCompiles) {
  auto cp = compileOrFail(Policy{});
  EXPECT_EQ(cp->interfaceOf(A("10.0.0.1")), kNoIface);
  EXPECT_EQ(cp->ruleCount(), 0u);
  EXPECT_TRUE(cp->unprotectedAllow());
}

}  // namespace
}  // namespace statewall::rules
