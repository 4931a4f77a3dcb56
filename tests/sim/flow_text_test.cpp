// The shared flow text syntax (sim/include/statewall/sim/flow_text.hpp) and the three readers that
// use it: `statewall query`'s exact flows, `statewall gen`'s flow specs and expectation patterns.
#include "statewall/sim/flow_text.hpp"

#include <gtest/gtest.h>

#include "common/protocol_spellings.hpp"
#include "statewall/sim/expect.hpp"
#include "statewall/sim/gen.hpp"

namespace statewall::sim {
namespace {

TEST(FlowText, Decimal) {
  uint64_t v = 0;
  EXPECT_TRUE(parseDecimal("0", 10, &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parseDecimal("65535", 65535, &v));
  EXPECT_EQ(v, 65535u);
  EXPECT_FALSE(parseDecimal("65536", 65535, &v));
  EXPECT_FALSE(parseDecimal("", 10, &v));
  EXPECT_FALSE(parseDecimal("-1", 10, &v));
  EXPECT_FALSE(parseDecimal("+1", 10, &v));
  EXPECT_FALSE(parseDecimal(" 1", 10, &v));
  EXPECT_FALSE(parseDecimal("1x", 10, &v));
  EXPECT_FALSE(parseDecimal("99999999999999999999", UINT64_MAX, &v));  // would overflow
  EXPECT_TRUE(parseDecimal("1000000000000000000", UINT64_MAX, &v));
  EXPECT_EQ(v, 1000000000000000000u);
}

TEST(FlowText, PortRange) {
  uint16_t lo = 1, hi = 1;
  EXPECT_TRUE(parsePortRange("*", &lo, &hi));
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 65535);
  EXPECT_TRUE(parsePortRange("443", &lo, &hi));
  EXPECT_EQ(lo, 443);
  EXPECT_EQ(hi, 443);
  EXPECT_TRUE(parsePortRange("1024-65535", &lo, &hi));
  EXPECT_EQ(lo, 1024);
  EXPECT_EQ(hi, 65535);
  EXPECT_FALSE(parsePortRange("2-1", &lo, &hi));
  EXPECT_FALSE(parsePortRange("1-", &lo, &hi));
  EXPECT_FALSE(parsePortRange("-1", &lo, &hi));
  EXPECT_FALSE(parsePortRange("70000", &lo, &hi));
}

// Expectation patterns and query flows read the protocol through the shared vocabulary: the same
// spellings as every other command (tests/common/protocol_spellings.hpp).
TEST(FlowText, ProtocolSpellingTable) {
  for (const auto& sp : statewall::testing::kProtocolSpellings) {
    EXPECT_EQ(parseProtocol(sp.text), sp.proto) << "'" << sp.text << "'";
    if (sp.text.empty() || sp.text.find(' ') != std::string_view::npos) continue;  // word syntax
    auto pat = parseFlowPattern(std::string(sp.text) + " 10.0.0.1 -> 10.0.0.2");
    if (sp.proto) {
      ASSERT_TRUE(pat) << sp.text << ": " << pat.message();
      EXPECT_EQ(pat->proto, *sp.proto) << sp.text;
    } else {
      EXPECT_FALSE(pat) << sp.text;
    }
  }
  for (const char* any : {"*", "any", "all", "ALL", "-1"}) {
    auto pat = parseFlowPattern(std::string(any) + " 10.0.0.1 -> 10.0.0.2");
    ASSERT_TRUE(pat) << any << ": " << pat.message();
    EXPECT_EQ(pat->proto, -1) << any;
  }
}

TEST(FlowText, Endpoint) {
  auto e = splitEndpoint("10.0.1.10:443");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "10.0.1.10");
  EXPECT_EQ(e->port, "443");
  EXPECT_TRUE(e->has_port);
  EXPECT_FALSE(e->bracketed);

  e = splitEndpoint("10.0.0.0/8");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "10.0.0.0/8");
  EXPECT_FALSE(e->has_port);

  e = splitEndpoint("2001:db8::1");  // bare IPv6: all host
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "2001:db8::1");
  EXPECT_FALSE(e->has_port);

  e = splitEndpoint("[2001:db8::/32]:1024-65535");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "2001:db8::/32");
  EXPECT_EQ(e->port, "1024-65535");
  EXPECT_TRUE(e->bracketed);

  e = splitEndpoint("[::1]");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_FALSE(e->has_port);

  EXPECT_EQ(splitEndpoint("[::1").message(), "'[::1': missing ']' after an IPv6 address");
  EXPECT_EQ(splitEndpoint("[::1]443").message(), "'[::1]443': expected ':PORT' after ']'");
}

TEST(FlowText, Words) {
  auto w = splitFlow("tcp 10.0.0.5:51514 -> 10.0.1.10:443");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->proto, "tcp");
  EXPECT_EQ(w->src, "10.0.0.5:51514");
  EXPECT_EQ(w->dst, "10.0.1.10:443");
  EXPECT_TRUE(w->rest.empty());

  // No spaces around the arrow; commas separate like spaces; port ranges keep their dash.
  w = splitFlow("icmp 10.0.0.5->10.0.1.10 type=3,code=4");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->src, "10.0.0.5");
  EXPECT_EQ(w->dst, "10.0.1.10");
  ASSERT_EQ(w->rest.size(), 2u);
  EXPECT_EQ(w->rest[0], "type=3");
  EXPECT_EQ(w->rest[1], "code=4");
  w = splitFlow("tcp *:1024-65535 -> [2001:db8::1]:443");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->src, "*:1024-65535");
  EXPECT_EQ(w->dst, "[2001:db8::1]:443");

  EXPECT_NE(splitFlow("tcp 10.0.0.5 10.0.1.10")
                .message()
                .find("expected 'PROTO SRC[:PORT] -> DST[:PORT]'"),
            std::string::npos);
  EXPECT_FALSE(splitFlow("tcp -> 10.0.1.10:443"));
}

// The readers agree on the shared syntax: the same flow text means the same addresses and ports.
TEST(FlowText, ReadersAgree) {
  auto pat = parseFlowPattern("tcp 198.51.100.7:50000->10.0.1.10:443");
  ASSERT_TRUE(pat) << pat.message();
  auto plan = parseFlowSpec("tcp 198.51.100.7:50000->10.0.1.10:443");
  ASSERT_TRUE(plan) << plan.message();
  EXPECT_TRUE(pat->matches(6, plan->src, plan->dst, plan->sport, plan->dport, 0, 0));
  EXPECT_FALSE(pat->matches(6, plan->dst, plan->src, plan->dport, plan->sport, 0, 0));

  auto v6 = parseFlowPattern("udp [2001:db8::/32]:* -> [2001:db8:1::53]:53");
  ASSERT_TRUE(v6) << v6.message();
  auto v6plan = parseFlowSpec("udp [2001:db8::7]:40000 -> [2001:db8:1::53]:53");
  ASSERT_TRUE(v6plan) << v6plan.message();
  EXPECT_TRUE(v6->matches(17, v6plan->src, v6plan->dst, v6plan->sport, v6plan->dport, 0, 0));

  EXPECT_FALSE(parseFlowPattern("tcp [::1 -> 10.0.0.1:1"));
  EXPECT_FALSE(parseFlowSpec("tcp [::1 -> 10.0.0.1:1"));
  EXPECT_FALSE(parseFlowSpec("tcp 10.0.0.1:70000 -> 10.0.0.2:1"));
  EXPECT_FALSE(parseFlowPattern("tcp 10.0.0.1:70000 -> 10.0.0.2:1"));
}

}  // namespace
}  // namespace statewall::sim
