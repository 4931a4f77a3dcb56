// `statewall flowlogs`: records paired into connections, synthesized packets through the engine,
// each record's action compared with the engine's (sim/flowlog_judge.hpp).
#include <algorithm>
#include <functional>
#include <map>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>

#include "describe.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/change_cause.hpp"
#include "statewall/sim/flowlog_judge.hpp"

namespace statewall::sim {

std::string_view flowLogSkipName(FlowLogSkip s) {
  switch (s) {
    case FlowLogSkip::kNoData:
      return "nodata";
    case FlowLogSkip::kSkipData:
      return "skipdata";
    case FlowLogSkip::kUnknownInterface:
      return "unknown-interface";
    case FlowLogSkip::kAddressNotInPolicy:
      return "address-not-in-policy";
    case FlowLogSkip::kCount:
      break;
  }
  return "?";
}

std::string_view disagreeCauseName(DisagreeCause c) {
  switch (c) {
    case DisagreeCause::kNoRule:
      return "no-rule";
    case DisagreeCause::kDeniedAtSource:
      return "denied-at-source";
    case DisagreeCause::kAfterIdle:
      return "after-idle";
    case DisagreeCause::kBeganBeforeLogs:
      return "began-before-logs";
    case DisagreeCause::kRuleAllows:
      return "rule-allows";
    case DisagreeCause::kTrackedHere:
      return "tracked-here";
    case DisagreeCause::kOther:
    case DisagreeCause::kCount:
      break;
  }
  return "other";
}

std::string_view disagreeCauseMeaning(DisagreeCause c) {
  switch (c) {
    case DisagreeCause::kNoRule:
      return "AWS accepted it, and no rule of the loaded policy allows it at this interface: the "
             "policy loaded is not the one that ran (a rule removed since), or AWS applied a rule "
             "the model lacks";
    case DisagreeCause::kDeniedAtSource:
      return "logged at the destination, but the loaded policy denies it at the source interface "
             "(it would never have arrived)";
    case DisagreeCause::kAfterIdle:
      return "AWS accepted it mid-connection after an idle gap, where statewall's tracking had "
             "expired: the timeouts that ran differ from the policy's";
    case DisagreeCause::kBeganBeforeLogs:
      return "the connection's opening is not in the logs, and this interface's rules do not "
             "allow this direction on their own (AWS was tracking it)";
    case DisagreeCause::kRuleAllows:
      return "AWS rejected it, and a rule of the loaded policy allows it: the policy loaded is "
             "not the one that ran (a rule added since)";
    case DisagreeCause::kTrackedHere:
      return "AWS rejected it, and statewall passes it as part of a tracked connection (AWS's "
             "tracking had ended, or the connection was untracked there)";
    case DisagreeCause::kOther:
    case DisagreeCause::kCount:
      break;
  }
  return "the engine's verdict differs for another reason (see the detail)";
}

namespace {

using dataplane::Verdict;
using rules::IfaceId;

constexpr uint64_t kNs = 1000000000ull;

// A connection whichever way its records go (rules/vocab.hpp).
using ConnKey = rules::BiFlowKey;
using ConnKeyHash = rules::BiFlowKeyHash;

// A record as the judge keeps it while it waits in the reorder buffer.
struct Pending {
  uint64_t start = 0, end = 0, packets = 0, bytes = 0;
  uint64_t seq = 0;  // arrival order
  uint64_t line = 0;
  uint32_t file = 0;
  IfaceId iface = rules::kNoIface;
  uint32_t logged_id = 0;  // interned interface-id
  bool egress = false;
  uint8_t proto = 0;
  int tcp_flags = -1;
  rules::IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  FlowAction action = FlowAction::kNone;
  uint8_t prio = 2;  // order among records of one start second (see add())
};
struct PendingLater {
  bool operator()(const Pending& x, const Pending& y) const {
    if (x.start != y.start) return x.start > y.start;
    if (x.prio != y.prio) return x.prio > y.prio;
    return x.seq > y.seq;
  }
};

enum class Pkt : uint8_t { kSyn, kSynAgain, kSynAck, kAck, kData, kFin, kRst, kDatagram, kEcho };

struct DirState {
  bool have = false;  // a record of this direction drove packets
  uint64_t start = 0, end = 0;
  IfaceId iface = rules::kNoIface;
  Verdict vo, vn;     // the verdict of its first packet, under the policy and NEW
  rules::Flow5 flow;  // that packet
  bool syn_unanswered = false;
};

struct Conn {
  uint32_t nxt[2] = {1000000u, 2000000000u};
  DirState dir[2];
  int icmp_requester = -1;
  uint16_t icmp_seq[2] = {0, 0};
  int pending_ack = -1;          // the direction whose SYN record counted more packets than the SYN
  bool closed = false;           // an RST
  bool fin[2] = {false, false};  // each direction's FIN
  bool opened = false;           // a SYN of this connection is in the logs
  bool active[2] = {false, false};
  uint64_t last_ns = 0;
  uint32_t pending_events = 0;
};

struct Event {
  uint64_t t = 0;
  uint64_t seq = 0;
  ConnKey key;
  int dir = 0;
  Pkt kind = Pkt::kData;
};
struct EventLater {
  bool operator()(const Event& x, const Event& y) const {
    return x.t != y.t ? x.t > y.t : x.seq > y.seq;
  }
};

struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct DisKey {
  IfaceId iface;
  bool egress;
  FlowAction logged;
  DisagreeCause cause;
  uint8_t proto;
  rules::IpAddr src, dst;
  uint16_t sport, dport;
  friend bool operator==(const DisKey&, const DisKey&) = default;
};
struct DisKeyHash {
  size_t operator()(const DisKey& k) const noexcept {
    rules::IpAddrHash h;
    uint64_t x = h(k.src) * 31 + h(k.dst);
    x ^= (uint64_t{k.sport} << 32 | uint64_t{k.dport} << 16 | uint64_t{k.proto} << 8 |
          static_cast<uint64_t>(k.cause) << 2 | static_cast<uint64_t>(k.logged)) *
         0x9E3779B97F4A7C15ull;
    x ^= uint64_t{k.iface} << 1 | k.egress;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

struct ChangeKey {
  bool breaks;
  ConnKey conn;
  friend bool operator==(const ChangeKey&, const ChangeKey&) = default;
};
struct ChangeKeyHash {
  size_t operator()(const ChangeKey& k) const noexcept {
    return ConnKeyHash{}(k.conn) * 2 + (k.breaks ? 1 : 0);
  }
};

FlowKey flowKeyOf(const Pending& p) {
  FlowKey k;
  k.proto = p.proto;
  k.src = p.src;
  k.dst = p.dst;
  k.sport = p.sport;
  k.dport = p.dport;
  return k;
}

void useRecord(RuleUse* u, IfaceId iface) {
  ++u->hits;
  for (auto& [i, n] : u->by_iface) {
    if (i == iface) {
      ++n;
      return;
    }
  }
  u->by_iface.emplace_back(iface, 1);
}

}  // namespace

struct FlowLogJudge::Impl {
  rules::CompiledPolicyPtr policy, against;
  FlowLogJudgeOptions opt;
  detail::PolicyTexts texts, texts_new;
  dataplane::Engine engine;
  std::unique_ptr<dataplane::Engine::Worker> worker;
  std::unique_ptr<dataplane::Engine> engine_new;
  std::unique_ptr<dataplane::Engine::Worker> worker_new;
  std::unique_ptr<ChangeAttributor> attributor;

