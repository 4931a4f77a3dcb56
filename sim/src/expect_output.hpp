// --expect: every judged packet checked against the user's expectations
// (sim/include/statewall/sim/expect.hpp); the results are read from the Expectations afterwards.
#pragma once

#include "conn_tracker.hpp"
#include "replay_observer.hpp"
#include "statewall/sim/expect.hpp"

namespace statewall::sim::detail {

class ExpectOutput final : public ReplayObserver {
 public:
  ExpectOutput(const ReplayContext& ctx, Expectations* expectations)
      : ctx_(ctx), expectations_(expectations) {}

  void packetsJudged(const JudgedBurst& b) override {
    const auto describe = [this](const dataplane::Verdict& x) {
      return ctx_.texts->describe(x, ctx_.numbers->find(x.conn_id));
    };
    for (unsigned i = 0; i < b.n; ++i)
      expectations_->observe(b.meta[i].index, b.parsed[i], b.verdicts[i], describe);
  }

 private:
  const ReplayContext& ctx_;
  Expectations* expectations_;  // not owned
};

}  // namespace statewall::sim::detail
