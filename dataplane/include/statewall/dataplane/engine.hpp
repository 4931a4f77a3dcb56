// The verdict engine: given a burst of frames and the current time, decide each packet's verdict
// and reason exactly as docs/design.md specifies. One Engine is shared by all threads; each thread
// that processes packets owns one Engine::Worker.
//
// Thread safety: process(), sweep() and the Worker are for the owning thread only; publish(),
// policy(), counters(), ruleHits(), forEachConnection() and eraseConnections() may be called from
// any thread at any time (the control plane), concurrently with process() on all workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "statewall/dataplane/conn_facts.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/tcp_tracker.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/exemption.hpp"

namespace statewall::dataplane {

inline constexpr unsigned kMaxBurst = 64;
inline constexpr unsigned kMaxWorkers = 64;

struct PacketRef {
  const uint8_t* data;
  uint32_t len;  // captured length
  // How the frame begins: each packet has its own (a pcapng trace may mix interfaces of several
  // link types); the appliance's ports deliver Ethernet.
  LinkType link = LinkType::kEthernet;
};
static_assert(sizeof(PacketRef) == 16, "PacketRef: the link type fits in the padding");

// The packet's 5-tuple as the rule evaluator takes it (rules::evaluate()).
inline rules::Flow5 ruleFlowOf(const ParsedPacket& p) {
  rules::Flow5 f;
  f.proto = p.proto;
  f.src = p.src;
  f.dst = p.dst;
  f.sport = p.sport;
  f.dport = p.dport;
  f.icmp_type = p.icmp_type;
  f.icmp_code = p.icmp_code;
  return f;
}

// Per-packet flags in Verdict::flags.
enum VerdictFlag : uint16_t {
  kFlagNewConnection = 1 << 0,  // this packet created a connection entry
  kFlagReply = 1 << 1,          // sent by the connection's responder (not its originator)
  kFlagTcpInvalid =
      1 << 2,  // the TCP tracker marked it INVALID (it got no help from the connection)
  kFlagUntracked = 1 << 3,  // part of an untracked flow (AWS rule)
  kFlagControl = 1 << 4,    // ARP or valid IPv6 neighbour discovery (allow-exempt)
  kFlagFragment = 1 << 5,   // a non-first fragment, judged by its first fragment's verdict
  kFlagMidStream = 1 << 6,  // a TCP connection picked up mid-stream (loose entry)
  kFlagReopened = 1 << 7,   // a SYN reopened a TIME_WAIT/CLOSE connection
  kFlagConnClosed =
      1 << 8,  // the connection ended with this packet (RST, or entered TIME_WAIT/CLOSE)
};

struct Verdict {
  Reason reason = Reason::kDenyMalformed;
  Layer malformed_layer = Layer::kNone;  // kDenyMalformed: the layer that failed
  uint16_t flags = 0;
  TcpState tcp_before = TcpState::kNone;  // TCP only
  TcpState tcp_after = TcpState::kNone;
  rules::Exemption exemption = rules::Exemption::kNone;  // allow-exempt: which exemption
  // allow-rule / allow-untracked: the SG rule that allowed it (the destination side's inbound rule
  // when that side is protected, else the source side's outbound rule); allow-tracked /
  // allow-related: the rule that opened the connection; otherwise kNoRule.
  rules::RuleId rule = rules::kNoRule;
  // deny-sg: the interface and direction whose groups had no allowing rule.
  rules::IfaceId deny_iface = rules::kNoIface;
  rules::Direction deny_dir = rules::Direction::kInbound;
  // deny-acl: the ACL entry (or implicit '*') that denied it.
  rules::AclEntryId acl_entry = rules::kNoAclEntry;
  // The connection (or related connection); 0 for none. An ICMP error carries the connection it
  // is related to even when a network ACL denies it, and 0 when it is not related.
  uint64_t conn_id = 0;
  // Static detail: malformed or TCP INVALID reason; for an ICMP error that is not related, why
  // not (no tracked connection, wrong direction, not addressed to the quoted packet's sender).
  const char* why = nullptr;