  FlowLogReport rep;
  std::unordered_map<std::string, IfaceId, StrHash, std::equal_to<>> iface_by_id;
  std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>> logged_ids;
  std::vector<std::string> logged_names;
  std::vector<std::string> files;
  std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>> file_index;

  std::priority_queue<Pending, std::vector<Pending>, PendingLater> reorder;
  uint64_t max_start = 0, released = 0, seq = 0;
  bool released_any = false;
  std::priority_queue<Event, std::vector<Event>, EventLater> events;
  uint64_t event_seq = 0;
  std::unordered_map<ConnKey, Conn, ConnKeyHash> conns;
  uint64_t clock_ns = 0, last_sweep_ns = 0;
  uint64_t horizon_tcp = 0, horizon_tcp_closing = 0, horizon_udp = 0, horizon_icmp = 0,
           horizon_other = 0;

  std::unordered_map<DisKey, size_t, DisKeyHash> dis_index;
  std::unordered_map<ChangeKey, size_t, ChangeKeyHash> change_index;

  static dataplane::EngineConfig config(const FlowLogJudgeOptions& o) {
    dataplane::EngineConfig c;
    c.table_capacity = o.table_capacity;
    return c;
  }

  Impl(rules::CompiledPolicyPtr p, rules::CompiledPolicyPtr n, FlowLogJudgeOptions o)
      : policy(std::move(p)),
        against(std::move(n)),
        opt(o),
        texts(*policy),
        texts_new(against ? *against : *policy),
        engine(config(o), policy) {
    worker = engine.makeWorker();
    if (against) {
      engine_new = std::make_unique<dataplane::Engine>(config(o), against);
      worker_new = engine_new->makeWorker();
      rep.against = true;
      rep.diff = rules::diffPolicies(*policy, *against);
      attributor = std::make_unique<ChangeAttributor>(*policy, *against, rep.diff);
    }
    for (size_t i = 0; i < policy->ifaceCount(); ++i) {
      const auto& info = policy->iface(static_cast<IfaceId>(i));
      if (!info.id.empty()) iface_by_id.emplace(info.id, static_cast<IfaceId>(i));
      iface_by_id.emplace(info.name, static_cast<IfaceId>(i));
    }
    rep.rule_use.resize(policy->ruleCount());
    rep.acl_use.resize(policy->aclEntryCount());
    rep.iface_records.resize(policy->ifaceCount());
    // How long the engine may keep a connection: a connection idle longer is gone from its
    // table, so the judge's own state for it can go too.
    using K = rules::TimeoutKey;
    auto mx = [&](std::initializer_list<K> keys, std::initializer_list<uint32_t> extra) {
      uint64_t m = 0;
      for (const rules::CompiledPolicy* pol : {policy.get(), against.get()}) {
        if (pol == nullptr) continue;
        for (K k : keys)
          m = std::max<uint64_t>(m, pol->timeouts().get(k));
      }
      for (uint32_t e : extra)
        m = std::max<uint64_t>(m, e);
      return (m + 2) * kNs;
    };
    uint32_t if_tcp = 0, if_udp = 0;
    for (const rules::CompiledPolicy* pol : {policy.get(), against.get()}) {
      if (pol == nullptr) continue;
      for (size_t i = 0; i < pol->ifaceCount(); ++i) {
        const auto& t = pol->iface(static_cast<IfaceId>(i)).timeouts;
        if_tcp = std::max(if_tcp, t.tcp_established);
        if_udp = std::max({if_udp, t.udp, t.udp_stream});
      }
    }
    horizon_tcp = mx({K::kTcpSynSent, K::kTcpSynRecv, K::kTcpEstablished, K::kTcpFinWait,
                      K::kTcpCloseWait, K::kTcpLastAck, K::kTcpTimeWait, K::kTcpClose},
                     {if_tcp});
    horizon_tcp_closing =
        mx({K::kTcpFinWait, K::kTcpCloseWait, K::kTcpLastAck, K::kTcpTimeWait, K::kTcpClose}, {});
    horizon_udp = mx({K::kUdp, K::kUdpStream}, {if_udp});
    horizon_icmp = mx({K::kIcmp}, {});
    horizon_other = mx({K::kOther}, {});
  }

