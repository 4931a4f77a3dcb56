// The explain library: the near-miss search on synthetic policies (one test per field kind), the
// untracked-flow rule pair, and explanations of hand-built packets for every kind of verdict,
// checked by their steps and against golden files (tests/sim/golden/explain/synthetic.*).
// Regenerate the golden files after an intended change with STATEWALL_UPDATE_GOLDEN=1.
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "common/text_diff.hpp"

#include "policy_util.hpp"
#include "sim_test_util.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/explain.hpp"

namespace statewall::sim {
namespace {

using statewall::testing::firstDifference;

using testing::compilePolicy;

using dataplane::ipAddr;
using dataplane::Reason;

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1700000000ull * kSec;

rules::Flow5 tcpFlow(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  rules::Flow5 f;
  f.proto = rules::kProtoTcp;
  f.src = ipAddr(src);
  f.dst = ipAddr(dst);
  f.sport = sport;
  f.dport = dport;
  return f;
}

rules::IfaceId ifaceNamed(const rules::CompiledPolicy& p, const std::string& name) {
  for (rules::IfaceId i = 0; i < p.ifaceCount(); ++i)
    if (p.iface(i).name == name) return i;
  ADD_FAILURE() << "no interface " << name;
  return rules::kNoIface;
}

rules::SubnetId subnetNamed(const rules::CompiledPolicy& p, const std::string& name) {
  for (rules::SubnetId s = 0; s < p.subnetCount(); ++s)
    if (p.subnet(s).name == name) return s;
  ADD_FAILURE() << "no subnet " << name;
  return rules::kNoSubnet;
}

// ---- near misses ----

constexpr const char* kNearPolicy = R"(version: 1
prefix_lists:
  office: [203.0.113.0/24]
groups:
  srv:
    inbound:
      - {proto: tcp, ports: 22, from: 198.51.100.0/24}
      - {proto: tcp, ports: 2222, from: pl:office}
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {proto: udp, ports: 53, from: 10.0.0.0/8}
      - {proto: tcp, ports: 5432, from: sg:app}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
      - {proto: icmp, icmp: {type: 3, code: 4}, from: 0.0.0.0/0}
    outbound:
      - {proto: tcp, ports: 443, to: 192.0.2.0/24}
  app:
    inbound: []
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
  app-1: {addresses: [10.0.2.10, 10.0.2.11], groups: [app]}
)";

std::string dump(const std::vector<NearMiss>& m) {
  std::string s;
  for (const auto& n : m)
    s += "\n  " + n.text;
  return s;
}

// The near miss of rule `index` (within its group and direction), or null.
const NearMiss* missOf(const rules::CompiledPolicy& p, const std::vector<NearMiss>& m,
                       uint32_t index) {
  for (const auto& n : m)
    if (!n.acl && p.rule(n.rule).index == index) return &n;
  return nullptr;
}

class NearMisses : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = compilePolicy(kNearPolicy);
    ASSERT_TRUE(policy_);
    search_ = std::make_unique<NearMissSearch>(*policy_);
    srv_ = ifaceNamed(*policy_, "srv-1");
  }
  std::vector<NearMiss> inbound(const rules::Flow5& f) {
    return search_->securityGroups(srv_, rules::Direction::kInbound, f);
  }
  rules::CompiledPolicyPtr policy_;
  std::unique_ptr<NearMissSearch> search_;
  rules::IfaceId srv_ = rules::kNoIface;
};

TEST_F(NearMisses, PeerCidr) {
  auto m = inbound(tcpFlow("203.0.113.5", 40000, "10.0.1.10", 22));
  // Rule 0 differs in the peer; rules 1 (tcp 2222 from the office) and 2 (tcp 443 from anywhere)
  // in the port only.
  ASSERT_EQ(m.size(), 3u) << dump(m);
  const NearMiss* n = missOf(*policy_, m, 0);
  ASSERT_NE(n, nullptr) << dump(m);
  EXPECT_EQ(n->field, MissField::kPeer);
  EXPECT_FALSE(n->acl);
  EXPECT_EQ(n->wanted, "198.51.100.0/24");
  EXPECT_EQ(n->got, "203.0.113.5");
  EXPECT_NE(n->text.find("tcp port 22 is allowed only from 198.51.100.0/24; this packet came "
                         "from 203.0.113.5"),
            std::string::npos)
      << n->text;
  EXPECT_EQ(missOf(*policy_, m, 1)->field, MissField::kPort);
  EXPECT_EQ(missOf(*policy_, m, 2)->field, MissField::kPort);
}

TEST_F(NearMisses, PeerPrefixList) {
  auto m = inbound(tcpFlow("198.51.100.9", 40000, "10.0.1.10", 2222));
  const NearMiss* n = missOf(*policy_, m, 1);
  ASSERT_NE(n, nullptr) << dump(m);
  EXPECT_EQ(n->field, MissField::kPeer);
  EXPECT_EQ(n->wanted, "pl:office (203.0.113.0/24)");
  EXPECT_EQ(n->got, "198.51.100.9");
}

TEST_F(NearMisses, PeerGroupReference) {
  auto m = inbound(tcpFlow("10.0.3.3", 40000, "10.0.1.10", 5432));
  const NearMiss* n = missOf(*policy_, m, 4);
  ASSERT_NE(n, nullptr) << dump(m);
  EXPECT_EQ(n->field, MissField::kPeer);
  EXPECT_EQ(n->wanted, "sg:app (10.0.2.10, 10.0.2.11)");
  // From a member of the group, rule 4 matches fully: it is no near miss.
  EXPECT_EQ(missOf(*policy_, inbound(tcpFlow("10.0.2.11", 40000, "10.0.1.10", 5432)), 4), nullptr);
}

TEST_F(NearMisses, Port) {
  auto m = inbound(tcpFlow("198.51.100.9", 40000, "10.0.1.10", 8443));
  // tcp 443 from anywhere differs only in the port; tcp 22 from 198.51.100.0/24 too.
  ASSERT_EQ(m.size(), 2u) << dump(m);
  EXPECT_EQ(m[0].field, MissField::kPort);
  EXPECT_EQ(m[0].wanted, "port 22");
  EXPECT_EQ(m[1].field, MissField::kPort);
  EXPECT_EQ(m[1].wanted, "port 443");
  EXPECT_EQ(m[1].got, "port 8443");
}

TEST_F(NearMisses, Protocol) {
  rules::Flow5 f = tcpFlow("10.9.9.9", 40000, "10.0.1.10", 53);
  auto m = inbound(f);
  const NearMiss* n = missOf(*policy_, m, 3);
  ASSERT_NE(n, nullptr) << dump(m);
  EXPECT_EQ(n->field, MissField::kProtocol);
  EXPECT_EQ(n->wanted, "udp");
  EXPECT_EQ(n->got, "tcp");
}

