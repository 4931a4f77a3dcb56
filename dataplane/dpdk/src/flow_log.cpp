#include "statewall/dpdk/flow_log.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

#include <unistd.h>

namespace statewall::dpdk {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000;

uint64_t clockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

// The hash of a flow's addresses, ports and protocol (equal flows compare equal in full).
uint64_t flowHash(const rules::IpAddr& src, const rules::IpAddr& dst, uint16_t sport,
                  uint16_t dport, uint8_t proto) {
  uint64_t x = (src.lo * 0x9E3779B97F4A7C15ull) ^ (dst.lo * 0xC2B2AE3D27D4EB4Full);
  x ^= (src.hi + (dst.hi << 1)) * 0x165667B19E3779F9ull;
  x ^= uint64_t{sport} << 48 | uint64_t{dport} << 32 | uint64_t{proto} << 24;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

}  // namespace

uint32_t FlowLogRing::push(const FlowLogEntry* e, uint32_t n) noexcept {
  const uint64_t h = head_.load(std::memory_order_relaxed);
  const uint64_t room = slots_.size() - (h - tail_.load(std::memory_order_acquire));
  n = static_cast<uint32_t>(std::min<uint64_t>(n, room));
  for (uint32_t i = 0; i < n; ++i)
    slots_[(h + i) % slots_.size()] = e[i];
  head_.store(h + n, std::memory_order_release);
  return n;
}

uint32_t FlowLogRing::pop(FlowLogEntry* out, uint32_t max) noexcept {
  const uint64_t t = tail_.load(std::memory_order_relaxed);
  const uint64_t n = std::min<uint64_t>(max, head_.load(std::memory_order_acquire) - t);
  for (uint64_t i = 0; i < n; ++i)
    out[i] = slots_[(t + i) % slots_.size()];
  tail_.store(t + n, std::memory_order_release);
  return static_cast<uint32_t>(n);
}

FlowLogLcore::FlowLogLcore(const FlowLogCollector& collector, uint32_t flows, uint32_t ring)
    : collector_(collector), ring_(ring), capacity_(flows) {
  uint32_t slots = 1;
  while (slots < 2 * flows)
    slots <<= 1;
  mask_ = slots - 1;
  slots_.assign(slots, 0);
  flows_.resize(flows);
  entries_.resize(flows);
  policy_ = collector.current();
  acked_.store(policy_->version, std::memory_order_release);
}

FlowLogLcore::~FlowLogLcore() = default;

void FlowLogLcore::flush() noexcept {
  if (used_ == 0) return;
  const uint32_t pushed = ring_.push(entries_.data(), used_);
  if (pushed < used_)
    dropped_.store(dropped_.load(std::memory_order_relaxed) + (used_ - pushed),
                   std::memory_order_relaxed);
  std::fill(slots_.begin(), slots_.end(), 0u);
  used_ = 0;
  flows_used_ = 0;
}

void FlowLogLcore::follow(uint64_t epoch_ns) noexcept {
  const FlowLogPolicy* p = collector_.current();
  if (p != policy_) {
    // The aggregates so far name the old policy's interfaces and rules: write them under it.
    flush();
    policy_ = p;
    acked_.store(p->version, std::memory_order_release);
  }
  if (epoch_ns >= window_end_ns_) {
    flush();
    const uint64_t w = collector_.windowNs();
    window_end_ns_ = (epoch_ns / w + 1) * w;
  }
}

FlowLogFlow* FlowLogLcore::flowOf(const dataplane::ParsedPacket& p,
                                  const rules::CompiledPolicy& policy, uint64_t h, uint16_t sport,
                                  uint16_t dport) noexcept {
  const uint64_t tag = h >> 32 << 32;
  for (uint32_t i = static_cast<uint32_t>(h) & mask_;; i = (i + 1) & mask_) {
    const uint64_t s = slots_[i];
    if (s == 0) {
      const rules::IfaceId si = policy.interfaceOf(p.src);
      const rules::IfaceId di = policy.interfaceOf(p.dst);
      // Between two addresses no interface has: never in a record, and not kept.
      if (si == rules::kNoIface && di == rules::kNoIface) return &unlogged_;
      if (flows_used_ == capacity_ || used_ == capacity_) return nullptr;
      FlowLogFlow& f = flows_[flows_used_];
      f = FlowLogFlow{};
      f.src = p.src;
      f.dst = p.dst;
      f.sport = sport;
      f.dport = dport;
      f.proto = p.proto;
      f.src_iface = si;
      f.dst_iface = di;
      slots_[i] = tag | ++flows_used_;
      return &f;
    }
    if ((s & ~uint64_t{0xFFFFFFFF}) != tag) continue;
    FlowLogFlow& f = flows_[static_cast<uint32_t>(s) - 1];
    if (f.src == p.src && f.dst == p.dst && f.sport == sport && f.dport == dport &&
        f.proto == p.proto)
      return &f;
  }
}

bool FlowLogLcore::countSide(FlowLogFlow& f, const flowlog::FlowLogSide& side, uint64_t ts_ns,
                             const dataplane::Verdict& v,
                             const dataplane::ParsedPacket& p) noexcept {
  uint32_t& a = f.agg[side.egress ? 0 : 1][side.action == flowlog::FlowAction::kReject ? 1 : 0];
  if (a == 0) {
    if (used_ == capacity_) return false;
    flowlog::FlowLogKey k;
    k.src = f.src;
    k.dst = f.dst;
    k.sport = f.sport;
    k.dport = f.dport;
    k.proto = f.proto;
    k.iface = side.iface;
    k.egress = side.egress;
    k.action = side.action;
    FlowLogEntry& e = entries_[used_];
    flowlog::flowLogBegin(&e.agg, k, ts_ns, v);
    e.version = policy_->version;
    a = ++used_;
  }
  flowlog::flowLogCount(&entries_[a - 1].agg, ts_ns, p);
  return true;
}

void FlowLogLcore::countOne(uint64_t ts, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p,
                            const rules::CompiledPolicy& policy) noexcept {
  if (!flowlog::flowLogCounted(v, p)) return;
  uint16_t sport, dport;
  flowlog::flowLogPorts(p, &sport, &dport);
  const uint64_t h = flowHash(p.src, p.dst, sport, dport, p.proto);
  FlowLogFlow* f = flowOf(p, policy, h, sport, dport);
  if (f == nullptr) {
    // Full: this window's aggregates go now, and the flows start again (several records of
    // one flow in one window, as AWS may write too).
    flush();
    f = flowOf(p, policy, h, sport, dport);
  }
  flowlog::FlowLogSide sides[2];
  const unsigned n = flowlog::flowLogSides(v, policy, f->src_iface, f->dst_iface, sides);
  for (unsigned j = 0; j < n; ++j) {
    if (!countSide(*f, sides[j], ts, v, p)) {
      flush();
      f = flowOf(p, policy, h, sport, dport);
      countSide(*f, sides[j], ts, v, p);
    }
  }
}

void FlowLogLcore::count(uint64_t now_ns, const dataplane::Verdict* v, unsigned n) noexcept {
  const uint64_t ts = collector_.epochNs(now_ns);
  follow(ts);
  const rules::CompiledPolicy& policy = *policy_->policy;
  for (unsigned i = 0; i < n; ++i)
    countOne(ts, v[i], parsed_[i], policy);
}

void FlowLogLcore::tick(uint64_t now_ns) noexcept {
  follow(collector_.epochNs(now_ns));
}

std::unique_ptr<FlowLogCollector> FlowLogCollector::open(const FlowLogSettings& s, size_t lcores,
                                                         rules::CompiledPolicyPtr policy,
                                                         uint64_t policy_version,
                                                         std::string* err) {
  std::unique_ptr<FlowLogCollector> c(new FlowLogCollector());
  const auto format =
      s.jsonl ? flowlog::FlowLogWriter::Format::kJsonl : flowlog::FlowLogWriter::Format::kText;
  if (s.path == "-") {
    // Standard output is the log's alone: statewalld's own messages go to standard error.
    std::fflush(stdout);
    const int fd = ::dup(STDOUT_FILENO);
    FILE* f = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
    if (f == nullptr || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
      *err = std::string("--flow-log -: cannot take standard output: ") + std::strerror(errno);
      if (f != nullptr) std::fclose(f);
      return nullptr;
    }
    c->writer_ = flowlog::FlowLogWriter::adopt(f, format);
  } else {
    c->writer_ = flowlog::FlowLogWriter::open(s.path, format, err);
    if (!c->writer_) {
      *err = "--flow-log " + *err;
      return nullptr;
    }
  }
  // The engine's clock is CLOCK_MONOTONIC's scale; records carry seconds since 1970.
  c->epoch_offset_ns_ = clockNs(CLOCK_REALTIME) - clockNs(CLOCK_MONOTONIC);
  c->window_ns_ = uint64_t{std::max(1u, s.interval_s)} * kNsPerSec;
  c->policies_.push_back(std::make_unique<FlowLogPolicy>(std::move(policy), policy_version));
  c->current_.store(c->policies_.back().get(), std::memory_order_release);
  for (size_t i = 0; i < lcores; ++i)
    c->lcores_.push_back(std::make_unique<FlowLogLcore>(*c, s.flows, s.ring));
  c->batch_.resize(256);
  return c;
}

FlowLogCollector::~FlowLogCollector() = default;

uint64_t FlowLogCollector::dropped() const {
  uint64_t n = 0;
  for (const auto& l : lcores_)
    n += l->dropped();
  return n;
}

const FlowLogPolicy* FlowLogCollector::byVersion(uint64_t v) const {
  for (const auto& p : policies_)
    if (p->version == v) return p.get();
  return policies_.back().get();
}

void FlowLogCollector::drain() {
  for (auto& l : lcores_) {
    uint32_t n;
    while ((n = l->ring().pop(batch_.data(), static_cast<uint32_t>(batch_.size()))) > 0) {
      for (unsigned i = 0; i < n; ++i)
        byVersion(batch_[i].version)->names.write(*writer_, batch_[i].agg);
      written_.store(writer_->records(), std::memory_order_relaxed);
    }
  }
}

void FlowLogCollector::poll(const dataplane::Engine& engine) {
  // A new publication: its policy and version taken together (the lock-free version first, so
  // that a round without a change takes no lock).
  if (engine.policyVersion() != policies_.back()->version) {
    dataplane::Engine::Published pub = engine.publishedPolicy();
    policies_.push_back(std::make_unique<FlowLogPolicy>(std::move(pub.policy), pub.version));
    current_.store(policies_.back().get(), std::memory_order_release);
  }
  // What every lcore has moved past: an lcore acknowledges a version after it pushed the
  // aggregates of the older one, so the drain below empties them before they are freed.
  uint64_t oldest = policies_.back()->version;
  for (const auto& l : lcores_)
    oldest = std::min(oldest, l->ackedVersion());
  drain();
  const FlowLogPolicy* cur = policies_.back().get();
  std::erase_if(policies_, [&](const std::unique_ptr<FlowLogPolicy>& p) {
    return p->version < oldest && p.get() != cur;
  });
}

bool FlowLogCollector::finish(std::string* err) {
  // The rings first (older records), then what each stopped lcore still aggregates, written
  // from its table directly (it may hold more than its ring).
  drain();
  for (auto& l : lcores_) {
    for (const FlowLogEntry& e : l->pendingAtExit())
      byVersion(e.version)->names.write(*writer_, e.agg);
  }
  written_.store(writer_->records(), std::memory_order_relaxed);
  return writer_->close(err);
}

bool attachFlowLog(const Options& options, Appliance& app, std::unique_ptr<FlowLogCollector>* out,
                   std::string* err) {
  if (options.flow_log.empty()) return true;
  FlowLogSettings s;
  s.path = options.flow_log;
  s.jsonl = options.flow_log_jsonl;
  s.interval_s = options.flow_log_interval;
  s.flows = options.flow_log_flows;
  s.ring = options.flow_log_ring;
  dataplane::Engine::Published pub = app.engine().publishedPolicy();
  *out = FlowLogCollector::open(s, app.lcores().size(), std::move(pub.policy), pub.version, err);
  if (!*out) return false;
  app.attachFlowLog(**out);
  return true;
}

}  // namespace statewall::dpdk