  uint32_t intern(std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>>* m,
                  std::vector<std::string>* names, std::string_view s) {
    auto it = m->find(s);
    if (it != m->end()) return it->second;
    const auto id = static_cast<uint32_t>(names->size());
    names->emplace_back(s);
    m->emplace(std::string(s), id);
    return id;
  }

  std::string where(const Pending& p) const { return fmt::format("{}:{}", files[p.file], p.line); }

  void add(const FlowLogRecord& r, std::string_view file, uint64_t line) {
    ++rep.records;
    if (r.status == LogStatus::kNoData) {
      ++rep.skipped[static_cast<size_t>(FlowLogSkip::kNoData)];
      return;
    }
    if (r.status == LogStatus::kSkipData) {
      ++rep.skipped[static_cast<size_t>(FlowLogSkip::kSkipData)];
      return;
    }
    Pending p;
    p.src = r.pkt_src;
    p.dst = r.pkt_dst;
    p.proto = r.proto;
    p.sport = rules::protoIsIcmp(r.proto) ? 0 : r.sport;
    p.dport = rules::protoIsIcmp(r.proto) ? 0 : r.dport;
    p.start = r.start;
    p.end = std::max(r.end, r.start);
    p.packets = r.packets;
    p.bytes = r.bytes;
    p.action = r.action;
    p.tcp_flags = r.tcp_flags;
    // The interface: by its id (AWS JSON) or name (YAML names may be ENI ids), else by address.
    IfaceId iface = rules::kNoIface;
    if (auto it = iface_by_id.find(r.interface_id); it != iface_by_id.end()) iface = it->second;
    FlowDirection dir = r.direction;
    const IfaceId at_src = policy->interfaceOf(p.src), at_dst = policy->interfaceOf(p.dst);
    // srcaddr/dstaddr are the interface's own view; without flow-direction they say which end
    // the interface is.
    if (dir == FlowDirection::kUnknown) {
      const IfaceId v_src = policy->interfaceOf(r.src);
      if (iface != rules::kNoIface) {
        dir =
            (at_src == iface || v_src == iface) ? FlowDirection::kEgress : FlowDirection::kIngress;
      } else {
        dir = v_src != rules::kNoIface ? FlowDirection::kEgress : FlowDirection::kIngress;
      }
    }
    p.egress = dir == FlowDirection::kEgress;
    if (iface == rules::kNoIface) iface = p.egress ? at_src : at_dst;
    if (iface == rules::kNoIface) {
      ++rep.skipped[static_cast<size_t>(FlowLogSkip::kUnknownInterface)];
      return;
    }
    if ((p.egress ? at_src : at_dst) != iface) {
      ++rep.skipped[static_cast<size_t>(FlowLogSkip::kAddressNotInPolicy)];
      return;
    }
    p.iface = iface;
    p.logged_id = intern(&logged_ids, &logged_names, r.interface_id);
    p.file = intern(&file_index, &files, file);
    p.line = line;
    p.seq = seq++;
    const int f = p.tcp_flags < 0 ? 0 : p.tcp_flags;
    // Records of one second come in any order (AWS writes them so): SYN first, then SYN-ACK,
    // then the client's side (the higher port to the lower) before the server's.
    p.prio = p.sport >= p.dport ? 2 : 3;
    if (p.proto == dataplane::kIpProtoTcp) {
      if ((f & kFlowTcpSynAck) == kFlowTcpSynAck) {
        p.prio = 1;
      } else if (f & kFlowTcpSyn) {
        p.prio = 0;
      }
    }
    if (released_any && p.start < released) {
      if (rep.late++ == 0) rep.late_first = where(p);
    }
    max_start = std::max(max_start, p.start);
    reorder.push(p);
    while (!reorder.empty() &&
           (reorder.top().start + opt.reorder_s < max_start || reorder.size() > opt.max_buffered)) {
      Pending q = reorder.top();
      reorder.pop();
      judge(q);
    }
  }

