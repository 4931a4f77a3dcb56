#include "flowlog_output.hpp"

namespace statewall::sim::detail {

bool FlowLogOutput::open(const std::string& path, bool jsonl, uint32_t interval_s,
                         std::string* err) {
  auto w = FlowLogWriter::open(
      path, jsonl ? FlowLogWriter::Format::kJsonl : FlowLogWriter::Format::kText);
  interval_s_ = interval_s;
  if (!w) {
    *err = "--flow-log " + w.message();
    return false;
  }
  writer_ = std::move(*w);
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
  const base::Status s = writer_->close();
  if (!s.ok()) *err = s.message();
  return s.ok();
}

}  // namespace statewall::sim::detail
