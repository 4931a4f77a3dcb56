#include "flowlog_output.hpp"

namespace statewall::sim::detail {

bool FlowLogOutput::open(const std::string& path, bool jsonl, uint32_t interval_s,
                         std::string* err) {
  writer_ = FlowLogWriter::open(
      path, jsonl ? FlowLogWriter::Format::kJsonl : FlowLogWriter::Format::kText, err);
  interval_s_ = interval_s;
  if (writer_ == nullptr) {
    *err = "--flow-log " + *err;
    return false;
  }
  return true;
}

void FlowLogOutput::packetsJudged(const JudgedBurst& b) {
  if (ctx_.policy != policy_) {
    if (agg_) agg_->finish();
    policy_ = ctx_.policy;
    agg_ = std::make_unique<FlowLogAggregator>(*policy_, writer_.get(), interval_s_);
  }
  for (unsigned i = 0; i < b.n; ++i)
    agg_->add(b.meta[i].ts, b.verdicts[i], b.parsed[i]);
}

bool FlowLogOutput::finish(std::string* err) {
  if (!writer_) return true;
  if (agg_) agg_->finish();
  ctx_.summary->flow_log_records = writer_->records();
  return writer_->close(err);
}

}  // namespace statewall::sim::detail