TEST_F(NearMisses, IcmpTypeAndCode) {
  rules::Flow5 f;
  f.proto = rules::kProtoIcmp;
  f.src = ipAddr("192.0.2.1");
  f.dst = ipAddr("10.0.1.10");
  f.icmp_type = 13;  // timestamp: only the type differs from "type 8"
  f.icmp_code = 0;
  auto m = inbound(f);
  const NearMiss* n = missOf(*policy_, m, 5);
  ASSERT_NE(n, nullptr) << dump(m);
  EXPECT_EQ(n->field, MissField::kIcmpType);
  EXPECT_EQ(n->wanted, "type 8");
  EXPECT_EQ(missOf(*policy_, m, 6), nullptr) << "type 3 code 4 differs in type and code";
  f.icmp_type = 3;
  f.icmp_code = 1;  // host unreachable: rule 6 wants code 4
  m = inbound(f);
  n = missOf(*policy_, m, 6);
  ASSERT_NE(n, nullptr) << dump(m);
  EXPECT_EQ(n->field, MissField::kIcmpCode);
  EXPECT_EQ(n->wanted, "code 4");
  EXPECT_EQ(n->got, "code 1");
  EXPECT_EQ(missOf(*policy_, m, 5)->field, MissField::kIcmpType);
}

TEST_F(NearMisses, TwoFieldsOffIsNotANearMiss) {
  // udp 9999 from outside 10/8: port and peer differ from 'udp 53 from 10.0.0.0/8'.
  rules::Flow5 f = tcpFlow("203.0.113.5", 40000, "10.0.1.10", 9999);
  f.proto = rules::kProtoUdp;
  auto m = inbound(f);
  EXPECT_EQ(missOf(*policy_, m, 3), nullptr) << dump(m);
}

TEST_F(NearMisses, OutboundLooksAtTheDestination) {
  auto m = search_->securityGroups(srv_, rules::Direction::kOutbound,
                                   tcpFlow("10.0.1.10", 40000, "198.51.100.1", 443));
  ASSERT_EQ(m.size(), 1u) << dump(m);
  EXPECT_EQ(m[0].field, MissField::kPeer);
  EXPECT_NE(m[0].text.find("only to 192.0.2.0/24; this packet goes to 198.51.100.1"),
            std::string::npos)
      << m[0].text;
}

constexpr const char* kAclPolicy = R"(version: 1
groups:
  srv:
    inbound:
      - {proto: all, from: 0.0.0.0/0}
network_acls:
  acl:
    inbound:
      - {rule: 90, action: deny, proto: all, from: 192.0.2.0/24}
      - {rule: 100, action: allow, proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {rule: 110, action: allow, proto: udp, ports: 1024-65535, from: 0.0.0.0/0}
      - {rule: 120, action: allow, proto: tcp, ports: 22, from: 203.0.113.0/24}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  net: {cidr: 10.0.1.0/24, acl: acl}
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)";

TEST(AclNearMisses, OneFieldOffBeforeTheDefaultDeny) {
  auto p = compilePolicy(kAclPolicy);
  ASSERT_TRUE(p);
  NearMissSearch s(*p);
  const rules::SubnetId net = subnetNamed(*p, "net");
  rules::Evaluation ev;
  rules::Flow5 f = tcpFlow("198.51.100.7", 40000, "10.0.1.10", 22);
  rules::evaluate(*p, f, rules::EvalMode::kFull, &ev);
  ASSERT_FALSE(ev.allowed);
  const rules::Check& c = ev.checks[static_cast<size_t>(ev.first_deny)];
  ASSERT_EQ(c.kind, rules::CheckKind::kAcl);
  EXPECT_EQ(p->aclEntry(c.acl.entry).rule_number, 0);  // '*'
  auto m = s.acl(net, rules::Direction::kInbound, f, c.acl.entry);
  // 100 (port 443 only) and 120 (from 203.0.113.0/24 only) are one field off; 110 is two.
  ASSERT_EQ(m.size(), 2u);
  EXPECT_TRUE(m[0].acl);
  EXPECT_EQ(p->aclEntry(m[0].entry).rule_number, 100);
  EXPECT_EQ(m[0].field, MissField::kPort);
  EXPECT_EQ(p->aclEntry(m[1].entry).rule_number, 120);
  EXPECT_EQ(m[1].field, MissField::kPeer);
  EXPECT_EQ(m[1].wanted, "203.0.113.0/24");
}

TEST(AclNearMisses, AllowEntryShadowedByAnEarlierDeny) {
  auto p = compilePolicy(kAclPolicy);
  ASSERT_TRUE(p);
  NearMissSearch s(*p);
  rules::Evaluation ev;
  rules::Flow5 f = tcpFlow("192.0.2.9", 40000, "10.0.1.10", 443);
  rules::evaluate(*p, f, rules::EvalMode::kFull, &ev);
  ASSERT_FALSE(ev.allowed);
  const rules::Check& c = ev.checks[static_cast<size_t>(ev.first_deny)];
  ASSERT_EQ(p->aclEntry(c.acl.entry).rule_number, 90);
  auto m = s.acl(subnetNamed(*p, "net"), rules::Direction::kInbound, f, c.acl.entry);
  // Nothing comes before 90; 100 matches fully but comes after it. 120 (one field off) comes
  // after the deny too: changing it would not help, so it is not listed.
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].field, MissField::kOrder);
  EXPECT_EQ(p->aclEntry(m[0].entry).rule_number, 100);
  EXPECT_NE(m[0].text.find("rule 90 denies it first"), std::string::npos) << m[0].text;
}

TEST(Untracked, RulePairNamesBothRules) {
  auto p = compilePolicy(R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 22, from: 198.51.100.0/24}
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
    outbound:
      - {proto: udp, ports: 53, to: 0.0.0.0/0}
      - {proto: all, to: 0.0.0.0/0}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)");
  ASSERT_TRUE(p);
  NearMissSearch s(*p);
  const auto [r1, r2] = s.untrackedPair(ifaceNamed(*p, "web-1"), rules::Direction::kInbound,
                                        tcpFlow("203.0.113.5", 40000, "10.0.1.10", 443));
  ASSERT_NE(r1, rules::kNoRule);
  ASSERT_NE(r2, rules::kNoRule);
  EXPECT_EQ(p->rule(r1).index, 1u);
  EXPECT_EQ(p->rule(r2).dir, rules::Direction::kOutbound);
  EXPECT_EQ(p->rule(r2).index, 1u);  // 'all to 0.0.0.0/0', not the udp 53 rule
  // Port 22 has no all-addresses rule.
  EXPECT_EQ(s.untrackedPair(ifaceNamed(*p, "web-1"), rules::Direction::kInbound,
                            tcpFlow("198.51.100.5", 40000, "10.0.1.10", 22))
                .first,
            rules::kNoRule);
}

