// `statewall flowlogs`: judges VPC Flow Logs records with a policy, through the same engine as
// `statewall replay` (dataplane::Engine), never a second evaluator.
//
// A record is one interface's view of one direction of a flow over an aggregation window. The
// judge pairs records into connections (the 5-tuple either way round; both directions' records;
// the same packets seen by two interfaces, the source's egress and the destination's ingress, are
// one set of packets) and drives the engine with packets synthesized in time order from them:
//   - TCP: the record's first packet is a SYN when its tcp-flags show SYN, a SYN-ACK when they show
//     SYN-ACK (followed by the originator's handshake ACK when the SYN's record counted more than
//     one packet), a lone RST or FIN when the record holds one packet with that flag, otherwise a
//     mid-stream segment; a record of several packets gets a last one (FIN, RST, or a segment) at
//     its end, so the connection's idle clock follows the log. Sequence numbers follow each
//     direction, so the engine's window tracking sees a consistent stream.
//   - UDP and other protocols: a datagram at the start, another at the end of a longer record.
//   - ICMP: flow logs carry no type (ports are 0): the first direction of an address pair sends
//     echo requests, the other echo replies. ICMP errors cannot be told from echoes; they are
//     judged as echoes (the README says so).
// The engine's clock is the records' time: windows advance it, so idle timeouts apply across
// windows as they did in AWS. Each record's action is compared with the engine's verdict at the
// record's interface (sim::actionAtSide): the source's egress accepts what its own groups and ACL
// let out even when the destination denies it.
//
// Streaming: records go through a reorder buffer of `reorder_s` seconds of log time (at most
// `max_buffered` records); a record older than what was already released is judged at the time
// reached (counted as late, the first one named). Memory is bounded by the connections alive in
// that window (a connection's state is dropped when the engine's timeouts have certainly expired
// it) plus the listed findings, each list capped.
//
// Single-threaded.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/policy_diff.hpp"
#include "statewall/sim/flowlog.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {

struct FlowLogJudgeOptions {
  uint64_t reorder_s = 600;         // log time a record may arrive late and still be ordered
  size_t max_buffered = 1 << 20;    // records held for reordering at most
  size_t table_capacity = 1 << 20;  // the engines' connection tables
  size_t max_listed = 10000;        // distinct disagreements / changed connections kept
};

// Why a record was counted but not judged.
enum class FlowLogSkip : uint8_t {
  kNoData,              // log-status NODATA: no traffic in the window
  kSkipData,            // log-status SKIPDATA: records lost in the window
  kUnknownInterface,    // interface-id names no interface of the policy, nor do the addresses
  kAddressNotInPolicy,  // the interface is known but the policy does not give it the address
  kCount
};
inline constexpr size_t kFlowLogSkipCount = static_cast<size_t>(FlowLogSkip::kCount);
std::string_view flowLogSkipName(FlowLogSkip s);  // "nodata", "skipdata", ...

// Why the policy's verdict at an interface differs from the logged action.
enum class DisagreeCause : uint8_t {
  kNoRule,           // logged ACCEPT, and no rule of the loaded policy allows it there
  kDeniedAtSource,   // logged at the destination, but the policy denies it at the source
  kAfterIdle,        // logged ACCEPT mid-connection after an idle gap: statewall's tracking
                     // had expired (the timeouts differ from the ones that ran)
  kBeganBeforeLogs,  // logged ACCEPT for the reply direction of a connection whose opening is
                     // not in the logs, and the interface's rules do not allow that direction
  kRuleAllows,       // logged REJECT, and a rule of the loaded policy allows it
  kTrackedHere,      // logged REJECT, and statewall passes it as part of a tracked connection
  kOther,            // invalid, table full, malformed, unprotected, exempt
  kCount
};
std::string_view disagreeCauseName(DisagreeCause c);     // "no-rule", ...
std::string_view disagreeCauseMeaning(DisagreeCause c);  // one sentence for people

// Records grouped by interface, logged flow, logged action and cause.
struct Disagreement {
  std::string interface;  // the policy's interface name
  std::string logged_id;  // interface-id as logged
  FlowKey flow;           // as logged (pkt addresses), ports 0 for ICMP
  bool egress = false;
  FlowAction logged = FlowAction::kNone;
  FlowAction policy = FlowAction::kNone;
  DisagreeCause cause = DisagreeCause::kOther;
  std::string detail;  // the engine's verdict, in replay's words
  std::string where;   // FILE:LINE of the first record
  uint64_t records = 0, packets = 0, bytes = 0, first = 0, last = 0;
};

