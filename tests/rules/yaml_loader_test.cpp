// The YAML policy format: every rule form, the defaults, settings, multi-file policies.
#include <gtest/gtest.h>

#include <string>

#include "rules/rules_test_util.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using testutil::dumpDiagnostics;
using testutil::loadYamlText;

Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}
IpAddr addr(const char* text) {
  return *IpAddr::parse(text);
}

const SecurityGroup& group(const Policy& p, const std::string& name) {
  for (const auto& g : p.groups)
    if (g.name == name) return g;
  ADD_FAILURE() << "no group " << name;
  static SecurityGroup none;
  return none;
}

Match tcp(int lo, int hi) {
  Match m;
  m.proto = kProtoTcp;
  m.port_lo = static_cast<uint16_t>(lo);
  m.port_hi = static_cast<uint16_t>(hi);
  return m;
}

// Loads `inbound` as the inbound rule list of group g and returns the group.
SecurityGroup loadRules(const std::string& inbound, const std::string& extra = "") {
  auto r = loadYamlText("groups:\n  g:\n    inbound:\n" + inbound + extra +
                        "prefix_lists:\n  office: [203.0.113.0/24]\n");
  EXPECT_TRUE(r.ok()) << dumpDiagnostics(r);
  if (!r.ok()) return {};
  return group(*r.policy, "g");
}

TEST(YamlLoader, ProtocolsByNameNumberAndAll) {
  auto g = loadRules(
      "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
      "      - {proto: udp, ports: 53, from: 0.0.0.0/0}\n"
      "      - {proto: icmp, from: 0.0.0.0/0}\n"
      "      - {proto: icmpv6, from: '::/0'}\n"
      "      - {proto: all, from: 0.0.0.0/0}\n"
      "      - {proto: -1, from: 0.0.0.0/0}\n"
      "      - {proto: '-1', from: 0.0.0.0/0}\n"
      "      - {proto: 6, ports: 22, from: 0.0.0.0/0}\n"
      "      - {proto: 50, from: 0.0.0.0/0}\n"
      "      - {proto: TCP, ports: 25, from: 0.0.0.0/0}\n");
  ASSERT_EQ(g.inbound.size(), 10u);
  EXPECT_EQ(g.inbound[0].match, tcp(443, 443));
  EXPECT_EQ(g.inbound[1].match.proto, kProtoUdp);
  EXPECT_EQ(g.inbound[1].match.port_lo, 53);
  EXPECT_EQ(g.inbound[2].match.proto, kProtoIcmp);
  EXPECT_EQ(g.inbound[2].match.icmp_type, kAny);
  EXPECT_EQ(g.inbound[2].match.icmp_code, kAny);
  EXPECT_EQ(g.inbound[3].match.proto, kProtoIcmpV6);
  for (int i : {4, 5, 6}) {
    EXPECT_EQ(g.inbound[i].match.proto, kProtoAll) << i;
    EXPECT_TRUE(g.inbound[i].match.allPorts()) << i;
  }
  EXPECT_EQ(g.inbound[7].match, tcp(22, 22));
  EXPECT_EQ(g.inbound[8].match.proto, 50);
  EXPECT_EQ(g.inbound[9].match, tcp(25, 25));
}

TEST(YamlLoader, PortForms) {
  auto g = loadRules(
      "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
      "      - {proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}\n"
      "      - {proto: udp, ports: '1000 - 2000', from: 0.0.0.0/0}\n"
      "      - {proto: tcp, ports: all, from: 0.0.0.0/0}\n"
      "      - {proto: tcp, ports: 0, from: 0.0.0.0/0}\n"
      "      - {proto: 47, ports: all, from: 0.0.0.0/0}\n");
  ASSERT_EQ(g.inbound.size(), 6u);
  EXPECT_EQ(g.inbound[0].match, tcp(443, 443));
  EXPECT_EQ(g.inbound[1].match, tcp(1024, 65535));
  EXPECT_EQ(g.inbound[2].match.port_lo, 1000);
  EXPECT_EQ(g.inbound[2].match.port_hi, 2000);
  EXPECT_TRUE(g.inbound[3].match.allPorts());
  EXPECT_EQ(g.inbound[4].match, tcp(0, 0));
  EXPECT_EQ(g.inbound[5].match.proto, 47);
  EXPECT_EQ(g.inbound[0].str(Direction::kInbound), "tcp 443 from 0.0.0.0/0");
  EXPECT_EQ(g.inbound[1].str(Direction::kInbound), "tcp 1024-65535 from 0.0.0.0/0");
}

