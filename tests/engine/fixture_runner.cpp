// Runs fixtures through the Engine (kept apart from fixtures.cpp so that the table alone links
// without the engine).
#include <algorithm>

#include "fixtures.hpp"

namespace statewall::fixtures {

using dataplane::Engine;
using dataplane::PacketRef;
using dataplane::Verdict;

dataplane::EngineConfig fixtureEngineConfig(const Fixture& f) {
  dataplane::EngineConfig c;
  c.table_capacity = f.table_capacity != 0 ? f.table_capacity : kFixtureTableCapacity;
  return c;
}

std::vector<Verdict> runFixture(const Fixture& f, unsigned burst,
                                std::unique_ptr<Engine>* engine_out,
                                std::vector<rules::CompiledPolicyPtr>* policies_out,
                                bool fast_paths) {
  burst = std::clamp(burst, 1u, dataplane::kMaxBurst);
  rules::CompiledPolicyPtr current = compileFixturePolicy(f.policy_yaml);
  std::vector<rules::CompiledPolicyPtr> changes;
  for (const PolicyChange& c : f.changes)
    changes.push_back(compileFixturePolicy(c.policy_yaml));

  dataplane::EngineConfig config = fixtureEngineConfig(f);
  config.fast_paths = fast_paths;
  auto engine = std::make_unique<Engine>(config, current);
  std::unique_ptr<Engine::Worker> worker = engine->makeWorker();
  const size_t n = f.packets.size();
  std::vector<Verdict> out(n);
  if (policies_out != nullptr) policies_out->assign(n, nullptr);

  size_t next_change = 0;
  size_t i = 0;
  while (i < n) {
    while (next_change < changes.size() && f.changes[next_change].before_packet <= i) {
      engine->publish(changes[next_change]);
      current = changes[next_change];
      ++next_change;
    }
    const size_t stop =
        next_change < changes.size() ? std::min(f.changes[next_change].before_packet, n) : n;
    size_t end = i + 1;
    while (end < stop && end - i < burst && f.packets[end].at_ns == f.packets[i].at_ns)
      ++end;
    PacketRef refs[dataplane::kMaxBurst];
    for (size_t k = i; k < end; ++k) {
      refs[k - i] = PacketRef{f.packets[k].frame.data(),
                              static_cast<uint32_t>(f.packets[k].frame.size()), f.link};
    }
    engine->process(*worker, refs, static_cast<unsigned>(end - i), f.packets[i].at_ns, &out[i]);
    if (policies_out != nullptr) {
      for (size_t k = i; k < end; ++k)
        (*policies_out)[k] = current;
    }
    i = end;
  }
  worker.reset();
  if (engine_out != nullptr) *engine_out = std::move(engine);
  return out;
}

}  // namespace statewall::fixtures