// --against: a connection whose logged action NEW would reverse.
struct ChangedConnection {
  bool breaks = false;    // logged ACCEPT, NEW rejects (false: logged REJECT, NEW accepts)
  long change = -1;       // index into FlowLogReport::diff.changes; -1 none single
  std::string note;       // when change is -1
  std::string interface;  // where it was logged (the first record)
  FlowKey flow;           // the first record's flow
  std::string old_detail, new_detail;
  std::string where;
  uint64_t records = 0, packets = 0, bytes = 0, first = 0, last = 0;
};

struct RuleUse {
  uint64_t hits = 0;  // records whose opening this rule allowed (security-group rules) or that
                      // this entry matched (ACL entries: stateless, every record counts)
  std::vector<std::pair<rules::IfaceId, uint64_t>> by_iface;
};

struct FlowLogReport {
  uint64_t records = 0;  // read (every status)
  uint64_t judged = 0;
  std::array<uint64_t, kFlowLogSkipCount> skipped{};
  uint64_t agree = 0;
  uint64_t accept_rejected = 0;  // logged ACCEPT, the policy rejects (or never lets it arrive)
  uint64_t reject_accepted = 0;  // logged REJECT, the policy accepts
  std::array<uint64_t, static_cast<size_t>(DisagreeCause::kCount)> by_cause{};
  std::vector<Disagreement> disagreements;  // most records first
  uint64_t disagreements_unlisted = 0;      // records beyond max_listed groups
  uint64_t late = 0;                        // records older than the reorder window allowed
  std::string late_first;                   // FILE:LINE
  uint64_t first_start = 0, last_end = 0;   // seconds; 0 when nothing was judged
  uint64_t connections = 0;                 // distinct connections paired from the records
  uint64_t peak_connections_held = 0;       // the most connection states held at once
  dataplane::Counters engine;               // the engine's counters over the synthesized packets

  bool against = false;
  rules::PolicyDiff diff;
  std::vector<ChangedConnection> changed;  // grouped by change, most records first
  uint64_t break_connections = 0, open_connections = 0;
  uint64_t break_records = 0, open_records = 0;
  uint64_t changed_unlisted = 0;

  std::vector<RuleUse> rule_use;        // per rules::RuleId of the policy
  std::vector<RuleUse> acl_use;         // per rules::AclEntryId
  std::vector<uint64_t> iface_records;  // per rules::IfaceId: records judged there
  double days() const { return last_end > first_start ? (last_end - first_start) / 86400.0 : 0; }
};

class FlowLogJudge {
 public:
  // `against` may be null (no --against).
  FlowLogJudge(rules::CompiledPolicyPtr policy, rules::CompiledPolicyPtr against,
               FlowLogJudgeOptions options = {});
  ~FlowLogJudge();
  FlowLogJudge(const FlowLogJudge&) = delete;
  FlowLogJudge& operator=(const FlowLogJudge&) = delete;

  // One record read from `file` at `line` (the record's strings are copied as needed).
  void add(const FlowLogRecord& r, std::string_view file, uint64_t line);
  // Judges what the reorder buffer still holds, runs the last synthesized packets, sorts the lists.
  void finish();
  const FlowLogReport& report() const;
  const rules::CompiledPolicy& policy() const;
  const rules::CompiledPolicy* againstPolicy() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The logs a judge read: each file's record count, or the first error.
struct FlowLogFilesRead {
  std::vector<std::pair<std::string, uint64_t>> files;  // path (" (gzip)" appended), records
  std::optional<FlowLogError> error;  // FILE:LINE of a broken line, or a file that cannot be read
};

// Reads `paths` in order (plain or gzip; "-" is standard input) into `judge`, records without a
// header line read with `fallback`'s fields. Stops at the first error: then the judge has seen a
// half-read input and nothing may be reported from it. The caller calls judge.finish().
FlowLogFilesRead judgeFlowLogFiles(FlowLogJudge& judge, const std::vector<std::string>& paths,
                                   const FlowLogFormat& fallback);

}  // namespace statewall::sim