TEST(YamlLoader, IcmpTypeAndCode) {
  auto g = loadRules(
      "      - {proto: icmp, icmp: {type: 3, code: 4}, from: 0.0.0.0/0}\n"
      "      - {proto: icmp, icmp: {type: 8}, from: 0.0.0.0/0}\n"
      "      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}\n"
      "      - {proto: icmpv6, icmp: {type: 128, code: 0}, from: '::/0'}\n"
      "      - {proto: icmp, icmp: {type: -1, code: -1}, from: 0.0.0.0/0}\n");
  ASSERT_EQ(g.inbound.size(), 5u);
  EXPECT_EQ(g.inbound[0].match.icmp_type, 3);
  EXPECT_EQ(g.inbound[0].match.icmp_code, 4);
  EXPECT_EQ(g.inbound[1].match.icmp_type, 8);
  EXPECT_EQ(g.inbound[1].match.icmp_code, kAny);
  EXPECT_EQ(g.inbound[2].match, g.inbound[1].match);
  EXPECT_EQ(g.inbound[3].match.proto, kProtoIcmpV6);
  EXPECT_EQ(g.inbound[3].match.icmp_type, 128);
  EXPECT_EQ(g.inbound[3].match.icmp_code, 0);
  EXPECT_EQ(g.inbound[4].match.icmp_type, kAny);
  EXPECT_EQ(g.inbound[0].str(Direction::kInbound), "icmp type 3 code 4 from 0.0.0.0/0");
}

TEST(YamlLoader, PeerForms) {
  auto g = loadRules(
      "      - {proto: tcp, ports: 1, from: 10.0.0.0/8}\n"
      "      - {proto: tcp, ports: 2, from: [10.0.0.0/8, '2001:db8::/32']}\n"
      "      - {proto: tcp, ports: 3, from: sg:g}\n"
      "      - {proto: tcp, ports: 4, from: pl:office}\n"
      "      - {proto: tcp, ports: 5, from: [sg:g, pl:office, 192.0.2.1]}\n"
      "      - {proto: tcp, ports: 6, from: '2001:db8::1'}\n");
  ASSERT_EQ(g.inbound.size(), 6u);
  ASSERT_EQ(g.inbound[0].peers.size(), 1u);
  EXPECT_EQ(g.inbound[0].peers[0].kind, PeerKind::kCidr);
  EXPECT_EQ(g.inbound[0].peers[0].cidr, cidr("10.0.0.0/8"));
  ASSERT_EQ(g.inbound[1].peers.size(), 2u);
  EXPECT_EQ(g.inbound[1].peers[1].cidr, cidr("2001:db8::/32"));
  EXPECT_EQ(g.inbound[2].peers[0].kind, PeerKind::kGroup);
  EXPECT_EQ(g.inbound[2].peers[0].name, "g");  // self reference
  EXPECT_EQ(g.inbound[3].peers[0].kind, PeerKind::kPrefixList);
  EXPECT_EQ(g.inbound[3].peers[0].name, "office");
  ASSERT_EQ(g.inbound[4].peers.size(), 3u);
  EXPECT_EQ(g.inbound[4].str(Direction::kInbound), "tcp 5 from sg:g, pl:office, 192.0.2.1/32");
  EXPECT_EQ(g.inbound[5].peers[0].cidr, cidr("2001:db8::1/128"));  // a bare address is a host
  // Every peer knows where it was written.
  EXPECT_EQ(g.inbound[1].peers[1].loc.str(), "p.yaml:5:51");
}

