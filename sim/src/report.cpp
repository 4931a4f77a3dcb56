// The report's data model: what ReportBuilder learns from the replay's observer (see report.hpp).
#include "statewall/sim/report.hpp"

#include <algorithm>
#include <queue>
#include <tuple>
#include <unordered_map>

#include "conn_tracker.hpp"
#include "describe.hpp"
#include "encap_cursor.hpp"
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

// A bidirectional flow, as the replay's connection log keys records without a connection id.
using FlowId = FlowKey;
using FlowIdHash = detail::FlowKeyHash;
FlowId flowIdOf(const ParsedPacket& p) {
  return detail::ConnTracker::flowKeyOf(p);
}

// A listed record the connection log has open: where the report keeps it, and its connection's
// number.
struct OpenRecord {
  uint64_t index = 0;   // in listed
  uint64_t number = 0;  // #N of its engine connection, 0 before it has one
};

enum class EntryKind : uint8_t { kTcp, kUdp, kIcmpEcho, kOther };

// One connection-table entry of the model.
struct Entry {
  EntryKind kind = EntryKind::kOther;
  TcpState state = TcpState::kNone;
  bool replied = false;
  bool stream = false;
  uint64_t deadline = 0;
  uint64_t gen = 0;              // tells this entry's heap items from a former one's with its id
  uint64_t queued = UINT64_MAX;  // the earliest deadline among its items in the heap
  bool keyed = false;            // TCP: listed in by_key (for reopen)
  FlowId key;
  uint64_t number = 0;  // the connection's number in the run (#N)
};

struct HeapItem {
  uint64_t deadline;
  uint64_t conn_id;
  uint64_t gen;
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

struct ReportBuilder::Impl final : detail::ConnSink {
  rules::CompiledPolicyPtr policy;
  ReportOptions opt;
  ReportData data;

  // Which connection each packet belongs to, and when a record ends: the connection log's own
  // attribution (conn_tracker.hpp), so that the page's records are the log's.
  detail::ConnTracker tracker;
  // Records: the first max_connections are listed on the page; a later one is only counted when
  // the connection log ends it, so that memory is bounded by the log's open records and the caps,
  // not by the flows in the trace.
  std::vector<ReportConnection> listed;           // in order of first packet
  uint64_t records = 0;                           // records created
  uint64_t next_seq = 0;                          // the log's records below this seq were seen
  std::unordered_map<uint64_t, OpenRecord> open;  // the log's seq -> listed, while open
  std::vector<std::pair<std::string, uint64_t>> states;  // conn_state -> records ended
  size_t next_scan;            // packets between looks for evicted entries
  size_t since_look = 0;       // packets since the last look
  Replay* replay = nullptr;    // to ask its engine which connections are live
  detail::EncapCursor frames;  // the frames' encapsulation headers (readFramesFrom)

  // Connection-table model.
  std::unordered_map<uint64_t, Entry> live;
  std::unordered_map<FlowId, uint64_t, FlowIdHash> by_key;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap;
  std::vector<TablePoint> changes;  // every size change
  std::vector<uint64_t> expiry_ts;  // every idle expiry, in time order
  uint64_t clock = 0;
  uint64_t entry_gen = 0;
  rules::Evaluation eval;
  detail::PolicyTexts policy_texts;  // the words of Replay::describe()
  std::unordered_map<std::string, uint32_t> text_index;

  Impl(rules::CompiledPolicyPtr p, ReportOptions o)
      : policy(std::move(p)),
        opt(std::move(o)),
        tracker(this, nullptr, opt.min_scan),
        next_scan(std::max<size_t>(1, opt.min_scan)),
        policy_texts(*policy) {
    data.options = opt;
    data.policy = policy;
  }