// ---- explanations of hand-built packets ----

constexpr const char* kExplainPolicy = R"(version: 1
timeouts: {profile: aws}
prefix_lists:
  office: [198.51.100.0/24]
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0, description: HTTPS}
      - {proto: tcp, ports: 22, from: pl:office}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
  app:
    inbound:
      - {proto: tcp, ports: 8080, from: sg:web}
      - {proto: udp, ports: 53, from: 10.0.0.0/8}
    outbound:
      - {proto: udp, ports: 53, to: 0.0.0.0/0}
network_acls:
  app-acl:
    inbound:
      - {rule: 90, action: deny, proto: all, from: 192.0.2.0/24}
      - {rule: 100, action: allow, proto: tcp, ports: 8080, from: 10.0.1.0/24}
      - {rule: 110, action: allow, proto: udp, ports: 1024-65535, from: 0.0.0.0/0}
      - {rule: 120, action: allow, proto: tcp, ports: 8080, from: 0.0.0.0/0}
      - {rule: 130, action: allow, proto: icmp, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  web-net: {cidr: 10.0.1.0/24}
  app-net: {cidr: 10.0.2.0/24, acl: app-acl}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
  app-1: {addresses: [10.0.2.10], groups: [app]}
)";

struct Case {
  const char* what;
  dataplane::Bytes frame;
  Reason want;
  std::vector<std::string> kinds;  // step kinds that must appear
};

dataplane::Bytes tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                     uint8_t flags, uint32_t seq, uint32_t ack = 0) {
  dataplane::TcpSpec s;
  s.src = ipAddr(src);
  s.dst = ipAddr(dst);
  s.sport = sport;
  s.dport = dport;
  s.flags = flags;
  s.seq = seq;
  s.ack = ack;
  return dataplane::buildTcp(s);
}

dataplane::Bytes udp(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                     size_t len = 20) {
  dataplane::UdpSpec s;
  s.src = ipAddr(src);
  s.dst = ipAddr(dst);
  s.sport = sport;
  s.dport = dport;
  s.payload_len = len;
  return dataplane::buildUdp(s);
}

std::vector<Case> cases() {
  using dataplane::kAck;
  using dataplane::kFin;
  using dataplane::kSyn;
  std::vector<Case> c;
  c.push_back({"ssh from outside the office: deny-sg with a near miss",
               tcp("203.0.113.5", 40000, "10.0.1.10", 22, kSyn, 100),
               Reason::kDenySg,
               {"direction", "sg"}});
  c.push_back({"web-1 calls app-1: allowed by rule, tracked",
               tcp("10.0.1.10", 41000, "10.0.2.10", 8080, kSyn, 1000),
               Reason::kAllowRule,
               {"direction", "sg", "acl", "tcp", "tracking"}});
  c.push_back({"app-1's SYN-ACK: allowed by tracking",
               tcp("10.0.2.10", 8080, "10.0.1.10", 41000, kSyn | kAck, 5000, 1001),
               Reason::kAllowTracked,
               {"direction", "tracked", "tcp", "acl", "tracking"}});
  c.push_back({"web-1's ACK",
               tcp("10.0.1.10", 41000, "10.0.2.10", 8080, kAck, 1001, 5001),
               Reason::kAllowTracked,
               {"tracked", "tcp"}});
  c.push_back({"app-1 asks 8.8.8.8 for DNS",
               udp("10.0.2.10", 5353, "8.8.8.8", 53),
               Reason::kAllowRule,
               {"direction", "sg", "acl", "tracking"}});
  {
    dataplane::UdpSpec q;
    q.src = ipAddr("10.0.2.10");
    q.dst = ipAddr("8.8.8.8");
    q.sport = 5353;
    q.dport = 53;
    q.payload_len = 20;
    dataplane::IcmpErrorSpec err;
    err.src = ipAddr("8.8.8.8");
    err.dst = ipAddr("10.0.2.10");
    c.push_back({"port unreachable about the DNS query: related",
                 dataplane::buildIcmpError(err, dataplane::buildUdp(q, dataplane::rawIp())),
                 Reason::kAllowRelated,
                 {"direction", "related", "acl"}});
  }
  c.push_back({"HTTPS to web-1 from anywhere: untracked",
               tcp("198.51.100.7", 40001, "10.0.1.10", 443, kSyn, 7000),
               Reason::kAllowUntracked,
               {"direction", "sg", "untracked"}});
  c.push_back({"web-1's SYN-ACK in the untracked flow",
               tcp("10.0.1.10", 443, "198.51.100.7", 40001, kSyn | kAck, 9000, 7001),
               Reason::kAllowUntracked,
               {"sg", "untracked"}});
  c.push_back({"from the blocked network: deny-acl by rule 90",
               tcp("192.0.2.9", 40002, "10.0.2.10", 8080, kSyn, 100),
               Reason::kDenyAcl,
               {"direction", "acl"}});
  c.push_back({"DNS to app-1 from outside: the ACL's default rule",
               udp("203.0.113.9", 5000, "10.0.2.10", 53),
               Reason::kDenyAcl,
               {"acl"}});
  c.push_back({"a FIN that opens nothing: invalid, passes by its rules",
               tcp("10.0.1.10", 41005, "10.0.2.10", 8080, kFin, 100),
               Reason::kAllowRule,
               {"invalid", "sg"}});
  {
    dataplane::IcmpEchoSpec e;
    e.src = ipAddr("198.51.100.7");
    e.dst = ipAddr("10.0.1.10");
    e.id = 77;
    c.push_back(
        {"ping web-1", dataplane::buildIcmpEcho(e), Reason::kAllowRule, {"sg", "tracking"}});
    e.reply = true;
    std::swap(e.src, e.dst);
    c.push_back({"web-1's echo reply",
                 dataplane::buildIcmpEcho(e),
                 Reason::kAllowTracked,
                 {"tracked", "tracking"}});
  }
  {
    dataplane::ArpSpec arp;
    arp.sender_ip = ipAddr("10.0.1.10");
    arp.target_ip = ipAddr("10.0.1.1");
    c.push_back({"ARP: exempt", dataplane::buildArp(arp), Reason::kAllowExempt, {"exempt"}});
  }
  c.push_back({"between two unprotected addresses",
               udp("192.0.2.50", 4000, "192.0.2.51", 4001),
               Reason::kAllowUnprotected,
               {"direction", "unprotected", "tracking"}});
  {
    dataplane::UdpSpec big;
    big.src = ipAddr("10.0.2.10");
    big.dst = ipAddr("8.8.8.8");
    big.sport = 5999;
    big.dport = 53;
    big.payload_len = 1400;
    auto frags = dataplane::fragment(dataplane::buildUdp(big), 600);
    c.push_back({"first fragment of a large DNS query: judged",
                 frags.at(0),
                 Reason::kAllowRule,
                 {"sg", "tracking"}});
    c.push_back({"a later fragment: follows its first fragment",
                 frags.at(1),
                 Reason::kAllowRule,
                 {"fragment"}});
  }
  {
    dataplane::Bytes cut = tcp("198.51.100.7", 40009, "10.0.1.10", 443, kSyn, 1);
    cut.resize(30);
    c.push_back({"a frame cut inside its IPv4 header", cut, Reason::kDenyMalformed, {"malformed"}});
  }
  return c;
}