  // ---- packets ----

  void runEvents(uint64_t until_ns) {
    while (!events.empty() && events.top().t <= until_ns) {
      Event e = events.top();
      events.pop();
      auto it = conns.find(e.key);
      if (it == conns.end()) continue;
      --it->second.pending_events;
      Verdict vo, vn;
      send(e.key, it->second, e.dir, e.kind, std::max(e.t, clock_ns), &vo, &vn);
    }
  }

  // Builds and judges one packet of the connection, from direction `d` (0: a -> b).
  void send(const ConnKey& k, Conn& c, int d, Pkt kind, uint64_t t, Verdict* vo, Verdict* vn,
            rules::Flow5* flow = nullptr) {
    const rules::IpAddr& src = d == 0 ? k.a : k.b;
    const rules::IpAddr& dst = d == 0 ? k.b : k.a;
    const uint16_t sport = d == 0 ? k.pa : k.pb, dport = d == 0 ? k.pb : k.pa;
    const int o = 1 - d;
    const dataplane::FrameOptions raw{.link = dataplane::LinkType::kRawIp};
    dataplane::Bytes frame;
    rules::Flow5 f;
    f.proto = k.proto;
    f.src = src;
    f.dst = dst;
    f.sport = sport;
    f.dport = dport;
    if (k.proto == dataplane::kIpProtoTcp) {
      dataplane::TcpSpec s{.src = src, .dst = dst, .sport = sport, .dport = dport};
      s.ack = c.nxt[o];
      switch (kind) {
        case Pkt::kSyn:
          if (c.closed || c.dir[d].have) c.nxt[d] += 100000;  // a new connection on the tuple
          c.closed = false;
          c.fin[0] = c.fin[1] = false;
          s.flags = dataplane::kSyn;
          s.seq = c.nxt[d] - 1;
          s.ack = 0;
          s.mss = 1460;
          break;
        case Pkt::kSynAgain:  // a retransmission: the same sequence number
          s.flags = dataplane::kSyn;
          s.seq = c.nxt[d] - 1;
          s.ack = 0;
          s.mss = 1460;
          break;
        case Pkt::kSynAck:
          s.flags = dataplane::kSyn | dataplane::kAck;
          s.seq = c.nxt[d] - 1;
          s.mss = 1460;
          break;
        case Pkt::kAck:
          s.flags = dataplane::kAck;
          s.seq = c.nxt[d];
          break;
        case Pkt::kFin:
          s.flags = dataplane::kFin | dataplane::kAck;
          s.seq = c.nxt[d]++;
          c.fin[d] = true;
          break;
        case Pkt::kRst:
          s.flags = dataplane::kRst | dataplane::kAck;
          s.seq = c.nxt[d];
          c.closed = true;
          break;
        default:
          s.flags = dataplane::kAck | dataplane::kPsh;
          s.seq = c.nxt[d]++;
          s.payload_len = 1;
          break;
      }
      frame = dataplane::buildTcp(s, raw);
    } else if (k.proto == dataplane::kIpProtoUdp) {
      frame = dataplane::buildUdp(
          {.src = src, .dst = dst, .sport = sport, .dport = dport, .payload_len = 1}, raw);
    } else if (rules::protoIsIcmp(k.proto)) {
      if (c.icmp_requester < 0) c.icmp_requester = d;
      const bool reply = c.icmp_requester != d;
      frame = dataplane::buildIcmpEcho(
          {.src = src, .dst = dst, .id = 1, .seq = ++c.icmp_seq[d], .reply = reply}, raw);
      const bool v6 = k.proto == dataplane::kIpProtoIcmpv6;
      f.sport = f.dport = 0;
      f.icmp_type = reply ? (v6 ? 129 : 0) : (v6 ? 128 : 8);
    } else {
      frame = dataplane::buildOtherProto({.src = src, .dst = dst, .proto = k.proto}, raw);
    }
    t = std::max(t, clock_ns);
    clock_ns = t;
    dataplane::PacketRef ref{frame.data(), static_cast<uint32_t>(frame.size()),
                             dataplane::LinkType::kRawIp};
    engine.process(*worker, &ref, 1, t, vo);
    if (engine_new) engine_new->process(*worker_new, &ref, 1, t, vn);
    c.last_ns = t;
    if (flow != nullptr) *flow = f;
  }

