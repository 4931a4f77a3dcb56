// sim::parseQueryFlow() and sim::analyseQuery() called directly (the library behind
// `statewall query`), on the example policy.
#include <gtest/gtest.h>

#include <string>

#include "policy_util.hpp"
#include "statewall/sim/query_analysis.hpp"

namespace statewall::sim {
namespace {

rules::Flow5 flow(const std::string& text) {
  auto f = parseQueryFlow(text);
  EXPECT_TRUE(f) << text << ": " << f.message();
  return f.value_or(rules::Flow5{});
}

TEST(QueryFlow, DefaultsAndErrors) {
  rules::Flow5 f = flow("tcp 198.51.100.7 -> 10.0.1.10:443");
  EXPECT_EQ(f.proto, rules::kProtoTcp);
  EXPECT_EQ(f.sport, kQueryDefaultSourcePort);
  EXPECT_EQ(f.dport, 443);
  rules::Flow5 e = flow("icmp 198.51.100.7 -> 10.0.1.10");
  EXPECT_EQ(e.icmp_type, 8);  // echo request unless told
  rules::Flow5 t = flow("icmp 1.2.3.4 -> 10.0.1.10 type=3,code=4");
  EXPECT_EQ(t.icmp_type, 3);
  EXPECT_EQ(t.icmp_code, 4);
  EXPECT_EQ(parseQueryFlow("tcp 1.2.3.4 -> 10.0.1.10").message(),
            "tcp needs a destination port: DST:PORT");
  EXPECT_FALSE(parseQueryFlow("tcp 1.2.3.4:1 -> 2001:db8::1:443"));
  EXPECT_EQ(parseQueryFlow("udp 1.2.3.4 -> 10.0.1.10:53 type=3").message(),
            "'type=3': type and code apply to icmp and icmpv6 only");
}

TEST(QueryReply, ReplyFlows) {
  auto r = replyOf(flow("tcp 10.0.2.10:40000 -> 10.0.3.10:5432"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src.str(), "10.0.3.10");
  EXPECT_EQ(r->sport, 5432);
  EXPECT_EQ(r->dport, 40000);
  auto echo = replyOf(flow("icmp 1.2.3.4 -> 10.0.1.10"));
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->icmp_type, 0);
  EXPECT_FALSE(replyOf(flow("icmp 1.2.3.4 -> 10.0.1.10 type=3,code=4")));
}

TEST(QueryAnalysis, TrackedConnectionRepliesPass) {
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  QueryAnalysis q = analyseQuery(*p, flow("tcp 10.0.2.10:40000 -> 10.0.3.10:5432"));
  EXPECT_TRUE(q.allowed());
  EXPECT_EQ(q.reason, "allow-rule");
  EXPECT_EQ(q.replies, Replies::kPass);
  EXPECT_EQ(repliesName(q.replies), "pass");
  ASSERT_TRUE(q.reply_analysis);
  ASSERT_EQ(q.reply_analysis->sides.size(), 2u);
  EXPECT_FALSE(q.reply_analysis->sides[0].untracked);
  EXPECT_EQ(q.checksOfSide(true).size(), 2u);   // source: groups and ACL outbound
  EXPECT_EQ(q.checksOfSide(false).size(), 2u);  // destination: ACL and groups inbound
  EXPECT_FALSE(q.icmp_error);
}

TEST(QueryAnalysis, StatelessAclDropsTheReplies) {
  // The web servers may send UDP anywhere, but public-acl has no inbound entry for the replies
  // (docs/lint-and-diff.md, SW030).
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  QueryAnalysis q = analyseQuery(*p, flow("udp 10.0.1.10:49152 -> 198.51.100.7:53"));
  EXPECT_TRUE(q.allowed());
  EXPECT_EQ(q.replies, Replies::kDropped);
  ASSERT_TRUE(q.reply_analysis);
  EXPECT_FALSE(q.reply_analysis->acl.allowed);
  EXPECT_EQ(q.reply_dropper, "network ACL public-acl (inbound)");
}

TEST(QueryAnalysis, DeniedFirstPacketHasNoConnection) {
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  QueryAnalysis q = analyseQuery(*p, flow("tcp 198.51.100.66:44435 -> 10.0.1.11:8000"));
  EXPECT_FALSE(q.allowed());
  EXPECT_EQ(q.reason, "deny-sg");
  EXPECT_EQ(q.replies, Replies::kNoConnection);
  EXPECT_FALSE(q.reply_analysis);
}

TEST(QueryAnalysis, IcmpErrorNote) {
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  QueryAnalysis q = analyseQuery(*p, flow("icmp 198.51.100.7 -> 10.0.1.10 type=3,code=4"));
  ASSERT_TRUE(q.icmp_error);
  EXPECT_TRUE(q.icmp_error->may_be_related);
  EXPECT_TRUE(q.icmp_error->path_mtu);
  EXPECT_FALSE(q.reply);
  EXPECT_EQ(q.replies, q.allowed() ? Replies::kNoneExpected : Replies::kNoConnection);
}

TEST(QueryAnalysis, ServiceExemptionDecidesBeforeTheRules) {
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  QueryAnalysis q = analyseQuery(*p, flow("udp 10.0.1.10:5 -> 169.254.169.253:53"));
  EXPECT_NE(q.exemption, rules::Exemption::kNone);
  EXPECT_TRUE(q.allowed());
  EXPECT_EQ(q.reason, "allow-exempt");
  EXPECT_EQ(q.first.n_checks, 0);
}

}  // namespace
}  // namespace statewall::sim