std::vector<Frame> framesOf(const std::vector<Case>& cs) {
  std::vector<Frame> frames;
  uint64_t t = kT0;
  for (const Case& c : cs) {
    frames.push_back({t, c.frame});
    t += kSec / 100;
  }
  return frames;
}

// The sentences of an explanation, unwrapped.
std::string allText(const PacketExplanation& e) {
  std::string s;
  for (const auto& st : e.steps)
    s += st.text + "\n";
  for (const auto& n : e.near_misses)
    s += n.text + "\n";
  return s + e.stateless_text + "\n";
}

bool hasKind(const PacketExplanation& e, const std::string& kind) {
  return std::any_of(e.steps.begin(), e.steps.end(),
                     [&](const ExplainStep& s) { return s.kind == kind; });
}

// The index of the first step of `kind` (steps.size() when there is none).
size_t stepAt(const PacketExplanation& e, const std::string& kind) {
  for (size_t i = 0; i < e.steps.size(); ++i)
    if (e.steps[i].kind == kind) return i;
  ADD_FAILURE() << "no step '" << kind << "' in\n" << e.text;
  return e.steps.size();
}

// A packet an arriving subnet's ACL denies: the ACL step decides, and the step of `kind` comes
// after it, not reached. Returns that step's index.
size_t expectAclDecidesBefore(const PacketExplanation& e, const std::string& kind) {
  EXPECT_EQ(e.reason, Reason::kDenyAcl) << e.text;
  const size_t acl_at = stepAt(e, "acl");
  const size_t at = stepAt(e, kind);
  EXPECT_LT(acl_at, at) << e.text;
  if (acl_at < e.steps.size()) {
    EXPECT_NE(e.steps[acl_at].text.find("This decides"), std::string::npos) << e.text;
  }
  if (at < e.steps.size()) {
    EXPECT_EQ(e.steps[at].text.rfind("(not reached) ", 0), 0u) << e.text;
    EXPECT_EQ(nlohmann::json::parse(e.json)["steps"][at]["reached"], false) << e.json;
  }
  return at;
}

TEST(Explain, EveryKindOfVerdictIsExplained) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  const auto cs = cases();
  auto ex = explainFrames(p, framesOf(cs), ExplainOptions{});
  ASSERT_EQ(ex.size(), cs.size());
  for (size_t i = 0; i < cs.size(); ++i) {
    SCOPED_TRACE(cs[i].what);
    EXPECT_EQ(ex[i].index, i + 1);
    EXPECT_EQ(ex[i].reason, cs[i].want) << ex[i].text;
    for (const auto& k : cs[i].kinds)
      EXPECT_TRUE(hasKind(ex[i], k)) << "no step '" << k << "' in\n" << ex[i].text;
    auto j = nlohmann::json::parse(ex[i].json);
    EXPECT_EQ(j["reason"], dataplane::reasonCode(cs[i].want));
    EXPECT_EQ(j["steps"].size(), ex[i].steps.size());
    ASSERT_TRUE(ex[i].stateless.has_value());
  }
  // deny-sg: the office rule is the near miss, named with its field.
  const NearMiss* office = missOf(*p, ex[0].near_misses, 1);
  ASSERT_NE(office, nullptr) << ex[0].text;
  EXPECT_EQ(office->field, MissField::kPeer);
  EXPECT_NE(
      allText(ex[0]).find("tcp port 22 is allowed only from pl:office (198.51.100.0/24); this "
                          "packet came from 203.0.113.5"),
      std::string::npos)
      << ex[0].text;
  // The tracked reply names its connection, the packet that opened it and the rule.
  EXPECT_EQ(ex[2].connection, 1u);
  EXPECT_NE(allText(ex[2]).find("this is a reply on connection #1, opened by packet 2 under app "
                                "inbound rule 0 'tcp 8080 from sg:web'"),
            std::string::npos)
      << ex[2].text;
  // Statelessly the reply is denied: app has no outbound rule for tcp.
  EXPECT_EQ(ex[2].stateless, Reason::kDenySg);
  EXPECT_NE(ex[2].stateless_text.find("no outbound rule of app-1 (groups app) allows tcp port "
                                      "41000 to 10.0.1.10"),
            std::string::npos)
      << ex[2].stateless_text;
  // The related ICMP error: connection #2 (the DNS query).
  EXPECT_NE(allText(ex[5]).find("a packet of connection #2"), std::string::npos) << ex[5].text;
  // Untracked: both rules quoted.
  EXPECT_NE(allText(ex[6]).find("web inbound rule 0 'tcp 443 from 0.0.0.0/0'"), std::string::npos)
      << ex[6].text;
  EXPECT_NE(allText(ex[6]).find("web outbound rule 0 'all to 0.0.0.0/0, ::/0'"), std::string::npos)
      << ex[6].text;
  // deny-acl by 90: rule 120 would allow it but comes later.
  ASSERT_FALSE(ex[8].near_misses.empty());
  EXPECT_EQ(ex[8].near_misses.back().field, MissField::kOrder);
  // deny-acl by '*': rule 110 allows udp only on 1024-65535.
  ASSERT_EQ(ex[9].near_misses.size(), 2u) << ex[9].text;
  EXPECT_EQ(p->aclEntry(ex[9].near_misses[0].entry).rule_number, 110);
  EXPECT_EQ(ex[9].near_misses[0].field, MissField::kPort);
  EXPECT_EQ(ex[9].near_misses[0].wanted, "ports 1024-65535");
  EXPECT_EQ(ex[9].near_misses[1].field, MissField::kProtocol);  // 130: icmp
}

