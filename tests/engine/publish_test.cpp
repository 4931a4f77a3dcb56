// Policy publication racing with its readers: a control thread publishes a run of policies while
// other threads read the version lock-free (as a forwarding lcore does for its drop log) and the
// policy with its version (as the flow log's collector and the control API do), and a worker
// judges packets (so replaced policies are reclaimed meanwhile). Runs under ThreadSanitizer (label
// concurrency).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/fixtures.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::fixtures {
namespace {

using dataplane::Engine;

const char* const kPolicy = R"(version: 1
groups:
  srv:
    inbound: [{proto: tcp, ports: 80, from: 0.0.0.0/0}]
    outbound: []
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)";

TEST(EnginePublish, VersionAlwaysPairsWithItsOwnPolicy) {
  constexpr size_t kPolicies = 100;
  // policies[i] is published as version i + 1 (the constructor's is version 1).
  std::vector<rules::CompiledPolicyPtr> policies;
  std::unordered_map<const rules::CompiledPolicy*, uint64_t> version_of;
  for (size_t i = 0; i < kPolicies; ++i) {
    policies.push_back(compileFixturePolicy(kPolicy));
    version_of[policies.back().get()] = i + 1;
  }
  dataplane::EngineConfig config;
  config.table_capacity = 1024;
  Engine engine(config, policies[0]);
  ASSERT_EQ(engine.policyVersion(), 1u);

  std::atomic<bool> done{false};
  std::atomic<uint64_t> pairs_seen{0};
  auto reader = [&] {
    uint64_t last = 0;
    while (!done.load(std::memory_order_acquire)) {
      const uint64_t lock_free = engine.policyVersion();
      EXPECT_GE(lock_free, last) << "versions only grow";
      const Engine::Published pub = engine.publishedPolicy();
      ASSERT_NE(pub.policy, nullptr);
      EXPECT_EQ(version_of.at(pub.policy.get()), pub.version)
          << "a version shown with another version's policy";
      EXPECT_GE(pub.version, lock_free) << "the pair is at least as new as the version read first";
      last = pub.version;
      pairs_seen.fetch_add(1, std::memory_order_relaxed);
    }
  };
  auto worker = [&] {
    std::unique_ptr<Engine::Worker> w = engine.makeWorker();
    const dataplane::Bytes syn = dataplane::buildTcp({.src = dataplane::ipAddr("198.51.100.7"),
                                                      .dst = dataplane::ipAddr("10.0.1.10"),
                                                      .dport = 80,
                                                      .flags = dataplane::kSyn});
    const dataplane::PacketRef ref{syn.data(), static_cast<uint32_t>(syn.size())};
    uint64_t now = 1;
    while (!done.load(std::memory_order_acquire)) {
      dataplane::Verdict v;
      engine.process(*w, &ref, 1, now++, &v);
      EXPECT_TRUE(v.allowed());
    }
    engine.offline(*w);
  };
  std::thread r1(reader), r2(reader), wk(worker);
  for (size_t i = 1; i < kPolicies; ++i) {
    EXPECT_EQ(engine.publish(policies[i]), i + 1);
    // Let the readers see some of the versions in between (bounded: a reader may be slow).
    const uint64_t target = pairs_seen.load(std::memory_order_relaxed) + 2;
    for (int spin = 0; spin < 1000 && pairs_seen.load(std::memory_order_relaxed) < target; ++spin)
      std::this_thread::yield();
    engine.reclaimRetiredPolicies();
  }
  done.store(true, std::memory_order_release);
  r1.join();
  r2.join();
  wk.join();
  EXPECT_EQ(engine.policyVersion(), kPolicies);
  const Engine::Published last = engine.publishedPolicy();
  EXPECT_EQ(last.policy, policies.back());
  EXPECT_EQ(last.version, kPolicies);
}

}  // namespace
}  // namespace statewall::fixtures
