// VPC Flow Logs: the aggregator (sim/flowlog.hpp); the record, the writer and what a packet
// counts in are statewall/flowlog/flow_log.hpp's, shared with statewalld.
#include <unordered_map>

#include "statewall/sim/flowlog.hpp"

namespace statewall::sim {
namespace {

struct KeyHash {
  size_t operator()(const flowlog::FlowLogKey& k) const noexcept {
    rules::IpAddrHash h;
    uint64_t x = h(k.src) * 31 + h(k.dst);
    x ^= (uint64_t{k.sport} << 32 | uint64_t{k.dport} << 16 | k.proto) * 0x9E3779B97F4A7C15ull;
    x ^= (uint64_t{k.iface} << 2 | uint64_t{k.egress} << 1) +
         static_cast<uint64_t>(k.action) * 0xBF58476D1CE4E5B9ull;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

}  // namespace

struct FlowLogAggregator::Impl {
  const rules::CompiledPolicy& policy;
  FlowLogWriter* writer;
  uint64_t window_ns;
  flowlog::FlowLogNames names;
  uint64_t window = UINT64_MAX;
  std::vector<flowlog::FlowLogAgg> aggs;  // in order of first packet
  std::unordered_map<flowlog::FlowLogKey, size_t, KeyHash> index;

  Impl(const rules::CompiledPolicy& p, FlowLogWriter* w, uint32_t window_s, std::string acct)
      : policy(p),
        writer(w),
        window_ns(uint64_t{window_s == 0 ? 60u : window_s} * 1000000000ull),
        names(p, std::move(acct)) {}

  void flush() {
    for (const flowlog::FlowLogAgg& a : aggs)
      names.write(*writer, a);
    aggs.clear();
    index.clear();
  }
};

FlowLogAggregator::FlowLogAggregator(const rules::CompiledPolicy& policy, FlowLogWriter* writer,
                                     uint32_t window_s, std::string account_id)
    : impl_(std::make_unique<Impl>(policy, writer, window_s, std::move(account_id))) {}
FlowLogAggregator::~FlowLogAggregator() = default;

void FlowLogAggregator::add(uint64_t ts_ns, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p) {
  if (p.l3 != dataplane::L3::kIpv4 && p.l3 != dataplane::L3::kIpv6) return;
  if (v.reason == dataplane::Reason::kAllowExempt) return;
  Impl& m = *impl_;
  const uint64_t w = ts_ns / m.window_ns;
  if (w != m.window) {
    const uint64_t before = m.writer->records();
    m.flush();
    records_ += m.writer->records() - before;
    m.window = w;
  }
  flowlog::FlowLogKey keys[2];
  const unsigned n = flowlog::flowLogKeys(v, p, m.policy, keys);
  for (unsigned i = 0; i < n; ++i) {
    auto [it, fresh] = m.index.try_emplace(keys[i], m.aggs.size());
    if (fresh) {
      m.aggs.emplace_back();
      flowlog::flowLogBegin(&m.aggs.back(), keys[i], ts_ns, v);
    }
    flowlog::flowLogCount(&m.aggs[it->second], ts_ns, p);
  }
}

void FlowLogAggregator::finish() {
  const uint64_t before = impl_->writer->records();
  impl_->flush();
  records_ += impl_->writer->records() - before;
}

}  // namespace statewall::sim
