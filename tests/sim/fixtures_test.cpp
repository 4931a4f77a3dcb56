// The engine's packet fixture table (tests/engine/fixtures.hpp) run through the replay driver:
// `statewall replay` must give every packet the verdict the table expects, exactly as the engine
// does when driven directly. Frames go in through Replay::runFrames (bursts grouped by the
// replay's own rule: up to 32 packets within 1 ms of trace time) and policy changes through
// Replay::publish.
#include <gtest/gtest.h>

#include "engine/fixtures.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {
namespace {

using fixtures::Fixture;

TEST(FixturesThroughReplay, EveryPacketGetsTheExpectedVerdict) {
  const auto& all = fixtures::allFixtures();
  ASSERT_GT(all.size(), 80u);
  size_t packets = 0;
  for (const Fixture& f : all) {
    SCOPED_TRACE(f.name + ": " + f.description);
    ReplayOptions o;
    o.table_capacity = f.table_capacity != 0 ? f.table_capacity : fixtures::kFixtureTableCapacity;
    rules::CompiledPolicyPtr current = fixtures::compileFixturePolicy(f.policy_yaml);
    Replay r(current, o);
    std::vector<dataplane::Verdict> got;
    std::vector<rules::CompiledPolicyPtr> in_force;
    r.setObserver([&](uint64_t, uint64_t, const dataplane::Verdict& v,
                      const dataplane::ParsedPacket&) { got.push_back(v); });
    size_t next_change = 0;
    std::vector<Frame> pending;
    for (size_t i = 0; i < f.packets.size(); ++i) {
      while (next_change < f.changes.size() && f.changes[next_change].before_packet <= i) {
        r.runFrames(pending);
        pending.clear();
        current = fixtures::compileFixturePolicy(f.changes[next_change].policy_yaml);
        r.publish(current);
        ++next_change;
      }
      pending.push_back(Frame{f.packets[i].at_ns, f.packets[i].frame, f.link});
      in_force.push_back(current);
    }
    r.runFrames(pending);
    std::string err;
    ASSERT_TRUE(r.finish(&err)) << err;
    ASSERT_EQ(got.size(), f.packets.size());
    for (size_t i = 0; i < got.size(); ++i) {
      std::string diff = fixtures::checkPacket(f.packets[i], got[i], *in_force[i]);
      EXPECT_EQ(diff, "") << "packet " << i + 1 << " (" << f.packets[i].note << ")";
    }
    // The replay's counters agree with the engine's.
    EXPECT_EQ(r.summary().engine.totalPackets(), f.packets.size());
    packets += got.size();
  }
  EXPECT_GT(packets, 300u);
}

}  // namespace
}  // namespace statewall::sim