  // ---- records ----

  void judge(const Pending& p) {
    released = std::max(released, p.start);
    released_any = true;
    const uint64_t t_open = std::max(p.start * kNs, clock_ns);
    runEvents(t_open);
    sweep();
    if (rep.first_start == 0 || p.start < rep.first_start) rep.first_start = p.start;
    rep.last_end = std::max(rep.last_end, p.end);

    const ConnKey k = rules::biFlowKey(p.proto, p.src, p.sport, p.dst, p.dport);
    const int d = k.a == p.src && k.pa == p.sport ? 0 : 1;  // 1: the record goes b -> a
    auto [it, fresh] = conns.try_emplace(k);
    Conn& c = it->second;
    if (fresh) {
      ++rep.connections;
      rep.peak_connections_held = std::max<uint64_t>(rep.peak_connections_held, conns.size());
    }
    const uint64_t idle_ns = fresh ? 0 : t_open - std::min(t_open, c.last_ns);
    DirState& ds = c.dir[d];
    const bool mid_reply_first = !c.opened && !c.active[d] && c.active[1 - d] == false;
    Verdict vo, vn;
    rules::Flow5 flow;
    // The same packets seen by another interface (the source's egress and the destination's
    // ingress): judged once.
    if (ds.have && ds.iface != p.iface && p.start <= ds.end && p.end >= ds.start) {
      vo = ds.vo;
      vn = ds.vn;
      flow = ds.flow;
    } else {
      drive(k, c, d, p, t_open, &vo, &vn, &flow);
    }
    c.active[d] = true;
    record(p, k, c, vo, vn, flow, idle_ns, mid_reply_first);
  }