  // The place on the ladder where the check that denied the packet sits. A packet leaves its
  // sender's interface (groups, outbound), then its sender's subnet (ACL, outbound), enters the
  // receiver's subnet (ACL, inbound), then its interface (groups, inbound): docs/design.md.
  LadderStop stopOf(const dataplane::Verdict& v, bool sender_left) const {
    if (v.allowed()) return LadderStop::kPassed;
    bool at_sender;
    bool acl;
    if (v.reason == Reason::kDenySg) {
      at_sender = v.deny_dir == rules::Direction::kOutbound;
      acl = false;
    } else if (v.reason == Reason::kDenyAcl && v.acl_entry < policy->aclEntryCount()) {
      at_sender = policy->aclEntry(v.acl_entry).dir == rules::Direction::kOutbound;
      acl = true;
    } else {
      return LadderStop::kBetween;
    }
    const bool left = at_sender == sender_left;
    if (acl) return left ? LadderStop::kLeftAcl : LadderStop::kRightAcl;
    return left ? LadderStop::kLeftGroups : LadderStop::kRightGroups;
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

  // The heap holds one item per entry and deadline it has been moved forward to, not one per
  // refresh: an item that comes due early is put back at the entry's deadline (so the heap stays
  // bounded by the live entries however many packets refresh them).
  void schedule(uint64_t id, Entry& e) {
    e.deadline = clock + timeoutNs(keyOf(e));
    if (e.deadline < e.queued) {
      heap.push(HeapItem{e.deadline, id, e.gen});
      e.queued = e.deadline;
    }
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
      if (it == live.end() || it->second.gen != h.gen) continue;  // gone
      Entry& e = it->second;
      if (e.deadline > h.deadline) {  // refreshed since
        if (e.queued == h.deadline) e.queued = UINT64_MAX;
        if (e.deadline < e.queued) {
          heap.push(HeapItem{e.deadline, h.conn_id, e.gen});
          e.queued = e.deadline;
        }
        continue;
      }
      const TimeoutKey k = keyOf(e);
      ++data.expiries_total;
      ++data.expiries_by_key[static_cast<size_t>(k)];
      if (e.kind == EntryKind::kTcp) ++data.tcp_expired[static_cast<size_t>(e.state)];
      expiry_ts.push_back(h.deadline);
      if (data.expiries.size() < opt.max_expiry_markers) {
        data.expiries.push_back(ExpiryEvent{h.deadline, h.conn_id, k, e.number});
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
      e.gen = ++entry_gen;
      e.number = replay != nullptr ? replay->connectionNumber(v.conn_id) : 0;
      if (p.proto == dataplane::kIpProtoTcp) {
        e.kind = EntryKind::kTcp;
        e.state = v.tcp_after;
        e.keyed = true;
        e.key = flowIdOf(p);
      } else if (p.proto == dataplane::kIpProtoUdp) {
        e.kind = EntryKind::kUdp;
      } else if (rules::protoIsIcmp(p.proto) &&
                 (p.icmp_is_query_request || p.icmp_is_query_reply)) {
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
    // A reset before any reply removes the entry at once (docs/semantics.md "After a reset"), even
    // when a check after the tracking then denies the reset.
    if (e.kind == EntryKind::kTcp && !e.replied && (v.flags & kFlagConnClosed) &&
        v.tcp_after == TcpState::kClose) {
      remove(v.conn_id);
      noteSize(clock);
      return;
    }
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

  Reason stateless(const ParsedPacket& p, const Verdict& v) {
    return statelessReason(*policy, p, v, &eval);
  }

  // The report's side of a record the connection log started with this packet: listed, or
  // only counted.
  void newRecord(uint64_t seq, uint64_t index, const ParsedPacket& p) {
    const uint64_t i = records++;
    if (i >= opt.max_connections) return;
    ReportConnection& c = listed.emplace_back();
    if (frames.on())
      c.encap = detail::encapPhrase(frames.headers(index, p.tunnel_depth, opt.parse));
    c.has_ladder = i < opt.ladder_connections;
    open[seq].index = i;
  }

  void tally(const ConnRecord& r) {
    ++data.conn_ends[static_cast<size_t>(r.end)];
    const std::string_view st = r.connState();
    auto it =
        std::find_if(states.begin(), states.end(), [&](const auto& e) { return e.first == st; });
    if (it == states.end()) {
      states.emplace_back(std::string(st), 1);
    } else {
      ++it->second;
    }
  }

  // The connection log ended these records: each is counted, and a listed one keeps its final
  // record for the page.
  void connectionsEnded(const ConnRecord* records_ended, size_t n) override {
    for (size_t k = 0; k < n; ++k) {
      tally(records_ended[k]);
      auto o = open.find(records_ended[k].seq);
      if (o == open.end()) continue;
      ConnRecord& rec = listed[o->second.index].rec;
      rec = records_ended[k];
      if (rec.conn_id != 0 && rec.conn_number == 0) rec.conn_number = o->second.number;
      open.erase(o);
    }
  }

  // The table model learns here of the entries the engine evicted to make room for new
  // connections (early drop): verdicts do not say which one went. Their departure is drawn at
  // this look's time, at most one look after the eviction.
  void noticeEvictions() {
    since_look = 0;
    next_scan = std::max<size_t>(std::max<size_t>(1, opt.min_scan), live.size());
    if (replay == nullptr || replay->engine() == nullptr || live.empty()) return;
    std::unordered_map<uint64_t, char> live_ids;
    live_ids.reserve(live.size());
    replay->engine()->forEachConnection([&](const dataplane::ConnectionInfo& c) {
      if (c.expires_ns > clock && live.count(c.id) != 0) live_ids.emplace(c.id, 0);
    });
    size_t evicted = 0;
    for (auto it = live.begin(); it != live.end();) {
      if (live_ids.count(it->first) != 0) {
        ++it;
        continue;
      }
      const uint64_t id = (it++)->first;
      remove(id);
      ++evicted;
    }
    if (evicted != 0) noteSize(clock);
  }

  // Hands a packet to the connection log's attribution; its record, or null.
  detail::ConnTracker::Attribution attribute(uint64_t index, uint64_t ts, const Verdict& v,
                                             const ParsedPacket& p) {
    const dataplane::Engine* engine = replay != nullptr ? replay->engine() : nullptr;
    tracker.advance(engine, std::max(clock, replay != nullptr ? replay->nowNs() : 0),
                    &policy->timeouts(), engine != nullptr ? engine->capacity() : 0);
    const detail::ConnTracker::Attribution a = tracker.observe(p, v, ts);
    if (a.record == nullptr) return a;
    if (a.record->seq >= next_seq) {
      next_seq = a.record->seq + 1;
      newRecord(a.record->seq, index, p);
    }
    auto o = open.find(a.record->seq);
    if (o != open.end() && o->second.number == 0 && v.conn_id != 0 && replay != nullptr) {
      o->second.number = replay->connectionNumber(v.conn_id);
    }
    return a;
  }

  void observe(uint64_t index, uint64_t ts, const Verdict& v, const ParsedPacket& p) {
    clock = std::max(clock, ts);
    expire();

    const Reason sr = stateless(p, v);
    ++data.stateless_by_reason[static_cast<size_t>(sr)];
    const bool differs = dataplane::reasonAllows(sr) != v.allowed();
    if (differs) (v.allowed() ? data.stateless_to_deny : data.stateless_to_allow) += 1;

    modelTable(p, v);
    if (p.proto == dataplane::kIpProtoTcp && v.conn_id != 0 && !p.icmp_is_error &&
        !(p.is_fragment && !p.first_fragment)) {
      if (v.flags & kFlagTcpInvalid) {
        ++data.tcp_invalid[static_cast<size_t>(v.tcp_before)];
      } else {
        ++data.tcp_moves[static_cast<size_t>(v.tcp_before)][static_cast<size_t>(v.tcp_after)];
      }
    }

    // Attribution: the connection log's (nothing for non-IP, control and malformed packets).
    const detail::ConnTracker::Attribution att = attribute(index, ts, v, p);
    if (att.record == nullptr) {
      ++data.unattributed_packets;
      return;
    }
    auto listed_at = open.find(att.record->seq);
    if (listed_at != open.end())
      addToListed(listed[listed_at->second.index], index, ts, v, p, att, sr, differs);
    tracker.settle();
    if (++since_look >= next_scan) noticeEvictions();
  }

  // A packet of a listed record: its counts and its ladder's arrow.
  void addToListed(ReportConnection& c, uint64_t index, uint64_t ts, const Verdict& v,
                   const ParsedPacket& p, const detail::ConnTracker::Attribution& att, Reason sr,
                   bool differs) {
    const bool from_orig = att.from_orig;
    const bool icmp_error = att.icmp_error;
    const ConnRecord& r = *att.record;
    ++c.packets;
    ++c.by_reason[static_cast<size_t>(v.reason)];
    if (differs) ++c.stateless_changed;
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
      a.stop = stopOf(v, a.from_orig);
      auto [t, inserted] = text_index.try_emplace(
          policy_texts.describe(v, replay != nullptr ? replay->connectionNumber(v.conn_id) : 0),
          static_cast<uint32_t>(data.texts.size()));
      if (inserted) data.texts.push_back(t->first);
      a.text = t->second;
      c.arrows.push_back(a);
    }
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
    // The records still open end now, as the connection log ends them at the end of the run.
    const dataplane::Engine* engine = replay != nullptr ? replay->engine() : nullptr;
    tracker.advance(engine, std::max(clock, replay != nullptr ? replay->nowNs() : 0),
                    &policy->timeouts(), engine != nullptr ? engine->capacity() : 0);
    tracker.endAll();
    data.connections_forgotten_early = tracker.endedEarly();
    data.connections_total = records;
    std::sort(states.begin(), states.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    data.conn_states = std::move(states);
    data.connections = std::move(listed);
    listed.clear();
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
  impl_->replay = &replay;
  replay.setObserver([this](uint64_t index, uint64_t ts, const dataplane::Verdict& v,
                            const dataplane::ParsedPacket& p) { impl_->observe(index, ts, v, p); });
}

void ReportBuilder::readFramesFrom(const std::vector<std::string>& traces) {
  impl_->frames.openFiles(traces);
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
  ro.table_capacity = options.table_capacity;
  ro.parse = options.parse;
  ReportBuilder builder(policy, options);
  Replay replay(policy, ro);
  builder.attach(replay);
  builder.readFramesFrom(traces);
  if (!replay.openOutputs(err)) return false;
  const bool complete = replay.runFiles(traces);
  std::string ferr;
  const bool wrote = replay.finish(&ferr);
  const ReplaySummary& s = replay.summary();
  // A trace that was opened and then found damaged (a record cut off, the file shrinking) still
  // gets its page, of the packets before the damage: summary.error says where (the page too).
  const bool damaged_after_open =
      s.error && !s.interrupted && !s.traces.empty() && s.traces.back().path == s.error->file;
  if (!complete && !damaged_after_open) {
    *err = s.error ? s.error->str() : "the replay stopped";
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