TEST(Explain, StrictPolicyDeniesInvalid) {
  std::string yaml = kExplainPolicy;
  yaml.insert(yaml.find("timeouts"), "strict: true\n");
  auto p = compilePolicy(yaml);
  ASSERT_TRUE(p);
  std::vector<Frame> frames = {
      {kT0, tcp("10.0.1.10", 41000, "10.0.2.10", 8080, dataplane::kSyn, 1000)},
      // An ACK far outside the window the SYN announced.
      {kT0 + kSec, tcp("10.0.1.10", 41000, "10.0.2.10", 8080, dataplane::kAck, 900000000, 1)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 2u);
  if (ex[1].reason != Reason::kDenyInvalid) GTEST_SKIP() << "not invalid:\n" << ex[1].text;
  EXPECT_TRUE(hasKind(ex[1], "invalid"));
  EXPECT_NE(allText(ex[1]).find("The policy is strict"), std::string::npos) << ex[1].text;
  EXPECT_EQ(ex[1].stateless, Reason::kAllowRule);
}

TEST(Explain, IdleTimeoutExplainsALateReply) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  std::vector<Frame> frames = {{kT0, udp("10.0.2.10", 5400, "8.8.8.8", 53)},
                               {kT0 + 45 * kSec, udp("8.8.8.8", 53, "10.0.2.10", 5400)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].reason, Reason::kDenySg) << ex[1].text;
  ASSERT_TRUE(hasKind(ex[1], "expired")) << ex[1].text;
  EXPECT_NE(allText(ex[1]).find("its last packet was 45.000000 s before this one, longer than its "
                                "idle timeout (udp, 30 s)"),
            std::string::npos)
      << ex[1].text;
  // Before the timeout, the same answer is a tracked reply and nothing expired.
  frames[1].ts_ns = kT0 + 10 * kSec;
  ex = explainFrames(p, frames, ExplainOptions{});
  EXPECT_EQ(ex[1].reason, Reason::kAllowTracked);
  EXPECT_FALSE(hasKind(ex[1], "expired"));
}

// A UDP connection becomes a stream when its originator sends again after a reply: the packet
// that makes it one says why its timeout grew (udp's 30 s to udp_stream's 180 s), once.
TEST(Explain, AUdpConnectionSaysWhenItBecomesAStream) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  std::vector<Frame> frames = {{kT0, udp("10.0.2.10", 5400, "8.8.8.8", 53)},
                               {kT0 + kSec, udp("8.8.8.8", 53, "10.0.2.10", 5400)},
                               {kT0 + 2 * kSec, udp("10.0.2.10", 5400, "8.8.8.8", 53)},
                               {kT0 + 3 * kSec, udp("8.8.8.8", 53, "10.0.2.10", 5400)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[2].reason, Reason::kAllowTracked) << ex[2].text;
  EXPECT_NE(allText(ex[2]).find("The timeout changed from 30 s (udp) to 180 s: the originator sent "
                                "again after a reply, so the connection is now a stream"),
            std::string::npos)
      << ex[2].text;
  EXPECT_EQ(allText(ex[1]).find("now a stream"), std::string::npos) << ex[1].text;
  EXPECT_EQ(allText(ex[3]).find("now a stream"), std::string::npos) << ex[3].text;
  EXPECT_NE(allText(ex[3]).find("expires after 180 s idle (udp_stream)"), std::string::npos)
      << ex[3].text;
}

// An interface's own timeouts override the policy's for the connections tracked on its side
// (docs/design.md "Idle timeouts"): explain names the timeout that applies, not the policy's.
TEST(Explain, NamesTheInterfacesTimeoutWhereItOverridesThePolicys) {
  std::string yaml = kExplainPolicy;
  const std::string app = "app-1: {addresses: [10.0.2.10], groups: [app]}";
  yaml.replace(yaml.find(app), app.size(),
               "app-1: {addresses: [10.0.2.10], groups: [app], timeouts: {udp: 50, udp_stream: "
               "150}}");
  auto p = compilePolicy(yaml);
  ASSERT_TRUE(p);
  std::vector<Frame> frames = {{kT0, udp("10.0.2.10", 5400, "8.8.8.8", 53)},
                               {kT0 + kSec, udp("8.8.8.8", 53, "10.0.2.10", 5400)},
                               {kT0 + 2 * kSec, udp("10.0.2.10", 5400, "8.8.8.8", 53)},
                               {kT0 + 200 * kSec, udp("10.0.2.10", 5400, "8.8.8.8", 53)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_NE(allText(ex[0]).find("Idle timeout: udp, 50 s."), std::string::npos) << ex[0].text;
  EXPECT_NE(allText(ex[1]).find("expires after 50 s idle (udp)"), std::string::npos) << ex[1].text;
  EXPECT_NE(allText(ex[2]).find("The timeout changed from 50 s (udp) to 150 s"), std::string::npos)
      << ex[2].text;
  EXPECT_NE(allText(ex[3]).find("longer than its idle timeout (udp_stream, 150 s)"),
            std::string::npos)
      << ex[3].text;
  nlohmann::json j = nlohmann::json::parse(explainFrames(p, {frames[0]},
                                                         [] {
                                                           ExplainOptions o;
                                                           o.json = true;
                                                           return o;
                                                         }())[0]
                                               .json);
  bool seen = false;
  for (const auto& step : j["steps"]) {
    if (step["kind"] != "tracking") continue;
    EXPECT_EQ(step["timeout"]["seconds"], 50) << step.dump();
    seen = true;
  }
  EXPECT_TRUE(seen) << j.dump(2);
}

// The text points to docs/glossary.md for the terms it uses, each term once per run.
TEST(Explain, TextPointsToTheGlossaryOncePerTerm) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  std::vector<Frame> frames = {{kT0, udp("10.0.2.10", 5400, "8.8.8.8", 53)},
                               {kT0 + kSec, udp("8.8.8.8", 53, "10.0.2.10", 5400)},
                               {kT0 + 2 * kSec, udp("10.0.2.10", 5400, "8.8.8.8", 53)}};
  ExplainOptions o;
  o.text = true;
  auto ex = explainFrames(p, frames, o);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_NE(ex[0].text.find("  glossary: docs/glossary.md #idle-timeout, #allow-and-deny-reasons"),
            std::string::npos)
      << ex[0].text;
  // The reply uses the same terms: no second pointer to them.
  EXPECT_EQ(ex[1].text.find("#allow-and-deny-reasons"), std::string::npos) << ex[1].text;
  EXPECT_EQ(ex[2].text.find("#idle-timeout"), std::string::npos) << ex[2].text;
}

TEST(Explain, SelectionByPacketFlowAndLimit) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  const auto frames = framesOf(cases());
  ExplainOptions o;
  o.packets = {{2, 3}, {9, 9}};
  auto ex = explainFrames(p, frames, o);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].index, 2u);
  EXPECT_EQ(ex[2].index, 9u);
  // The context of unselected packets still counts: packet 3 is a reply on connection #1.
  EXPECT_EQ(ex[1].reason, Reason::kAllowTracked);

  o = ExplainOptions{};
  auto flow = parseFlowPattern("udp 10.0.2.10 -> 8.8.8.8:53");
  ASSERT_TRUE(flow) << flow.message();
  o.flow = *flow;
  ex = explainFrames(p, frames, o);
  // The query, the ICMP error that quotes it, and both fragments of the large query (the later
  // one carries no ports: it is selected through its first fragment).
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].index, 5u);
  EXPECT_EQ(ex[1].reason, Reason::kAllowRelated);
  EXPECT_EQ(ex[2].index, 16u);
  EXPECT_EQ(ex[3].index, 17u);

  o = ExplainOptions{};
  flow = parseFlowPattern("tcp * -> 10.0.2.10:8080");
  ASSERT_TRUE(flow) << flow.message();
  o.flow = *flow;
  o.limit = 2;
  Explainer x(p, o);
  std::vector<uint64_t> got;
  x.runFrames(frames, [&](const PacketExplanation& e) { got.push_back(e.index); });
  EXPECT_EQ(got, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(x.stats().selected, 5u);  // 2, 3, 4 (both directions), 9, 11
  EXPECT_EQ(x.stats().shown, 2u);
  EXPECT_EQ(x.stats().packets, frames.size());
}

