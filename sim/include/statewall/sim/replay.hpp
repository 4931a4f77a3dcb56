// The replay driver behind `statewall replay`: streams traces through the same Engine the
// appliance runs, with the packets' own timestamps as the engine's clock, and produces the
// summary, the optional per-packet / per-connection outputs, the stateless comparison and the
// expectation results.
//
// Time: packets go to the engine in bursts of up to `burst` packets that span at most
// `burst_window_ns` of trace time; a burst is judged at the time of its newest packet (as the
// appliance judges a burst when it has received it). Idle timeouts therefore fire within one
// window (1 ms by default) of when they would have. The clock never goes backwards: a packet older
// than the clock (unordered traces, a second trace that starts earlier) is judged at the clock.
//
// The per-packet path allocates nothing: frames are copied into one preallocated arena, outputs are
// formatted into reused buffers and written in large blocks. Memory stays bounded whatever the
// trace length: per-connection records are written out and freed when their connection ends.
//
// A Replay is single-threaded: one thread creates it, runs it and reads its summary. Other threads
// may use its engine() as engine.hpp allows (a control server serving the API during the run),
// and call the members marked "any thread".
//
// Pacing (ReplayOptions::pace): the replay sleeps before a burst until the wall clock, scaled by
// the pace, has reached the burst's trace time, so that a person can watch the run through the
// control API. Before sleeping the replay thread tells the engine it is offline (memory
// reclamation, e.g. of a replaced policy, never waits for it) and keeps sweeping expired
// connections at the trace time the wall clock has reached.
//
// Policies published by other threads (ReplayOptions::shared_engine): they must go through
// betweenBursts(), which runs them while the replay is not inside Engine::process(); the replay
// then takes the engine's new policy before its next burst, so rule names in the outputs always
// come from the policy that judged the packets, and the summary's rule hits (which the engine
// counts per policy) belong to the policy running at the end.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/sim/expect.hpp"
#include "statewall/sim/pcap_io.hpp"

