// The report's data model: what ReportBuilder learns from the replay's observer (see report.hpp).
#include "statewall/sim/report.hpp"

#include <algorithm>
#include <queue>
#include <tuple>
#include <unordered_map>

#include "describe.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/sim/stateless.hpp"

namespace statewall::sim {
namespace {

using dataplane::kFlagConnClosed;
using dataplane::kFlagControl;
using dataplane::kFlagFragment;
using dataplane::kFlagNewConnection;
using dataplane::kFlagReopened;
using dataplane::kFlagReply;
using dataplane::kFlagTcpInvalid;
using dataplane::L3;
using dataplane::ParsedPacket;
using dataplane::Reason;
using dataplane::TcpState;
using dataplane::Verdict;
using rules::TimeoutKey;

constexpr uint64_t kNs = 1000000000ull;

bool isIcmp(uint8_t proto) {
  return proto == dataplane::kIpProtoIcmp || proto == dataplane::kIpProtoIcmpv6;
}
bool isIp(const ParsedPacket& p) {
  return p.l3 == L3::kIpv4 || p.l3 == L3::kIpv6;
}

// A bidirectional flow: the endpoints in a canonical order.
struct FlowId {
  uint8_t proto = 0;
  rules::IpAddr a, b;
  uint16_t pa = 0, pb = 0;
  friend bool operator==(const FlowId&, const FlowId&) = default;
};
struct FlowIdHash {
  size_t operator()(const FlowId& k) const {
    uint64_t h = k.a.lo * 0x9e3779b97f4a7c15ull ^ k.a.hi ^ (uint64_t{k.proto} << 56);
    h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull ^ k.b.lo ^ (k.b.hi * 31);
    h = (h ^ (h >> 31)) * 0x94d049bb133111ebull ^ (uint64_t{k.pa} << 16 | k.pb);
    return static_cast<size_t>(h ^ (h >> 30));
  }
};

// The flow of a packet without a connection id, as the replay's connection log keys it: ICMP by
// type/code, echo by its id.
FlowId flowIdOf(const ParsedPacket& p) {
  FlowId k;
  k.proto = p.proto;
  rules::IpAddr s = p.src, d = p.dst;
  uint16_t sp = p.sport, dp = p.dport;
  if (isIcmp(p.proto)) {
    if (p.icmp_is_query_request || p.icmp_is_query_reply) {
      sp = dp = p.icmp_id;
    } else {
      sp = p.icmp_type;
      dp = p.icmp_code;
    }
  }
  if (std::tie(s, sp) <= std::tie(d, dp)) {
    k.a = s, k.b = d, k.pa = sp, k.pb = dp;
  } else {
    k.a = d, k.b = s, k.pa = dp, k.pb = sp;
  }
  return k;
}

enum class EntryKind : uint8_t { kTcp, kUdp, kIcmpEcho, kOther };

// One connection-table entry of the model.
struct Entry {
  EntryKind kind = EntryKind::kOther;
  TcpState state = TcpState::kNone;
  bool replied = false;
  bool stream = false;
  uint64_t deadline = 0;
  uint32_t version = 0;
  bool keyed = false;  // TCP: listed in by_key (for reopen)
  FlowId key;
};

struct HeapItem {
  uint64_t deadline;
  uint64_t conn_id;
  uint32_t version;
  bool operator>(const HeapItem& o) const {
    return std::tie(deadline, conn_id) > std::tie(o.deadline, o.conn_id);
  }
};

}  // namespace

uint64_t ReportConnection::allowed() const {
  uint64_t n = 0;
  for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
    if (dataplane::kReasonAllows[r]) n += by_reason[r];
  }
  return n;
}
uint64_t ReportConnection::denied() const {
  return packets - allowed();
}

std::string tcpFlagLetters(uint8_t flags) {
  static constexpr char kLetters[] = "FSRPAUEC";
  std::string s;
  for (int bit = 0; bit < 8; ++bit) {
    if (flags & (1u << bit)) s.push_back(kLetters[bit]);
  }
  return s;
}

struct ReportBuilder::Impl {
  rules::CompiledPolicyPtr policy;
  ReportOptions opt;
  ReportData data;

