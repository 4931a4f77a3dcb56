#include "statewall/sim/trace_diff.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "flow_key.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/sim/change_cause.hpp"
#include "statewall/sim/pcap_io.hpp"

namespace statewall::sim {
namespace {

using rules::protoIsIcmp;

constexpr size_t kChunk = 8192;  // frames per chunk fed to both drivers

// A connection, whichever way its packets go: the flow with its endpoints in a fixed order (ICMP:
// one entry per address pair).
FlowKey connectionOf(const FlowKey& f) {
  FlowKey k;
  k.ip = f.ip;
  k.proto = f.proto;
  if (!f.ip) return k;
  if (protoIsIcmp(f.proto)) {
    k.src = std::min(f.src, f.dst);
    k.dst = std::max(f.src, f.dst);
    return k;
  }
  const bool fwd = std::tie(f.src, f.sport) <= std::tie(f.dst, f.dport);
  k.src = fwd ? f.src : f.dst;
  k.dst = fwd ? f.dst : f.src;
  k.sport = fwd ? f.sport : f.dport;
  k.dport = fwd ? f.dport : f.sport;
  return k;
}

rules::Flow5 flow5Of(const FlowKey& f) {
  rules::Flow5 x;
  x.proto = f.proto;
  x.src = f.src;
  x.dst = f.dst;
  if (protoIsIcmp(f.proto)) {
    x.icmp_type = static_cast<uint8_t>(f.sport);
    x.icmp_code = static_cast<uint8_t>(f.dport);
  } else {
    x.sport = f.sport;
    x.dport = f.dport;
  }
  return x;
}

// Feeds the same chunks to two replay drivers and compares their verdicts packet by packet.
class Comparer {
 public:
  Comparer(const rules::CompiledPolicyPtr& o, const rules::CompiledPolicyPtr& n,
           const TraceDiffOptions& opt)
      : opt_(opt), old_(o, replayOptions(opt)), new_(n, replayOptions(opt)) {
    res_.diff = rules::diffPolicies(*o, *n);
    attr_.emplace(*o, *n, res_.diff);
    seen_.reserve(kChunk);
    // Both drivers call their observer once per packet, in input order: the new driver's n-th
    // packet of a chunk is the old driver's n-th.
    old_.setObserver([this](uint64_t index, uint64_t, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p) {
      seen_.push_back(Seen{index, v, detail::keyOf(p)});
    });
    new_.setObserver([this](uint64_t index, uint64_t, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket&) { compare(index, v); });
  }

  void feed(const std::vector<Frame>& chunk) {
    if (chunk.empty()) return;
    res_.packets += chunk.size();
    seen_.clear();
    pos_ = 0;
    old_.runFrames(chunk);
    new_.runFrames(chunk);
  }

  void setError(std::string e) {
    if (!res_.error) res_.error = std::move(e);
  }
  void warn(std::string w) { res_.warnings.push_back(std::move(w)); }

  TraceDiffResult finish() {
    std::string ferr;
    old_.finish(&ferr);
    new_.finish(&ferr);
    for (const Replay* r : {&old_, &new_})
      if (r->summary().error && !res_.error) res_.error = r->summary().error->str();
    group();
    return std::move(res_);
  }

 private:
  struct Seen {
    uint64_t index;
    dataplane::Verdict v;
    FlowKey key;
  };

  static ReplayOptions replayOptions(const TraceDiffOptions& opt) {
    ReplayOptions r;
    r.table_capacity = opt.table_capacity;
    r.parse = opt.parse;
    return r;
  }

  void compare(uint64_t index, const dataplane::Verdict& v) {
    if (res_.error) return;
    if (pos_ >= seen_.size() || seen_[pos_].index != index) {
      // Both drivers got the same frames: this is a bug, reported instead of a wrong answer.
      res_.error = fmt::format("internal error: the two replays disagree on packet #{}", index);
      return;
    }
    const Seen& o = seen_[pos_++];
    if (o.v.allowed() == v.allowed()) return;
    ++res_.changed_packets;
    const bool denied_now = o.v.allowed();
    (denied_now ? res_.allowed_to_denied : res_.denied_to_allowed)++;
    if (opt_.on_packet) {
      opt_.on_packet(ChangedPacket{index, o.key, dataplane::reasonCode(o.v.reason),
                                   dataplane::reasonCode(v.reason), old_.describe(o.v),
                                   new_.describe(v)});
    }
    const FlowKey ck = connectionOf(o.key);
    auto it = index_.find(ck);
    if (it == index_.end()) {
      if (res_.flows.size() >= opt_.max_flows) {
        ++res_.unlisted_packets;
        return;
      }
      ChangedFlow f;
      f.first = o.key;
      f.first_index = index;
      f.old_reason = std::string(dataplane::reasonCode(o.v.reason));
      f.new_reason = std::string(dataplane::reasonCode(v.reason));
      f.old_text = old_.describe(o.v);
      f.new_text = new_.describe(v);
      f.cause = o.key.ip ? attr_->cause(flow5Of(o.key), denied_now, &f.cause_note) : -1;
      it = index_.emplace(ck, res_.flows.size()).first;
      res_.flows.push_back(std::move(f));
    }
    ChangedFlow& f = res_.flows[it->second];
    ++f.packets;
    (denied_now ? f.now_denied : f.now_allowed)++;
  }

