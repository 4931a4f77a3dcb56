// The explain tool behind `statewall explain`: replays a trace through the engine (sim::Replay)
// and, for the packets asked about, tells in plain sentences what the engine decided and why, in
// the order it decided: the direction and the interfaces, each network-ACL and security-group
// check (or the tracked connection that made a security-group check unnecessary), the TCP state
// before and after, whether the flow is tracked (and, when it is not, the two rules that make it
// untracked under the AWS rule), ICMP errors as related traffic, invalid TCP and malformed
// packets. For a denied packet it lists the near misses: rules that match every field of the
// packet but one. With `contrast`, it says what a stateless filter with the same rules would do
// (judged as `statewall replay --stateless` judges: rules::evaluate with EvalMode::kFull).
//
// JSON (PacketExplanation::json; `statewall explain --json` prints {"policy", "traces",
// "packets": [...], "selected", "shown", "truncated", "packets_in_trace", "complete"}), one object
// per explained packet:
//   index         1-based position in the input (continuing across trace files)
//   ts, t         capture time (seconds since 1970) and seconds since the first packet
//   packet        {proto, src, dst, sport, dport, tcp_flags, icmp_type, icmp_code, icmp_id, ip_len}
//                 (fields that do not apply are absent; proto "arp" / "non-ip" for other frames)
//   summary       the packet in one line, as the text output heads it
//   verdict       "allow" | "deny";  reason: a docs/design.md reason code
//   direction     "inbound" | "outbound" | "internal" | "unprotected" | null (not IP, malformed)
//   connection    null, or {number, engine_id, opened_by_packet, rule, reply}: number counts
//                 connections in order of appearance (#1, #2, ...); engine_id is the engine's id
//   steps         [{kind, text, ...}] in the engine's order. Kinds and their extra fields:
//     direction   source / destination: {address, interface, subnet, groups} or null (unprotected)
//     acl         acl, direction, subnet, entry {number ("*" for the default), action, text},
//                 allowed, decisive, reached (false: an earlier check had already denied it)
//     sg          interface, direction, groups, allowed, rule {group, direction, index, text,
//                 description} or null, decisive, reached
//     tracked     interface, direction, connection, reached: the security groups were not
//                 consulted (reached false: a check before them denied it; they would have
//                 passed it as part of its connection)
//     related     connection, quoted {proto, src, dst, sport, dport}, reached: an ICMP error
//                 related to its connection (reached as for tracked)
//     unprotected allowed: neither address is protected, the policy's `unprotected` decides
//     control | fragment | malformed (layer, why) | table-full | invalid (why, strict)
//     tcp         before, after (TCP state names)
//     tracking    tracked (bool), sides (interfaces whose groups track it), timeout {key, seconds}
//     untracked   rule (the all-addresses rule of this flow), reverse_rule (the rule of the other
//                 direction that allows all traffic to all addresses on all ports)
//     expired     connection, idle_seconds, timeout {key, seconds}: an earlier connection of the
//                 same addresses and ports timed out before this packet
//   near_misses   [{check: "sg"|"acl", rule | entry, field, wanted, got, text}] (denied packets)
//   stateless     null (no contrast asked) or {verdict, reason, changed, text, check}: check (only
//                 when the rules alone deny it) is the check that does, {kind: "sg"|"acl",
//                 direction, interface | entry}
//
// An Explainer is single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/sim/expect.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {

// ---- near misses ----

// The one field in which a rule or ACL entry fails to match a packet. kOrder: an ACL allow entry
// that matches the packet in every field but comes after the deny entry that decided.
enum class MissField : uint8_t { kProtocol, kPort, kIcmpType, kIcmpCode, kPeer, kOrder };
std::string_view missFieldName(MissField f);  // "protocol", "port", "icmp-type", ...

struct NearMiss {
  bool acl = false;
  rules::RuleId rule = rules::kNoRule;           // !acl: the security-group rule
  rules::AclEntryId entry = rules::kNoAclEntry;  // acl: the ACL entry
  MissField field = MissField::kPeer;
  std::string wanted;  // what the rule requires there: "pl:office (203.0.113.0/24)", "port 443"
  std::string got;     // what the packet has: "198.51.100.66", "port 8000", "udp"
  std::string text;    // one sentence
};

// Finds near misses over the policy model (CompiledPolicy::source()): protocol, destination port
// range, ICMP type and code, and the remote address against CIDRs, prefix lists and group
// references (a group matches the addresses of the interfaces that carry it). Built once per
// policy; the queries allocate only for their results.
class NearMissSearch {
 public:
  explicit NearMissSearch(const rules::CompiledPolicy& policy);
  ~NearMissSearch();
  NearMissSearch(const NearMissSearch&) = delete;
  NearMissSearch& operator=(const NearMissSearch&) = delete;

