// --expect files: parsing (with locations), flow patterns, and how results are judged.
#include <gtest/gtest.h>

#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/sim/expect.hpp"

namespace statewall::sim {
namespace {

using namespace statewall::dataplane;

ParsedPacket parsed(const Bytes& frame) {
  ParsedPacket p;
  EXPECT_TRUE(
      parsePacket(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::kEthernet, &p));
  return p;
}

ParsedPacket tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  TcpSpec t;
  t.src = ipAddr(src);
  t.dst = ipAddr(dst);
  t.sport = sport;
  t.dport = dport;
  return parsed(buildTcp(t));
}

Verdict verdict(Reason r) {
  Verdict v;
  v.reason = r;
  return v;
}

std::string describe(const Verdict& v) {
  return std::string(reasonCode(v.reason));
}

TEST(FlowPattern, Matching) {
  auto p = parseFlowPattern("tcp 198.51.100.0/24:* -> 10.0.1.10:443");
  ASSERT_TRUE(p) << p.message();
  auto a = ipAddr("198.51.100.7"), b = ipAddr("10.0.1.10"), o = ipAddr("203.0.113.1");
  EXPECT_TRUE(p->matches(6, a, b, 1234, 443, 0, 0));
  EXPECT_FALSE(p->matches(17, a, b, 1234, 443, 0, 0));
  EXPECT_FALSE(p->matches(6, o, b, 1234, 443, 0, 0));
  EXPECT_FALSE(p->matches(6, a, b, 1234, 80, 0, 0));
  EXPECT_FALSE(p->matches(6, b, a, 443, 1234, 0, 0));

  auto any = parseFlowPattern("* * -> *");
  ASSERT_TRUE(any) << any.message();
  EXPECT_TRUE(any->matches(6, a, b, 1, 2, 0, 0));
  EXPECT_TRUE(any->matches(58, ipAddr("2001:db8::1"), ipAddr("2001:db8::2"), 0, 0, 128, 0));

  auto range = parseFlowPattern("udp * -> [2001:db8::/32]:1000-2000");
  ASSERT_TRUE(range) << range.message();
  EXPECT_TRUE(range->matches(17, ipAddr("::1"), ipAddr("2001:db8::5"), 9, 1500, 0, 0));
  EXPECT_FALSE(range->matches(17, ipAddr("::1"), ipAddr("2001:db8::5"), 9, 2001, 0, 0));
  EXPECT_FALSE(range->matches(17, a, b, 9, 1500, 0, 0));

  auto icmp = parseFlowPattern("icmp * -> 10.0.1.10 type=8");
  ASSERT_TRUE(icmp) << icmp.message();
  EXPECT_TRUE(icmp->matches(1, a, b, 0, 0, 8, 0));
  EXPECT_FALSE(icmp->matches(1, a, b, 0, 0, 0, 0));

  for (const char* bad : {"tcp 1.2.3.4 -> ", "tcp 1.2.3.4 5.6.7.8", "sctp * -> *",
                          "tcp 1.2.3.4:99999 -> *", "icmp * -> *:80", "tcp * -> * type=8",
                          "tcp 10.0.0.0/8 -> [::1]:1", "tcp 1.2.3.4:9-1 -> *"}) {
    EXPECT_FALSE(parseFlowPattern(bad)) << bad;
  }
}

TEST(Expectations, ParseErrorsNameFileLineAndColumn) {
  struct Case {
    const char* text;
    const char* where;
    const char* what;
  } cases[] = {
      {"expect:\n  - flow: tcp * -> *\n    verdict: maybe\n", "x.yaml:3:14", "verdict"},
      {"expect:\n  - flow: tcp * -> *\n    colour: red\n", "x.yaml:3:5", "unknown key 'colour'"},
      {"expect:\n  - verdict: allow\n", "x.yaml:2:5", "exactly one of"},
      {"expect:\n  - packet: 0\n    verdict: allow\n", "x.yaml:2:13", "1-based"},
      {"expect:\n  - packet: 3\n", "x.yaml:2:5", "verdict and/or a reason"},
      {"expect:\n  - packet: 3\n    reason: deny-everything\n", "x.yaml:3:13", "unknown code"},
      {"expect:\n  - packet: 3\n    verdict: allow\n    reason: deny-sg\n", "x.yaml:2:5",
       "contradicts"},
      {"expect:\n  - flow: tcp 1.2.3.4 ->\n    verdict: allow\n", "x.yaml:2:11", "flow pattern"},
      {"checks: []\n", "x.yaml:1:1", "unknown key 'checks'"},
      {"expect: [\n", "x.yaml:", ""},
  };
  for (const auto& c : cases) {
    auto e = Expectations::parse("x.yaml", c.text);
    EXPECT_FALSE(e) << c.text;
    const std::string& err = e.message();
    EXPECT_EQ(err.rfind(c.where, 0), 0u) << err;
    EXPECT_NE(err.find(c.what), std::string::npos) << err;
  }
}

TEST(Expectations, JudgesAllAnyFirstAndCount) {
  auto e = Expectations::parse("e.yaml", R"(
expect:
  - name: https allowed
    flow: tcp * -> 10.0.1.10:443
    verdict: allow
  - connection: tcp * -> 10.0.1.10:443
    reason: [allow-rule, allow-tracked]
  - flow: tcp * -> 10.0.1.10:22
    verdict: deny
    reason: deny-sg
  - flow: tcp * -> 10.0.1.10:22
    verdict: deny
    match: first
  - packets: 1-2
    verdict: allow
    match: any
  - packet: 5
    verdict: allow
  - flow: udp * -> *
    verdict: deny
  - flow: tcp * -> 10.0.1.10:443
    verdict: allow
    count: 7
)");
  ASSERT_TRUE(e) << e.message();
  ASSERT_EQ(e->size(), 8u);
  auto syn = tcp("198.51.100.7", 40000, "10.0.1.10", 443);
  auto synack = tcp("10.0.1.10", 443, "198.51.100.7", 40000);
  auto ssh = tcp("198.51.100.7", 40001, "10.0.1.10", 22);
  e->observe(1, syn, verdict(Reason::kAllowRule), describe);
  e->observe(2, synack, verdict(Reason::kAllowTracked), describe);
  e->observe(3, ssh, verdict(Reason::kDenySg), describe);
  e->observe(4, ssh, verdict(Reason::kAllowRule), describe);
  e->observe(5, syn, verdict(Reason::kAllowTracked), describe);
  auto r = e->results();
  ASSERT_EQ(r.size(), 8u);
  EXPECT_TRUE(r[0].passed) << r[0].outcome;
  EXPECT_EQ(r[0].matched, 2u);  // packets 1 and 5, forward direction only
  EXPECT_TRUE(r[1].passed) << r[1].outcome;
  EXPECT_EQ(r[1].matched, 3u);  // both directions
  EXPECT_FALSE(r[2].passed);
  EXPECT_NE(r[2].outcome.find("1 of 2 matching packets were not; first #4: allow-rule"),
            std::string::npos)
      << r[2].outcome;
  EXPECT_TRUE(r[3].passed) << r[3].outcome;  // only the first one counts
  EXPECT_TRUE(r[4].passed);
  EXPECT_TRUE(r[5].passed);
  EXPECT_FALSE(r[6].passed);
  EXPECT_EQ(r[6].outcome, "no packet matched");
  EXPECT_FALSE(r[7].passed);
  EXPECT_EQ(r[7].outcome, "2 packets matched, expected exactly 7");
  EXPECT_EQ(r[0].where, "e.yaml:3");
  EXPECT_EQ(r[0].name, "https allowed");
  EXPECT_EQ(r[2].expected, "deny (deny-sg)");
  EXPECT_FALSE(e->allPassed());
}

TEST(Expectations, BareListAtTopLevel) {
  auto e = Expectations::parse("e.yaml", "- packet: 1\n  verdict: deny\n");
  ASSERT_TRUE(e) << e.message();
  e->observe(1, tcp("1.2.3.4", 1, "5.6.7.8", 2), verdict(Reason::kDenyAcl), describe);
  EXPECT_TRUE(e->allPassed());
}

}  // namespace
}  // namespace statewall::sim