TEST(Explain, NoContrastLeavesItOut) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  ExplainOptions o;
  o.contrast = false;
  auto ex = explainFrames(p, framesOf(cases()), o);
  for (const auto& e : ex) {
    EXPECT_FALSE(e.stateless.has_value());
    EXPECT_EQ(e.text.find("stateless:"), std::string::npos);
    EXPECT_TRUE(nlohmann::json::parse(e.json)["stateless"].is_null());
  }
}

// ---- ICMP errors, neighbour discovery and exemptions (docs/design.md "Connection tracking") ----

dataplane::Bytes icmpErrorAbout(const char* src, const char* dst, uint8_t type, uint8_t code,
                                const dataplane::Bytes& quoted) {
  dataplane::IcmpErrorSpec err;
  err.src = ipAddr(src);
  err.dst = ipAddr(dst);
  err.type = type;
  err.code = code;
  return dataplane::buildIcmpError(err, quoted);
}

dataplane::Bytes dnsQuery(const char* src, uint16_t sport, const char* dst,
                          const dataplane::FrameOptions& o = {}) {
  dataplane::UdpSpec q;
  q.src = ipAddr(src);
  q.dst = ipAddr(dst);
  q.sport = sport;
  q.dport = 53;
  q.payload_len = 20;
  return dataplane::buildUdp(q, o);
}

TEST(Explain, AnIcmpErrorThatIsNotRelatedSaysWhy) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  dataplane::IcmpEchoSpec ping;
  ping.src = ipAddr("10.0.1.10");  // web-1: the default outbound rule allows it
  ping.dst = ipAddr("8.8.4.4");
  ping.id = 99;
  dataplane::IcmpEchoSpec reply = ping;
  reply.reply = true;
  const std::vector<Frame> frames = {
      {kT0, dnsQuery("10.0.2.10", 5353, "8.8.8.8")},
      // Not sent back to the quoted packet's sender: the quote is 8.8.8.8's answer.
      {kT0 + 1, icmpErrorAbout("203.0.113.1", "10.0.2.10", 3, 1,
                               dnsQuery("8.8.8.8", 53, "10.0.2.10", dataplane::rawIp()))},
      // About a query nobody made.
      {kT0 + 2, icmpErrorAbout("203.0.113.1", "10.0.2.10", 3, 1,
                               dnsQuery("10.0.2.10", 5999, "8.8.8.8", dataplane::rawIp()))},
      {kT0 + 3, dataplane::buildIcmpEcho(ping)},
      // About an echo reply from the side that asked.
      {kT0 + 4, icmpErrorAbout("203.0.113.1", "10.0.1.10", 11, 0,
                               dataplane::buildIcmpEcho(reply, dataplane::rawIp()))}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 5u);
  const char* want[] = {"it is not addressed to the quoted packet's sender",
                        "the quoted packet belongs to no tracked connection",
                        "the quoted ICMP query went the wrong way for its connection"};
  const size_t at[] = {1, 2, 4};
  for (size_t k = 0; k < 3; ++k) {
    const PacketExplanation& e = ex[at[k]];
    SCOPED_TRACE(e.text);
    EXPECT_EQ(e.reason, Reason::kDenySg);
    EXPECT_TRUE(hasKind(e, "not-related"));
    EXPECT_FALSE(hasKind(e, "related"));
    EXPECT_NE(allText(e).find(std::string("An ICMP error, but not related to any connection: ") +
                              want[k]),
              std::string::npos);
    // The groups it needed a rule from are named: they judged it.
    EXPECT_TRUE(hasKind(e, "sg"));
    EXPECT_EQ(nlohmann::json::parse(e.json)["connection"], nullptr);
  }
}

TEST(Explain, ARelatedErrorDeniedByTheAclSuggestsNoGroupRule) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  // app-1's query is tracked; a router in 192.0.2.0/24 (app-acl's rule 90 denies it) sends back
  // "fragmentation needed". The ACL denies it; the groups would have passed it as related.
  const std::vector<Frame> frames = {
      {kT0, dnsQuery("10.0.2.10", 5353, "8.8.8.8")},
      {kT0 + 1, icmpErrorAbout("192.0.2.1", "10.0.2.10", 3, 4,
                               dnsQuery("10.0.2.10", 5353, "8.8.8.8", dataplane::rawIp()))}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 2u);
  const PacketExplanation& e = ex[1];
  EXPECT_EQ(e.reason, Reason::kDenyAcl) << e.text;
  EXPECT_TRUE(hasKind(e, "related")) << e.text;
  EXPECT_TRUE(hasKind(e, "acl")) << e.text;
  EXPECT_FALSE(hasKind(e, "sg")) << e.text;
  EXPECT_EQ(e.text.find("no inbound rule"), std::string::npos) << e.text;
  EXPECT_EQ(e.connection, 1u) << e.text;
  // The engine's order for an arriving packet: app-net's ACL decides first; the groups, which
  // would have passed the error as related, are not reached.
  const size_t related_at = expectAclDecidesBefore(e, "related");
  ASSERT_LT(related_at, e.steps.size());
  EXPECT_EQ(
      e.steps[related_at].text.rfind("(not reached) The security groups of app-1 (inbound)", 0), 0u)
      << e.text;
  EXPECT_NE(e.steps[related_at].text.find("would be related traffic"), std::string::npos) << e.text;
}

