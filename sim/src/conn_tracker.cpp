#include "conn_tracker.hpp"

#include <algorithm>
#include <tuple>

namespace statewall::sim::detail {

using dataplane::kFlagConnClosed;
using dataplane::kFlagControl;
using dataplane::kFlagNewConnection;
using dataplane::kFlagReply;
using dataplane::L3;
using dataplane::ParsedPacket;
using dataplane::Reason;
using dataplane::Verdict;

void ConnNumbers::number(const Verdict* v, unsigned n, const dataplane::Engine* engine) {
  for (unsigned i = 0; i < n; ++i) {
    const uint64_t id = v[i].conn_id;
    if (id == 0) continue;
    bool inserted = false;
    uint64_t& slot = numbers_.findOrInsert(id, &inserted);
    if (!inserted) continue;
    slot = ++given_;
    if (numbers_.size() <= prune_at_ || engine == nullptr) continue;
    // An id whose entry died never comes back (a new entry gets a new generation): keep the live
    // ones only, and those of this burst (its outputs are still to come).
    Map keep(numbers_.size());
    auto keepId = [&](uint64_t x) {
      if (const uint64_t* num = numbers_.find(x)) {
        bool ins = false;
        keep.findOrInsert(x, &ins) = *num;
      }
    };
    engine->forEachConnection([&](const dataplane::ConnectionInfo& c) { keepId(c.id); });
    for (unsigned j = 0; j <= i; ++j)
      if (v[j].conn_id != 0) keepId(v[j].conn_id);
    numbers_ = std::move(keep);
    prune_at_ = std::max<size_t>(1 << 16, numbers_.size() * 2);
  }
}

void ConnTracker::advance(const dataplane::Engine* engine, uint64_t clock,
                          const rules::Timeouts* timeouts, size_t table_capacity) {
  engine_ = engine;
  clock_ = clock;
  timeouts_ = timeouts;
  untracked_cap_ = std::max(min_scan_, table_capacity);
}

ConnTracker::Attribution ConnTracker::observe(const ParsedPacket& p, const Verdict& v,
                                              uint64_t ts) {
  Attribution a;
  const size_t parents = pending_count_;
  pending_count_ = 0;
  if ((p.l3 != L3::kIpv4 && p.l3 != L3::kIpv6) || (v.flags & kFlagControl) ||
      v.reason == Reason::kDenyMalformed) {
    return a;
  }
  const bool allowed = v.allowed();
  ConnRecord* r;
  if (v.conn_id != 0) {
    bool inserted = false;
    r = &tracked_.findOrInsert(v.conn_id, &inserted);
    if (!inserted && (v.flags & kFlagNewConnection)) {
      // The engine reused the id for a new connection: the old one is over.
      ConnRecord old = *r;
      old.end = endOf(old, /*in_engine=*/false);
      sink_->connectionsEnded(&old, 1);
      *r = ConnRecord{};
      inserted = true;
    }
    const bool reply = (v.flags & kFlagReply) != 0;
    if (!inserted && r->proto == dataplane::kIpProtoTcp && p.proto == r->proto &&
        r->removedBefore(ts)) {
      // Zeek would have removed the connection by now: what follows is a new record.
      ConnRecord old = *r;
      old.end = endOf(old, /*in_engine=*/true);
      sink_->connectionsEnded(&old, 1);
      *r = ConnRecord{};
      // Oriented by its own first packet, as Zeek orients a new connection.
      begin(*r, p, false);
      r->sided_by_address = true;
      r->first_reason = v.reason;
    } else if (inserted) {
      if (!adoptFlowRecord(p, ts, r)) {
        begin(*r, p, reply);
        r->first_reason = v.reason;
      }
    }
    if (inserted || r->conn_id == 0) {
      r->conn_id = v.conn_id;
      r->conn_number = numbers_ != nullptr ? numbers_->find(v.conn_id) : 0;
    }
    a.record = r;
    a.from_orig = r->sided_by_address ? r->fromFirstSender(p) : !reply;
    for (size_t i = 0; i < parents; ++i)
      r->addParent(pending_parents_[i]);
    if (p.icmp_is_error && r->proto != p.proto) {
      // An ICMP error about this connection: counted, not mixed into its packet counts.
      a.icmp_error = true;
      ++r->icmp_errors;
      if (!allowed) ++r->denied_pkts;
      return a;
    }
  } else {
    r = &flowRecord(untracked_, p, &v, ts, &a.from_orig);
    a.record = r;
    for (size_t i = 0; i < parents; ++i)
      r->addParent(pending_parents_[i]);
  }
  r->observe(p, a.from_orig, ts);
  if (!allowed) ++r->denied_pkts;
  if (v.flags & kFlagConnClosed) r->engine_closed = true;
  // The rule that opened it: the one that allowed the record's first packet (a flow whose first
  // packet was denied was never opened, whatever later packets did).
  if (r->orig.pkts + r->resp.pkts == 1 &&
      (v.reason == Reason::kAllowRule || v.reason == Reason::kAllowUntracked)) {
    r->opened_by = v.rule;
  }
  look_ = true;
  return a;
}

bool ConnTracker::adoptFlowRecord(const ParsedPacket& p, uint64_t ts, ConnRecord* r) {
  // The packets of a flow seen before the engine tracked it (a FIN, then a mid-stream pickup
  // by the ACK that answers it) are the start of the same connection, as Zeek logs them.
  if (p.proto != dataplane::kIpProtoTcp && p.proto != dataplane::kIpProtoUdp) return false;
  const FlowKey key = flowKeyOf(p);
  ConnRecord* found = untracked_.find(key);
  if (found == nullptr || found->removedBefore(ts) || found->is_tunnel) return false;
  *r = *found;
  r->sided_by_address = true;
  untracked_.erase(key);
  return true;
}

FlowKey ConnTracker::flowKeyOf(const ParsedPacket& p) {
  FlowKey k = keyOf(p);
  if (rules::protoIsIcmp(p.proto) && (p.icmp_is_query_request || p.icmp_is_query_reply)) {
    k.sport = k.dport = p.icmp_id;
  }
  FlowKey rev = k;
  std::swap(rev.src, rev.dst);
  std::swap(rev.sport, rev.dport);
  const bool forward = std::tie(k.src, k.sport) <= std::tie(rev.src, rev.sport);
  return forward ? k : rev;
}

ConnRecord& ConnTracker::flowRecord(FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq>& flows,
                                    const ParsedPacket& p, const Verdict* v, uint64_t ts,
                                    bool* from_orig) {
  bool inserted = false;
  ConnRecord& r = flows.findOrInsert(flowKeyOf(p), &inserted);
  const bool idle = !inserted && ts > r.last_ns && ts - r.last_ns > idleLimitNs(r);
  if (idle || (!inserted && r.proto == dataplane::kIpProtoTcp && r.removedBefore(ts))) {
    // Zeek would have removed the connection by now (or it is idle beyond its timeout, which a
    // scan would have ended): what follows is a new record.
    ConnRecord old = r;
    old.end = endOf(old, /*in_engine=*/false);
    if (idle && old.end == ConnEnd::kOpen) old.end = ConnEnd::kTimedOut;
    sink_->connectionsEnded(&old, 1);
    r = ConnRecord{};
    inserted = true;
  }
  if (inserted) {
    begin(r, p, false);
    if (v != nullptr) r.first_reason = v->reason;
  }
  // Sent by the sender of the record's first packet? (The record applies its own flip.)
  const rules::IpAddr& first_src = r.flipped ? r.resp_h : r.orig_h;
  const uint16_t first_sport = r.flipped ? r.resp_p : r.orig_p;
  *from_orig =
      inserted || (p.src == first_src && (rules::protoIsIcmp(p.proto) || p.sport == first_sport));
  return r;
}

void ConnTracker::observeTunnels(const Carrier* carriers, size_t n, const Verdict& v, uint64_t ts) {
  pending_count_ = 0;
  for (size_t i = 0; i < n; ++i) {
    bool from_orig = true;
    ConnRecord& r = flowRecord(tunnels_, carriers[i].packet, &v, ts, &from_orig);
    if (!r.is_tunnel) {
      r.is_tunnel = true;
      r.tunnel = carriers[i].kind;
    }
    r.observe(carriers[i].packet, from_orig, ts);
    if (!v.allowed()) ++r.denied_pkts;
    if (pending_count_ < ConnRecord::kMaxParents) pending_parents_[pending_count_++] = r.seq;
  }
}

void ConnTracker::settle() {
  if (!look_) return;
  look_ = false;
  if (tracked_.size() + untracked_.size() >= next_scan_ || untracked_.size() > untracked_cap_) {
    scan(false);
  }
}

uint64_t ConnTracker::idleLimitNs(const ConnRecord& r, const rules::Timeouts& timeouts) {
  using K = rules::TimeoutKey;
  K k;
  if (r.proto == dataplane::kIpProtoTcp) {
    k = r.tcpClosed()                                                     ? K::kTcpTimeWait
        : (r.orig.syn || r.resp.synack) && !(r.orig.synack || r.resp.any) ? K::kTcpSynSent
                                                                          : K::kTcpEstablished;
  } else if (r.proto == dataplane::kIpProtoUdp) {
    k = r.orig.any && r.resp.any ? K::kUdpStream : K::kUdp;
  } else if (rules::protoIsIcmp(r.proto)) {
    k = K::kIcmp;
  } else {
    k = K::kOther;
  }
  return static_cast<uint64_t>(timeouts.get(k)) * 1000000000ull;
}

ConnEnd ConnTracker::endOf(const ConnRecord& r, bool in_engine) const {
  if (r.engine_closed || (r.proto == dataplane::kIpProtoTcp && r.tcpClosed())) {
    return ConnEnd::kClosed;
  }
  if (r.conn_id != 0) return in_engine ? ConnEnd::kOpen : ConnEnd::kTimedOut;
  return r.last_ns + idleLimitNs(r) <= clock_ ? ConnEnd::kTimedOut : ConnEnd::kOpen;
}

void ConnTracker::scan(bool final) {
  FlatMap<uint64_t, char, U64Hash, U64Eq> live(tracked_.size() * 2 + 16);
  if (engine_ != nullptr && !tracked_.empty()) {
    const uint64_t now = clock_;
    engine_->forEachConnection([&](const dataplane::ConnectionInfo& c) {
      if (c.expires_ns > now) {
        bool ins = false;
        live.findOrInsert(c.id, &ins);
      }
    });
  }
  std::vector<ConnRecord> done;
  {
    auto& keys = tracked_.keys();
    auto& vals = tracked_.values();
    std::vector<uint64_t> gone;
    for (size_t i = 0; i < vals.size(); ++i) {
      bool in_engine = live.find(keys[i]) != nullptr;
      if (final || !in_engine) {
        vals[i].end = endOf(vals[i], in_engine);
        done.push_back(vals[i]);
        gone.push_back(keys[i]);
      }
    }
    for (uint64_t id : gone)
      tracked_.erase(id);
  }
  scanFlows(untracked_, final, &done);
  scanFlows(tunnels_, final, &done);
  std::sort(done.begin(), done.end(), [](const ConnRecord& a, const ConnRecord& b) {
    return a.first_ns != b.first_ns ? a.first_ns < b.first_ns : a.seq < b.seq;
  });
  if (!done.empty()) sink_->connectionsEnded(done.data(), done.size());
  next_scan_ = std::max(min_scan_, 2 * (tracked_.size() + untracked_.size()));
}

void ConnTracker::scanFlows(FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq>& flows, bool final,
                            std::vector<ConnRecord>* done) {
  auto& keys = flows.keys();
  auto& vals = flows.values();
  std::vector<FlowKey> gone;
  std::vector<size_t> kept;
  for (size_t i = 0; i < vals.size(); ++i) {
    ConnEnd e = endOf(vals[i], false);
    if (final || e == ConnEnd::kTimedOut ||
        (e == ConnEnd::kClosed && vals[i].last_ns + idleLimitNs(vals[i]) <= clock_)) {
      vals[i].end = e;
      done->push_back(vals[i]);
      gone.push_back(keys[i]);
    } else {
      kept.push_back(i);
    }
  }
  // More flows without a connection than the table holds connections (a flood of denied
  // SYNs, many untracked flows): the longest idle are written now, so that memory stays
  // bounded; a later packet of one of them starts a new record.
  if (kept.size() > untracked_cap_ * 3 / 4) {
    const size_t drop = kept.size() - untracked_cap_ / 2;
    std::nth_element(
        kept.begin(), kept.begin() + static_cast<long>(drop), kept.end(), [&](size_t a, size_t b) {
          return std::tie(vals[a].last_ns, vals[a].seq) < std::tie(vals[b].last_ns, vals[b].seq);
        });
    for (size_t j = 0; j < drop; ++j) {
      ConnRecord& r = vals[kept[j]];
      r.end = endOf(r, false);
      done->push_back(r);
      gone.push_back(keys[kept[j]]);
    }
    ended_early_ += drop;
  }
  for (const auto& k : gone)
    flows.erase(k);
}

}  // namespace statewall::sim::detail