namespace statewall::sim {

enum class ConnFormat : uint8_t { kJsonl, kTsv };

inline constexpr size_t kDefaultTableCapacity = 1 << 20;

// --verdicts: one JSON object per line and packet, in input order:
//   index       1-based position in the input (continuing across trace files)
//   ts          capture time, seconds since 1970 (6 or 9 decimals, as the file stores them)
//   encap       the frame's layer-2.5 headers, outermost first: ["vlan:100","mpls:16"] (absent
//               for a plain frame)
//   proto       "tcp", "udp", "icmp", "icmpv6", another IP protocol's number, "arp" or "non-ip"
//   src, dst    addresses (absent for non-IP frames)
//   sport/dport TCP and UDP; icmp_type/icmp_code (and icmp_id for echo) for ICMP and ICMPv6
//   tcp_flags   e.g. "SA" (F S R P A U E C); fragment {id, offset, more} for IP fragments
//   direction   "inbound" (to a protected interface), "outbound" (from one), "internal" (both
//               protected) or "unprotected" (neither)
//   reply       sent by the connection's responder
//   verdict     "allow" or "deny"; reason: the codes of docs/design.md
//   rule        what decided it: a security-group rule {group, direction, index, text}, an ACL
//               entry {acl, direction, number ("*" for the default), action, text}, for deny-sg
//               the interface {interface, direction, groups}; null when nothing did
//   conn        the connection's number in the run, as explain and the report show it (#N;
//               null when none); engine_id: the engine's own id for it
//   tcp_before, tcp_after   TCP state (TCP only)
//   layer, why  deny-malformed: the layer and what was wrong; why also for TCP INVALID
//   flags       engine flags: new, reply, tcp-invalid, untracked, control, fragment, mid-stream,
//               reopened, closed
//   stateless   {verdict, reason} judged by the rules alone (with --stateless)
// --connections: one record per connection (or per untracked or denied flow) in Zeek's conn.log
// vocabulary (ts, uid, id.orig_h/p, id.resp_h/p, proto, duration, orig/resp_bytes, conn_state,
// history, orig/resp_pkts, orig/resp_ip_bytes; ICMP type and code in the port fields as Zeek
// logs them) plus end ("closed", "timed-out", "open"), tracked, conn_id (the connection's number
// in the run, #N as explain shows it; JSON also engine_id, the engine's own id), first_reason,
// opened_by (the rule that allowed the first packet), denied_pkts and icmp_errors (ICMP errors
// about the connection). With parse.decap, tunnels are records of their own (kind "tunnel",
// tunnel_type) and a connection inside tunnels names their uids in tunnel_parents (TSV: three more
// columns kind, tunnel_type, tunnel_parents). A record is written when its connection ends or at
// the end of the run (in batches, each in order of first packet), so memory is bounded by the live
// connections. Flows without a connection (denied, untracked) are kept until idle beyond their
// timeout, at most as many at once as the table holds connections: beyond that the longest idle
// are written early ("open"), and a later packet of such a flow starts a new record.
struct ReplayOptions {
  std::string verdicts_path;     // --verdicts FILE.jsonl
  std::string allowed_path;      // --allowed FILE.pcap
  std::string denied_path;       // --denied FILE.pcap
  std::string connections_path;  // --connections FILE
  ConnFormat connections_format = ConnFormat::kJsonl;
  // --flow-log FILE ("-": standard output): the packets as AWS VPC Flow Logs record them
  // (statewall/sim/flowlog.hpp), per interface, direction, flow and action over windows of
  // flow_log_interval_s seconds aligned to the epoch, as `statewall gen --flow-log` writes them;
  // AWS's version 5 text, or JSON lines with the deciding rule and reason. The records of a
  // window are written when a packet of a later one arrives, at a policy change and at the end.
  std::string flow_log_path;
  uint32_t flow_log_interval_s = 60;
  bool flow_log_jsonl = false;
  bool stateless = false;  // also judge every packet by the rules alone and compare
  bool progress = false;   // draw a progress bar on stderr (the CLI sets it when stderr is a tty)
  // Connection-table capacity (IPv4; the engine gives IPv6 a quarter). 0 = sized from the input:
  // enough for one connection per packet the traces can hold, at most kDefaultTableCapacity
  // (a small trace then does not pay for clearing a large table).
  size_t table_capacity = 0;
  size_t fragment_capacity = 4096;
  bool pass_non_ip = false;
  // How frames are parsed (the engine's EngineConfig::parse): tunnels are judged as the outer
  // packet unless parse.decap (--decap, --tunnel-port); then as their innermost packet, --verdicts
  // names them in "encap" and --connections lists the tunnels as records of their own, naming
  // each inner connection's tunnels.
  dataplane::ParseOptions parse{};
  unsigned burst = 32;                   // 1..dataplane::kMaxBurst
  uint64_t burst_window_ns = 1000000;    // trace time one burst may span
  size_t top_flows = 10;                 // top denied flows kept in the summary
  size_t max_changes = 20;               // stateless changes listed in the summary
  Expectations* expectations = nullptr;  // observed during the run when set (not owned)
  // Trace seconds per wall-clock second: 0 = as fast as possible (the default), 1 = the trace's
  // own pace, 10 = ten times faster, 0.5 = half as fast.
  double pace = 0;
  // Another thread may publish policies to engine() during the run, through betweenBursts().
  // Costs one uncontended mutex per burst; off by default.
  bool shared_engine = false;
};

// A packet's addresses as the summary lists them. ICMP: type and code in sport / dport.
struct FlowKey {
  uint8_t proto = 0;
  rules::IpAddr src;
  rules::IpAddr dst;
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool ip = true;  // false: not an IP packet (ARP, other EtherTypes, unparsable)

