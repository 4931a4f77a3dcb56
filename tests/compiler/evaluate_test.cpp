// evaluate(): the order of checks of docs/design.md "Direction", first deny, modes, unprotected.
#include <gtest/gtest.h>

#include <string>

#include "compiler/policy_builder.hpp"
#include "statewall/rules/evaluate.hpp"

namespace statewall::rules {
namespace {

using namespace testing;  // NOLINT

constexpr Direction kIn = Direction::kInbound;
constexpr Direction kOut = Direction::kOutbound;

// web (public subnet with an ACL) and app (private subnet without one).
Policy twoTier(bool unprotected_allow = true) {
  Policy p;
  p.unprotected_allow = unprotected_allow;
  p.groups.push_back(G("web", {R(tcp(443), {"0.0.0.0/0"}), R(tcp(22), {"10.0.0.0/16"})},
                       {R(tcp(8080), {"sg:app"}), R(udp(53), {"0.0.0.0/0"})}));
  p.groups.push_back(G("app", {R(tcp(8080), {"sg:web"})}, {}));
  NetworkAcl acl;
  acl.name = "public-acl";
  acl.inbound = {E(100, true, tcp(443), "0.0.0.0/0"), E(110, true, tcp(1024, 65535), "0.0.0.0/0"),
                 E(120, true, tcp(22), "10.0.0.0/16"), E(130, false, tcp(22), "0.0.0.0/0")};
  acl.outbound = {E(100, true, tcp(0, 65535), "0.0.0.0/0")};
  p.acls.push_back(acl);
  p.subnets.push_back(S("public", {"10.0.1.0/24"}, "public-acl"));
  p.subnets.push_back(S("private", {"10.0.2.0/24"}));
  p.interfaces.push_back(I("web-1", {"10.0.1.10"}, {"web"}));
  p.interfaces.push_back(I("web-2", {"10.0.1.11"}, {"web"}));
  p.interfaces.push_back(I("app-1", {"10.0.2.20"}, {"app"}));
  return p;
}

Flow5 tcpFlow(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  Flow5 f;
  f.proto = kProtoTcp;
  f.src = A(src);
  f.dst = A(dst);
  f.sport = sport;
  f.dport = dport;
  return f;
}

std::string describe(const CompiledPolicy& cp, const Evaluation& e) {
  std::string s;
  for (int i = 0; i < e.n_checks; ++i) {
    const Check& c = e.checks[static_cast<size_t>(i)];
    s += c.kind == CheckKind::kSg ? "sg-" : "acl-";
    s += directionName(c.dir);
    if (c.kind == CheckKind::kSg) {
      s += c.allowed ? ":" + cp.rule(c.sg.rule).group_name + "/" +
                           std::to_string(cp.rule(c.sg.rule).index)
                     : ":deny";
    } else {
      s += ":" + cp.aclEntry(c.acl.entry).ruleNumberStr() + (c.allowed ? "" : "-deny");
    }
    s += " ";
  }
  s += e.allowed ? "=> allow" : "=> deny@" + std::to_string(e.first_deny);
  if (e.untracked) s += " untracked";
  if (e.unprotected) s += " unprotected";
  return s;
}

std::string eval(const CompiledPolicy& cp, const Flow5& f, EvalMode m = EvalMode::kFull) {
  Evaluation e;
  evaluate(cp, f, m, &e);
  return describe(cp, e);
}

TEST(Evaluate, InboundFromOutsideMeetsAclThenGroups) {
  auto cp = compileOrFail(twoTier());
  EXPECT_EQ(eval(*cp, tcpFlow("198.51.100.7", 50000, "10.0.1.10", 443)),
            "acl-inbound:100 sg-inbound:web/0 => allow");
  Evaluation e;
  evaluate(*cp, tcpFlow("198.51.100.7", 50000, "10.0.1.10", 443), EvalMode::kFull, &e);
  EXPECT_FALSE(e.src_protected);
  EXPECT_TRUE(e.dst_protected);
  EXPECT_EQ(e.dst_iface, 0);
  EXPECT_EQ(e.checks[0].subnet, 0);
  EXPECT_EQ(e.checks[1].iface, 0);
  // The ACL denies first (rule 130), the group would allow from 10.0.0.0/16 only.
  EXPECT_EQ(eval(*cp, tcpFlow("198.51.100.7", 50000, "10.0.1.10", 22)),
            "acl-inbound:130-deny sg-inbound:deny => deny@0");
  // ACL allows (ephemeral range), the group does not.
  EXPECT_EQ(eval(*cp, tcpFlow("198.51.100.7", 50000, "10.0.1.10", 8443)),
            "acl-inbound:110 sg-inbound:deny => deny@1");
  EXPECT_EQ(eval(*cp, tcpFlow("198.51.100.7", 50000, "10.0.1.10", 80)),
            "acl-inbound:*-deny sg-inbound:deny => deny@0");
}

TEST(Evaluate, BothSidesProtectedInOrder) {
  auto cp = compileOrFail(twoTier());
  // web -> app: web's groups outbound, web's subnet ACL outbound (app is outside it), app's
  // subnet has no ACL, app's groups inbound.
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.1.10", 40000, "10.0.2.20", 8080)),
            "sg-outbound:web/0 acl-outbound:100 sg-inbound:app/0 => allow");
  // app -> web: app has no outbound rules: denied at the first check, the others still run.
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.2.20", 40000, "10.0.1.10", 22)),
            "sg-outbound:deny acl-inbound:120 sg-inbound:web/1 => deny@0");
  // web -> app on a port app does not allow: denied at the last check.
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.1.10", 40000, "10.0.2.20", 8081)),
            "sg-outbound:deny acl-outbound:100 sg-inbound:deny => deny@0");
  // web-1 -> web-2 in the same subnet: no ACL on either side.
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.1.10", 40000, "10.0.1.11", 22)),
            "sg-outbound:deny sg-inbound:web/1 => deny@0");
}