  void schedule(const ConnKey& k, Conn& c, int d, Pkt kind, uint64_t t) {
    events.push(Event{t, event_seq++, k, d, kind});
    ++c.pending_events;
  }

  void drive(const ConnKey& k, Conn& c, int d, const Pending& p, uint64_t t, Verdict* vo,
             Verdict* vn, rules::Flow5* flow) {
    const int f = p.tcp_flags < 0 ? 0 : p.tcp_flags;
    const uint64_t end_t = std::max(p.end * kNs + kNs / 2, t + 1);
    const bool more = p.packets >= 2;
    DirState& ds = c.dir[d];
    if (p.proto == dataplane::kIpProtoTcp) {
      Pkt first;
      if ((f & kFlowTcpSynAck) == kFlowTcpSynAck) {
        first = Pkt::kSynAck;
      } else if (f & kFlowTcpSyn) {
        first = Pkt::kSyn;
      } else if (!more && (f & kFlowTcpRst)) {
        first = Pkt::kRst;
      } else if (!more && (f & kFlowTcpFin)) {
        first = Pkt::kFin;
      } else {
        first = Pkt::kData;
      }
      if (first == Pkt::kSyn) c.opened = true;
      send(k, c, d, first, t, vo, vn, flow);
      ds.syn_unanswered = first == Pkt::kSyn;
      if (first == Pkt::kSyn) c.pending_ack = more ? d : -1;
      if (first == Pkt::kSynAck) {
        c.dir[1 - d].syn_unanswered = false;
        if (c.pending_ack == 1 - d) {  // the originator's handshake ACK, right after
          Verdict a, b;
          send(k, c, 1 - d, Pkt::kAck, t, &a, &b);
          c.pending_ack = -1;
        }
      }
      if (more) {
        Pkt last;
        bool any = true;
        if (f & kFlowTcpRst) {
          last = Pkt::kRst;
        } else if (f & kFlowTcpFin) {
          last = Pkt::kFin;
        } else if (first == Pkt::kSyn) {
          last =
              Pkt::kSynAgain;  // retransmissions of an unanswered SYN (the ACK came with SYN-ACK)
          any = p.end > p.start && c.pending_ack != d;
        } else {
          last = Pkt::kData;
          any = p.end > p.start;
        }
        if (any) schedule(k, c, d, last, end_t);
      }
    } else {
      send(k, c, d, rules::protoIsIcmp(p.proto) ? Pkt::kEcho : Pkt::kDatagram, t, vo, vn, flow);
      if (more && p.end > p.start)
        schedule(k, c, d, rules::protoIsIcmp(p.proto) ? Pkt::kEcho : Pkt::kDatagram, end_t);
    }
    ds.have = true;
    ds.start = p.start;
    ds.end = p.end;
    ds.iface = p.iface;
    ds.vo = *vo;
    ds.vn = *vn;
    ds.flow = *flow;
  }