  friend bool operator==(const FlowKey&, const FlowKey&) = default;
  // "tcp 198.51.100.7:40000 -> 10.0.1.10:22", "icmp 1.2.3.4 -> 5.6.7.8 type 8 code 0",
  // "tcp [2001:db8::1]:40000 -> [2001:db8::2]:443"
  std::string str() const;
};

struct DeniedFlow {
  FlowKey key;
  dataplane::Reason reason = dataplane::Reason::kDenySg;
  std::string detail;  // what denied it, e.g. "no inbound rule of web-1 (web) allows it"
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first_index = 0;
};

struct StatelessChange {
  FlowKey key;
  dataplane::Reason stateful = dataplane::Reason::kAllowTracked;
  dataplane::Reason stateless = dataplane::Reason::kDenySg;
  uint64_t packets = 0;
  uint64_t first_index = 0;
  std::string why;
};

struct TraceSummary {
  std::string path;
  TraceFormat format = TraceFormat::kPcap;
  int dlt = 0;            // the first of dlts
  std::vector<int> dlts;  // the link types of the packets read, in order of first appearance
  // pcapng interfaces whose link type the engine does not parse: their packets were skipped
  // (not judged, not counted in packets).
  std::vector<TraceInterface> skipped;
  uint64_t skipped_packets = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t file_size = 0;
};

struct ReplaySummary {
  std::vector<std::string> policy_files;
  std::vector<TraceSummary> traces;
  uint64_t packets = 0;
  uint64_t bytes = 0;  // frame lengths on the wire (the pcap "len" field)
  uint64_t first_ts_ns = 0;
  uint64_t last_ts_ns = 0;
  std::array<uint64_t, dataplane::kReasonCount> packets_by_reason{};
  std::array<uint64_t, dataplane::kReasonCount> bytes_by_reason{};
  std::array<uint64_t, dataplane::kLayerCount> malformed_by_layer{};
  std::vector<uint64_t> rule_hits;  // per rules::RuleId (the engine's counters)
  std::vector<uint64_t> acl_hits;   // per rules::AclEntryId
  dataplane::Counters engine;       // the engine's own counters, for cross-checking

  std::vector<DeniedFlow> top_denied;   // most packets first
  uint64_t denied_flows = 0;            // distinct denied (flow, reason) pairs seen
  bool top_denied_approximate = false;  // too many distinct denied flows to count exactly
  // When approximate: a listed flow's packet count may exceed its true count by at most this.
  uint64_t top_denied_max_error = 0;

  bool connections_logged = false;
  uint64_t connection_records = 0;
  // Records of flows without a connection written while still open, because more such flows
  // were open at once than the connection table holds (a later packet starts a new record).
  uint64_t connection_records_early = 0;
  std::vector<std::pair<std::string, uint64_t>> conn_states;  // Zeek conn_state -> records
  std::array<uint64_t, 3> conn_ends{};                        // by ConnEnd
  uint64_t flow_log_records = 0;                              // --flow-log

  bool stateless = false;
  std::array<uint64_t, dataplane::kReasonCount> stateless_by_reason{};
  uint64_t changed_to_deny = 0;  // allowed statefully, denied by the rules alone
  uint64_t changed_to_allow = 0;
  std::vector<StatelessChange> changes;  // by first packet index
  uint64_t changed_flows = 0;

  // Packets whose timestamp is older than the packet before them (in input order): judged at the
  // clock (see the top of this file); the first such packet's index.
  uint64_t ts_backwards = 0;
  uint64_t ts_backwards_first = 0;
  // Packets the capture cut short (caplen below the length on the wire: the capture's snaplen),
  // and how many of them were deny-malformed (their headers, or the length the IP header
  // claims, go beyond the captured bytes).
  uint64_t snaplen_cut = 0;
  uint64_t snaplen_cut_malformed = 0;

  std::optional<TraceError> error;  // the damage that stopped the replay, if any
  bool interrupted = false;         // requestStop() ended the run early (error says where)
  // With shared_engine: how many times the running policy changed during the run (through
  // betweenBursts() or publish()); policy_files, the rules and their hits are then those of the
  // last one.
  uint64_t policy_changes = 0;
};

// One frame for replayFrames(): what the engine fixture table and tests feed the driver.
struct Frame {
  uint64_t ts_ns = 0;
  std::vector<uint8_t> bytes;
  dataplane::LinkType link = dataplane::LinkType::kEthernet;  // how `bytes` begins
};

class Replay {
 public:
  Replay(rules::CompiledPolicyPtr policy, ReplayOptions options);
  ~Replay();
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  // Creates the output files. false with *err when one cannot be created.
  bool openOutputs(std::string* err);

  // Replays the traces in order, as one stream (packet indexes continue across files), each packet
  // read by its own link type (traces, and a pcapng trace's interfaces, may differ). false when a
  // trace is missing, unreadable or damaged: summary().error says where; every packet before the
  // damage has been judged and counted. The --allowed/--denied captures are classic pcap when
  // every trace is a classic pcap of one link type, pcapng otherwise.
  bool runFiles(const std::vector<std::string>& paths);

