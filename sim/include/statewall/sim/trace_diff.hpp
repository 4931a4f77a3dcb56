// What changes between two policies on recorded traffic (`statewall diff ... TRACE...`).
//
// The traces are read once and every packet goes to two replay drivers (sim/replay.hpp), one per
// policy, in the same chunks, so both engines see the same bursts at the same times and connection
// tracking is simulated under each policy on its own. Every connection with a packet whose verdict
// differs is kept with the reason under each policy and the rule change responsible (found by
// evaluating its first differing packet under both policies, sim/change_cause.hpp).
//
// Single-threaded; the result owns its data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/policy_diff.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {

// One packet whose verdict differs under the two policies.
struct ChangedPacket {
  uint64_t index = 0;  // the packet's number in the traces, as replay numbers it
  FlowKey flow;        // as it travelled
  std::string_view old_reason, new_reason;  // dataplane::reasonCode()
  std::string old_detail, new_detail;       // Replay::describe() under each policy
};

struct TraceDiffOptions {
  size_t table_capacity = 1 << 20;  // each engine's connection table (IPv4)
  dataplane::ParseOptions parse{};  // how frames are parsed (--decap)
  size_t max_flows = 100000;        // changed flows kept in detail; further ones are only counted
  // Called for every changed packet, in input order (`--packets`); may be empty.
  std::function<void(const ChangedPacket&)> on_packet;
};

// A connection (either direction of its packets) with a packet whose verdict differs.
struct ChangedFlow {
  FlowKey first;  // the first packet whose verdict differs, as it travelled
  uint64_t first_index = 0;
  uint64_t packets = 0;      // packets whose verdict differs
  uint64_t now_denied = 0;   // allowed before, denied now
  uint64_t now_allowed = 0;  // denied before, allowed now
  std::string old_reason, new_reason;
  std::string old_text, new_text;
  long cause = -1;         // index into TraceDiffResult::diff.changes; -1: no single rule change
  std::string cause_note;  // why, when cause is -1

  bool breaks() const { return now_denied > 0; }
};

// The flows one rule change explains (change -1: those no single change explains).
struct TraceDiffGroup {
  long change = -1;
  std::vector<size_t> flows;  // indexes into TraceDiffResult::flows, in order of first packet
};

struct TraceDiffResult {
  rules::PolicyDiff diff;  // the rule changes (rules::diffPolicies)
  uint64_t packets = 0;    // read from the traces
  uint64_t changed_packets = 0;
  uint64_t allowed_to_denied = 0;  // packets
  uint64_t denied_to_allowed = 0;
  uint64_t connections_that_break = 0;  // flows with a packet allowed before and denied now
  uint64_t connections_that_open = 0;   // the other changed flows
  uint64_t unlisted_packets = 0;        // changed packets of flows beyond max_flows
  std::vector<ChangedFlow> flows;       // in order of their first changed packet
  // In the order of diff.changes; the group of flows no single change explains last.
  std::vector<TraceDiffGroup> groups;
  // "FILE: N packets of interface I (NAME) were skipped: its link type X is not one statewall
  // reads", one per such interface.
  std::vector<std::string> warnings;
  // Set when a trace is missing, unreadable or damaged (or the two replays went apart, which
  // would be a bug): what was read before is counted, but the result must not be reported.
  std::optional<std::string> error;

  bool breaks() const { return allowed_to_denied > 0; }  // the CI answer (exit 1)
};

// Replays `traces` (pcap or pcapng, one stream) under both policies and compares every packet.
TraceDiffResult diffTraces(const rules::CompiledPolicyPtr& old_policy,
                           const rules::CompiledPolicyPtr& new_policy,
                           const std::vector<std::string>& traces,
                           const TraceDiffOptions& options = {});
// The same on in-memory frames (tests, generated workloads).
TraceDiffResult diffFrames(const rules::CompiledPolicyPtr& old_policy,
                           const rules::CompiledPolicyPtr& new_policy,
                           const std::vector<Frame>& frames, const TraceDiffOptions& options = {});

}  // namespace statewall::sim