  // Groups the flows by their cause, in the order of the rule changes; unexplained ones last.
  void group() {
    const long none = static_cast<long>(res_.diff.changes.size());
    std::vector<std::vector<size_t>> by(res_.diff.changes.size() + 1);
    for (size_t i = 0; i < res_.flows.size(); ++i) {
      const ChangedFlow& f = res_.flows[i];
      by[static_cast<size_t>(f.cause < 0 ? none : f.cause)].push_back(i);
      (f.breaks() ? res_.connections_that_break : res_.connections_that_open)++;
    }
    for (size_t c = 0; c < by.size(); ++c) {
      if (by[c].empty()) continue;
      const long change = static_cast<long>(c) == none ? -1 : static_cast<long>(c);
      res_.groups.push_back(TraceDiffGroup{change, std::move(by[c])});
    }
  }

  const TraceDiffOptions& opt_;
  Replay old_, new_;
  TraceDiffResult res_;
  std::optional<ChangeAttributor> attr_;
  std::vector<Seen> seen_;
  size_t pos_ = 0;
  std::unordered_map<FlowKey, size_t, detail::FlowKeyHash, detail::FlowKeyEq> index_;
};

}  // namespace

TraceDiffResult diffTraces(const rules::CompiledPolicyPtr& old_policy,
                           const rules::CompiledPolicyPtr& new_policy,
                           const std::vector<std::string>& traces,
                           const TraceDiffOptions& options) {
  Comparer cmp(old_policy, new_policy, options);
  std::vector<Frame> chunk(kChunk);
  auto feed = [&](size_t n) {
    chunk.resize(n);  // only the last chunk of a file is short
    cmp.feed(chunk);
    chunk.resize(kChunk);
  };
  for (const auto& path : traces) {
    TraceError err;
    auto reader = TraceReader::open(path, &err);
    if (!reader) {
      cmp.setError(err.str());
      break;
    }
    size_t n = 0;
    TracePacket pkt;
    TraceReader::Status st;
    while ((st = reader->next(&pkt)) == TraceReader::Status::kPacket) {
      chunk[n].ts_ns = pkt.ts_ns;
      chunk[n].bytes.assign(pkt.data, pkt.data + pkt.caplen);
      chunk[n].link = pkt.link;
      if (++n == kChunk) {
        feed(n);
        n = 0;
      }
    }
    feed(n);
    for (const TraceInterface& i : reader->interfaces()) {
      if (i.skipped == 0) continue;
      cmp.warn(fmt::format(
          "{}: {} packets of interface {}{} were skipped: its link type {} is not one statewall "
          "reads",
          path, i.skipped, i.index, i.name.empty() ? "" : " (" + i.name + ")", dltName(i.dlt)));
    }
    if (st == TraceReader::Status::kError) {
      cmp.setError(reader->error().str());
      break;
    }
  }
  return cmp.finish();
}

TraceDiffResult diffFrames(const rules::CompiledPolicyPtr& old_policy,
                           const rules::CompiledPolicyPtr& new_policy,
                           const std::vector<Frame>& frames, const TraceDiffOptions& options) {
  Comparer cmp(old_policy, new_policy, options);
  for (size_t at = 0; at < frames.size(); at += kChunk) {
    const auto end =
        frames.begin() + static_cast<std::ptrdiff_t>(std::min(frames.size(), at + kChunk));
    cmp.feed(std::vector<Frame>(frames.begin() + static_cast<std::ptrdiff_t>(at), end));
  }
  return cmp.finish();
}

}  // namespace statewall::sim