TEST(Evaluate, OutboundToTheInternet) {
  auto cp = compileOrFail(twoTier());
  Flow5 dns = tcpFlow("10.0.1.10", 40000, "8.8.8.8", 53);
  dns.proto = kProtoUdp;
  // The outbound ACL allows TCP only.
  EXPECT_EQ(eval(*cp, dns), "sg-outbound:web/1 acl-outbound:*-deny => deny@1");
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.2.20", 40000, "8.8.8.8", 53)), "sg-outbound:deny => deny@0");
}

TEST(Evaluate, Unprotected) {
  auto allow = compileOrFail(twoTier(true));
  auto deny = compileOrFail(twoTier(false));
  const Flow5 f = tcpFlow("198.51.100.7", 1, "203.0.113.9", 2);
  EXPECT_EQ(eval(*allow, f), "=> allow unprotected");
  EXPECT_EQ(eval(*deny, f), "=> deny@-1 unprotected");
  // An address inside a subnet but on no interface is unprotected too.
  EXPECT_EQ(eval(*deny, tcpFlow("198.51.100.7", 1, "10.0.1.99", 443)), "=> deny@-1 unprotected");
}

TEST(Evaluate, Modes) {
  auto cp = compileOrFail(twoTier());
  const Flow5 f = tcpFlow("10.0.2.20", 40000, "10.0.1.10", 22);
  EXPECT_EQ(eval(*cp, f, EvalMode::kAclOnly), "acl-inbound:120 => allow");
  EXPECT_EQ(eval(*cp, f, EvalMode::kSrcSideOnly), "sg-outbound:deny acl-inbound:120 => deny@0");
  EXPECT_EQ(eval(*cp, f, EvalMode::kDstSideOnly), "acl-inbound:120 sg-inbound:web/1 => allow");
  EXPECT_EQ(eval(*cp, tcpFlow("198.51.100.7", 1, "10.0.1.10", 22), EvalMode::kAclOnly),
            "acl-inbound:130-deny => deny@0");
}

TEST(Evaluate, UntrackedNeedsEverySideUntracked) {
  Policy p;
  p.groups.push_back(G("open", {R(tcp(443), {"0.0.0.0/0"})}, {R(all(), {"0.0.0.0/0"})}));
  p.groups.push_back(G("narrow", {R(tcp(443), {"10.0.0.0/8"})}, {R(all(), {"0.0.0.0/0"})}));
  p.interfaces.push_back(I("a", {"10.0.0.1"}, {"open"}));
  p.interfaces.push_back(I("b", {"10.0.0.2"}, {"open"}));
  p.interfaces.push_back(I("c", {"10.0.0.3"}, {"narrow"}));
  auto cp = compileOrFail(p);
  // Outside -> a: inbound 0.0.0.0/0 with all outbound: untracked.
  EXPECT_EQ(eval(*cp, tcpFlow("198.51.100.7", 5, "10.0.0.1", 443)),
            "sg-inbound:open/0 => allow untracked");
  // a -> outside: a's inbound does not allow everything: tracked.
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.0.1", 5, "198.51.100.7", 443)), "sg-outbound:open/0 => allow");
  // a -> b: a's outbound tracked, b's inbound untracked: tracked overall.
  EXPECT_EQ(eval(*cp, tcpFlow("10.0.0.1", 5, "10.0.0.2", 443)),
            "sg-outbound:open/0 sg-inbound:open/0 => allow");
  Evaluation e;
  evaluate(*cp, tcpFlow("10.0.0.1", 5, "10.0.0.2", 443), EvalMode::kFull, &e);
  EXPECT_FALSE(e.checks[0].sg.untracked);
  EXPECT_TRUE(e.checks[1].sg.untracked);
  // c has a narrower inbound rule: tracked.
  EXPECT_EQ(eval(*cp, tcpFlow("10.1.1.1", 5, "10.0.0.3", 443)), "sg-inbound:narrow/0 => allow");
}

TEST(Evaluate, Ipv6AndIcmp) {
  Policy p;
  p.groups.push_back(G("g", {R(icmp6(128, kAny), {"::/0"}), R(icmp(8, 0), {"0.0.0.0/0"})}, {}));
  p.subnets.push_back(S("s", {"2001:db8::/64", "10.0.0.0/24"}, "acl"));
  NetworkAcl acl;
  acl.name = "acl";
  acl.inbound = {E(1, true, icmp6(), "::/0")};
  p.acls.push_back(acl);
  p.interfaces.push_back(I("v6", {"2001:db8::10", "10.0.0.10"}, {"g"}));
  auto cp = compileOrFail(p);
  Flow5 ping6;
  ping6.proto = kProtoIcmpV6;
  ping6.src = A("2001:db8:ffff::1");
  ping6.dst = A("2001:db8::10");
  ping6.icmp_type = 128;
  EXPECT_EQ(eval(*cp, ping6), "acl-inbound:1 sg-inbound:g/0 => allow");
  Flow5 ping4 = ping6;
  ping4.proto = kProtoIcmp;
  ping4.src = A("192.0.2.1");
  ping4.dst = A("10.0.0.10");
  ping4.icmp_type = 8;
  EXPECT_EQ(eval(*cp, ping4), "acl-inbound:*-deny sg-inbound:g/1 => deny@0");
}

}  // namespace
}  // namespace statewall::rules