  bool allowed() const { return reasonAllows(reason); }
};

struct EngineConfig {
  size_t table_capacity = 1 << 20;  // IPv4 connections; IPv6 table gets table_capacity / 4
  size_t fragment_capacity = 4096;  // datagrams whose first fragment's verdict is remembered
  bool pass_non_ip = false;         // other EtherTypes: allow-unprotected instead of deny-malformed
  unsigned sweep_buckets_per_burst = 8;  // buckets per sweep slice (0: no sweep in process())
  // A worker runs a slice at most every sweep_full_pass_ns / (buckets / slice) of packet time, so
  // each worker covers the whole table about once per sweep_full_pass_ns.
  uint64_t sweep_full_pass_ns = 1'000'000'000;
  // false: every packet takes the general algorithm, none the fast path of established TCP
  // (the same verdicts and state, slower; for tests that compare the two).
  bool fast_paths = true;
  // How frames are parsed: tunnels judged as the outer packet (the default) or, with
  // parse.decap, as the innermost packet (docs/design.md "Encapsulation and tunnels").
  ParseOptions parse{};
};

// Counters by reason, summed over workers. Packets in = sum over reasons, always.
struct Counters {
  uint64_t packets[kReasonCount] = {};
  uint64_t bytes[kReasonCount] = {};
  uint64_t connections_created = 0;
  uint64_t connections_expired = 0;
  // Unreplied connections a full table dropped to make room for new ones (early drop).
  uint64_t connections_evicted = 0;
  uint64_t tcp_invalid = 0;
  uint64_t totalPackets() const;
};

class Engine {
 public:
  // Per-thread state: grace-period registration, counters, burst scratch. Opaque.
  class Worker {
   public:
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    unsigned index() const;  // 0 .. kMaxWorkers-1, stable while the worker lives
    struct State;

   private:
    friend class Engine;
    Worker();
    std::unique_ptr<State> s_;
  };
  struct Impl;  // opaque

  Engine(const EngineConfig& config, std::shared_ptr<const rules::CompiledPolicy> policy);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Creates a worker for the calling thread (at most kMaxWorkers at once). Not on the packet path.
  // Returns null when kMaxWorkers workers exist.
  std::unique_ptr<Worker> makeWorker();

  // Decides verdicts for n <= kMaxBurst frames at time now_ns (monotonic or trace time; must not
  // go backwards for one worker). Writes out[0..n), and optionally the parsed packets to
  // parsed_out[0..n). Ends with a quiescent point: the worker holds no table references after it.
  // No allocation, no lock, no exception.
  // conn_out (opt-in detail, for outputs that explain packets): conn_out[i] is out[i].conn_id's
  // connection as packet i left it (before the packets after it in the burst); id 0 when the
  // packet has none or its entry is gone (a reset before any reply). Chosen once per burst: a
  // burst without it runs the same loop as before.
  void process(Worker& w, const PacketRef* pkts, unsigned n, uint64_t now_ns, Verdict* out,
               ParsedPacket* parsed_out = nullptr, ConnectionInfo* conn_out = nullptr) noexcept;

  // Publishes a new policy with one atomic swap; packets after it use the new one. Tracked
  // connections continue; untracked flows follow the new rules at once. Returns its version.
  uint64_t publish(std::shared_ptr<const rules::CompiledPolicy> policy);
  // Frees the replaced policies whose grace period has passed (publish() does it too, but only
  // when the next policy comes); returns how many it freed. A host whose workers never stop
  // (statewalld) calls it periodically so that a large replaced policy does not stay resident.
  size_t reclaimRetiredPolicies();
  std::shared_ptr<const rules::CompiledPolicy> policy() const;
  // The published policy's version (1 for the constructor's, +1 per publish()). Lock-free (an
  // acquire load): callable on a forwarding thread. Another thread may publish at any moment, so
  // policy() called after it may already return a newer policy; take both from
  // publishedPolicy() when they must belong together.
  uint64_t policyVersion() const noexcept;
  // The published policy and its version, from one publication (never one's policy with
  // another's version). Takes the control lock: not for the packet path.
  struct Published {
    std::shared_ptr<const rules::CompiledPolicy> policy;
    uint64_t version = 0;
  };
  Published publishedPolicy() const;

  Counters counters() const;
  // Hits per SG rule / ACL entry of the current policy, summed over workers.
  std::vector<uint64_t> ruleHits() const;
  std::vector<uint64_t> aclHits() const;

  size_t connectionCount() const;
  size_t capacity() const;
  // Visits live connections (read-only snapshot per entry). Any thread.
  void forEachConnection(const std::function<void(const ConnectionInfo&)>& fn) const;
  // Removes the connections for which pred returns true; returns how many. Any thread.
  size_t eraseConnections(const std::function<bool(const ConnectionInfo&)>& pred);

  // Runs a slice of the expiry sweep (also done incrementally inside process()).
  size_t sweep(Worker& w, uint64_t now_ns, size_t max_buckets) noexcept;
  // Declares that the worker's thread will not call process() for a while (idle lcore, paused
  // replay), so that reclamation does not wait for it. The next process() brings it back.
  void offline(Worker& w) noexcept;

 private:
  template <class Fn>
  void walk(Fn&& fn) const;

  std::unique_ptr<Impl> impl_;
};

}  // namespace statewall::dataplane