  // The rules of interface `iface`'s groups in direction `d` (inbound: remote = f.src; outbound:
  // remote = f.dst) that match f in every field but one, in rule order.
  std::vector<NearMiss> securityGroups(rules::IfaceId iface, rules::Direction d,
                                       const rules::Flow5& f) const;
  // For a packet the ACL of subnet `s` denies in direction `d`: the allow entries that differ
  // from it in one field and come before `decided_by` (the entry that denied it; the implicit
  // '*' deny counts as last), then the allow entries that match it fully but come after a
  // numbered deny entry that decided (field kOrder).
  std::vector<NearMiss> acl(rules::SubnetId s, rules::Direction d, const rules::Flow5& f,
                            rules::AclEntryId decided_by) const;

  // The rules that make a flow untracked on interface `iface` (AWS rule, docs/design.md "Connection
  // tracking"): `request` is the flow's packet in the direction `d` that its all-addresses rule
  // allows. Returns {the first rule of (iface, d) matching the request whose peer is 0.0.0.0/0
  // or ::/0, the first rule of the reverse direction allowing the protocol on all ports to all
  // addresses of the family}; kNoRule where none exists.
  std::pair<rules::RuleId, rules::RuleId> untrackedPair(rules::IfaceId iface, rules::Direction d,
                                                        const rules::Flow5& request) const;

 private:
  struct Index;
  std::unique_ptr<Index> ix_;
};

// ---- explanations ----

struct ExplainOptions {
  // 1-based inclusive ranges of packet indexes; empty = not selected by index.
  std::vector<std::pair<uint64_t, uint64_t>> packets;
  // Packets of flows matching this pattern, both directions, and ICMP errors quoting them.
  std::optional<FlowPattern> flow;
  bool contrast = true;
  // At most this many packets are explained (0: no limit); the rest are counted.
  size_t limit = 0;
  bool text = true;  // fill PacketExplanation::text
  bool json = true;  // fill PacketExplanation::json
  // The replay driver's options that change verdicts (as `statewall replay` sets them).
  bool pass_non_ip = false;
  size_t table_capacity = 0;
  // Tunnels judged as the outer packet, or with parse.decap the innermost one (--decap,
  // --tunnel-port), as ReplayOptions::parse.
  dataplane::ParseOptions parse{};
};

struct ExplainStep {
  std::string kind;  // see the schema above
  std::string text;  // one or more sentences
};

struct PacketExplanation {
  uint64_t index = 0;
  uint64_t ts_ns = 0;
  std::string summary;  // "tcp 198.51.100.7:50412 -> 10.0.1.10:443 flags S"
  dataplane::Reason reason = dataplane::Reason::kDenyMalformed;
  uint64_t connection = 0;  // the connection's number (#N), 0 for none
  std::vector<ExplainStep> steps;
  std::vector<NearMiss> near_misses;
  std::optional<dataplane::Reason> stateless;  // with contrast (and an IP packet the rules judge)
  std::string stateless_text;
  std::string text;  // the whole explanation for people (with ExplainOptions::text)
  std::string json;  // one JSON object, indented by 2 (with ExplainOptions::json)
};

struct ExplainStats {
  uint64_t packets = 0;   // packets replayed
  uint64_t selected = 0;  // packets the selection matched
  uint64_t shown = 0;     // packets explained (selected, up to the limit)
  uint64_t first_ts_ns = 0;
  std::optional<TraceError> error;  // the damage that stopped the replay, if any
};

class Explainer {
 public:
  Explainer(rules::CompiledPolicyPtr policy, ExplainOptions options);
  ~Explainer();
  Explainer(const Explainer&) = delete;
  Explainer& operator=(const Explainer&) = delete;

  // Called for each explained packet, in input order.
  using Sink = std::function<void(const PacketExplanation&)>;

  // Replays the traces (as `statewall replay` does) and explains the selected packets. Call once
  // (it closes the replay). false when a trace is missing or damaged: stats().error says where.
  bool runFiles(const std::vector<std::string>& paths, const Sink& sink);
  // The same over in-memory frames (tests), each read by its own link type (Frame::link). May be
  // called several times; the stream continues.
  void runFrames(const std::vector<Frame>& frames, const Sink& sink);

  const ExplainStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Explains in-memory frames and returns the explanations (tests).
std::vector<PacketExplanation> explainFrames(rules::CompiledPolicyPtr policy,
                                             const std::vector<Frame>& frames,
                                             const ExplainOptions& options);

}  // namespace statewall::sim