  std::vector<ReportConnection> recs;  // every record, by creation
  std::unordered_map<uint64_t, size_t> by_conn;
  std::unordered_map<FlowId, size_t, FlowIdHash> by_flow;

  // Connection-table model.
  std::unordered_map<uint64_t, Entry> live;
  std::unordered_map<FlowId, uint64_t, FlowIdHash> by_key;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap;
  std::vector<TablePoint> changes;  // every size change
  std::vector<uint64_t> expiry_ts;  // every idle expiry, in time order
  uint64_t clock = 0;
  rules::Evaluation eval;
  detail::PolicyTexts policy_texts;  // the words of Replay::describe()
  std::unordered_map<std::string, uint32_t> text_index;

  Impl(rules::CompiledPolicyPtr p, ReportOptions o)
      : policy(std::move(p)), opt(std::move(o)), policy_texts(*policy) {
    data.options = opt;
    data.policy = policy;
  }

  uint64_t timeoutNs(TimeoutKey k) const {
    return static_cast<uint64_t>(policy->timeouts().get(k)) * kNs;
  }

  static TimeoutKey keyOf(const Entry& e) {
    switch (e.kind) {
      case EntryKind::kTcp:
        return dataplane::tcpTimeoutKey(e.state);
      case EntryKind::kUdp:
        return e.stream ? TimeoutKey::kUdpStream : TimeoutKey::kUdp;
      case EntryKind::kIcmpEcho:
        return TimeoutKey::kIcmp;
      case EntryKind::kOther:
        break;
    }
    return TimeoutKey::kOther;
  }

  void noteSize(uint64_t ts) {
    const uint64_t size = live.size();
    data.table_peak = std::max<uint64_t>(data.table_peak, size);
    changes.push_back(TablePoint{ts, size});
  }

  void schedule(uint64_t id, Entry& e) {
    e.deadline = clock + timeoutNs(keyOf(e));
    ++e.version;
    heap.push(HeapItem{e.deadline, id, e.version});
  }

  void remove(uint64_t id) {
    auto it = live.find(id);
    if (it == live.end()) return;
    if (it->second.keyed) {
      auto k = by_key.find(it->second.key);
      if (k != by_key.end() && k->second == id) by_key.erase(k);
    }
    live.erase(it);
  }

  // Entries whose idle deadline the clock has passed leave the table.
  void expire() {
    while (!heap.empty() && heap.top().deadline <= clock) {
      HeapItem h = heap.top();
      heap.pop();
      auto it = live.find(h.conn_id);
      if (it == live.end() || it->second.version != h.version) continue;  // refreshed or gone
      const Entry& e = it->second;
      const TimeoutKey k = keyOf(e);
      ++data.expiries_total;
      ++data.expiries_by_key[static_cast<size_t>(k)];
      if (e.kind == EntryKind::kTcp) ++data.tcp_expired[static_cast<size_t>(e.state)];
      expiry_ts.push_back(h.deadline);
      if (data.expiries.size() < opt.max_expiry_markers) {
        data.expiries.push_back(ExpiryEvent{h.deadline, h.conn_id, k});
      }
      remove(h.conn_id);
      noteSize(h.deadline);
    }
  }

  void modelTable(const ParsedPacket& p, const Verdict& v) {
    if (p.proto == dataplane::kIpProtoTcp && (v.flags & kFlagReopened)) {
      auto k = by_key.find(flowIdOf(p));
      if (k != by_key.end()) {
        remove(k->second);
        noteSize(clock);
      }
      ++data.tcp_reopened;
    }
    if (v.conn_id == 0) return;
    if (v.flags & kFlagNewConnection) {
      ++data.connections_created;
      Entry e;
      if (p.proto == dataplane::kIpProtoTcp) {
        e.kind = EntryKind::kTcp;
        e.state = v.tcp_after;
        e.keyed = true;
        e.key = flowIdOf(p);
      } else if (p.proto == dataplane::kIpProtoUdp) {
        e.kind = EntryKind::kUdp;
      } else if (isIcmp(p.proto) && (p.icmp_is_query_request || p.icmp_is_query_reply)) {
        e.kind = EntryKind::kIcmpEcho;
      }
      remove(v.conn_id);  // an id is never live twice; be safe
      Entry& ref = live[v.conn_id] = e;
      if (ref.keyed) by_key[ref.key] = v.conn_id;
      schedule(v.conn_id, ref);
      noteSize(clock);
      return;
    }
    auto it = live.find(v.conn_id);
    if (it == live.end()) return;
    Entry& e = it->second;
    // What refreshes an entry in the engine: an accepted packet of the connection itself.
    if (!v.allowed() || v.reason == Reason::kAllowRelated ||
        (v.flags & (kFlagTcpInvalid | kFlagFragment)) || p.icmp_is_error) {
      return;
    }
    if (e.kind == EntryKind::kTcp && v.tcp_after != TcpState::kNone) e.state = v.tcp_after;
    const bool from_orig = (v.flags & kFlagReply) == 0;
    if (!from_orig && !e.replied) {
      e.replied = true;
    } else if (from_orig && e.kind == EntryKind::kUdp && e.replied && !e.stream) {
      e.stream = true;
    }
    schedule(v.conn_id, e);
  }