// A reply that the subnet's ACL drops (docs/design.md "Direction": the ACL at the subnet edge
// comes before the interface's groups and tracking): the ACL decides, the groups are not reached,
// and no security-group rule is suggested for a packet its connection would have passed.
TEST(Explain, AReplyTheAclDeniesIsNarratedInTheEnginesOrder) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  const std::vector<Frame> frames = {
      {kT0, dnsQuery("10.0.2.10", 5353, "192.0.2.9")},
      // The answer comes from 192.0.2.0/24, which app-acl's rule 90 denies.
      {kT0 + 1, udp("192.0.2.9", 53, "10.0.2.10", 5353)},
      // A first packet from there: the ACL decides, then the groups (which would deny it too).
      {kT0 + 2, tcp("192.0.2.9", 40002, "10.0.2.10", 8080, dataplane::kSyn, 100)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 3u);
  {
    const PacketExplanation& e = ex[1];
    SCOPED_TRACE(e.text);
    const size_t tracked_at = expectAclDecidesBefore(e, "tracked");
    ASSERT_LT(tracked_at, e.steps.size());
    EXPECT_NE(allText(e).find("rule 90 'deny all from 192.0.2.0/24' denies it"), std::string::npos);
    EXPECT_EQ(
        e.steps[tracked_at].text.rfind("(not reached) The security groups of app-1 (inbound)", 0),
        0u);
    EXPECT_NE(e.steps[tracked_at].text.find("a reply on connection #1"), std::string::npos);
    EXPECT_NE(e.steps[tracked_at].text.find("without any rule"), std::string::npos);
    EXPECT_FALSE(hasKind(e, "sg"));
    EXPECT_EQ(allText(e).find("no inbound rule"), std::string::npos);
    // The near misses are the ACL's, never a group rule.
    for (const NearMiss& n : e.near_misses)
      EXPECT_TRUE(n.acl) << n.text;
  }
  {
    // As `statewall query` prints it: the ACL, then the groups it did not reach.
    const PacketExplanation& e = ex[2];
    SCOPED_TRACE(e.text);
    expectAclDecidesBefore(e, "sg");
    EXPECT_FALSE(hasKind(e, "tracked"));
  }
}

// An overlapping fragment (docs/design.md "Fragments"): denied with the rest of its datagram
// before any rule sees it; the explanation says why and suggests no rule.
TEST(Explain, AnOverlappingFragmentSaysWhyAndSuggestsNoRule) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  const dataplane::Bytes d = udp("10.0.2.10", 5999, "8.8.8.8", 53, 1400);
  const auto a = dataplane::fragment(d, 600);  // [0,576) [576,1152) [1152,1428)
  const auto b = dataplane::fragment(d, 500);  // [0,480) [480,960) ...
  const std::vector<Frame> frames = {
      {kT0, a.at(0)}, {kT0 + 1, b.at(1)}, {kT0 + 2, a.at(1)}, {kT0 + 3, a.at(2)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].reason, Reason::kAllowRule) << ex[0].text;
  const char* want[] = {
      "overlapping fragment: it rewrites bytes of its datagram already seen (RFC "
      "5722); the whole datagram is dropped",
      "fragment of a datagram dropped for overlapping fragments (RFC 5722)",
      "fragment of a datagram dropped for overlapping fragments (RFC 5722)"};
  for (size_t k = 1; k < 4; ++k) {
    const PacketExplanation& e = ex[k];
    SCOPED_TRACE(e.text);
    EXPECT_EQ(e.reason, Reason::kDenyMalformed);
    EXPECT_TRUE(hasKind(e, "malformed"));
    EXPECT_NE(allText(e).find(want[k - 1]), std::string::npos);
    EXPECT_EQ(allText(e).find("never seen"), std::string::npos);
    EXPECT_NE(allText(e).find("no rule"), std::string::npos);
    // No rule is suggested: no check ran, nothing is a near miss.
    EXPECT_FALSE(hasKind(e, "sg"));
    EXPECT_FALSE(hasKind(e, "acl"));
    EXPECT_TRUE(e.near_misses.empty());
    const auto j = nlohmann::json::parse(e.json);
    EXPECT_EQ(j["steps"][0]["layer"], "fragment");
    EXPECT_EQ(j["steps"][0]["why"], want[k - 1]);
  }
}

TEST(Explain, ExemptionsAndInvalidNeighbourDiscovery) {
  std::string yaml = kExplainPolicy;
  yaml.insert(yaml.find("prefix_lists"), "vpc_cidrs: [10.0.0.0/16]\n");
  auto p = compilePolicy(yaml);
  ASSERT_TRUE(p);
  dataplane::NdSpec bad_nd;
  bad_nd.src = ipAddr("2001:db8::1");
  bad_nd.dst = ipAddr("2001:db8::2");
  dataplane::FrameOptions hop64;
  hop64.ttl = 64;
  const std::vector<Frame> frames = {{kT0, udp("10.0.2.10", 40000, "169.254.169.254", 80)},
                                     {kT0 + 1, dnsQuery("10.0.1.10", 5353, "10.0.0.2")},
                                     {kT0 + 2, dataplane::buildNd({})},
                                     {kT0 + 3, dataplane::buildNd(bad_nd, hop64)}};
  auto ex = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].reason, Reason::kAllowExempt) << ex[0].text;
  EXPECT_NE(allText(ex[0]).find("Exempt: traffic between app-1 and the instance metadata service "
                                "(169.254.169.254)"),
            std::string::npos)
      << ex[0].text;
  EXPECT_NE(allText(ex[0]).find("'exempt: false'"), std::string::npos) << ex[0].text;
  EXPECT_FALSE(hasKind(ex[0], "sg")) << ex[0].text;
  EXPECT_EQ(nlohmann::json::parse(ex[0].json)["steps"][0]["exemption"], "instance-metadata");
  EXPECT_EQ(ex[1].reason, Reason::kAllowExempt) << ex[1].text;
  EXPECT_NE(allText(ex[1]).find("the Amazon DNS server (10.0.0.2)"), std::string::npos)
      << ex[1].text;
  EXPECT_EQ(ex[2].reason, Reason::kAllowExempt) << ex[2].text;
  EXPECT_NE(allText(ex[2]).find("IPv6 neighbour discovery is exempt"), std::string::npos)
      << ex[2].text;
  EXPECT_EQ(ex[3].reason, Reason::kAllowUnprotected) << ex[3].text;
  EXPECT_TRUE(hasKind(ex[3], "nd-invalid")) << ex[3].text;
  EXPECT_NE(allText(ex[3]).find("its hop limit is not 255"), std::string::npos) << ex[3].text;
}

