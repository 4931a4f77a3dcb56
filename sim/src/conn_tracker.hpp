// Which connection a judged packet belongs to: the one owner of that attribution for the replay's
// connection log (and the shape report.cpp and explain.cpp can use instead of re-deriving it).
//
// A packet with an engine connection id belongs to that connection's record (a new record when
// the engine reused the id: kFlagNewConnection); an ICMP error about a connection is counted on
// it, not mixed into its packets. A packet without one (denied, untracked) belongs to the record
// of its bidirectional flow (ICMP queries by their id). Records end when the engine no longer
// holds their connection, when a flow is idle beyond its timeout (found by a scan, or by the
// flow's next packet, which then starts a new record, as Zeek's inactivity timer ends a
// connection: the records do not depend on when scans run), or at the end; beyond a bound of
// flows without a connection at once, the longest idle are ended early. Single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flat_map.hpp"
#include "flow_key.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/sim/conn_log.hpp"

namespace statewall::sim::detail {

// Connection numbers (#1, #2, ... in order of first packet): what every output a person reads
// shows instead of the engine's id. Ids the engine no longer holds are forgotten now and then, so
// memory follows the live connections, not the trace.
class ConnNumbers {
 public:
  // Numbers the connections of a judged burst that have none yet, in packet order.
  void number(const dataplane::Verdict* v, unsigned n, const dataplane::Engine* engine);
  // The number given to an engine id; 0 when none (or forgotten).
  uint64_t find(uint64_t engine_id) const {
    const uint64_t* found = numbers_.find(engine_id);
    return found != nullptr ? *found : 0;
  }

 private:
  using Map = FlatMap<uint64_t, uint64_t, U64Hash, U64Eq>;
  mutable Map numbers_{1024};
  uint64_t given_ = 0;
  size_t prune_at_ = 1 << 16;
};

// Receives the records that ended, in order of first packet.
class ConnSink {
 public:
  virtual ~ConnSink() = default;
  virtual void connectionsEnded(const ConnRecord* records, size_t n) = 0;
};

class ConnTracker {
 public:
  static constexpr size_t kMinScan = 1 << 16;
  // Where a packet went.
  struct Attribution {
    ConnRecord* record = nullptr;  // null: not attributed (non-IP, control, malformed)
    bool from_orig = true;         // sent by the record's originator (before the record's flip)
    bool icmp_error = false;       // an ICMP error about the record's connection
  };

  // `numbers` (may be null) gives records their connection numbers. `min_scan`: records held
  // before settle() looks for ended ones, and the least bound of flows without a connection kept
  // at once (tests lower it).
  ConnTracker(ConnSink* sink, const ConnNumbers* numbers, size_t min_scan = kMinScan)
      : sink_(sink),
        numbers_(numbers),
        min_scan_(std::max<size_t>(1, min_scan)),
        next_scan_(min_scan_),
        untracked_cap_(min_scan_) {}

  // Before each burst: the engine that judged it (for which connections it still holds), the
  // clock it was judged at, the idle timeouts of the policy in force, and the connection-table
  // capacity (which bounds the flows without a connection kept at once).
  void advance(const dataplane::Engine* engine, uint64_t clock, const rules::Timeouts* timeouts,
               size_t table_capacity);
  // A tunnel a frame came through (with decapsulation): its kind and the packet that carried it
  // (for the outermost tunnel, the frame parsed without decapsulation).
  struct Carrier {
    dataplane::EncapHeader::Kind kind{};
    dataplane::ParsedPacket packet;
  };
  // Counts a frame's tunnels (outermost first) in their own records, of kind tunnel, keyed by the
  // carrying flow; the next observe() (the frame's inner packet) lists them as its parents. `v`:
  // the verdict on the inner packet, which is the frame's (a tunnel record's first_reason is its
  // first frame's; denied_pkts counts its frames denied).
  void observeTunnels(const Carrier* carriers, size_t n, const dataplane::Verdict& v, uint64_t ts);

  // Attributes one judged packet and counts it in its record (valid until settle() or the next
  // observe()). Call settle() after each.
  Attribution observe(const dataplane::ParsedPacket& p, const dataplane::Verdict& v, uint64_t ts);
  // Ends the records whose connection is over, when enough have gathered since the last look.
  void settle();
  // Ends every record (the end of the run).
  void endAll() { scan(true); }
  // How long a record's flow may stay idle before it has timed out: the timeout of the state its
  // packets show (TCP closed, half-open or established; UDP one-way or stream; ICMP; other).
  static uint64_t idleLimitNs(const ConnRecord& r, const rules::Timeouts& timeouts);
  // The key of a packet's bidirectional flow (the same from either direction), as records
  // without a connection id are kept: addresses and ports, ICMP by type and code, ICMP queries
  // by their identifier.
  static FlowKey flowKeyOf(const dataplane::ParsedPacket& p);
  // Records of flows without a connection ended early (more such flows than the bound).
  uint64_t endedEarly() const { return ended_early_; }

 private:
  void scan(bool final);
  // The part of scan() for records keyed by flow (without a connection, or tunnels).
  void scanFlows(FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq>& flows, bool final,
                 std::vector<ConnRecord>* done);
  // The record of a flow without a connection id, and whether `p` came from its originator.
  ConnRecord& flowRecord(FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq>& flows,
                         const dataplane::ParsedPacket& p, const dataplane::Verdict* v, uint64_t ts,
                         bool* from_orig);
  // A new tracked connection takes over the record of its flow's earlier untracked packets
  // (into *r) when there is one Zeek would still hold; false when there is none.
  bool adoptFlowRecord(const dataplane::ParsedPacket& p, uint64_t ts, ConnRecord* r);
  uint64_t idleLimitNs(const ConnRecord& r) const { return idleLimitNs(r, *timeouts_); }
  ConnEnd endOf(const ConnRecord& r, bool in_engine) const;
  void begin(ConnRecord& r, const dataplane::ParsedPacket& p, bool reply) {
    r.seq = seq_++;
    r.begin(p, reply);
  }

  ConnSink* sink_;
  const ConnNumbers* numbers_;
  const dataplane::Engine* engine_ = nullptr;
  uint64_t clock_ = 0;
  const rules::Timeouts* timeouts_ = nullptr;
  FlatMap<uint64_t, ConnRecord, U64Hash, U64Eq> tracked_{1024};
  FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq> untracked_{1024};
  FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq> tunnels_{16};
  // The tunnel records of the frame whose inner packet observe() attributes next.
  uint64_t pending_parents_[ConnRecord::kMaxParents] = {};
  size_t pending_count_ = 0;
  uint64_t seq_ = 0;
  size_t min_scan_;
  size_t next_scan_;
  size_t untracked_cap_;  // records of flows without a connection kept at once
  uint64_t ended_early_ = 0;
  bool look_ = false;  // settle() looks (not after an ICMP error about a connection)

 public:
  ConnTracker(const ConnTracker&) = delete;
  ConnTracker& operator=(const ConnTracker&) = delete;
};

}  // namespace statewall::sim::detail