  // The replay's idle limit of a record (sim/src/replay.cpp idleLimitNs) for flows without an id.
  uint64_t idleLimitNs(const ConnRecord& r) const {
    TimeoutKey k;
    if (r.proto == dataplane::kIpProtoTcp) {
      k = r.tcpClosed() ? TimeoutKey::kTcpTimeWait
          : (r.orig.syn || r.resp.synack) && !(r.orig.synack || r.resp.any)
              ? TimeoutKey::kTcpSynSent
              : TimeoutKey::kTcpEstablished;
    } else if (r.proto == dataplane::kIpProtoUdp) {
      k = r.orig.any && r.resp.any ? TimeoutKey::kUdpStream : TimeoutKey::kUdp;
    } else if (isIcmp(r.proto)) {
      k = TimeoutKey::kIcmp;
    } else {
      k = TimeoutKey::kOther;
    }
    return timeoutNs(k);
  }

  Reason stateless(const ParsedPacket& p, const Verdict& v) {
    return statelessReason(*policy, p, v, &eval);
  }

  size_t newRecord(const ParsedPacket& p, bool reply, const Verdict& v) {
    ReportConnection c;
    c.rec.seq = recs.size();
    c.rec.begin(p, reply);
    c.rec.first_reason = v.reason;
    c.has_ladder = recs.size() < opt.ladder_connections;
    recs.push_back(std::move(c));
    return recs.size() - 1;
  }

