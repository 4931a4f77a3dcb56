// The verdict engine (docs/design.md "Direction", "Connection tracking", "Verdicts and reasons").
//
// Per burst: parse every frame, build the flow keys and start the IPv4 lookups while parsing
// (the table's buckets and entries are prefetched for the whole burst), then decide each packet
// in order, completing its lookup then. A packet whose lookup missed is looked up again when its
// turn comes, because an earlier packet of the same burst may have created its connection. The
// burst ends with a quiescent point, after which the worker holds no reference into the table or
// to the policy.
#include "statewall/dataplane/engine.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <type_traits>

#include "fragment_table.hpp"
#include "statewall/dataplane/conn_table.hpp"
#include "statewall/dataplane/flow_key.hpp"
#include "statewall/dataplane/qsbr.hpp"
#include "statewall/rules/evaluate.hpp"

namespace statewall::dataplane {

using rules::Direction;
using rules::RuleId;
using rules::TimeoutKey;

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr uint64_t kFragmentLifetimeNs = 30 * kNsPerSec;  // as Linux ipfrag_time

// ConnValue::meta: which sides of the connection are protected and tracked, and what the engine
// learned about the flow. The high 16 bits hold the generation of the policy the low bits were
// computed under; a packet under a newer policy recomputes the protection and ACL bits.
enum MetaBit : uint32_t {
  kOrigProtected = 1u << 0,  // the originator's address is a protected interface
  kRespProtected = 1u << 1,
  kOrigTracked = 1u << 2,  // the originator's side allowed the opening packet as a tracked flow
  kRespTracked = 1u << 3,
  kAclOnPath = 1u << 4,  // some network ACL sees packets of this connection
  kReplied = 1u << 5,    // the responder has sent a packet
  kStream = 1u << 6,     // UDP: more than one exchange
  kMidStream = 1u << 7,  // TCP picked up without its SYN: loose window checks
  kIcmpQuery = 1u << 8,  // ICMP/ICMPv6 query keyed by (request type, identifier)
  kEvicting = 1u << 9,   // claimed by an insert into the full table (EvictUnreplied): dying
};
// Bits 10-15: the connection's idle-timeout set (PolicyNode::sets), from the interfaces of the
// sides that track it.
constexpr uint32_t kTimeoutSetShift = 10;
constexpr uint32_t kTimeoutSetMask = 0x3f;
constexpr size_t kMaxTimeoutSets = kTimeoutSetMask + 1;
constexpr uint32_t kGenShift = 16;

// One set of idle timeouts: the policy's, or with the overrides of the interfaces that track a
// connection (docs/design.md "Idle timeouts", per interface).
struct TimeoutSet {
  std::array<uint64_t, rules::kTimeoutKeyCount> ns{};
  std::array<uint64_t, kTcpStateCount> tcp_ns{};  // ns[tcpTimeoutKey(state)]

