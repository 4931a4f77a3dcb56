// sim::diffTraces() / diffFrames() called directly (the library behind `statewall diff ...
// TRACE`): the example trace under the example policy and under a copy whose database rule moved
// to port 5433.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy_util.hpp"
#include "sim_test_util.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/trace_diff.hpp"

namespace statewall::sim {
namespace {

const std::string kTrace = std::string(STATEWALL_EXAMPLES_DIR) + "/three-tier.pcap";

// The example policy with its database rule on port 5433 (locations name test.yaml).
rules::CompiledPolicyPtr dbPortMoved() {
  std::string y = testing::readText(std::string(STATEWALL_EXAMPLES_DIR) + "/three-tier.yaml");
  const size_t at = y.find("ports: 5432");
  if (at == std::string::npos) return nullptr;
  y.replace(at, 11, "ports: 5433");
  return testing::compilePolicy(y);
}

std::vector<Frame> exampleFrames() {
  TraceError err;
  auto reader = TraceReader::open(kTrace, &err);
  EXPECT_TRUE(reader) << err.str();
  std::vector<Frame> frames;
  TracePacket p;
  while (reader && reader->next(&p) == TraceReader::Status::kPacket)
    frames.push_back(Frame{p.ts_ns, std::vector<uint8_t>(p.data, p.data + p.caplen), p.link});
  return frames;
}

TEST(TraceDiff, SamePolicyChangesNothing) {
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  TraceDiffResult r = diffTraces(p, p, {kTrace});
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.packets, 124u);
  EXPECT_EQ(r.changed_packets, 0u);
  EXPECT_TRUE(r.flows.empty());
  EXPECT_TRUE(r.groups.empty());
  EXPECT_FALSE(r.breaks());
  EXPECT_TRUE(r.diff.empty());
}

TEST(TraceDiff, MovedDatabasePortBreaksTheAppConnection) {
  auto old_p = testing::examplePolicy();
  auto new_p = dbPortMoved();
  ASSERT_TRUE(old_p && new_p);
  std::vector<ChangedPacket> seen;
  TraceDiffOptions opt;
  opt.on_packet = [&](const ChangedPacket& c) { seen.push_back(c); };
  TraceDiffResult r = diffTraces(old_p, new_p, {kTrace}, opt);
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_TRUE(r.breaks());
  EXPECT_EQ(r.changed_packets, 15u);
  EXPECT_EQ(r.allowed_to_denied, 15u);
  EXPECT_EQ(r.denied_to_allowed, 0u);
  EXPECT_EQ(r.connections_that_break, 1u);
  EXPECT_EQ(r.connections_that_open, 0u);
  ASSERT_EQ(r.flows.size(), 1u);
  const ChangedFlow& f = r.flows[0];
  EXPECT_EQ(f.first.str(), "tcp 10.0.2.10:42000 -> 10.0.3.10:5432");
  EXPECT_EQ(f.first_index, 95u);
  EXPECT_EQ(f.packets, 15u);
  EXPECT_EQ(f.old_reason, "allow-rule");
  EXPECT_EQ(f.new_reason, "deny-sg");
  // Attributed to the one rule change, the db group's inbound rule.
  ASSERT_EQ(r.groups.size(), 1u);
  ASSERT_GE(r.groups[0].change, 0);
  const rules::PolicyChange& c = r.diff.changes[static_cast<size_t>(r.groups[0].change)];
  EXPECT_EQ(c.kind, rules::ChangeKind::kChanged);
  EXPECT_EQ(c.scope, "group db inbound");
  EXPECT_EQ(r.groups[0].flows, std::vector<size_t>{0});
  // Every changed packet went to the callback, in order.
  ASSERT_EQ(seen.size(), 15u);
  EXPECT_EQ(seen[0].index, 95u);
  EXPECT_EQ(seen[0].old_reason, "allow-rule");
  for (size_t i = 1; i < seen.size(); ++i)
    EXPECT_LT(seen[i - 1].index, seen[i].index);
}

TEST(TraceDiff, FramesJudgeAsTheTraceDoes) {
  auto old_p = testing::examplePolicy();
  auto new_p = dbPortMoved();
  ASSERT_TRUE(old_p && new_p);
  TraceDiffResult t = diffTraces(old_p, new_p, {kTrace});
  TraceDiffResult f = diffFrames(old_p, new_p, exampleFrames());
  ASSERT_FALSE(f.error);
  EXPECT_EQ(f.packets, t.packets);
  EXPECT_EQ(f.changed_packets, t.changed_packets);
  ASSERT_EQ(f.flows.size(), t.flows.size());
  EXPECT_EQ(f.flows[0].first, t.flows[0].first);
  EXPECT_EQ(f.flows[0].new_text, t.flows[0].new_text);
}

TEST(TraceDiff, MaxFlowsCountsTheRest) {
  auto old_p = testing::examplePolicy();
  auto new_p = dbPortMoved();
  ASSERT_TRUE(old_p && new_p);
  TraceDiffOptions opt;
  opt.max_flows = 0;
  TraceDiffResult r = diffTraces(old_p, new_p, {kTrace}, opt);
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.flows.empty());
  EXPECT_EQ(r.unlisted_packets, 15u);
  EXPECT_TRUE(r.breaks());
}

TEST(TraceDiff, MissingTraceIsAnError) {
  auto p = testing::examplePolicy();
  ASSERT_TRUE(p);
  TraceDiffResult r = diffTraces(p, p, {"/nonexistent/trace.pcap"});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("/nonexistent/trace.pcap"), std::string::npos);
}

}  // namespace
}  // namespace statewall::sim