  void observe(uint64_t index, uint64_t ts, const Verdict& v, const ParsedPacket& p) {
    clock = std::max(clock, ts);
    expire();

    const Reason sr = stateless(p, v);
    ++data.stateless_by_reason[static_cast<size_t>(sr)];
    const bool differs = dataplane::reasonAllows(sr) != v.allowed();
    if (differs) (v.allowed() ? data.stateless_to_deny : data.stateless_to_allow) += 1;

    if (!isIp(p) || (v.flags & kFlagControl) || v.reason == Reason::kDenyMalformed) {
      ++data.unattributed_packets;
      return;
    }
    modelTable(p, v);
    if (p.proto == dataplane::kIpProtoTcp && v.conn_id != 0 && !p.icmp_is_error &&
        !(p.is_fragment && !p.first_fragment)) {
      if (v.flags & kFlagTcpInvalid) {
        ++data.tcp_invalid[static_cast<size_t>(v.tcp_before)];
      } else {
        ++data.tcp_moves[static_cast<size_t>(v.tcp_before)][static_cast<size_t>(v.tcp_after)];
      }
    }

    // Attribution, as the replay's connection log does it.
    size_t ri;
    bool from_orig = true;
    bool icmp_error = false;
    if (v.conn_id != 0) {
      auto it = by_conn.find(v.conn_id);
      const bool reply = (v.flags & kFlagReply) != 0;
      if (it == by_conn.end() || (v.flags & kFlagNewConnection)) {
        if (it != by_conn.end()) recs[it->second].rec.end = ConnEnd::kTimedOut;
        ri = newRecord(p, reply, v);
        recs[ri].rec.conn_id = v.conn_id;
        by_conn[v.conn_id] = ri;
      } else {
        ri = it->second;
      }
      icmp_error = p.icmp_is_error && recs[ri].rec.proto != p.proto;
      from_orig = !reply;
    } else {
      const FlowId k = flowIdOf(p);
      auto it = by_flow.find(k);
      if (it != by_flow.end()) {
        ConnRecord& old = recs[it->second].rec;
        if (ts > old.last_ns && ts - old.last_ns > idleLimitNs(old)) {
          old.end = ConnEnd::kTimedOut;
          by_flow.erase(it);
          it = by_flow.end();
        }
      }
      if (it == by_flow.end()) {
        ri = newRecord(p, false, v);
        by_flow[k] = ri;
      } else {
        ri = it->second;
        const ConnRecord& r = recs[ri].rec;
        const rules::IpAddr& first_src = r.flipped ? r.resp_h : r.orig_h;
        const uint16_t first_sport = r.flipped ? r.resp_p : r.orig_p;
        from_orig = p.src == first_src && (isIcmp(p.proto) || p.sport == first_sport);
      }
    }
    ReportConnection& c = recs[ri];
    ConnRecord& r = c.rec;
    ++c.packets;
    ++c.by_reason[static_cast<size_t>(v.reason)];
    if (differs) ++c.stateless_changed;
    if (icmp_error) {
      ++r.icmp_errors;
      if (!v.allowed()) ++r.denied_pkts;
    } else {
      r.observe(p, from_orig, ts);
      if (!v.allowed()) ++r.denied_pkts;
      if (v.flags & kFlagConnClosed) r.engine_closed = true;
      if (r.orig.pkts + r.resp.pkts == 1 &&
          (v.reason == Reason::kAllowRule || v.reason == Reason::kAllowUntracked)) {
        r.opened_by = v.rule;
      }
    }
    if (c.has_ladder && c.arrows.size() < opt.ladder_arrows) {
      LadderArrow a;
      a.index = index;
      a.ts_ns = ts;
      // Lanes: the record's originator on the left. An ICMP error travels to the endpoint it
      // is addressed to.
      if (icmp_error) {
        a.from_orig = !(p.dst == r.orig_h);
      } else if (p.src == r.orig_h && p.dst == r.resp_h && !(p.src == p.dst)) {
        a.from_orig = true;
      } else if (p.src == r.resp_h && p.dst == r.orig_h && !(p.src == p.dst)) {
        a.from_orig = false;
      } else {
        a.from_orig = from_orig != r.flipped;
      }
      a.icmp_error = icmp_error;
      a.reason = v.reason;
      a.flags = v.flags;
      a.proto = p.proto;
      a.tcp_flags = p.proto == dataplane::kIpProtoTcp ? p.tcp_flags : 0;
      a.icmp_type = p.icmp_type;
      a.icmp_code = p.icmp_code;
      a.tcp_before = v.tcp_before;
      a.tcp_after = v.tcp_after;
      a.stateless_differs = differs;
      a.stateless = sr;
      a.payload = p.l4_payload_len;
      auto [t, inserted] = text_index.try_emplace(policy_texts.describe(v),
                                                  static_cast<uint32_t>(data.texts.size()));
      if (inserted) data.texts.push_back(t->first);
      a.text = t->second;
      c.arrows.push_back(a);
    }
  }

  ConnEnd endOf(const ReportConnection& c) const {
    const ConnRecord& r = c.rec;
    if (r.engine_closed || (r.proto == dataplane::kIpProtoTcp && r.tcpClosed())) {
      return ConnEnd::kClosed;
    }
    if (r.conn_id != 0) {
      if (r.end == ConnEnd::kTimedOut) return ConnEnd::kTimedOut;
      return live.count(r.conn_id) != 0 ? ConnEnd::kOpen : ConnEnd::kTimedOut;
    }
    if (r.end == ConnEnd::kTimedOut) return ConnEnd::kTimedOut;
    return r.last_ns + idleLimitNs(r) <= clock ? ConnEnd::kTimedOut : ConnEnd::kOpen;
  }