  uint64_t timeout(TimeoutKey k) const { return ns[static_cast<size_t>(k)]; }
};

// The engine's per-connection state, embedded in the table entry (at most 40 bytes so that an
// IPv4 entry is one cache line). Written with atomics: both directions of a connection may be
// handled by two threads at once.
struct ConnValue {
  TcpConnState tcp;
  std::atomic<uint32_t> opened_by{rules::kNoRule};
  std::atomic<uint32_t> meta{0};
};
static_assert(sizeof(ConnValue) <= 40, "an IPv4 table entry must stay within one cache line");

using Table4 = ConnTable<FlowKey4, ConnValue>;
using Table6 = ConnTable<FlowKey6, ConnValue>;

// Early drop (docs/design.md, connection tracking): a full table may evict a connection whose
// responder has not answered: TCP still in SYN_SENT, UDP, ICMP echo or another protocol with no
// reply; never one in another TCP state or one that has seen a reply. The claim is one CAS on
// the meta word that sets kEvicting while kReplied is clear; the reply that would set kReplied
// (decideIp) sees the claim in its fetch_or and finishes the kill instead of using the entry,
// so a reply either lands before the claim (no eviction) or finds the connection gone.
struct EvictUnreplied {
  template <class Entry>
  static bool unreplied(const Entry& e, uint32_t meta) {
    if (meta & (kReplied | kEvicting)) return false;
    return e.key.proto != kIpProtoTcp || e.value.tcp.state() == TcpState::kSynSent;
  }
  template <class Entry>
  bool evictable(const Entry& e) const {
    return unreplied(e, e.value.meta.load(std::memory_order_acquire));
  }
  template <class Entry>
  bool claim(Entry& e) const {
    uint32_t m = e.value.meta.load(std::memory_order_acquire);
    while (unreplied(e, m)) {
      if (e.value.meta.compare_exchange_weak(m, m | kEvicting, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }
};

// Entries beyond the capacity for early drop's victims while they wait for their grace period
// (ConnTable's evict_reserve): about two bursts of evictions per worker for 16 workers at least;
// only touched under a flood.
size_t evictReserve(size_t capacity) {
  return std::max<size_t>(2 * 16 * kMaxBurst, capacity / 64);
}

// The published policy with what the data path derives from it once, and its hit counters
// (one stripe per worker so that workers never write the same cache line).
struct PolicyNode {
  rules::CompiledPolicyPtr policy;
  uint64_t version = 0;
  uint16_t gen = 0;
  size_t n_rules = 0;
  size_t n_acl = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> rule_hits;  // [kMaxWorkers][n_rules]
  std::unique_ptr<std::atomic<uint64_t>[]> acl_hits;   // [kMaxWorkers][n_acl]
  // Idle timeouts: sets[0] is the policy's; a connection's set is in its meta bits. A side that
  // tracks a connection contributes its interface's timeouts (side_value: 0 = no tracking side,
  // 1 + index of the interface's distinct setting); with two tracking sides, each timeout is the
  // shorter of theirs (the connection dies on the side that forgets it first).
  std::vector<TimeoutSet> sets;
  // sets[i].tcp_ns[ESTABLISHED], inline for the fast path (no load of the vector's pointer).
  std::array<uint64_t, kMaxTimeoutSets> established_ns{};
  std::vector<uint8_t> side_value;  // per interface
  std::vector<uint8_t> combo;       // [orig side value * n_side_values + resp side value]
  size_t n_side_values = 1;
  bool strict = false;
  bool unprotected_allow = true;
  bool exempt = true;  // the AWS service exemptions apply

  const TimeoutSet& timeouts(uint32_t meta) const {
    return sets[(meta >> kTimeoutSetShift) & kTimeoutSetMask];
  }
  // The meta bits of the timeout set for a connection tracked by these interfaces (kNoIface for
  // a side that does not track it).
  uint32_t timeoutBits(rules::IfaceId orig, rules::IfaceId resp) const {
    const size_t o = orig < side_value.size() ? side_value[orig] : 0;
    const size_t r = resp < side_value.size() ? side_value[resp] : 0;
    return uint32_t{combo[o * n_side_values + r]} << kTimeoutSetShift;
  }
};

TimeoutSet timeoutSetOf(const std::array<uint32_t, rules::kTimeoutKeyCount>& seconds) {
  TimeoutSet t;
  for (size_t k = 0; k < rules::kTimeoutKeyCount; ++k)
    t.ns[k] = uint64_t{seconds[k]} * kNsPerSec;
  for (size_t st = 0; st < kTcpStateCount; ++st)
    t.tcp_ns[st] = t.timeout(tcpTimeoutKey(static_cast<TcpState>(st)));
  return t;
}

// Builds PolicyNode::sets, side_value and combo. Distinct interface settings beyond what the meta
// bits can name share one conservative set: the shortest of each timeout over all settings.
void buildTimeoutSets(const rules::CompiledPolicy& p, PolicyNode* n) {
  using Seconds = std::array<uint32_t, rules::kTimeoutKeyCount>;
  const Seconds policy = p.timeouts().seconds;
  std::vector<Seconds> settings{policy};  // [0]: an interface without its own
  n->side_value.assign(p.ifaceCount(), 0);
  // With the overflow setting, 9 settings: 1 + 9 + 9 * 10 / 2 = 55 distinct sets at most
  // (a pair and its mirror share one), within kMaxTimeoutSets.
  constexpr size_t kMaxSettings = 8;
  static_assert(1 + (kMaxSettings + 1) + (kMaxSettings + 1) * (kMaxSettings + 2) / 2 <=
                kMaxTimeoutSets);
  Seconds shortest = policy;
  for (size_t i = 0; i < p.ifaceCount(); ++i) {
    const rules::InterfaceTimeouts& it = p.iface(static_cast<rules::IfaceId>(i)).timeouts;
    Seconds s = policy;
    if (it.tcp_established)
      s[static_cast<size_t>(TimeoutKey::kTcpEstablished)] = it.tcp_established;
    if (it.udp_stream) s[static_cast<size_t>(TimeoutKey::kUdpStream)] = it.udp_stream;
    if (it.udp) s[static_cast<size_t>(TimeoutKey::kUdp)] = it.udp;
    for (size_t k = 0; k < s.size(); ++k)
      shortest[k] = std::min(shortest[k], s[k]);
    auto found = std::find(settings.begin(), settings.end(), s);
    if (found == settings.end() && settings.size() < kMaxSettings) {
      settings.push_back(s);
      found = settings.end() - 1;
    }
    n->side_value[i] =
        found == settings.end() ? 0xff : static_cast<uint8_t>(found - settings.begin());
  }
  const bool overflow =
      std::find(n->side_value.begin(), n->side_value.end(), 0xff) != n->side_value.end();
  if (overflow) settings.push_back(shortest);
  for (uint8_t& v : n->side_value)
    v = v == 0xff ? static_cast<uint8_t>(settings.size()) : static_cast<uint8_t>(v + 1);
  // Side values: 0 = no tracking side, 1 + setting index.
  n->n_side_values = settings.size() + 1;
  std::vector<Seconds> distinct{policy};
  n->combo.assign(n->n_side_values * n->n_side_values, 0);
  for (size_t o = 0; o < n->n_side_values; ++o) {
    for (size_t r = 0; r < n->n_side_values; ++r) {
      Seconds s = policy;
      if (o != 0 && r != 0) {
        for (size_t k = 0; k < s.size(); ++k)
          s[k] = std::min(settings[o - 1][k], settings[r - 1][k]);
      } else if (o != 0 || r != 0) {
        s = settings[(o != 0 ? o : r) - 1];
      }
      auto found = std::find(distinct.begin(), distinct.end(), s);
      if (found == distinct.end()) {
        distinct.push_back(s);
        found = distinct.end() - 1;
      }
      n->combo[o * n->n_side_values + r] = static_cast<uint8_t>(found - distinct.begin());
    }
  }
  for (const Seconds& s : distinct) {
    n->sets.push_back(timeoutSetOf(s));
    n->established_ns[n->sets.size() - 1] =
        n->sets.back().tcp_ns[static_cast<size_t>(TcpState::kEstablished)];
  }
}

std::unique_ptr<PolicyNode> makeNode(rules::CompiledPolicyPtr p, uint64_t version) {
  auto n = std::make_unique<PolicyNode>();
  n->version = version;
  n->gen = static_cast<uint16_t>(version);
  n->n_rules = p->ruleCount();
  n->n_acl = p->aclEntryCount();
  n->rule_hits =
      std::make_unique<std::atomic<uint64_t>[]>(kMaxWorkers * std::max<size_t>(n->n_rules, 1));
  n->acl_hits =
      std::make_unique<std::atomic<uint64_t>[]>(kMaxWorkers * std::max<size_t>(n->n_acl, 1));
  buildTimeoutSets(*p, n.get());
  n->strict = p->strict();
  n->unprotected_allow = p->unprotectedAllow();
  n->exempt = p->exempt();
  n->policy = std::move(p);
  return n;
}

// Adds to a single-writer counter without a locked instruction; readers on other threads see a
// torn-free value because the load and store are atomic.
inline void bump(std::atomic<uint64_t>& c, uint64_t v = 1) {
  c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

// Which kind of connection an IP packet belongs to, and its key ports.
enum class ConnKind : uint8_t { kNone, kTcp, kUdp, kIcmpQuery, kOther };

struct KeyPorts {
  ConnKind kind;
  uint16_t sport, dport;
  bool opens;  // may create a connection when allowed
};

KeyPorts keyPortsOf(const ParsedPacket& p) {
  switch (p.proto) {
    case kIpProtoTcp:
      // A RST never opens a connection: nothing would follow it.
      return {ConnKind::kTcp, p.sport, p.dport, (p.tcp_flags & kRst) == 0};
    case kIpProtoUdp:
      return {ConnKind::kUdp, p.sport, p.dport, true};
    case kIpProtoIcmp:
    case kIpProtoIcmpv6:
      // A query pair is keyed by (request type, id) (docs/design.md "Connection tracking"): the
      // request as (id -> request type), its reply as (request type -> id), so that a reply
      // matches its request only in the reverse direction, as Linux conntrack keys them.
      if (p.icmp_is_query_request) return {ConnKind::kIcmpQuery, p.icmp_id, p.icmp_type, true};
      if (p.icmp_is_query_reply) {
        bool request;
        const int rt = icmpQueryRequestType(p.family == Family::kV6, p.icmp_type, &request);
        return {ConnKind::kIcmpQuery, static_cast<uint16_t>(rt), p.icmp_id, false};
      }
      return {ConnKind::kNone, 0, 0, false};  // errors and other messages: rules only
    default:
      return {ConnKind::kOther, 0, 0, true};
  }
}

TcpSegment segmentOf(const ParsedPacket& p) {
  TcpSegment s{};
  s.flags = p.tcp_flags;
  s.seq = p.seq;
  s.ack = p.ack;
  s.win = p.window;
  s.payload_len = p.l4_payload_len;
  s.wscale = p.tcp_opt.wscale;
  s.sack_permitted = p.tcp_opt.sack_permitted;
  return s;
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

uint64_t fragmentTag(const ParsedPacket& p) {
  uint64_t h = mix64(p.src.hi ^ mix64(p.src.lo));
  h = mix64(h ^ p.dst.hi ^ mix64(p.dst.lo + p.frag_id));
  h = mix64(h ^ (uint64_t{p.proto} << 8) ^ static_cast<uint64_t>(p.family));
  return h | 1;  // never 0 (0 marks an empty slot)
}

}  // namespace

struct Engine::Worker::State {
  Engine::Impl* impl = nullptr;
  unsigned slot = 0;
  unsigned qsbr = Qsbr::kNoThread;
  alignas(64) std::atomic<uint64_t> packets[kReasonCount] = {};
  std::atomic<uint64_t> bytes[kReasonCount] = {};
  std::atomic<uint64_t> created{0};
  std::atomic<uint64_t> expired{0};
  std::atomic<uint64_t> invalid{0};
  std::atomic<uint64_t> evicted{0};
  // Burst scratch space.
  rules::Evaluation ev;
  uint64_t next_sweep_ns = 0;
  alignas(64) ParsedPacket parsed[kMaxBurst];
  KeyPorts kports[kMaxBurst];
  FlowKey4 keys4[kMaxBurst];
  uint64_t hashes4[kMaxBurst];
  Table4::Probe probes4[kMaxBurst];
  uint8_t v4_index[kMaxBurst];  // burst position -> position in keys4, or 0xff
};

struct Engine::Impl {
  EngineConfig config;
  Qsbr qsbr;
  Table4 table4;
  Table6 table6;
  FragmentTable fragments;
  std::atomic<PolicyNode*> node{nullptr};
  std::atomic<uint64_t> versions{0};
  // node's version, for policyVersion() without the control lock (the node itself may only be
  // read there under the lock or inside process()). Written after the swap, under control_mu.
  std::atomic<uint64_t> published_version{0};
  std::atomic<uint64_t> last_now{0};  // the newest time a worker passed to process()

  // Control side: retired policy nodes waiting for a grace period, and the worker slots.
  std::mutex control_mu;
  std::vector<std::pair<uint64_t, std::unique_ptr<PolicyNode>>> retired;  // (grace token, node)
  std::vector<Worker::State*> workers;  // index = slot; nullptr when free
  // Counters of workers that have gone away, so that totals never go backwards.
  Counters departed;

  uint64_t sweep_interval_ns = 0;  // between two sweep slices of one worker

  explicit Impl(const EngineConfig& c)
      : config(c),
        table4(c.table_capacity, &qsbr, kDefaultFlowHashSeed, true, evictReserve(c.table_capacity)),
        table6(std::max<size_t>(c.table_capacity / 4, 64), &qsbr, kDefaultFlowHashSeed, true,
               evictReserve(std::max<size_t>(c.table_capacity / 4, 64))),
        fragments(c.fragment_capacity),
        workers(kMaxWorkers, nullptr) {
    const uint64_t slices =
        std::max<uint64_t>(1, table4.bucketCount() / std::max(1u, c.sweep_buckets_per_burst));
    sweep_interval_ns = c.sweep_full_pass_ns / slices;
  }

  size_t reclaimRetired() {  // control_mu held; returns how many nodes were freed
    auto it =
        std::remove_if(retired.begin(), retired.end(), [&](auto& r) { return qsbr.poll(r.first); });
    const size_t freed = static_cast<size_t>(retired.end() - it);
    retired.erase(it, retired.end());
    return freed;
  }
};

// Connection ids are unique across the two tables: IPv6 ids carry bit 63.
constexpr uint64_t kV6IdBit = uint64_t{1} << 63;
inline uint64_t connIdOf(const Table4& t, const Table4::Entry* e) {
  return t.connId(e);
}
inline uint64_t connIdOf(const Table6& t, const Table6::Entry* e) {
  return t.connId(e) | kV6IdBit;
}

namespace {

void endpointsOf(const FlowKey4& k, rules::IpAddr* lo, rules::IpAddr* hi) {
  *lo = rules::IpAddr::v4(k.lo_addr);
  *hi = rules::IpAddr::v4(k.hi_addr);
}
void endpointsOf(const FlowKey6& k, rules::IpAddr* lo, rules::IpAddr* hi) {
  *lo = k.loAddr();
  *hi = k.hiAddr();
}

template <class Table>
ConnectionInfo infoOf(const Table& table, const typename Table::Entry& e) {
  ConnectionInfo ci{};
  ci.id = connIdOf(table, &e);
  rules::IpAddr lo, hi;
  endpointsOf(e.key, &lo, &hi);
  const bool orig_lo = e.originatorIsLo();
  ci.proto = e.key.proto;
  ci.orig_src = orig_lo ? lo : hi;
  ci.orig_dst = orig_lo ? hi : lo;
  ci.orig_sport = orig_lo ? e.key.lo_port : e.key.hi_port;
  ci.orig_dport = orig_lo ? e.key.hi_port : e.key.lo_port;
  const uint32_t m = e.value.meta.load(std::memory_order_acquire);
  ci.tcp_state = e.key.proto == kIpProtoTcp ? e.value.tcp.state() : TcpState::kNone;
  ci.src_side_tracked = (m & kOrigTracked) != 0;
  ci.dst_side_tracked = (m & kRespTracked) != 0;
  ci.src_side_protected = (m & kOrigProtected) != 0;
  ci.dst_side_protected = (m & kRespProtected) != 0;
  ci.replied = (m & kReplied) != 0;
  ci.stream = (m & kStream) != 0;
  ci.mid_stream = (m & kMidStream) != 0;
  ci.icmp_query = (m & kIcmpQuery) != 0;
  ci.opened_by = e.value.opened_by.load(std::memory_order_relaxed);
  ci.expires_ns = e.expiresNs();
  return ci;
}

// The connection an id names, as it is now, with the timeout `node` refreshes it with; id 0 when
// there is none (Engine::process's conn_out).
template <class Table>
ConnectionInfo infoWithTimeout(const Table& table, const typename Table::Entry* e,
                               const PolicyNode& node) {
  if (e == nullptr) return ConnectionInfo{};
  ConnectionInfo ci = infoOf(table, *e);
  const uint32_t m = e->value.meta.load(std::memory_order_acquire);
  ci.timeout_s = static_cast<uint32_t>(node.timeouts(m).timeout(ci.timeoutKey()) / kNsPerSec);
  return ci;
}
ConnectionInfo connectionOf(const Engine::Impl& impl, const PolicyNode& node, uint64_t id) {
  if (id == 0) return ConnectionInfo{};
  if (id & kV6IdBit)
    return infoWithTimeout(impl.table6, impl.table6.findById(id & ~kV6IdBit), node);
  return infoWithTimeout(impl.table4, impl.table4.findById(id), node);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Per-packet decision.

namespace {

struct Decider {
  Engine::Impl& impl;
  Engine::Worker::State& w;
  const PolicyNode& node;
  const rules::CompiledPolicy& pol;
  uint64_t now;

  // Counts a hit for every check the packet reached: all of them when it was allowed, those up
  // to the first deny otherwise (docs/design.md order: later checks never saw it).
  // dst_groups_only: the checks before the destination's groups were counted already (the
  // packet met them before the tracking, decideIp()).
  void hitRules(const rules::Evaluation& ev, bool dst_groups_only = false) {
    const int last = ev.first_deny >= 0 ? ev.first_deny : static_cast<int>(ev.n_checks) - 1;
    for (int i = 0; i <= last; ++i) {
      const rules::Check& c = ev.checks[i];
      if (dst_groups_only && !(c.kind == rules::CheckKind::kSg && c.dir == Direction::kInbound)) {
        continue;
      }
      if (c.kind == rules::CheckKind::kSg) {
        if (c.sg.rule != rules::kNoRule) bump(node.rule_hits[w.slot * node.n_rules + c.sg.rule]);
      } else if (c.acl.entry != rules::kNoAclEntry) {
        bump(node.acl_hits[w.slot * node.n_acl + c.acl.entry]);
      }
    }
  }

  // The verdict for a packet the rules denied: the first check that said no.
  static void denyFrom(const rules::Evaluation& ev, Verdict* v) {
    if (ev.first_deny < 0) {  // unprotected traffic with `unprotected: deny`
      v->reason = Reason::kDenySg;
      return;
    }
    const rules::Check& c = ev.checks[static_cast<size_t>(ev.first_deny)];
    if (c.kind == rules::CheckKind::kAcl) {
      v->reason = Reason::kDenyAcl;
      v->acl_entry = c.acl.entry;
    } else {
      v->reason = Reason::kDenySg;
      v->deny_iface = c.iface;
      v->deny_dir = c.dir;
    }
  }

  // The rule to name for a packet allowed by rules: the destination side's inbound rule when that
  // side is protected, else the source side's outbound rule.
  static RuleId decidingRule(const rules::Evaluation& ev) {
    RuleId r = rules::kNoRule;
    for (uint8_t i = 0; i < ev.n_checks; ++i) {
      const rules::Check& c = ev.checks[i];
      if (c.kind == rules::CheckKind::kSg && c.sg.rule != rules::kNoRule) r = c.sg.rule;
    }
    return r;
  }

  // Judges a packet by the rules of its own direction alone (first packets, untracked flows,
  // INVALID packets and anything no connection helps).
  bool judgeByRules(const rules::Flow5& f, rules::EvalMode mode, rules::Evaluation* ev, Verdict* v,
                    bool dst_groups_only = false) {
    rules::evaluate(pol, f, mode, ev);
    hitRules(*ev, dst_groups_only);
    if (!ev->allowed) {
      denyFrom(*ev, v);
      return false;
    }
    if (ev->unprotected) {
      v->reason = Reason::kAllowUnprotected;
    } else if (ev->untracked) {
      v->reason = Reason::kAllowUntracked;
      v->flags |= kFlagUntracked;
    } else {
      v->reason = Reason::kAllowRule;
    }
    v->rule = decidingRule(*ev);
    return true;
  }

  // Meta bits for a connection opened by packet f under evaluation ev.
  uint32_t openingMeta(const rules::Evaluation& ev) const {
    uint32_t m = 0;
    if (ev.src_protected) m |= kOrigProtected;
    if (ev.dst_protected) m |= kRespProtected;
    rules::IfaceId orig_tracking = rules::kNoIface, resp_tracking = rules::kNoIface;
    for (uint8_t i = 0; i < ev.n_checks; ++i) {
      const rules::Check& c = ev.checks[i];
      if (c.kind == rules::CheckKind::kAcl) {
        m |= kAclOnPath;
      } else if (c.sg.allowed() && !c.sg.untracked) {
        m |= c.dir == Direction::kOutbound ? kOrigTracked : kRespTracked;
        (c.dir == Direction::kOutbound ? orig_tracking : resp_tracking) = c.iface;
      }
    }
    return m | node.timeoutBits(orig_tracking, resp_tracking) | (uint32_t{node.gen} << kGenShift);
  }

  // Brings a connection's protection and ACL bits up to date with the current policy. Tracking
  // is kept for sides that stay protected; a side that became protected is untracked (its rules
  // are consulted packet by packet) since no rule of its allowed the connection.
  uint32_t currentMeta(ConnValue& val, const rules::IpAddr& orig, const rules::IpAddr& resp,
                       uint8_t proto) {
    uint32_t m = val.meta.load(std::memory_order_acquire);
    while ((m >> kGenShift) != node.gen) {
      rules::Flow5 f{};
      f.proto = proto;
      f.src = orig;
      f.dst = resp;
      rules::Evaluation ev;
      rules::evaluate(pol, f, rules::EvalMode::kAclOnly, &ev);
      bool acl_fwd = false;
      for (uint8_t i = 0; i < ev.n_checks; ++i)
        if (ev.checks[i].kind == rules::CheckKind::kAcl) acl_fwd = true;
      uint32_t fresh = m & (kReplied | kStream | kMidStream | kIcmpQuery | kEvicting);
      if (ev.src_protected) {
        fresh |= kOrigProtected;
        if ((m & kOrigProtected) && (m & kOrigTracked)) fresh |= kOrigTracked;
      }
      if (ev.dst_protected) {
        fresh |= kRespProtected;
        if ((m & kRespProtected) && (m & kRespTracked)) fresh |= kRespTracked;
      }
      if (acl_fwd) fresh |= kAclOnPath;
      fresh |= node.timeoutBits((fresh & kOrigTracked) ? ev.src_iface : rules::kNoIface,
                                (fresh & kRespTracked) ? ev.dst_iface : rules::kNoIface);
      fresh |= uint32_t{node.gen} << kGenShift;
      if (val.meta.compare_exchange_weak(m, fresh, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        return fresh;
    }
    return m;
  }

  // Whether the reverse of f (a reply's original direction) is a TCP/UDP flow the rules allow as
  // untracked. Only for first packets that are not SYNs, so the extra evaluation is rare.
  bool replyOfUntrackedFlow(const rules::Flow5& f) const {
    if (f.proto != kIpProtoTcp && f.proto != kIpProtoUdp) return false;
    rules::Flow5 r = f;
    r.src = f.dst;
    r.dst = f.src;
    r.sport = f.dport;
    r.dport = f.sport;
    rules::Evaluation ev;
    rules::evaluate(pol, r, rules::EvalMode::kFull, &ev);
    return ev.allowed && ev.untracked;
  }

  // The idle timeout of a connection after a packet; for TCP, tcp_state is the state the
  // packet left it in (the tracker's result).
  uint64_t timeoutOf(ConnKind kind, TcpState tcp_state, uint32_t meta) const {
    switch (kind) {
      case ConnKind::kTcp:
        return node.timeouts(meta).tcp_ns[static_cast<size_t>(tcp_state)];
      case ConnKind::kUdp:
        return node.timeouts(meta).timeout((meta & kStream) ? TimeoutKey::kUdpStream
                                                            : TimeoutKey::kUdp);
      case ConnKind::kIcmpQuery:
        return node.timeouts(meta).timeout(TimeoutKey::kIcmp);
      default:
        return node.timeouts(meta).timeout(TimeoutKey::kOther);
    }
  }

  // first_attempt > 0: the fast path below handed the packet on after its entry died.
  template <class Table, class Key>
  void decideIp(Table& table, typename Table::Entry* e, const Key& key, uint64_t hash,
                bool pkt_lo_to_hi, const ParsedPacket& p, const KeyPorts& kp, uint32_t len,
                Verdict* v, int first_attempt = 0);

  // The fast path of established TCP: an in-window ACK (TcpConnState::trackEstablishedAck) of a
  // connection whose entry is live and current for this policy, that its tracking helps on a
  // side that needs it and no other side needs its rules, with no network ACL on its path. It
  // is decideIp() for that packet, step for step (the same loads, the same writes in the same
  // order, the same verdict), without the general machinery. Returns false, having written
  // nothing, for any other packet: decideIp() then decides it. tests/engine check that the two
  // agree. The verdict is written after the locked instructions (the tracker's bound advances,
  // the refresh), so that they do not wait for its stores to drain.
  enum class Fast : uint8_t { kNo, kDone, kDied };
  template <int kDir>
  Fast establishedTcp(Table4::Entry* e, uint32_t meta, const ParsedPacket& p, Verdict* v) {
    constexpr bool from_orig = kDir == 0;
    constexpr uint32_t src_prot = from_orig ? kOrigProtected : kRespProtected;
    constexpr uint32_t dst_prot = from_orig ? kRespProtected : kOrigProtected;
    constexpr uint32_t src_trk = from_orig ? kOrigTracked : kRespTracked;
    constexpr uint32_t dst_trk = from_orig ? kRespTracked : kOrigTracked;
    // decideIp(): need_src and need_dst false, no ACL on the path, tracked_help true.
    const bool src_ok = (meta & src_prot) == 0 || (meta & src_trk) != 0;
    const bool dst_ok = (meta & dst_prot) == 0 || (meta & dst_trk) != 0;
    const bool helps =
        ((meta & src_prot) && (meta & src_trk)) || ((meta & dst_prot) && (meta & dst_trk));
    if (!src_ok || !dst_ok || !helps || (meta & kAclOnPath) != 0) return Fast::kNo;
    ConnValue& val = e->value;
    TcpResult r;
    if (!val.tcp.trackEstablishedAck<kDir>(segmentOf(p), &r)) return Fast::kNo;
    const RuleId rule = val.opened_by.load(std::memory_order_relaxed);
    if (!from_orig && !(meta & kReplied)) val.meta.fetch_or(kReplied, std::memory_order_acq_rel);
    const bool live = impl.table4.refresh(
        e, now + node.established_ns[(meta >> kTimeoutSetShift) & kTimeoutSetMask]);
    v->tcp_before = r.before;
    v->tcp_after = r.after;
    v->reason = Reason::kAllowTracked;
    v->rule = rule;
    if (!live) return Fast::kDied;  // decideIp() clears the reply flag and the id then
    v->conn_id = connIdOf(impl.table4, e);
    if (!from_orig) v->flags |= kFlagReply;
    return Fast::kDone;
  }

  // The AWS service exemptions (docs/design.md "Exempt traffic"). Asked only of packets that no
  // connection entry helps: exempt traffic opens none, so the established fast path never pays.
  bool exempted(const rules::Flow5& f, Verdict* v) const {
    if (!node.exempt) return false;
    const rules::Exemption x = rules::serviceExemption(pol, f);
    if (x == rules::Exemption::kNone) return false;
    v->reason = Reason::kAllowExempt;
    v->exemption = x;
    return true;
  }

  const char* unrelatedWhy(const ParsedPacket& p, uint64_t* conn, RuleId* opened);
  void decideIcmpError(const ParsedPacket& p, const rules::Flow5& f, Verdict* v);
  void decide(const ParsedPacket& p, const KeyPorts& kp, uint32_t len, Verdict* v);

  // A packet the burst's parse loop gave an IPv4 flow key, looked up in bulk (e: the lookup's
  // result, null for a miss): an IP packet that is not malformed, not an ICMP error and not a
  // later fragment, of a connection kind. decide() would reach decideIp() for it.
  // Always inlined: process() has two copies of its decision loop (with and without the
  // connection detail), and one call that is not inlined costs the established path about 2 %.
  [[gnu::always_inline]] void decideV4(const ParsedPacket& p, const KeyPorts& kp, uint32_t len,
                                       Table4::Entry* e, const FlowKey4& k, uint64_t h,
                                       Verdict* v) {
    FragmentRecord frag;
    if (p.is_fragment && !fragmentBytes(p, &frag, v)) return;  // repeats or overlaps: no state
    // A miss is looked up again: an earlier packet of the burst may have created the connection.
    if (e == nullptr) e = impl.table4.find(k, h, now);
    if (e != nullptr && kp.kind == ConnKind::kTcp && !p.is_fragment && e->expiresNs() != 0 &&
        impl.config.fast_paths) {
      const uint32_t meta = e->value.meta.load(std::memory_order_acquire);
      if ((meta >> kGenShift) == node.gen) {
        const Fast f = e->fromOriginator(k.loToHi()) ? establishedTcp<0>(e, meta, p, v)
                                                     : establishedTcp<1>(e, meta, p, v);
        if (f == Fast::kDone) return;
        if (f == Fast::kDied) {
          // The entry died after the lookup (timed out and swept): as decideIp() does, start
          // over without it (v as decideIp() leaves it then: no reply flag, no id).
          decideIp(impl.table4, impl.table4.find(k, h, now), k, h, k.loToHi(), p, kp, len, v, 1);
          return;
        }
      }
    }
    decideIp(impl.table4, e, k, h, k.loToHi(), p, kp, len, v);
    if (p.is_fragment) rememberFragment(p, *v);
  }

  // A first fragment: remember its verdict for the rest of the datagram. Its flags that say what
  // the packet did to the table (opened, reopened, closed, picked up) stay with it: later
  // fragments open nothing.
  void rememberFragment(const ParsedPacket& p, const Verdict& v) {
    constexpr uint16_t kOwnFlags =
        kFlagNewConnection | kFlagReopened | kFlagConnClosed | kFlagMidStream;
    FragmentRecord rec{v.reason, static_cast<uint16_t>(v.flags & ~kOwnFlags), v.rule, v.conn_id};
    if (!v.allowed()) {
      rec.rule = uint32_t{v.deny_iface} | (static_cast<uint32_t>(v.deny_dir) << 16);
      rec.conn_id = v.acl_entry;
    }
    if (v.reason == Reason::kAllowExempt) rec.rule = static_cast<uint32_t>(v.exemption);
    impl.fragments.remember(fragmentTag(p), now + kFragmentLifetimeNs, rec, p.frag_len);
  }

  // Records a fragment's bytes (docs/design.md "Fragments"; docs/semantics.md "Fragments"). Returns
  // false, with the verdict written, when the fragment repeats or overlaps bytes already seen of
  // its datagram (or the datagram was dropped for that): deny-malformed, before any rule or state
  // sees it. A first fragment of an unknown datagram returns true (it is judged, then
  // remembered); a later fragment returns true with its datagram's record in *rec.
  bool fragmentBytes(const ParsedPacket& p, FragmentRecord* rec, Verdict* v) {
    const uint32_t begin = uint32_t{p.frag_offset} * 8;
    const FragmentAdd r = impl.fragments.add(fragmentTag(p), now, begin, begin + p.frag_len, rec);
    const char* why = nullptr;
    switch (r) {
      case FragmentAdd::kUnknown:
        if (p.first_fragment) return true;
        why = "fragment of a datagram whose first fragment was not seen";
        break;
      case FragmentAdd::kAdded:
        return true;
      case FragmentAdd::kDuplicate:
        why =
            "duplicate fragment: its bytes of the datagram were already seen (dropped; the "
            "datagram continues, as Linux reassembly does)";
        break;
      case FragmentAdd::kOverlap:
        why =
            "overlapping fragment: it rewrites bytes of its datagram already seen (RFC 5722); "
            "the whole datagram is dropped";
        break;
      case FragmentAdd::kOverlapped:
        why = "fragment of a datagram dropped for overlapping fragments (RFC 5722)";
        break;
      case FragmentAdd::kBusy:
        why =
            "fragment could not be recorded (its datagram is in too many pieces, or another "
            "worker holds its record)";
        break;
    }
    v->reason = Reason::kDenyMalformed;
    v->malformed_layer = Layer::kFragment;
    v->why = why;
    if (!p.first_fragment) v->flags |= kFlagFragment;
    return false;
  }
};

// Decides a TCP/UDP/ICMP-echo/other-protocol packet given its table lookup (e may be null or dead).
template <class Table, class Key>
void Decider::decideIp(Table& table, typename Table::Entry* e, const Key& key, uint64_t hash,
                       bool pkt_lo_to_hi, const ParsedPacket& p, const KeyPorts& kp,
                       uint32_t /*len*/, Verdict* v, int first_attempt) {
  // The worker's scratch: evaluate() writes the fields it uses, so the tracked fast path, which
  // evaluates nothing, pays nothing for it.
  rules::Evaluation& ev = w.ev;
  // At most: a stale or reopened entry, then an insert race lost to another worker.
  for (int attempt = first_attempt; attempt < 3; ++attempt) {
    // A bulk-lookup hit may have been killed since by an earlier packet of the burst (a SYN
    // reopening TIME_WAIT) or by the sweep: look again rather than use a dead entry.
    if (e != nullptr && e->expiresNs() == 0) e = table.find(key, hash, now);
    v->flags &= static_cast<uint16_t>(~(kFlagReply | kFlagConnClosed | kFlagTcpInvalid));
    if (e != nullptr) {
      ConnValue& val = e->value;
      const bool from_orig = e->fromOriginator(pkt_lo_to_hi);
      if (kp.kind == ConnKind::kIcmpQuery && from_orig != p.icmp_is_query_request) [[unlikely]] {
        // An id equal to the request type makes the two roles' keys equal: a request sent back
        // by the answering side, or a reply sent the request's way. Not part of the pair: a new
        // packet judged by the rules, which changes nothing.
        judgeByRules(ruleFlowOf(p), rules::EvalMode::kFull, &ev, v);
        return;
      }
      const rules::IpAddr& orig = from_orig ? p.src : p.dst;
      const rules::IpAddr& resp = from_orig ? p.dst : p.src;
      uint32_t meta = currentMeta(val, orig, resp, p.proto);
      v->conn_id = connIdOf(table, e);
      if (!from_orig) v->flags |= kFlagReply;

      // Which sides still need their rules: protected and not tracked.
      const uint32_t src_prot = from_orig ? kOrigProtected : kRespProtected;
      const uint32_t dst_prot = from_orig ? kRespProtected : kOrigProtected;
      const uint32_t src_trk = from_orig ? kOrigTracked : kRespTracked;
      const uint32_t dst_trk = from_orig ? kRespTracked : kOrigTracked;
      const bool need_src = (meta & src_prot) && !(meta & src_trk);
      const bool need_dst = (meta & dst_prot) && !(meta & dst_trk);
      const bool src_tracks = (meta & src_prot) && (meta & src_trk);
      const bool tracked_help = src_tracks || ((meta & dst_prot) && (meta & dst_trk));
      const bool untracked_orig =
          from_orig && !tracked_help && (meta & (kOrigProtected | kRespProtected));

      // The checks a packet meets before the tracking that sees it (docs/design.md "Direction"
      // order; docs/semantics.md "Which side's tracking sees a packet"). The sender's tracking sees
      // it as it leaves, before the sender's subnet ACL; when the sender does not track the
      // connection, only the receiver's does, and the packet reaches it only past the sender's
      // groups, the sender's ACL and the receiver's ACL. A packet they deny changes no state.
      bool pre_checked = false;
      if (!src_tracks && !untracked_orig && (need_src || (meta & kAclOnPath))) {
        rules::evaluate(pol, ruleFlowOf(p),
                        need_src ? rules::EvalMode::kSrcSideOnly : rules::EvalMode::kAclOnly, &ev);
        hitRules(ev);
        if (!ev.allowed) {
          denyFrom(ev, v);
          if (kp.kind == ConnKind::kTcp) v->tcp_before = v->tcp_after = val.tcp.state();
          return;
        }
        pre_checked = true;
      }

      // TCP: the state machine first. An INVALID packet gets no help from its connection.
      bool invalid = false;
      bool gone = false;  // the tracking removed the entry (it must not be refreshed)
      TcpState tcp_after = TcpState::kNone;
      if (kp.kind == ConnKind::kTcp) {
        const TcpDir dir = from_orig ? TcpDir::kOriginal : TcpDir::kReply;
        const bool loose = (meta & kMidStream) != 0;
        TcpResult r = impl.config.fast_paths ? val.tcp.track(dir, segmentOf(p), loose)
                                             : val.tcp.trackGeneral(dir, segmentOf(p), loose);
        v->tcp_before = r.before;
        v->tcp_after = r.after;
        tcp_after = r.after;
        if (r.verdict == TcpVerdict::kReopen) {
          // A new connection on the same addresses and ports: forget the old one.
          table.erase(e);
          e = nullptr;
          v->flags |= kFlagReopened;
          v->conn_id = 0;
          v->flags &= static_cast<uint16_t>(~kFlagReply);
          continue;
        }
        if (r.verdict == TcpVerdict::kInvalid) {
          invalid = true;
          v->flags |= kFlagTcpInvalid;
          v->why = r.why;
          bump(w.invalid);
        } else if (r.closed || r.after == TcpState::kTimeWait || r.after == TcpState::kClose) {
          if (r.before != r.after) v->flags |= kFlagConnClosed;
          // A reset before any reply: there was never a connection. The entry goes at once, as
          // in Linux conntrack; the next packet of the tuple is a first packet, judged by its
          // rules (docs/semantics.md "After a reset"). The reset itself passes as tracked. Its
          // tracking has seen it, so whatever checks follow, the entry is gone.
          if (r.closed && !(meta & kReplied)) {
            table.erase(e);
            gone = true;
          }
        }
      }
      if (invalid) {
        if (node.strict) {
          v->reason = Reason::kDenyInvalid;
          return;
        }
        judgeByRules(ruleFlowOf(p), rules::EvalMode::kFull, &ev, v, pre_checked);
        return;  // an INVALID packet does not refresh the connection
      }

      if (untracked_orig) {
        // An untracked flow has no connection to lean on: its originator's packets meet the
        // current rules as first packets would. If the rules now track the flow (the rule that
        // made it untracked is gone), the entry becomes a tracked connection from here on,
        // like a mid-stream pickup.
        if (!judgeByRules(ruleFlowOf(p), rules::EvalMode::kFull, &ev, v) || gone) return;
        if (v->reason == Reason::kAllowRule) {
          const uint32_t keep = meta & (kReplied | kStream | kIcmpQuery | kEvicting);
          val.meta.store(openingMeta(ev) | keep, std::memory_order_release);
          val.opened_by.store(v->rule, std::memory_order_relaxed);
          v->flags |= kFlagMidStream;
          meta = val.meta.load(std::memory_order_relaxed);
        }
        table.refresh(e, now + timeoutOf(kp.kind, tcp_after, meta));
        return;
      }
      if (pre_checked) {
        if (need_dst) {  // the receiver's groups, after its tracking
          rules::evaluate(pol, ruleFlowOf(p), rules::EvalMode::kDstSideOnly, &ev);
          hitRules(ev, true);
          if (!ev.allowed) {
            denyFrom(ev, v);
            return;
          }
        }
      } else if (need_src || need_dst || (meta & kAclOnPath)) {
        rules::EvalMode mode = need_src && need_dst ? rules::EvalMode::kFull
                               : need_src           ? rules::EvalMode::kSrcSideOnly
                               : need_dst           ? rules::EvalMode::kDstSideOnly
                                                    : rules::EvalMode::kAclOnly;
        rules::evaluate(pol, ruleFlowOf(p), mode, &ev);
        hitRules(ev);
        if (!ev.allowed) {
          denyFrom(ev, v);
          return;
        }
      }
      if (tracked_help) {
        v->reason = Reason::kAllowTracked;
        v->rule = val.opened_by.load(std::memory_order_relaxed);
      } else if (!(meta & (kOrigProtected | kRespProtected))) {
        v->reason = Reason::kAllowUnprotected;
      } else {
        v->reason = Reason::kAllowUntracked;
        v->flags |= kFlagUntracked;
        v->rule = decidingRule(ev);
      }
      if (gone) return;
      // Learn about the flow, then push the idle deadline out.
      if (!from_orig && !(meta & kReplied)) {
        meta = val.meta.fetch_or(kReplied, std::memory_order_acq_rel) | kReplied;
        // Evicted before this reply (EvictUnreplied): finish the kill; the refresh below fails
        // and the packet is judged without the connection.
        if (meta & kEvicting) table.erase(e);
      } else if (from_orig && kp.kind == ConnKind::kUdp && (meta & kReplied) && !(meta & kStream)) {
        meta = val.meta.fetch_or(kStream, std::memory_order_acq_rel) | kStream;
      }
      if (!table.refresh(e, now + timeoutOf(kp.kind, tcp_after, meta))) {
        // The sweep retired it between our lookup and now: it has timed out, start over.
        e = table.find(key, hash, now);
        v->flags &= static_cast<uint16_t>(~kFlagReply);
        v->conn_id = 0;
        continue;
      }
      return;
    }

    // No connection: the packet's own rules decide first; then, if they allow it, whether it
    // can open a connection. A TCP first packet must be a SYN, or an ACK for a mid-stream
    // pickup; anything else (a SYN-ACK, FIN, RST, no flags, a scan's combination) is INVALID and
    // leaves nothing behind. A packet whose reverse is an allowed untracked flow is a reply in
    // that flow: it passes by its own rule and needs no entry (AWS: untracked flows are judged by
    // the rules in both directions).
    if (kp.kind == ConnKind::kTcp) v->tcp_before = TcpState::kNone;
    const rules::Flow5 f = ruleFlowOf(p);
    if (exempted(f, v)) return;  // no entry: exempt traffic needs none
    if (!judgeByRules(f, rules::EvalMode::kFull, &ev, v)) {
      v->flags &= static_cast<uint16_t>(~kFlagReopened);  // a denied SYN reopens nothing
      return;
    }
    const bool syn = kp.kind == ConnKind::kTcp && tcpEventOf(p.tcp_flags) == TcpEvent::kSegSyn;
    if (v->reason == Reason::kAllowRule && !syn && replyOfUntrackedFlow(f)) {
      v->reason = Reason::kAllowUntracked;
      v->flags |= kFlagUntracked;
      return;
    }
    if (kp.kind == ConnKind::kTcp && !syn && tcpEventOf(p.tcp_flags) != TcpEvent::kSegAck &&
        v->reason != Reason::kAllowUntracked) {
      v->flags |= kFlagTcpInvalid;
      v->why = "cannot open a connection: a first packet is a SYN or, mid-stream, an ACK";
      bump(w.invalid);
      if (node.strict) {
        v->reason = Reason::kDenyInvalid;
        v->rule = rules::kNoRule;
      }
      return;
    }
    if (!kp.opens) return;
    const bool mid_stream = kp.kind == ConnKind::kTcp && (p.tcp_flags & (kSyn | kAck)) != kSyn;
    uint32_t meta = openingMeta(ev);
    if (mid_stream) meta |= kMidStream;
    if (kp.kind == ConnKind::kIcmpQuery) meta |= kIcmpQuery;
    const RuleId opened_by = v->rule;
    const TcpSegment seg = segmentOf(p);
    TimeoutKey tk = TimeoutKey::kOther;
    switch (kp.kind) {
      case ConnKind::kTcp:
        tk = mid_stream ? TimeoutKey::kTcpEstablished : TimeoutKey::kTcpSynSent;
        break;
      case ConnKind::kUdp:
        tk = TimeoutKey::kUdp;
        break;
      case ConnKind::kIcmpQuery:
        tk = TimeoutKey::kIcmp;
        break;
      default:
        break;
    }
    auto res = table.insert(
        key, hash, now, now + node.timeouts(meta).timeout(tk),
        [&](ConnValue& val) {
          if (kp.kind == ConnKind::kTcp) val.tcp.initFromFirst(seg, mid_stream);
          val.opened_by.store(opened_by, std::memory_order_relaxed);
          val.meta.store(meta, std::memory_order_relaxed);
        },
        EvictUnreplied{});
    if (res.evicted) bump(w.evicted);
    if (res.reaped) bump(w.expired);
    if (res.entry == nullptr) {
      // An untracked flow needs no entry to pass (its replies meet their own rules); only
      // tracked connections are refused when the table is full.
      if (v->reason == Reason::kAllowUntracked) return;
      v->reason = Reason::kDenyTableFull;
      v->rule = rules::kNoRule;
      v->flags &= static_cast<uint16_t>(~kFlagUntracked);
      return;
    }
    if (!res.inserted) {
      // Another worker created it first (the other direction, or a duplicate packet): handle
      // this packet as part of that connection. Its rule hits were counted above; that is the
      // cost of resolving the race without a lock.
      e = res.entry;
      v->reason = Reason::kDenyMalformed;
      v->rule = rules::kNoRule;
      v->flags &= static_cast<uint16_t>(~kFlagUntracked);
      continue;
    }
    bump(w.created);
    v->flags |= kFlagNewConnection;
    v->conn_id = connIdOf(table, res.entry);
    if (kp.kind == ConnKind::kTcp) {
      v->tcp_after = res.entry->value.tcp.state();
      if (mid_stream) v->flags |= kFlagMidStream;
    }
    return;
  }
  // Unreachable in practice (it needs a reopen, an expiry and a lost insert race for one packet);
  // bounded rather than looping, and counted as a packet no state machine accepted.
  v->reason = Reason::kDenyInvalid;
  v->why = "connection changed under the packet three times";
}

// Why an ICMP error is not related to a connection, or null when it is (docs/design.md "Connection
// tracking": the quoted packet belongs to a tracked connection in the direction it was sent, and
// the error goes back to that packet's sender; its source may be any router on the path).
namespace related_why {
constexpr const char* kNotAnError =
    "a redirect or source quench is never related to a connection: only destination "
    "unreachable, packet too big, time exceeded and parameter problem are";
constexpr const char* kNotToSender = "it is not addressed to the quoted packet's sender";
constexpr const char* kNoPorts =
    "its quote ends before the quoted packet's ports (or quotes a later fragment), so it names no "
    "connection";
constexpr const char* kNotAQuery =
    "the quoted packet is an ICMP message other than a query, which belongs to no connection";
constexpr const char* kNoConnection = "the quoted packet belongs to no tracked connection";
constexpr const char* kWrongDirection =
    "the quoted ICMP query went the wrong way for its connection (a request from the side that "
    "answers, or a reply from the side that asked)";
}  // namespace related_why

const char* Decider::unrelatedWhy(const ParsedPacket& p, uint64_t* conn, RuleId* opened) {
  const QuotedHeader& q = p.quoted;
  const bool v6 = p.family == Family::kV6;
  if (!icmpErrorMayBeRelated(v6, p.icmp_type)) return related_why::kNotAnError;
  if (!(p.dst == q.src)) return related_why::kNotToSender;
  if (!q.present || !q.has_l4) return related_why::kNoPorts;
  // The quoted packet's key as keyPortsOf() builds it for the packet itself.
  uint16_t sp = 0, dp = 0;
  bool query = false, request = false;
  int request_type = -1;
  if (q.proto == kIpProtoTcp || q.proto == kIpProtoUdp) {
    sp = q.sport;
    dp = q.dport;
  } else if (q.proto == (v6 ? kIpProtoIcmpv6 : kIpProtoIcmp)) {
    request_type = icmpQueryRequestType(v6, q.icmp_type, &request);
    if (request_type < 0) return related_why::kNotAQuery;
    query = true;
  }
  // role_request: build the key as if the quoted query were a request (else a reply).
  auto queryPorts = [&](bool role_request) {
    sp = role_request ? q.icmp_id : static_cast<uint16_t>(request_type);
    dp = role_request ? static_cast<uint16_t>(request_type) : q.icmp_id;
  };
  // 0: no tracked connection; 1: tracked, quoted packet from its originator; 2: from the responder.
  auto find = [&](auto& table, const auto& key, bool lo_to_hi) -> int {
    auto* e = table.find(key, table.hashOf(key), now);
    if (e == nullptr) return 0;
    const uint32_t m = e->value.meta.load(std::memory_order_acquire);
    // Related only to connections that tracking helps (or unprotected ones, which pass anyway).
    if ((m & (kOrigTracked | kRespTracked)) == 0 && (m & (kOrigProtected | kRespProtected)) != 0)
      return 0;
    *conn = connIdOf(table, e);
    *opened = e->value.opened_by.load(std::memory_order_relaxed);
    return e->fromOriginator(lo_to_hi) ? 1 : 2;
  };
  auto lookup = [&]() -> int {
    bool lo_to_hi;
    if (!v6) {
      FlowKey4 k;
      makeKey4(q.src.v4(), q.dst.v4(), sp, dp, q.proto, &k, &lo_to_hi);
      return find(impl.table4, k, lo_to_hi);
    }
    FlowKey6 k;
    makeKey6(q.src, q.dst, sp, dp, q.proto, &k, &lo_to_hi);
    return find(impl.table6, k, lo_to_hi);
  };
  if (query) queryPorts(request);
  const int found = lookup();
  // A query sent the way its roles allow: a request by the originator, a reply by the responder.
  if (found != 0 && (!query || (found == 1) == request)) return nullptr;
  *conn = 0;
  *opened = rules::kNoRule;
  if (found != 0) return related_why::kWrongDirection;
  if (query) {
    // The pair this quoted query would belong to with its roles swapped: if that is tracked, the
    // quote went the wrong way for it.
    queryPorts(!request);
    const int other = lookup();
    *conn = 0;
    *opened = rules::kNoRule;
    if (other != 0) return related_why::kWrongDirection;
  }
  return related_why::kNoConnection;
}

// ICMP errors: RELATED when unrelatedWhy() finds the connection; network ACLs still judge them
// (stateless). Anything else is an ordinary ICMP packet judged by the rules, with the reason in
// Verdict::why.
void Decider::decideIcmpError(const ParsedPacket& p, const rules::Flow5& f, Verdict* v) {
  rules::Evaluation& ev = w.ev;
  uint64_t conn = 0;
  RuleId opened = rules::kNoRule;
  const char* why = unrelatedWhy(p, &conn, &opened);
  if (why == nullptr) {
    v->conn_id = conn;  // also when an ACL denies it: it is about that connection
    rules::evaluate(pol, f, rules::EvalMode::kAclOnly, &ev);
    hitRules(ev);
    if (!ev.allowed) {
      denyFrom(ev, v);
      return;
    }
    v->reason = Reason::kAllowRelated;
    v->rule = opened;
    return;
  }
  v->why = why;
  judgeByRules(f, rules::EvalMode::kFull, &ev, v);
}

void Decider::decide(const ParsedPacket& p, const KeyPorts& kp, uint32_t len, Verdict* v) {
  if (p.malformed != Layer::kNone) {
    v->reason = Reason::kDenyMalformed;
    v->malformed_layer = p.malformed;
    v->why = p.malformed_why;
    return;
  }
  // ARP and valid neighbour discovery: exempt, whatever the policy (docs/design.md "Exempt
  // traffic"). Invalid ND is an ordinary ICMPv6 packet, judged by the rules below.
  if (p.l3 == L3::kArp || (p.is_nd && p.nd_problem == NdProblem::kNone)) {
    v->reason = Reason::kAllowExempt;
    v->exemption =
        p.l3 == L3::kArp ? rules::Exemption::kArp : rules::Exemption::kNeighbourDiscovery;
    v->flags |= kFlagControl;
    return;
  }
  if (p.l3 == L3::kOther) {
    if (impl.config.pass_non_ip) {
      v->reason = Reason::kAllowUnprotected;
    } else {
      v->reason = Reason::kDenyMalformed;
      v->malformed_layer = Layer::kLink;
      v->why = "not an IP packet (EtherType is neither IPv4, IPv6 nor ARP)";
    }
    return;
  }
  // Later fragments carry no transport header: they follow their first fragment.
  FragmentRecord rec;
  if (p.is_fragment && !fragmentBytes(p, &rec, v)) return;  // repeats or overlaps: no state
  if (p.is_fragment && !p.first_fragment) {
    v->reason = rec.reason;
    v->flags |= static_cast<uint16_t>(rec.flags | kFlagFragment);
    if (rec.reason == Reason::kAllowExempt) {  // the record holds the exemption
      v->exemption = static_cast<rules::Exemption>(rec.rule);
    } else if (reasonAllows(rec.reason)) {
      v->rule = rec.rule;
      v->conn_id = rec.conn_id;
    } else {  // a denied datagram: the record holds where it was denied
      v->deny_iface = static_cast<rules::IfaceId>(rec.rule);
      v->deny_dir = static_cast<Direction>((rec.rule >> 16) & 1);
      v->acl_entry = static_cast<rules::AclEntryId>(rec.conn_id);
    }
    return;
  }

  if (p.icmp_is_error || kp.kind == ConnKind::kNone) {
    // No connection of their own: exemptions, then ICMP errors' relation, then the rules.
    const rules::Flow5 f = ruleFlowOf(p);
    if (exempted(f, v)) {
      // Nothing more to decide.
    } else if (p.icmp_is_error) {
      decideIcmpError(p, f, v);
    } else {
      judgeByRules(f, rules::EvalMode::kFull, &w.ev, v);
    }
  } else {
    if (p.family == Family::kV4) {
      FlowKey4 k;
      bool lo_to_hi;
      makeKey4(p.src.v4(), p.dst.v4(), kp.sport, kp.dport, p.proto, &k, &lo_to_hi);
      const uint64_t h = impl.table4.hashOf(k);
      decideIp(impl.table4, impl.table4.find(k, h, now), k, h, lo_to_hi, p, kp, len, v);
    } else {
      FlowKey6 k;
      bool lo_to_hi;
      makeKey6(p.src, p.dst, kp.sport, kp.dport, p.proto, &k, &lo_to_hi);
      uint64_t h = impl.table6.hashOf(k);
      decideIp(impl.table6, impl.table6.find(k, h, now), k, h, lo_to_hi, p, kp, len, v);
    }
  }
  if (p.is_fragment) rememberFragment(p, *v);  // a first fragment
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Engine::Worker::Worker() : s_(std::make_unique<State>()) {}

Engine::Worker::~Worker() {
  Impl* impl = s_->impl;
  std::lock_guard<std::mutex> lock(impl->control_mu);
  for (size_t r = 0; r < kReasonCount; ++r) {
    impl->departed.packets[r] += s_->packets[r].load(std::memory_order_relaxed);
    impl->departed.bytes[r] += s_->bytes[r].load(std::memory_order_relaxed);
  }
  impl->departed.connections_created += s_->created.load(std::memory_order_relaxed);
  impl->departed.connections_expired += s_->expired.load(std::memory_order_relaxed);
  impl->departed.tcp_invalid += s_->invalid.load(std::memory_order_relaxed);
  impl->departed.connections_evicted += s_->evicted.load(std::memory_order_relaxed);
  impl->workers[s_->slot] = nullptr;
  impl->qsbr.offline(s_->qsbr);
  impl->qsbr.unregisterThread(s_->qsbr);
}

unsigned Engine::Worker::index() const {
  return s_->slot;
}

uint64_t Counters::totalPackets() const {
  uint64_t t = 0;
  for (uint64_t p : packets)
    t += p;
  return t;
}

Engine::Engine(const EngineConfig& config, rules::CompiledPolicyPtr policy)
    : impl_(std::make_unique<Impl>(config)) {
  publish(std::move(policy));
}

Engine::~Engine() {
  PolicyNode* n = impl_->node.exchange(nullptr);
  delete n;
}

std::unique_ptr<Engine::Worker> Engine::makeWorker() {
  std::unique_ptr<Worker> w(new Worker());
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  auto it = std::find(impl_->workers.begin(), impl_->workers.end(), nullptr);
  if (it == impl_->workers.end()) return nullptr;  // kMaxWorkers reached
  w->s_->impl = impl_.get();
  w->s_->slot = static_cast<unsigned>(it - impl_->workers.begin());
  w->s_->qsbr = impl_->qsbr.registerThread();
  if (w->s_->qsbr == Qsbr::kNoThread) return nullptr;
  *it = w->s_.get();
  return w;
}

void Engine::process(Worker& worker, const PacketRef* pkts, unsigned n, uint64_t now_ns,
                     Verdict* out, ParsedPacket* parsed_out, ConnectionInfo* conn_out) noexcept {
  Worker::State& w = *worker.s_;
  Impl& impl = *impl_;
  n = std::min(n, kMaxBurst);
  impl.qsbr.online(w.qsbr);
  if (impl.last_now.load(std::memory_order_relaxed) < now_ns)
    impl.last_now.store(now_ns, std::memory_order_relaxed);
  // The policy node stays valid until our next quiescent point (reclaimed after a grace period).
  // seq_cst pairs with the exchange in publish(): the fence-free grace-period protocol needs it
  // (a plain mov on x86, like acquire).
  const PolicyNode& node = *impl.node.load(std::memory_order_seq_cst);
  ParsedPacket* parsed = parsed_out != nullptr ? parsed_out : w.parsed;

  // 1. Parse, and start the IPv4 lookups in stages (ConnTable::prefetch/probe/probeNext/resolve,
  // the stages of findBulk()): a key's home bucket is fetched as soon as its packet is parsed, so
  // the bucket misses overlap the parsing of the rest of the burst; the buckets are read after
  // the parse loop, which fetches the candidate entries; each entry is checked when its packet's
  // turn comes in step 2, after the packets before it were decided. All of a burst's stages in
  // one pass (lookups started a fixed distance ahead of the packet being decided) was measured
  // slower: the bucket and entry misses then overlap less with one another (bench/README.md).
  // Frames are fetched 16 packets ahead: about one miss latency of parsing (8 ahead was 4 %
  // slower at 1 M connections, 4 ahead 10 %).
  constexpr unsigned kParsePrefetch = 16;
  for (unsigned i = 0; i < std::min(n, kParsePrefetch); ++i)
    __builtin_prefetch(pkts[i].data);
  const uint64_t seed4 = impl.table4.seed();
  unsigned n4 = 0;
  // Decapsulation is chosen once per burst (two instances of the loop): without it, the
  // 4-argument parsePacket() as before.
  auto parse_burst = [&](auto decap) {
    for (unsigned i = 0; i < n; ++i) {
      ParsedPacket& p = parsed[i];
      // The frames of a burst are usually cold (just received): start fetching ahead.
      if (i + kParsePrefetch < n) __builtin_prefetch(pkts[i + kParsePrefetch].data);
      if constexpr (decltype(decap)::value) {
        parsePacket(pkts[i].data, pkts[i].len, pkts[i].link, impl.config.parse, &p);
      } else {
        parsePacket(pkts[i].data, pkts[i].len, pkts[i].link, &p);
      }
      w.v4_index[i] = 0xff;
      if (p.malformed != Layer::kNone || (p.l3 != L3::kIpv4 && p.l3 != L3::kIpv6) ||
          p.icmp_is_error || (p.is_fragment && !p.first_fragment)) {
        w.kports[i] = KeyPorts{ConnKind::kNone, 0, 0, false};
        continue;
      }
      const KeyPorts kp = keyPortsOf(p);
      w.kports[i] = kp;  // not read back here: a reload of the narrower stores would stall
      if (kp.kind == ConnKind::kNone || p.l3 != L3::kIpv4) continue;
      // The key and its hash from registers (FlowKey4::hashWords), then stored whole.
      uint64_t w0, w1;
      makeKey4Words(p.src.v4(), p.dst.v4(), kp.sport, kp.dport, p.proto, &w0, &w1);
      const uint64_t h = FlowKey4::hashWords(w0, w1, seed4);
      w.keys4[n4] = FlowKey4::fromWords(w0, w1);
      w.hashes4[n4] = h;
      impl.table4.prefetch(h);
      w.v4_index[i] = static_cast<uint8_t>(n4++);
    }
  };
  if (impl.config.parse.decap) [[unlikely]] {
    parse_burst(std::true_type{});
  } else {
    parse_burst(std::false_type{});
  }
  for (unsigned k = 0; k < n4; ++k)
    w.probes4[k] = impl.table4.probe(w.hashes4[k]);
  // Keys past their home bucket (a few percent): the next bucket, fetched by probe().
  for (unsigned k = 0; k < n4; ++k)
    w.probes4[k] = impl.table4.probeNext(w.hashes4[k], w.probes4[k]);

  // 2. Decide in order. A key's lookup completes now: resolve() never returns an entry killed by
  // an earlier packet of the burst (a SYN reopening TIME_WAIT), and decideV4() looks a miss up
  // again, since an earlier packet may have created the connection.
  // The connection detail (conn_out) is chosen once per burst, like decapsulation: without it the
  // loop is the one before it existed.
  Decider d{impl, w, node, *node.policy, now_ns};
  auto decide_burst = [&](auto detail) {
    for (unsigned i = 0; i < n; ++i) {
      Verdict& v = out[i];
      v = Verdict{};
      const uint8_t k = w.v4_index[i];
      if (k != 0xff) {
        Table4::Entry* e = impl.table4.resolve(w.keys4[k], w.hashes4[k], w.probes4[k], now_ns);
        d.decideV4(parsed[i], w.kports[i], pkts[i].len, e, w.keys4[k], w.hashes4[k], &v);
      } else {
        d.decide(parsed[i], w.kports[i], pkts[i].len, &v);
      }
      const size_t r = static_cast<size_t>(v.reason);
      bump(w.packets[r]);
      bump(w.bytes[r], pkts[i].len);
      if constexpr (decltype(detail)::value) conn_out[i] = connectionOf(impl, node, v.conn_id);
    }
  };
  if (conn_out != nullptr) [[unlikely]] {
    decide_burst(std::true_type{});
  } else {
    decide_burst(std::false_type{});
  }

  // 3. A slice of the expiry sweep, paced by time rather than by packets: lookups already treat
  // expired entries as absent, so the sweep only returns them to the pool, and sweeping on every
  // burst costed a quarter of the packet rate (cold entry reads). Each worker sweeps so that the
  // table is covered about once per sweep_full_pass_ns. Then the quiescent point.
  if (impl.config.sweep_buckets_per_burst > 0 && now_ns >= w.next_sweep_ns) {
    w.next_sweep_ns = now_ns + impl.sweep_interval_ns;
    size_t reclaimed = impl.table4.sweep(now_ns, impl.config.sweep_buckets_per_burst) +
                       impl.table6.sweep(now_ns, impl.config.sweep_buckets_per_burst);
    if (reclaimed) bump(w.expired, reclaimed);
  }
  impl.qsbr.quiescent(w.qsbr);
}

size_t Engine::sweep(Worker& worker, uint64_t now_ns, size_t max_buckets) noexcept {
  Worker::State& w = *worker.s_;
  impl_->qsbr.online(w.qsbr);
  size_t r = impl_->table4.sweep(now_ns, max_buckets) + impl_->table6.sweep(now_ns, max_buckets);
  if (r) bump(w.expired, r);
  impl_->qsbr.quiescent(w.qsbr);
  return r;
}

void Engine::offline(Worker& worker) noexcept {
  impl_->qsbr.offline(worker.s_->qsbr);
}

uint64_t Engine::publish(rules::CompiledPolicyPtr policy) {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  uint64_t version = impl_->versions.fetch_add(1, std::memory_order_relaxed) + 1;
  auto fresh = makeNode(std::move(policy), version);
  // Carry nothing over: hit counters belong to the policy version they count.
  PolicyNode* old = impl_->node.exchange(fresh.release(), std::memory_order_seq_cst);
  impl_->published_version.store(version, std::memory_order_release);
  if (old != nullptr) {
    impl_->retired.emplace_back(impl_->qsbr.start(), std::unique_ptr<PolicyNode>(old));
  }
  impl_->reclaimRetired();
  return version;
}

size_t Engine::reclaimRetiredPolicies() {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  return impl_->reclaimRetired();
}

rules::CompiledPolicyPtr Engine::policy() const {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  return impl_->node.load(std::memory_order_acquire)->policy;
}

uint64_t Engine::policyVersion() const noexcept {
  return impl_->published_version.load(std::memory_order_acquire);
}

Engine::Published Engine::publishedPolicy() const {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  const PolicyNode& n = *impl_->node.load(std::memory_order_acquire);
  return {n.policy, n.version};
}

Counters Engine::counters() const {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  Counters c = impl_->departed;
  for (const Worker::State* w : impl_->workers) {
    if (w == nullptr) continue;
    for (size_t r = 0; r < kReasonCount; ++r) {
      c.packets[r] += w->packets[r].load(std::memory_order_relaxed);
      c.bytes[r] += w->bytes[r].load(std::memory_order_relaxed);
    }
    c.connections_created += w->created.load(std::memory_order_relaxed);
    c.connections_expired += w->expired.load(std::memory_order_relaxed);
    c.tcp_invalid += w->invalid.load(std::memory_order_relaxed);
    c.connections_evicted += w->evicted.load(std::memory_order_relaxed);
  }
  return c;
}

std::vector<uint64_t> Engine::ruleHits() const {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  const PolicyNode& n = *impl_->node.load(std::memory_order_acquire);
  std::vector<uint64_t> hits(n.n_rules, 0);
  for (size_t w = 0; w < kMaxWorkers; ++w)
    for (size_t r = 0; r < n.n_rules; ++r)
      hits[r] += n.rule_hits[w * n.n_rules + r].load(std::memory_order_relaxed);
  return hits;
}

std::vector<uint64_t> Engine::aclHits() const {
  std::lock_guard<std::mutex> lock(impl_->control_mu);
  const PolicyNode& n = *impl_->node.load(std::memory_order_acquire);
  std::vector<uint64_t> hits(n.n_acl, 0);
  for (size_t w = 0; w < kMaxWorkers; ++w)
    for (size_t r = 0; r < n.n_acl; ++r)
      hits[r] += n.acl_hits[w * n.n_acl + r].load(std::memory_order_relaxed);
  return hits;
}

size_t Engine::connectionCount() const {
  return impl_->table4.size() + impl_->table6.size();
}

size_t Engine::capacity() const {
  return impl_->table4.capacity() + impl_->table6.capacity();
}

// The control thread reads (and may kill) entries concurrently with the workers: it is an online
// reader of the table's grace-period domain while it walks, and it walks in slices with a
// quiescent point between them so that reclamation never waits long for it.
template <class Fn>
void Engine::walk(Fn&& fn) const {
  constexpr uint32_t kSlice = 256;
  QsbrReader reader(impl_->qsbr);
  if (!reader.valid()) return;
  const uint64_t now = impl_->last_now.load(std::memory_order_relaxed);
  for (uint32_t b = 0; b < impl_->table4.bucketCount();) {
    b = impl_->table4.forEachInRange(now, b, kSlice, [&](Table4::Entry& e) {
      fn(infoOf(impl_->table4, e), [&] { return impl_->table4.erase(&e); });
    });
    reader.quiescent();
  }
  for (uint32_t b = 0; b < impl_->table6.bucketCount();) {
    b = impl_->table6.forEachInRange(now, b, kSlice, [&](Table6::Entry& e) {
      fn(infoOf(impl_->table6, e), [&] { return impl_->table6.erase(&e); });
    });
    reader.quiescent();
  }
}

void Engine::forEachConnection(const std::function<void(const ConnectionInfo&)>& fn) const {
  walk([&](const ConnectionInfo& ci, auto&&) { fn(ci); });
}

size_t Engine::eraseConnections(const std::function<bool(const ConnectionInfo&)>& pred) {
  size_t n = 0;
  walk([&](const ConnectionInfo& ci, auto&& kill) {
    if (pred(ci) && kill()) ++n;
  });
  return n;
}

}  // namespace statewall::dataplane