  void record(const Pending& p, const ConnKey& k, const Conn& c, const Verdict& vo,
              const Verdict& vn, const rules::Flow5& flow, uint64_t idle_ns, bool mid_first) {
    ++rep.judged;
    ++rep.iface_records[p.iface];
    const bool source_side = p.egress;
    const FlowAction exp = actionAtSide(vo, *policy, source_side);
    usage(p, vo, flow, exp);
    if (exp == p.action) {
      ++rep.agree;
    } else {
      DisagreeCause cause = DisagreeCause::kOther;
      if (p.action == FlowAction::kAccept) {
        ++rep.accept_rejected;
        if (exp == FlowAction::kNone) {
          cause = DisagreeCause::kDeniedAtSource;
        } else if (vo.reason == dataplane::Reason::kDenySg ||
                   vo.reason == dataplane::Reason::kDenyAcl) {
          const bool mid = !(vo.flags & dataplane::kFlagNewConnection) &&
                           p.proto == dataplane::kIpProtoTcp &&
                           !((p.tcp_flags < 0 ? 0 : p.tcp_flags) & kFlowTcpSyn);
          if (mid_first && vo.reason == dataplane::Reason::kDenySg) {
            cause = DisagreeCause::kBeganBeforeLogs;
          } else if (idle_ns > 0 && mid && vo.reason == dataplane::Reason::kDenySg &&
                     (c.opened || c.active[0] || c.active[1])) {
            cause = DisagreeCause::kAfterIdle;
          } else {
            cause = DisagreeCause::kNoRule;
          }
        }
      } else {
        ++rep.reject_accepted;
        if (vo.reason == dataplane::Reason::kAllowRule ||
            vo.reason == dataplane::Reason::kAllowUntracked) {
          cause = DisagreeCause::kRuleAllows;
        } else if (vo.reason == dataplane::Reason::kAllowTracked ||
                   vo.reason == dataplane::Reason::kAllowRelated) {
          cause = DisagreeCause::kTrackedHere;
        }
      }
      ++rep.by_cause[static_cast<size_t>(cause)];
      DisKey dk{p.iface, p.egress, p.action, cause, p.proto, p.src, p.dst, p.sport, p.dport};
      auto it = dis_index.find(dk);
      if (it == dis_index.end()) {
        if (rep.disagreements.size() >= opt.max_listed) {
          ++rep.disagreements_unlisted;
        } else {
          Disagreement x;
          x.interface = policy->iface(p.iface).name;
          x.logged_id = logged_names[p.logged_id];
          x.flow = flowKeyOf(p);
          x.egress = p.egress;
          x.logged = p.action;
          x.policy = exp;
          x.cause = cause;
          x.detail = texts.describe(vo);
          x.where = where(p);
          x.first = p.start;
          it = dis_index.emplace(dk, rep.disagreements.size()).first;
          rep.disagreements.push_back(std::move(x));
        }
      }
      if (it != dis_index.end()) {
        Disagreement& x = rep.disagreements[it->second];
        ++x.records;
        x.packets += p.packets;
        x.bytes += p.bytes;
        x.first = std::min(x.first, p.start);
        x.last = std::max(x.last, p.end);
      }
    }
    if (!engine_new) return;
    const FlowAction exp_new = actionAtSide(vn, *against, source_side);
    const bool breaks = p.action == FlowAction::kAccept && exp_new != FlowAction::kAccept;
    const bool opens = p.action == FlowAction::kReject && exp_new == FlowAction::kAccept;
    if (!breaks && !opens) return;
    (breaks ? rep.break_records : rep.open_records)++;
    ChangeKey ck{breaks, k};
    auto it = change_index.find(ck);
    if (it == change_index.end()) {
      (breaks ? rep.break_connections : rep.open_connections)++;
      if (rep.changed.size() >= opt.max_listed) {
        ++rep.changed_unlisted;
        return;
      }
      ChangedConnection x;
      x.breaks = breaks;
      x.interface = policy->iface(p.iface).name;
      x.flow = flowKeyOf(p);
      x.change = attributor->cause(flow, breaks, &x.note);
      x.old_detail = texts.describe(vo);
      x.new_detail = texts_new.describe(vn);
      x.where = where(p);
      x.first = p.start;
      it = change_index.emplace(ck, rep.changed.size()).first;
      rep.changed.push_back(std::move(x));
    }
    ChangedConnection& x = rep.changed[it->second];
    ++x.records;
    x.packets += p.packets;
    x.bytes += p.bytes;
    x.first = std::min(x.first, p.start);
    x.last = std::max(x.last, p.end);
  }