  // Replays in-memory frames through the same path (fixtures, tests), each by its own link type.
  // Frames whose timestamps go backwards are judged at the clock. Can be called several times;
  // the stream continues (with table_capacity 0 the table is sized from the first call's frames;
  // the pcap outputs are pcapng when the first call's frames differ in link type).
  void runFrames(const std::vector<Frame>& frames);

  // Publishes a new policy to the engine between two packets, as the control plane would: the
  // packets before it are judged first. From then on rule names and hits refer to the new policy.
  // (The fixture table's policy changes go through here.)
  void publish(rules::CompiledPolicyPtr policy);

  // Creates the engine before the run (runFiles() and runFrames() otherwise create it for their
  // first trace), so that a control server can be attached to engine() first. prepareFiles()
  // sizes the table from the traces and opens the pcap outputs; false when the first trace cannot
  // be opened or an output cannot be created (summary().error says which). Then call runFiles()
  // with the same paths.
  bool prepareFiles(const std::vector<std::string>& paths);
  // The same for runFrames(); the table holds table_capacity connections (default when 0).
  bool prepareFrames();
  // The engine, null before prepare*() or the first run. The Replay owns it.
  dataplane::Engine* engine();

  // Runs `fn` (which may publish a policy to engine()) while the replay thread is not inside
  // Engine::process(), and makes the replay take the engine's policy before its next burst.
  // Any thread; blocks for at most one burst. Requires ReplayOptions::shared_engine.
  void betweenBursts(const std::function<void()>& fn);
  // The engine's time: the trace time of the last burst, or when paced, the trace time the wall
  // clock has reached (never behind the last burst). 0 before the first burst. Any thread.
  uint64_t nowNs() const;
  // Ends the run before the next burst (runFiles() then returns false with summary().interrupted
  // and summary().error set: the summary says it is incomplete); what was judged so far is
  // summarised. Any thread, async-signal-safe. Checked between
  // bursts only when paced or shared_engine is set.
  void requestStop() noexcept;

  // Writes the remaining connection records, collects the engine's counters and closes the
  // outputs. Call once, after the runs. false with *err on a write error.
  bool finish(std::string* err);

  const ReplaySummary& summary() const;
  const rules::CompiledPolicy& policy() const;

  // Called for every packet, in input order, after the verdict (tests, fixture comparisons).
  using Observer = std::function<void(uint64_t index, uint64_t ts_ns, const dataplane::Verdict&,
                                      const dataplane::ParsedPacket&)>;
  void setObserver(Observer observer);
  // The same, with the engine's facts of the packet's connection as that packet left it
  // (dataplane/conn_facts.hpp; id 0: none): for outputs that explain packets. Replaces an
  // Observer; costs the engine a table read per packet.
  using DetailObserver =
      std::function<void(uint64_t index, uint64_t ts_ns, const dataplane::Verdict&,
                         const dataplane::ParsedPacket&, const dataplane::ConnectionInfo& conn)>;
  void setObserver(DetailObserver observer);

  // The human text of a verdict: "allow-rule by web inbound[0] \"tcp 443 from 0.0.0.0/0\"", ...
  std::string describe(const dataplane::Verdict& v) const;

  // The number (1, 2, ... in order of first packet) of the connection with this engine id, as
  // every output a person reads shows it (#N); 0 for none. Valid for a verdict's conn_id from
  // inside the observer (numbers of connections long gone may be forgotten).
  uint64_t connectionNumber(uint64_t engine_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Replays `frames` through a fresh Replay (no outputs) and returns one verdict per frame: the
// hook through which the engine's fixture table runs through `statewall replay`'s driver.
std::vector<dataplane::Verdict> replayFrames(rules::CompiledPolicyPtr policy,
                                             const std::vector<Frame>& frames,
                                             const ReplayOptions& options = {});

// One line per pcapng interface whose packets were skipped (its link type is not one the engine
// parses): "FILE: N packets of interface I (NAME) were skipped ...".
std::vector<std::string> skippedInterfaceWarnings(const ReplaySummary& s);

// The summary for people (aligned columns) and as one JSON document. `expect` may be null.
std::string formatSummaryText(const ReplaySummary& s, const rules::CompiledPolicy& policy,
                              const std::vector<ExpectResult>* expect);
std::string formatSummaryJson(const ReplaySummary& s, const rules::CompiledPolicy& policy,
                              const std::vector<ExpectResult>* expect);

}  // namespace statewall::sim