  // The chart's time buckets: [t0, t1] in chart_buckets slices.
  uint64_t chartStart() const { return data.summary.first_ts_ns; }
  uint64_t chartEnd() const {
    uint64_t t1 = data.summary.last_ts_ns;
    if (!changes.empty()) t1 = std::max(t1, changes.back().ts_ns);
    return std::max(t1, chartStart());
  }
  uint64_t bucketWidth() const {
    return (chartEnd() - chartStart()) / std::max<size_t>(1, opt.chart_buckets) + 1;
  }
  uint64_t bucketOf(uint64_t ts) const {
    return (std::max(ts, chartStart()) - chartStart()) / bucketWidth();
  }

  void bucketTable() {
    if (changes.empty()) return;
    if (changes.size() <= std::max<size_t>(1, opt.chart_buckets) * 2) {
      data.table = changes;
      return;
    }
    // Per bucket the maximum, at the time it was reached, and the value at the bucket's end.
    size_t i = 0;
    while (i < changes.size()) {
      const uint64_t b = bucketOf(changes[i].ts_ns);
      TablePoint peak = changes[i];
      size_t j = i;
      while (j < changes.size() && bucketOf(changes[j].ts_ns) == b) {
        if (changes[j].size > peak.size) peak = changes[j];
        ++j;
      }
      data.table.push_back(peak);
      if (!(changes[j - 1].ts_ns == peak.ts_ns && changes[j - 1].size == peak.size)) {
        data.table.push_back(changes[j - 1]);
      }
      i = j;
    }
  }

  void bucketExpiries() {
    const uint64_t w = bucketWidth();
    for (uint64_t ts : expiry_ts) {
      const uint64_t b = bucketOf(ts);
      const uint64_t from = chartStart() + b * w;
      if (data.expiry_bins.empty() || data.expiry_bins.back().from_ns != from) {
        data.expiry_bins.push_back(ExpiryBin{from, from + w, 0});
      }
      ++data.expiry_bins.back().count;
    }
  }

  ReportData finish(const ReplaySummary& s) {
    data.summary = s;
    data.table_final = live.size();
    bucketTable();
    bucketExpiries();
    data.connections_total = recs.size();
    std::vector<std::pair<std::string, uint64_t>> states;
    for (auto& c : recs) {
      c.rec.end = endOf(c);
      ++data.conn_ends[static_cast<size_t>(c.rec.end)];
      std::string_view st = c.rec.connState();
      auto it =
          std::find_if(states.begin(), states.end(), [&](const auto& e) { return e.first == st; });
      if (it == states.end()) {
        states.emplace_back(std::string(st), 1);
      } else {
        ++it->second;
      }
    }
    std::sort(states.begin(), states.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    data.conn_states = std::move(states);
    if (recs.size() > opt.max_connections) recs.resize(opt.max_connections);
    data.connections = std::move(recs);
    recs.clear();
    return std::move(data);
  }
};

ReportBuilder::ReportBuilder(rules::CompiledPolicyPtr policy, ReportOptions options)
    : impl_(std::make_unique<Impl>(std::move(policy), std::move(options))) {}
ReportBuilder::~ReportBuilder() = default;

void ReportBuilder::observe(uint64_t index, uint64_t ts_ns, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p) {
  impl_->observe(index, ts_ns, v, p);
}

void ReportBuilder::attach(Replay& replay) {
  replay.setObserver([this](uint64_t index, uint64_t ts, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p) { impl_->observe(index, ts, v, p); });
}

size_t ReportBuilder::tableSize() const {
  return impl_->live.size();
}

ReportData ReportBuilder::finish(const ReplaySummary& summary) {
  return impl_->finish(summary);
}

bool buildReport(rules::CompiledPolicyPtr policy, const std::vector<std::string>& traces,
                 const ReportOptions& options, ReportData* out, std::string* err) {
  ReplayOptions ro;
  ro.stateless = true;
  ro.max_changes = options.max_changes;
  ro.top_flows = 20;
  ReportBuilder builder(policy, options);
  Replay replay(policy, ro);
  builder.attach(replay);
  if (!replay.openOutputs(err)) return false;
  const bool complete = replay.runFiles(traces);
  std::string ferr;
  const bool wrote = replay.finish(&ferr);
  if (!complete) {
    *err = replay.summary().error ? replay.summary().error->str() : "the replay stopped";
    return false;
  }
  if (!wrote) {
    *err = ferr;
    return false;
  }
  *out = builder.finish(replay.summary());
  return true;
}

}  // namespace statewall::sim
