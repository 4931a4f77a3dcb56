// `statewall report`: one self-contained HTML page about a replay (issue 7), for people learning
// security-group semantics from their own traffic.
//
// The data model is built by a ReportBuilder that observes every packet of a sim::Replay (through
// Replay::setObserver) and is finished with the replay's summary. It keeps, per connection, the
// counts the page needs and, for the first `ladder_connections` connections only, up to
// `ladder_arrows` packets each for the ladder diagrams: memory and page size stay bounded however
// long the trace is. renderReportHtml() turns the model into the page (inline CSS, JS and SVG;
// nothing is loaded from the network). Every string that comes from the trace or the policy is
// escaped for the context it lands in (HTML text, HTML attribute, JSON inside <script>).
//
// Connections follow the replay's connection log (sim/conn_log.hpp): one record per engine
// connection id, and for packets without one (denied flows) one record per bidirectional flow
// until it has been idle longer than its timeout (at most as many such flows at once as the table
// holds connections: beyond that the longest idle are counted as open and forgotten). Only the
// listed records are kept to the end; the others are counted when their connection is over. ICMP
// errors about a connection belong to it (drawn in its ladder, not counted in its Zeek packet
// counts).
//
// The connection-table size over time is modelled from the verdicts, because the Replay does not
// expose the engine's table between bursts: +1 for every packet with kFlagNewConnection; an entry's
// idle deadline is pushed out by each packet that refreshes it (an allowed packet of the
// connection that is neither INVALID, nor a related ICMP error, nor a later fragment) by the
// policy's timeout for its state (TCP state after the packet, UDP one-way or stream, ICMP echo,
// other); the entry leaves the table when the trace clock passes the deadline with no packet (an
// idle expiry) or when a SYN reopens it. The engine's own counters are shown next to it.
//
// Not thread-safe: one thread builds and renders.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/tcp_tracker.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/sim/conn_log.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {

struct ReportOptions {
  std::string title = "statewall report";
  size_t ladder_connections = 300;  // the first N connections (by first packet) get a ladder
  size_t ladder_arrows = 60;        // at most M packets drawn per ladder
  size_t max_connections = 20000;   // connections listed on the page (the first ones)
  size_t chart_buckets = 600;       // the table-size curve: at most this many time buckets
  size_t max_expiry_markers = 600;  // expiry markers drawn (grouped by bucket beyond that)
  size_t max_changes = 200;         // stateless changes listed (by flow)
  size_t table_capacity = 0;        // the replay's connection table (0: sized from the input)
  // Tunnels judged as the outer packet, or with parse.decap the innermost one (--decap,
  // --tunnel-port), as ReplayOptions::parse.
  dataplane::ParseOptions parse{};
  // Records held before the builder looks for ended ones to forget (and at least as many flows
  // without a connection kept at once); tests lower it.
  size_t min_scan = 1 << 16;
};

// Where a ladder's packet stops, left to right: the originator's interface (its security
// groups), the originator's subnet edge (its network ACL), the responder's subnet edge, the
// responder's interface; kBetween for a denial by neither (malformed, INVALID, fragments).
enum class LadderStop : uint8_t {
  kPassed,
  kLeftGroups,
  kLeftAcl,
  kRightAcl,
  kRightGroups,
  kBetween
};

// One packet drawn in a ladder.
struct LadderArrow {
  uint64_t index = 0;  // 1-based packet index in the replay
  uint64_t ts_ns = 0;
  bool from_orig = true;  // sent by the connection's originator (left lane)
  bool icmp_error = false;
  dataplane::Reason reason = dataplane::Reason::kAllowRule;
  uint16_t flags = 0;  // dataplane::VerdictFlag bits
  uint8_t proto = 0;
  uint8_t tcp_flags = 0;  // TCP only
  uint8_t icmp_type = 0;  // ICMP / ICMPv6
  uint8_t icmp_code = 0;
  dataplane::TcpState tcp_before = dataplane::TcpState::kNone;
  dataplane::TcpState tcp_after = dataplane::TcpState::kNone;
  bool stateless_differs = false;  // a stateless filter with the same rules decides otherwise
  dataplane::Reason stateless = dataplane::Reason::kAllowRule;
  uint32_t payload = 0;  // transport payload bytes
  uint32_t text = 0;     // ReportData::texts: what decided it (Replay::describe's words)
  LadderStop stop = LadderStop::kPassed;
};

struct ReportConnection {
  ConnRecord rec;  // Zeek vocabulary: endpoints, conn_state, history, packets and bytes each way
  std::array<uint64_t, dataplane::kReasonCount> by_reason{};  // every packet of it, errors too
  uint64_t packets = 0;            // every packet attributed to it (== sum of by_reason)
  uint64_t stateless_changed = 0;  // its packets a stateless filter would treat otherwise
  bool has_ladder = false;
  std::vector<LadderArrow> arrows;  // the first ladder_arrows packets (when has_ladder)
  // The encapsulation its first packet was judged inside (docs/design.md "Encapsulation and
  // tunnels"), in words: "vlan:100, mpls:16"; "" for none (or when the frames could not be read
  // a second time: ReportBuilder::readFramesFrom).
  std::string encap;
  uint64_t allowed() const;
  uint64_t denied() const;
};

struct TablePoint {
  uint64_t ts_ns = 0;
  uint64_t size = 0;
};