// Layer-2.5 headers are always unwrapped; explain names the ones the frame carried, from frames
// in memory and from a trace file (issue 16: nothing said the packet was inside a VLAN tag or an
// MPLS stack).
TEST(Explain, NamesTheLayer25HeadersAroundThePacket) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  dataplane::TcpSpec s;
  s.src = ipAddr("203.0.113.5");
  s.dst = ipAddr("10.0.1.10");
  s.sport = 40000;
  s.dport = 443;
  s.flags = dataplane::kSyn;
  dataplane::FrameOptions fo;
  fo.vlans = {{.vid = 100}};
  fo.shims = {{.kind = dataplane::Shim::Kind::kMpls, .value = 16},
              {.kind = dataplane::Shim::Kind::kMpls, .value = 17}};
  std::vector<Frame> frames = {
      {kT0, tcp("203.0.113.5", 40001, "10.0.1.10", 443, dataplane::kSyn, 1)},
      {kT0 + kSec, dataplane::buildTcp(s, fo)}};
  auto check = [](const std::vector<PacketExplanation>& ex) {
    ASSERT_EQ(ex.size(), 2u);
    EXPECT_FALSE(hasKind(ex[0], "encapsulation")) << ex[0].text;
    EXPECT_EQ(ex[0].json.find("\"encap\""), std::string::npos);
    EXPECT_EQ(ex[1].reason, Reason::kAllowUntracked) << ex[1].text;
    ASSERT_TRUE(hasKind(ex[1], "encapsulation")) << ex[1].text;
    EXPECT_EQ(ex[1].steps[0].kind, "encapsulation");
    EXPECT_NE(allText(ex[1]).find("The frame carries vlan:100, mpls:16, mpls:17: layer-2.5 "
                                  "headers are always unwrapped"),
              std::string::npos)
        << ex[1].text;
    const auto j = nlohmann::json::parse(ex[1].json);
    EXPECT_EQ(j["packet"]["encap"], nlohmann::json::array({"vlan:100", "mpls:16", "mpls:17"}));
    EXPECT_EQ(j["steps"][0]["headers"], j["packet"]["encap"]);
  };
  {
    SCOPED_TRACE("frames");
    check(explainFrames(p, frames, ExplainOptions{}));
  }

  // The same frames in a trace: the explainer reads the frames' headers from the file.
  testing::TempDir dir;
  auto w_opened = PcapWriter::open(dir.file("t.pcap"), 1, 65535, true);
  ASSERT_TRUE(w_opened) << w_opened.message();
  auto w = std::move(*w_opened);
  for (const auto& f : frames)
    w->write(f.ts_ns, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
             static_cast<uint32_t>(f.bytes.size()));
  ASSERT_EQ(w->close().message(), "");
  std::vector<PacketExplanation> ex;
  Explainer x(p, ExplainOptions{});
  ASSERT_TRUE(
      x.runFiles({dir.file("t.pcap")}, [&](const PacketExplanation& e) { ex.push_back(e); }));
  SCOPED_TRACE("trace file");
  check(ex);
}

// A packet inside a VXLAN tunnel behind a VLAN tag: without --decap the outer UDP packet is judged
// and explain says it carries a tunnel; with --decap (ExplainOptions::parse) the inner packet is
// judged and explain names the tunnel and its endpoints (issue 16).
TEST(Explain, SaysWhenAPacketWasJudgedInsideATunnel) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  dataplane::TcpSpec s;
  s.src = ipAddr("203.0.113.5");
  s.dst = ipAddr("10.0.1.10");
  s.sport = 40000;
  s.dport = 443;
  s.flags = dataplane::kSyn;
  dataplane::FrameOptions fo;
  fo.vlans = {{.vid = 100}};
  dataplane::TunnelSpec t;
  t.kind = dataplane::EncapHeader::Kind::kVxlan;
  t.value = 42;
  t.outer_src = ipAddr("10.0.0.1");
  t.outer_dst = ipAddr("10.0.0.2");
  fo.tunnels = {t};
  const std::vector<Frame> frames = {{kT0, dataplane::buildTcp(s, fo)}};

  auto outer = explainFrames(p, frames, ExplainOptions{});
  ASSERT_EQ(outer.size(), 1u);
  EXPECT_EQ(outer[0].summary.rfind("udp 10.0.0.1:", 0), 0u) << outer[0].text;
  ASSERT_TRUE(hasKind(outer[0], "encapsulation")) << outer[0].text;
  EXPECT_NE(allText(outer[0]).find("The frame carries vlan:100"), std::string::npos)
      << outer[0].text;
  EXPECT_NE(allText(outer[0]).find("It carries a vxlan (UDP port 4789) tunnel: without --decap "
                                   "the outer packet is what is judged"),
            std::string::npos)
      << outer[0].text;
  EXPECT_EQ(nlohmann::json::parse(outer[0].json)["steps"][0]["outer_of"], "vxlan (UDP port 4789)");

  ExplainOptions o;
  o.parse.decap = true;
  auto inner = explainFrames(p, frames, o);
  ASSERT_EQ(inner.size(), 1u);
  EXPECT_EQ(inner[0].summary, "tcp 203.0.113.5:40000 -> 10.0.1.10:443 flags S") << inner[0].text;
  EXPECT_EQ(inner[0].reason, Reason::kAllowUntracked) << inner[0].text;
  ASSERT_TRUE(hasKind(inner[0], "encapsulation")) << inner[0].text;
  EXPECT_NE(allText(inner[0]).find("Judged inside vxlan:vni=42 between 10.0.0.1 and 10.0.0.2; the "
                                   "outer packet was not judged; carried in vlan:100"),
            std::string::npos)
      << inner[0].text;
  const auto j = nlohmann::json::parse(inner[0].json);
  EXPECT_EQ(j["packet"]["encap"], nlohmann::json::array({"vlan:100", "vxlan:vni=42"}));
  const auto& tunnels = j["steps"][0]["tunnels"];
  ASSERT_EQ(tunnels.size(), 1u);
  EXPECT_EQ(tunnels[0]["header"], "vxlan:vni=42");
  EXPECT_EQ(tunnels[0]["outer"]["src"], "10.0.0.1");
  EXPECT_EQ(tunnels[0]["outer"]["dport"], 4789);
}

// The whole text and JSON of the hand-built cases, as golden files.
TEST(Explain, SyntheticCasesMatchGoldenFiles) {
  auto p = compilePolicy(kExplainPolicy);
  ASSERT_TRUE(p);
  const auto cs = cases();
  auto ex = explainFrames(p, framesOf(cs), ExplainOptions{});
  std::string text, json = "[\n";
  for (size_t i = 0; i < ex.size(); ++i) {
    text += (i ? "\n# " : "# ") + std::string(cs[i].what) + "\n" + ex[i].text;
    json += ex[i].json + (i + 1 < ex.size() ? ",\n" : "\n]\n");
  }
  const std::string dir = std::string(STATEWALL_EXAMPLES_DIR) + "/../tests/sim/golden/explain/";
  for (const auto& [name, got] : {std::pair{"synthetic.txt", &text}, {"synthetic.json", &json}}) {
    const std::string path = dir + name;
    if (std::getenv("STATEWALL_UPDATE_GOLDEN") != nullptr) testing::writeText(path, *got);
    const std::string want = testing::readText(path);
    EXPECT_TRUE(*got == want)
        << firstDifference(*got, want) << "\n"
        << path << " differs (STATEWALL_UPDATE_GOLDEN=1 rewrites it after an intended change)";
  }
}

}  // namespace
}  // namespace statewall::sim