  // Rule usage at the record's interface: the security-group rule that let the connection open
  // there (when the engine consulted the rules), and the ACL entry that matched (every record:
  // ACLs are stateless).
  void usage(const Pending& p, const Verdict& v, const rules::Flow5& flow, FlowAction exp) {
    if (exp == FlowAction::kNone) return;
    rules::Evaluation e;
    rules::evaluate(*policy, flow, rules::EvalMode::kFull, &e);
    const rules::Direction side =
        p.egress ? rules::Direction::kOutbound : rules::Direction::kInbound;
    const bool by_rules =
        v.reason == dataplane::Reason::kAllowRule || v.reason == dataplane::Reason::kAllowUntracked;
    for (int i = 0; i < e.n_checks; ++i) {
      const rules::Check& ch = e.checks[static_cast<size_t>(i)];
      if (ch.dir != side || ch.iface != p.iface) continue;
      if (ch.kind == rules::CheckKind::kAcl && ch.acl.entry != rules::kNoAclEntry) {
        useRecord(&rep.acl_use[ch.acl.entry], p.iface);
      } else if (ch.kind == rules::CheckKind::kSg && by_rules && ch.sg.allowed()) {
        useRecord(&rep.rule_use[ch.sg.rule], p.iface);
      }
    }
  }

  // Drops the state of connections the engine has certainly expired.
  void sweep() {
    if (clock_ns < last_sweep_ns + 60 * kNs) return;
    last_sweep_ns = clock_ns;
    for (auto it = conns.begin(); it != conns.end();) {
      const Conn& c = it->second;
      const uint8_t pr = it->first.proto;
      const bool closing = c.closed || (c.fin[0] && c.fin[1]);
      const uint64_t h = pr == dataplane::kIpProtoTcp
                             ? (closing ? horizon_tcp_closing : horizon_tcp)
                         : pr == dataplane::kIpProtoUdp ? horizon_udp
                         : rules::protoIsIcmp(pr)       ? horizon_icmp
                                                        : horizon_other;
      if (c.pending_events == 0 && c.last_ns + h < clock_ns) {
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }

  void finish() {
    while (!reorder.empty()) {
      Pending q = reorder.top();
      reorder.pop();
      judge(q);
    }
    runEvents(UINT64_MAX);
    rep.engine = engine.counters();
    std::stable_sort(
        rep.disagreements.begin(), rep.disagreements.end(),
        [](const Disagreement& a, const Disagreement& b) { return a.records > b.records; });
    std::stable_sort(rep.changed.begin(), rep.changed.end(),
                     [](const ChangedConnection& a, const ChangedConnection& b) {
                       if (a.change != b.change) return a.change < b.change;
                       if (a.breaks != b.breaks) return a.breaks;
                       return a.records > b.records;
                     });
  }
};

FlowLogJudge::FlowLogJudge(rules::CompiledPolicyPtr policy, rules::CompiledPolicyPtr against,
                           FlowLogJudgeOptions options)
    : impl_(std::make_unique<Impl>(std::move(policy), std::move(against), options)) {}
FlowLogJudge::~FlowLogJudge() = default;
void FlowLogJudge::add(const FlowLogRecord& r, std::string_view file, uint64_t line) {
  impl_->add(r, file, line);
}
void FlowLogJudge::finish() {
  impl_->finish();
}
const FlowLogReport& FlowLogJudge::report() const {
  return impl_->rep;
}
const rules::CompiledPolicy& FlowLogJudge::policy() const {
  return *impl_->policy;
}
const rules::CompiledPolicy* FlowLogJudge::againstPolicy() const {
  return impl_->against.get();
}

FlowLogFilesRead judgeFlowLogFiles(FlowLogJudge& judge, const std::vector<std::string>& paths,
                                   const FlowLogFormat& fallback) {
  FlowLogFilesRead out;
  FlowLogRecord rec;
  for (const auto& path : paths) {
    FlowLogError err;
    auto reader = FlowLogReader::open(path, fallback, &err);
    if (!reader) {
      out.error = std::move(err);
      return out;
    }
    uint64_t n = 0;
    for (;;) {
      const auto res = reader->next(&rec);
      if (res == FlowLogReader::Result::kEnd) break;
      if (res == FlowLogReader::Result::kError) {
        out.error = reader->error();
        return out;
      }
      ++n;
      judge.add(rec, path, reader->line());
    }
    out.files.emplace_back(path + (reader->gzip() ? " (gzip)" : ""), n);
  }
  return out;
}

}  // namespace statewall::sim
