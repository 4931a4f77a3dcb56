#include "summary_tally.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace statewall::sim {

std::string FlowKey::str() const {
  if (!ip) return "non-IP";
  auto ep = [&](const rules::IpAddr& a, uint16_t port) {
    if (proto != dataplane::kIpProtoTcp && proto != dataplane::kIpProtoUdp) return a.str();
    return rules::endpointText(a, port);
  };
  std::string_view name = detail::protoText(proto, dataplane::L3::kIpv4);
  std::string p = name.empty() ? fmt::format("proto {}", proto) : std::string(name);
  std::string s = fmt::format("{} {} -> {}", p, ep(src, sport), ep(dst, dport));
  if (rules::protoIsIcmp(proto)) s += fmt::format(" type {} code {}", sport, dport);
  return s;
}

namespace detail {
namespace {

using dataplane::Reason;
using dataplane::Verdict;

constexpr size_t kMaxDeniedFlows = 1 << 16;

uint32_t detailTag(const Verdict& v) {
  uint32_t d = 0;
  switch (v.reason) {
    case Reason::kDenySg:
      d = (static_cast<uint32_t>(v.deny_iface) << 1) | static_cast<uint32_t>(v.deny_dir);
      break;
    case Reason::kDenyAcl:
      d = v.acl_entry;
      break;
    case Reason::kDenyMalformed:
      d = static_cast<uint32_t>(v.malformed_layer);
      break;
    default:
      break;
  }
  return (d << 4) ^ static_cast<uint32_t>(v.reason);
}

}  // namespace

void SummaryTally::packetsJudged(const JudgedBurst& b) {
  ReplaySummary& sum = *ctx_.summary;
  for (unsigned i = 0; i < b.n; ++i) {
    const Verdict& v = b.verdicts[i];
    const PacketMeta& m = b.meta[i];
    const size_t r = static_cast<size_t>(v.reason);
    ++sum.packets_by_reason[r];
    sum.bytes_by_reason[r] += m.wirelen;
    ++sum.packets;
    sum.bytes += m.wirelen;
    if (sum.packets == 1) sum.first_ts_ns = m.ts;
    sum.last_ts_ns = std::max(sum.last_ts_ns, m.ts);
    if (!sum.traces.empty()) {
      ++sum.traces.back().packets;
      sum.traces.back().bytes += m.wirelen;
    }
    if (v.reason == Reason::kDenyMalformed) {
      ++sum.malformed_by_layer[static_cast<size_t>(v.malformed_layer)];
    }
    if (m.ts < prev_ts_) {
      if (sum.ts_backwards++ == 0) sum.ts_backwards_first = m.index;
    }
    prev_ts_ = m.ts;
    if (b.refs[i].len < m.wirelen) {
      ++sum.snaplen_cut;
      if (v.reason == Reason::kDenyMalformed) ++sum.snaplen_cut_malformed;
    }
    if (!v.allowed()) noteDenied(b.parsed[i], v, m);
  }
}

void SummaryTally::noteDenied(const dataplane::ParsedPacket& p, const Verdict& v,
                              const PacketMeta& m) {
  ReplaySummary& sum = *ctx_.summary;
  TaggedKey k{keyOf(p), detailTag(v)};
  if (denied_.size() >= kMaxDeniedFlows && denied_.find(k) == nullptr) {
    // Lossy counting: forget the rarest quarter (at least everything at the floor) and raise
    // the floor to their count. A flow seen again starts from the floor, so a count overstates
    // the truth by at most the floor, and every flow above the floor is still counted.
    sum.top_denied_approximate = true;
    auto& vals = denied_.values();
    std::vector<uint64_t> counts;
    counts.reserve(vals.size());
    for (const auto& e : vals)
      counts.push_back(e.packets);
    auto q = counts.begin() + static_cast<long>(counts.size() / 4);
    std::nth_element(counts.begin(), q, counts.end());
    denied_floor_ = std::max(denied_floor_ + 1, *q);
    auto& keys = denied_.keys();
    for (size_t j = vals.size(); j-- > 0;) {
      if (vals[j].packets <= denied_floor_) denied_.erase(TaggedKey(keys[j]));
    }
  }
  bool inserted = false;
  DeniedAgg& d = denied_.findOrInsert(k, &inserted);
  if (inserted) {
    ++sum.denied_flows;
    d.key = k.flow;
    d.v = v;
    d.texts = ctx_.texts;
    d.first_index = m.index;
    d.packets = denied_floor_;  // the most it could have had before (0 while exact)
  }
  ++d.packets;
  d.bytes += m.wirelen;
}

void SummaryTally::connectionsEnded(const ConnRecord* records, size_t n) {
  ReplaySummary& sum = *ctx_.summary;
  for (size_t i = 0; i < n; ++i) {
    const ConnRecord& r = records[i];
    ++sum.connection_records;
    ++sum.conn_ends[static_cast<size_t>(r.end)];
    const std::string_view state = r.connState();
    bool found = false;
    for (auto& [name, count] : states_seen_) {
      if (name == state) {
        ++count;
        found = true;
      }
    }
    if (!found) states_seen_.emplace_back(std::string(state), 1);
  }
}

bool SummaryTally::finish(std::string*) {
  ReplaySummary& sum = *ctx_.summary;
  sum.conn_states = states_seen_;
  std::sort(sum.conn_states.begin(), sum.conn_states.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  // Top denied flows: most packets first, then earliest.
  std::vector<const DeniedAgg*> all;
  for (const auto& d : denied_.values())
    all.push_back(&d);
  std::sort(all.begin(), all.end(), [](const DeniedAgg* a, const DeniedAgg* b) {
    return a->packets != b->packets ? a->packets > b->packets : a->first_index < b->first_index;
  });
  if (all.size() > ctx_.options->top_flows) all.resize(ctx_.options->top_flows);
  sum.top_denied_max_error = denied_floor_;
  sum.top_denied.clear();
  for (const DeniedAgg* d : all) {
    sum.top_denied.push_back(DeniedFlow{d->key, d->v.reason, d->texts->detail(d->v), d->packets,
                                        d->bytes, d->first_index});
  }
  return true;
}

}  // namespace detail
}  // namespace statewall::sim