TEST(YamlLoader, OutboundRulesUseTo) {
  auto r = loadYamlText(
      "groups:\n"
      "  g:\n"
      "    outbound:\n"
      "      - {proto: tcp, ports: 5432, to: sg:g, description: to the db}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& g = group(*r.policy, "g");
  EXPECT_TRUE(g.inbound.empty());
  ASSERT_EQ(g.outbound.size(), 1u);
  EXPECT_EQ(g.outbound[0].str(Direction::kOutbound), "tcp 5432 to sg:g");
  EXPECT_EQ(g.outbound[0].description, "to the db");
}

TEST(YamlLoader, DefaultOutboundAllowsAllBothFamilies) {
  auto r = loadYamlText(
      "groups:\n"
      "  a:\n"
      "    description: no outbound key\n"
      "  b:\n"
      "    outbound: []\n"
      "  c:\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  for (const char* name : {"a", "c"}) {
    const auto& g = group(*r.policy, name);
    EXPECT_TRUE(g.inbound.empty()) << name;
    ASSERT_EQ(g.outbound.size(), 1u) << name;
    EXPECT_EQ(g.outbound[0].match, Match{});
    EXPECT_EQ(g.outbound[0].str(Direction::kOutbound), "all to 0.0.0.0/0, ::/0");
  }
  EXPECT_EQ(group(*r.policy, "a").description, "no outbound key");
  EXPECT_TRUE(group(*r.policy, "b").outbound.empty());
}

TEST(YamlLoader, SettingsDefaults) {
  auto r = loadYamlText("groups: {}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->timeouts.profile, TimeoutProfile::kAws);
  EXPECT_EQ(r.policy->timeouts.seconds, Timeouts::defaults(TimeoutProfile::kAws).seconds);
  EXPECT_TRUE(r.policy->unprotected_allow);
  EXPECT_FALSE(r.policy->strict);
  EXPECT_EQ(r.policy->files, std::vector<std::string>{"p.yaml"});
}

TEST(YamlLoader, SettingsGiven) {
  auto r = loadYamlText(
      "version: 1\n"
      "timeouts: {profile: linux, tcp_established: 7200, udp: 45, other: 90}\n"
      "unprotected: deny\n"
      "strict: true\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& t = r.policy->timeouts;
  EXPECT_EQ(t.profile, TimeoutProfile::kLinux);
  EXPECT_EQ(t.get(TimeoutKey::kTcpEstablished), 7200u);
  EXPECT_EQ(t.get(TimeoutKey::kUdp), 45u);
  EXPECT_EQ(t.get(TimeoutKey::kOther), 90u);
  EXPECT_EQ(t.get(TimeoutKey::kUdpStream),
            Timeouts::defaults(TimeoutProfile::kLinux).get(TimeoutKey::kUdpStream));
  EXPECT_FALSE(r.policy->unprotected_allow);
  EXPECT_TRUE(r.policy->strict);
}

TEST(YamlLoader, AwsProfileOverrideInsideRange) {
  auto r = loadYamlText("timeouts: {profile: aws, tcp_established: 3600, udp_stream: 60}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->timeouts.get(TimeoutKey::kTcpEstablished), 3600u);
  EXPECT_EQ(r.policy->timeouts.get(TimeoutKey::kUdpStream), 60u);
}

TEST(YamlLoader, InterfaceTimeouts) {
  auto r = loadYamlText(
      "interfaces:\n"
      "  db-1: {addresses: [10.0.2.20], timeouts: {tcp_established: 3600, udp: 45}}\n"
      "  db-2: {addresses: [10.0.2.21]}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& db1 = r.policy->interfaces[0].timeouts;
  EXPECT_EQ(db1.tcp_established, 3600u);
  EXPECT_EQ(db1.udp, 45u);
  EXPECT_EQ(db1.udp_stream, 0u);  // the policy's
  EXPECT_FALSE(r.policy->interfaces[1].timeouts.any());
}

TEST(YamlLoader, InterfaceTimeoutsOutsideAwsRangesAreErrors) {
  auto r = loadYamlText(
      "interfaces:\n"
      "  db-1: {addresses: [10.0.2.20], timeouts: {udp_stream: 200}}\n");
  EXPECT_TRUE(testutil::failsWith(r, "p.yaml:2:57", "udp_stream is 200 s; AWS allows 60..180"));
  r = loadYamlText(
      "interfaces:\n"
      "  db-1: {addresses: [10.0.2.20], timeouts: {tcp_syn_sent: 20}}\n");
  EXPECT_FALSE(r.ok());
  r = loadYamlText(
      "interfaces:\n"
      "  db-1: {addresses: [10.0.2.20], timeouts: {udp: soon}}\n");
  EXPECT_TRUE(
      testutil::failsWith(r, "p.yaml:2:50", "bad timeout 'soon' for udp of interface 'db-1'"));
}

TEST(YamlLoader, AclEntriesAreSortedByRuleNumber) {
  auto r = loadYamlText(
      "network_acls:\n"
      "  acl:\n"
      "    inbound:\n"
      "      - {rule: 200, action: allow, proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}\n"
      "      - {rule: 100, action: deny, proto: all, from: 192.0.2.0/24}\n"
      "      - {rule: 150, action: allow, proto: icmp, icmp: {type: 0, code: 0}, from: 0.0.0.0/0}\n"
      "    outbound:\n"
      "      - {rule: 5, action: allow, proto: udp, ports: 53, to: '2001:db8::/32'}\n"
      "subnets:\n"
      "  s: {cidr: 10.0.0.0/24, acl: acl}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  ASSERT_EQ(r.policy->acls.size(), 1u);
  const auto& acl = r.policy->acls[0];
  ASSERT_EQ(acl.inbound.size(), 3u);
  EXPECT_EQ(acl.inbound[0].str(Direction::kInbound), "100 deny all from 192.0.2.0/24");
  EXPECT_EQ(acl.inbound[1].str(Direction::kInbound), "150 allow icmp type 0 code 0 from 0.0.0.0/0");
  EXPECT_EQ(acl.inbound[2].str(Direction::kInbound), "200 allow tcp 1024-65535 from 0.0.0.0/0");
  ASSERT_EQ(acl.outbound.size(), 1u);
  EXPECT_EQ(acl.outbound[0].str(Direction::kOutbound), "5 allow udp 53 to 2001:db8::/32");
  EXPECT_FALSE(acl.inbound[0].allow);
  EXPECT_TRUE(acl.inbound[1].allow);
  ASSERT_EQ(r.policy->subnets.size(), 1u);
  EXPECT_EQ(r.policy->subnets[0].acl, "acl");
}

TEST(YamlLoader, SubnetsAndInterfaces) {
  auto r = loadYamlText(
      "groups: {a: {}, b: {}}\n"
      "subnets:\n"
      "  pub: {cidr: [10.0.1.0/24, '2001:db8:1::/64']}\n"
      "  priv: {cidr: 10.0.2.0/24}\n"
      "interfaces:\n"
      "  i1: {addresses: [10.0.1.10, '2001:db8:1::10', 10.0.1.11], groups: [a, b]}\n"
      "  i2: {addresses: 10.0.2.5, groups: a}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& p = *r.policy;
  ASSERT_EQ(p.subnets.size(), 2u);
  EXPECT_EQ(p.subnets[0].cidrs, (std::vector<Cidr>{cidr("10.0.1.0/24"), cidr("2001:db8:1::/64")}));
  EXPECT_TRUE(p.subnets[0].acl.empty());
  ASSERT_EQ(p.interfaces.size(), 2u);
  EXPECT_EQ(p.interfaces[0].addresses,
            (std::vector<IpAddr>{addr("10.0.1.10"), addr("2001:db8:1::10"), addr("10.0.1.11")}));
  EXPECT_EQ(p.interfaces[0].groups, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.interfaces[1].addresses, std::vector<IpAddr>{addr("10.0.2.5")});
  EXPECT_EQ(p.interfaces[1].groups, std::vector<std::string>{"a"});
  EXPECT_EQ(p.interfaces[1].loc.str(), "p.yaml:7:3");
}

TEST(YamlLoader, SixteenGroupsOnAnInterfaceAreAllowed) {
  std::string groups = "groups: {";
  std::string list;
  for (int i = 0; i < 16; ++i) {
    groups += (i ? ", g" : "g") + std::to_string(i) + ": {}";
    list += (i ? ", g" : "g") + std::to_string(i);
  }
  auto r =
      loadYamlText(groups + "}\ninterfaces:\n  i: {addresses: 10.0.0.1, groups: [" + list + "]}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->interfaces[0].groups.size(), 16u);
}

TEST(YamlLoader, HostBitsAreAWarningAndCanonicalised) {
  auto r = loadYamlText(
      "groups:\n"
      "  g:\n"
      "    inbound:\n"
      "      - {proto: tcp, ports: 22, from: 10.0.1.5/24}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(group(*r.policy, "g").inbound[0].peers[0].cidr, cidr("10.0.1.0/24"));
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].str(),
            "p.yaml:4:39: warning: CIDR 10.0.1.5/24 has host bits set; using 10.0.1.0/24 as AWS "
            "does");
}

TEST(YamlLoader, PolicySpreadOverSeveralFiles) {
  auto r = loadPolicyTexts({
      {"groups.yaml", "groups:\n  web: {inbound: [{proto: tcp, ports: 80, from: pl:office}]}\n"},
      {"lists.yaml", "prefix_lists: {office: [203.0.113.0/24]}\ntimeouts: {profile: linux}\n"},
      {"ifaces.yaml", "interfaces:\n  web-1: {addresses: [10.0.1.10], groups: [web]}\n"},
  });
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->files,
            (std::vector<std::string>{"groups.yaml", "lists.yaml", "ifaces.yaml"}));
  EXPECT_EQ(r.policy->groups.size(), 1u);
  EXPECT_EQ(r.policy->interfaces.size(), 1u);
  EXPECT_EQ(r.policy->timeouts.profile, TimeoutProfile::kLinux);
}

TEST(YamlLoader, JsonSyntaxYamlPolicyIsYaml) {
  // A JSON object without AWS keys is a YAML policy written in flow style.
  auto r = loadPolicyTexts({{"p.json", R"({"groups": {"g": {"outbound": []}}, "strict": true})"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.policy->strict);
  EXPECT_TRUE(r.policy->groups[0].outbound.empty());
}

TEST(YamlLoader, WarningsAloneStillLoad) {
  auto r = loadYamlText(
      "network_acls: {unused: {}}\n"
      "interfaces: {i: {addresses: 10.0.0.1}}\n");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  ASSERT_EQ(r.diagnostics.size(), 2u);
  EXPECT_EQ(r.diagnostics[0].str(),
            "p.yaml:1:16: warning: network ACL 'unused' is attached to no subnet: it has no "
            "effect");
  EXPECT_EQ(r.diagnostics[1].str(),
            "p.yaml:2:14: warning: interface 'i' has no security groups: all traffic to and from "
            "it is denied");
}

TEST(YamlLoader, DiagnosticsAreInFileOrder) {
  auto r = loadPolicyTexts({
      {"a.yaml",
       "interfaces: {i: {addresses: 10.0.0.1, groups: [nope]}}\ngroups: {g: {inbound: "
       "[{proto: tcpx, from: 0.0.0.0/0}]}}\n"},
      {"b.yaml", "bogus: 1\n"},
  });
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 3u) << dumpDiagnostics(r);
  EXPECT_EQ(r.diagnostics[0].loc.str(), "a.yaml:1:14");  // validation error, line 1
  EXPECT_EQ(r.diagnostics[1].loc.str(), "a.yaml:2:32");  // parse error, line 2
  EXPECT_EQ(r.diagnostics[2].loc.str(), "b.yaml:1:1");
}

TEST(YamlLoader, DesignDocumentExample) {
  // The example of docs/design.md "The YAML policy format", verbatim.
  auto r = loadYamlText(R"(version: 1
timeouts: {profile: aws, tcp_established: 3600}   # profile aws|linux; overrides per state, in seconds
unprotected: allow                                 # traffic between two unprotected addresses: allow|deny
prefix_lists:
  office: [203.0.113.0/24, "2001:db8:100::/48"]
groups:
  web:
    description: public web tier
    inbound:
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"], description: HTTPS}
      - {proto: tcp, ports: 22, from: pl:office}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
    # no 'outbound' key: the default allow-all outbound rule
  db:
    inbound:
      - {proto: tcp, ports: 5432, from: sg:web}
      - {proto: all, from: sg:db}                  # self reference
    outbound: []                                   # no outbound rules: only tracked replies leave
network_acls:
  public-acl:
    inbound:
      - {rule: 100, action: allow, proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: tcp, ports: 1024-65535, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  public: {cidr: [10.0.1.0/24], acl: public-acl}   # a subnet without 'acl' has none
interfaces:
  web-1: {addresses: [10.0.1.10, "2001:db8::10"], groups: [web]}
  db-1:  {addresses: [10.0.2.20], groups: [db]}
)");
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dumpDiagnostics(r);
  const auto& p = *r.policy;
  EXPECT_EQ(p.timeouts.get(TimeoutKey::kTcpEstablished), 3600u);
  ASSERT_EQ(p.groups.size(), 2u);
  EXPECT_EQ(group(p, "web").inbound.size(), 3u);
  EXPECT_EQ(group(p, "web").outbound.size(), 1u);
  EXPECT_TRUE(group(p, "db").outbound.empty());
  EXPECT_EQ(group(p, "db").inbound[1].str(Direction::kInbound), "all from sg:db");
  ASSERT_EQ(p.prefix_lists.size(), 1u);
  EXPECT_EQ(p.prefix_lists[0].cidrs.size(), 2u);
  EXPECT_EQ(p.subnets[0].acl, "public-acl");
  EXPECT_EQ(p.interfaces.size(), 2u);
}

}  // namespace
}  // namespace statewall::rules
