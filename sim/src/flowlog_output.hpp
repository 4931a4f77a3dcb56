// --flow-log: the replay's packets as AWS VPC Flow Logs record them (statewall/sim/flowlog.hpp):
// per interface, direction, flow and action over windows of --flow-log-interval seconds, in AWS's
// version 5 text or as JSON lines with the deciding rule and reason. The same aggregation as
// `statewall gen --flow-log`, fed a burst at a time; the last window is written at the end.
#pragma once

#include <memory>
#include <string>

#include "replay_observer.hpp"
#include "statewall/sim/flowlog.hpp"

namespace statewall::sim::detail {

class FlowLogOutput final : public ReplayObserver {
 public:
  explicit FlowLogOutput(const ReplayContext& ctx) : ctx_(ctx) {}

  // Creates the file ("-": standard output) and writes the text header. false with *err.
  bool open(const std::string& path, bool jsonl, uint32_t interval_s, std::string* err);

  void packetsJudged(const JudgedBurst& b) override;
  bool finish(std::string* err) override;

 private:
  const ReplayContext& ctx_;
  uint32_t interval_s_ = 60;
  std::unique_ptr<FlowLogWriter> writer_;
  // The aggregator reads the policy that judged the packets (interfaces, ACL entries, rule
  // labels): a policy change writes the records so far and starts again under the new one.
  rules::CompiledPolicyPtr policy_;
  std::unique_ptr<FlowLogAggregator> agg_;
};

}  // namespace statewall::sim::detail
