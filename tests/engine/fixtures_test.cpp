// Every fixture of the table through a fresh Engine with one worker, in bursts of 1 and of up to
// 32: each packet's verdict must match its expectation, both runs must agree packet by packet, and
// the counters by reason must add up to the packets (and bytes) that went in.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "engine/fixtures.hpp"

namespace statewall::fixtures {
namespace {

using dataplane::Counters;
using dataplane::Engine;
using dataplane::Verdict;

void expectCountersMatch(const Fixture& f, const std::vector<Verdict>& verdicts,
                         const Engine& engine, unsigned burst) {
  std::array<uint64_t, dataplane::kReasonCount> packets{};
  std::array<uint64_t, dataplane::kReasonCount> bytes{};
  for (size_t i = 0; i < verdicts.size(); ++i) {
    const auto r = static_cast<size_t>(verdicts[i].reason);
    ++packets[r];
    bytes[r] += f.packets[i].frame.size();
  }
  const Counters c = engine.counters();
  EXPECT_EQ(c.totalPackets(), f.packets.size()) << "burst " << burst;
  for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
    EXPECT_EQ(c.packets[r], packets[r]) << "burst " << burst << ": packets counted as "
                                        << dataplane::reasonCode(static_cast<Reason>(r));
    EXPECT_EQ(c.bytes[r], bytes[r]) << "burst " << burst << ": bytes counted as "
                                    << dataplane::reasonCode(static_cast<Reason>(r));
  }
}

class EngineFixture : public ::testing::TestWithParam<size_t> {};

TEST_P(EngineFixture, VerdictsMatchExpectations) {
  const Fixture& f = allFixtures()[GetParam()];
  SCOPED_TRACE(f.name + ": " + f.description);
  std::vector<Verdict> runs[2];
  const unsigned bursts[2] = {1, 32};
  for (int run = 0; run < 2; ++run) {
    std::unique_ptr<Engine> engine;
    std::vector<rules::CompiledPolicyPtr> policies;
    runs[run] = runFixture(f, bursts[run], &engine, &policies);
    ASSERT_EQ(runs[run].size(), f.packets.size());
    for (size_t i = 0; i < f.packets.size(); ++i) {
      const std::string err = checkPacket(f.packets[i], runs[run][i], *policies[i]);
      if (!err.empty()) {
        ADD_FAILURE() << "burst " << bursts[run] << ", packet " << i << " (" << f.packets[i].note
                      << "):\n"
                      << err << "got: " << describeVerdict(*policies[i], runs[run][i]);
      }
    }
    expectCountersMatch(f, runs[run], *engine, bursts[run]);
  }
  // Bursts must not change any verdict.
  for (size_t i = 0; i < f.packets.size(); ++i) {
    const Verdict& a = runs[0][i];
    const Verdict& b = runs[1][i];
    const bool same = a.reason == b.reason && a.flags == b.flags && a.tcp_before == b.tcp_before &&
                      a.tcp_after == b.tcp_after && a.rule == b.rule &&
                      a.deny_iface == b.deny_iface && a.deny_dir == b.deny_dir &&
                      a.acl_entry == b.acl_entry && a.malformed_layer == b.malformed_layer;
    if (!same) {
      const auto policy = compileFixturePolicy(f.policy_yaml);
      ADD_FAILURE() << "packet " << i << " (" << f.packets[i].note
                    << ") differs between bursts of 1 and 32:\n  1: " << describeVerdict(*policy, a)
                    << "\n 32: " << describeVerdict(*policy, b);
    }
  }
}

bool sameText(const char* a, const char* b) {
  return (a == nullptr || b == nullptr) ? a == b : std::string_view(a) == b;
}

// The fast path of established TCP must decide exactly as the general algorithm: the fixture
// run again with EngineConfig::fast_paths off gives the same verdicts, field by field (the
// connection ids too: both engines allocate entries in the same order), and the same counters.
TEST_P(EngineFixture, FastPathsChangeNothing) {
  const Fixture& f = allFixtures()[GetParam()];
  SCOPED_TRACE(f.name + ": " + f.description);
  for (const unsigned burst : {1u, 32u}) {
    std::unique_ptr<Engine> fast_engine;
    std::unique_ptr<Engine> general_engine;
    const std::vector<Verdict> fast = runFixture(f, burst, &fast_engine, nullptr, true);
    const std::vector<Verdict> general = runFixture(f, burst, &general_engine, nullptr, false);
    ASSERT_EQ(fast.size(), general.size());
    for (size_t i = 0; i < fast.size(); ++i) {
      const Verdict& a = fast[i];
      const Verdict& b = general[i];
      const bool same =
          a.reason == b.reason && a.malformed_layer == b.malformed_layer && a.flags == b.flags &&
          a.tcp_before == b.tcp_before && a.tcp_after == b.tcp_after && a.rule == b.rule &&
          a.deny_iface == b.deny_iface && a.deny_dir == b.deny_dir && a.acl_entry == b.acl_entry &&
          a.conn_id == b.conn_id && sameText(a.why, b.why);
      if (!same) {
        const auto policy = compileFixturePolicy(f.policy_yaml);
        ADD_FAILURE() << "burst " << burst << ", packet " << i << " (" << f.packets[i].note
                      << ") differs with the fast paths off:\n fast: "
                      << describeVerdict(*policy, a)
                      << "\n general: " << describeVerdict(*policy, b);
      }
    }
    const Counters x = fast_engine->counters();
    const Counters y = general_engine->counters();
    for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
      EXPECT_EQ(x.packets[r], y.packets[r]);
      EXPECT_EQ(x.bytes[r], y.bytes[r]);
    }
    EXPECT_EQ(x.connections_created, y.connections_created);
    EXPECT_EQ(x.tcp_invalid, y.tcp_invalid);
    EXPECT_EQ(fast_engine->ruleHits(), general_engine->ruleHits());
    EXPECT_EQ(fast_engine->aclHits(), general_engine->aclHits());
    EXPECT_EQ(fast_engine->connectionCount(), general_engine->connectionCount());
  }
}

INSTANTIATE_TEST_SUITE_P(Table, EngineFixture, ::testing::Range<size_t>(0, allFixtures().size()),
                         [](const ::testing::TestParamInfo<size_t>& param_info) {
                           return allFixtures()[param_info.param].name;
                         });

}  // namespace
}  // namespace statewall::fixtures