struct ExpiryEvent {
  uint64_t ts_ns = 0;                                 // when the deadline passed (trace time)
  uint64_t conn_id = 0;                               // the engine's id
  rules::TimeoutKey key = rules::TimeoutKey::kOther;  // the timeout that fired
  uint64_t conn_number = 0;                           // #N, as the page shows it
};

// Idle expiries in one time bucket of the chart.
struct ExpiryBin {
  uint64_t from_ns = 0;
  uint64_t to_ns = 0;
  uint64_t count = 0;
};

struct ReportData {
  ReportOptions options;
  ReplaySummary summary;
  rules::CompiledPolicyPtr policy;

  std::vector<ReportConnection> connections;  // by first packet; at most max_connections
  // The distinct verdict descriptions of the ladders' packets ("allow-rule (by web inbound[0]
  // \"tcp 443 from 0.0.0.0/0\")"), shared by LadderArrow::text.
  std::vector<std::string> texts;
  uint64_t connections_total = 0;  // records, including those not listed
  // Records of flows without a connection forgotten while still open (more such flows at once
  // than the connection table holds); a later packet of one started a new record.
  uint64_t connections_forgotten_early = 0;
  std::vector<std::pair<std::string, uint64_t>> conn_states;  // over all records, most first
  std::array<uint64_t, 3> conn_ends{};                        // by ConnEnd, all records
  uint64_t unattributed_packets = 0;  // non-IP, control (ARP/ND), malformed: no connection

  // TCP state machine: packets per (before, after) of every TCP packet of a tracked connection
  // (before == after: the packet left the state as it was), INVALID packets per state, reopened
  // connections and expiries per state.
  std::array<std::array<uint64_t, dataplane::kTcpStateCount>, dataplane::kTcpStateCount>
      tcp_moves{};
  std::array<uint64_t, dataplane::kTcpStateCount> tcp_invalid{};
  std::array<uint64_t, dataplane::kTcpStateCount> tcp_expired{};
  uint64_t tcp_reopened = 0;

  // Per packet, the stateless comparison (rules::EvalMode::kFull for every IP packet).
  uint64_t stateless_to_deny = 0;   // allowed statefully, denied by the rules alone
  uint64_t stateless_to_allow = 0;  // denied statefully, allowed by the rules alone
  std::array<uint64_t, dataplane::kReasonCount> stateless_by_reason{};

  // Connection table (the model described at the top of this file).
  std::vector<TablePoint> table;  // bucketed: the maximum of each bucket, in time order
  uint64_t table_peak = 0;
  uint64_t table_final = 0;
  uint64_t connections_created = 0;  // packets with kFlagNewConnection
  uint64_t expiries_total = 0;
  std::vector<ExpiryEvent> expiries;   // the first max_expiry_markers
  std::vector<ExpiryBin> expiry_bins;  // all expiries, by chart bucket (non-empty buckets only)
  std::array<uint64_t, rules::kTimeoutKeyCount> expiries_by_key{};
};

// Observes a replay packet by packet and builds the model.
class ReportBuilder {
 public:
  ReportBuilder(rules::CompiledPolicyPtr policy, ReportOptions options);
  ~ReportBuilder();
  ReportBuilder(const ReportBuilder&) = delete;
  ReportBuilder& operator=(const ReportBuilder&) = delete;

  // The observer body: call for every packet, in input order (Replay::setObserver).
  void observe(uint64_t index, uint64_t ts_ns, const dataplane::Verdict& v,
               const dataplane::ParsedPacket& p);
  // Installs observe() as `replay`'s observer (the builder must outlive the run). The builder
  // then also asks the replay's engine which connections are live, to forget the records of
  // those that are over (beyond the ones listed): memory follows the live connections.
  void attach(Replay& replay);
  // Reads the frames of `traces` (the ones the attached replay runs, in the same order) to name
  // each connection's encapsulation: the observer is given the packet judged, not the frame it
  // came in. Traces that are not regular files are not read (no encapsulation is named).
  void readFramesFrom(const std::vector<std::string>& traces);
  // The modelled connection-table size after the packets observed so far (entries whose idle
  // deadline has passed at the newest packet's time are gone).
  size_t tableSize() const;
  // Ends the model with the replay's summary (after Replay::finish). Call once.
  ReportData finish(const ReplaySummary& summary);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Replays `traces` through `policy` (with the stateless comparison on) and builds the model.
// false with *err when a trace cannot be opened; *out then holds nothing useful. A trace found
// damaged after it was opened (its last record cut off) still gives the model of the packets
// before the damage: true, with out->summary.error saying where.
bool buildReport(rules::CompiledPolicyPtr policy, const std::vector<std::string>& traces,
                 const ReportOptions& options, ReportData* out, std::string* err);

// The page. Deterministic for the same model.
std::string renderReportHtml(const ReportData& data);

// Escaping, exposed for tests. htmlEscape: & < > " ' as entities (text and quoted attributes).
// scriptJsonString: a JSON string literal safe inside an HTML <script> element (<, >, & and the
// line separators U+2028/U+2029 as \u escapes; invalid UTF-8 bytes become U+FFFD).
std::string htmlEscape(std::string_view s);
std::string scriptJsonString(std::string_view s);

}  // namespace statewall::sim
