// The fixture table on two workers and two threads: each packet goes to the thread of its
// direction (the lower endpoint's packets to one thread, the higher endpoint's to the other), so
// the two directions of every connection are tracked by different threads sharing one table. A
// per-packet handoff (an atomic turn counter, no sleeps, no timing) keeps the fixture's order, so
// the verdicts must be exactly the expected ones. Runs under ThreadSanitizer (label concurrency).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/fixtures.hpp"

namespace statewall::fixtures {
namespace {

using dataplane::Engine;
using dataplane::PacketRef;
using dataplane::ParsedPacket;
using dataplane::Verdict;

// 0 or 1: the thread that handles the packet. Packets from the lower (address, port) endpoint
// to the higher one go to thread 0, the others to thread 1; what does not parse goes to 0.
int threadOf(const Fixture& f, const FixturePacket& p) {
  ParsedPacket pp;
  if (!dataplane::parsePacket(p.frame.data(), static_cast<uint32_t>(p.frame.size()), f.link, &pp)) {
    return 0;
  }
  if (pp.l3 != dataplane::L3::kIpv4 && pp.l3 != dataplane::L3::kIpv6) return 0;
  if (pp.src != pp.dst) return pp.src < pp.dst ? 0 : 1;
  return pp.sport <= pp.dport ? 0 : 1;
}

std::vector<Verdict> runTwoThreads(const Fixture& f, size_t* per_thread) {
  rules::CompiledPolicyPtr first = compileFixturePolicy(f.policy_yaml);
  std::vector<rules::CompiledPolicyPtr> changes;
  for (const PolicyChange& c : f.changes)
    changes.push_back(compileFixturePolicy(c.policy_yaml));
  Engine engine(fixtureEngineConfig(f), first);

  const size_t n = f.packets.size();
  std::vector<int> owner(n);
  for (size_t i = 0; i < n; ++i)
    owner[i] = threadOf(f, f.packets[i]);
  std::vector<Verdict> out(n);
  std::atomic<size_t> turn{0};

  auto body = [&](int me) {
    std::unique_ptr<Engine::Worker> w = engine.makeWorker();
    for (size_t i = 0; i < n; ++i) {
      if (owner[i] != me) continue;
      for (size_t t = turn.load(std::memory_order_acquire); t != i;
           t = turn.load(std::memory_order_acquire)) {
        turn.wait(t, std::memory_order_acquire);
      }
      // The thread whose turn it is publishes the changes due before this packet.
      for (size_t c = 0; c < changes.size(); ++c) {
        if (f.changes[c].before_packet == i) engine.publish(changes[c]);
      }
      const PacketRef ref{f.packets[i].frame.data(),
                          static_cast<uint32_t>(f.packets[i].frame.size()), f.link};
      engine.process(*w, &ref, 1, f.packets[i].at_ns, &out[i]);
      // Waiting for the other thread: do not hold up reclamation meanwhile.
      engine.offline(*w);
      per_thread[me]++;
      turn.store(i + 1, std::memory_order_release);
      turn.notify_all();
    }
  };
  std::thread t0(body, 0);
  std::thread t1(body, 1);
  t0.join();
  t1.join();
  return out;
}

class MultiWorker : public ::testing::TestWithParam<size_t> {};

TEST_P(MultiWorker, DirectionsOnTwoThreads) {
  const Fixture& f = allFixtures()[GetParam()];
  SCOPED_TRACE(f.name + ": " + f.description);
  size_t per_thread[2] = {0, 0};
  const std::vector<Verdict> v = runTwoThreads(f, per_thread);
  ASSERT_EQ(per_thread[0] + per_thread[1], f.packets.size());
  // The policy in force for each packet, for rule names.
  rules::CompiledPolicyPtr cur = compileFixturePolicy(f.policy_yaml);
  size_t c = 0;
  for (size_t i = 0; i < f.packets.size(); ++i) {
    while (c < f.changes.size() && f.changes[c].before_packet <= i) {
      cur = compileFixturePolicy(f.changes[c].policy_yaml);
      ++c;
    }
    const std::string err = checkPacket(f.packets[i], v[i], *cur);
    if (!err.empty()) {
      ADD_FAILURE() << "packet " << i << " (" << f.packets[i].note << ", thread "
                    << threadOf(f, f.packets[i]) << "):\n"
                    << err << "got: " << describeVerdict(*cur, v[i]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, MultiWorker, ::testing::Range<size_t>(0, allFixtures().size()),
                         [](const ::testing::TestParamInfo<size_t>& param_info) {
                           return allFixtures()[param_info.param].name;
                         });

}  // namespace
}  // namespace statewall::fixtures
