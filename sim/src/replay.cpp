#include "statewall/sim/replay.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "describe.hpp"
#include "flat_map.hpp"
#include "out_file.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/sim/conn_log.hpp"
#include "statewall/sim/stateless.hpp"

namespace statewall::sim {
namespace {

using dataplane::kFlagConnClosed;
using dataplane::kFlagControl;
using dataplane::kFlagFragment;
using dataplane::kFlagNewConnection;
using dataplane::kFlagReply;
using dataplane::L3;
using dataplane::ParsedPacket;
using dataplane::Reason;
using dataplane::Verdict;
using detail::appendIp;
using detail::appendJsonString;
using detail::mix64;

constexpr size_t kArenaBytes = 1 << 20;
constexpr size_t kMaxDeniedFlows = 1 << 16;
constexpr size_t kMaxChangeFlows = 1 << 16;
constexpr size_t kMinConnScan = 1 << 16;
// Pacing: the longest single sleep (so that a stop request is noticed during a long trace gap),
// and, at most once per such slice of wall time, a sweep of this share of the table while asleep
// (a whole pass in about 16 slices).
constexpr std::chrono::milliseconds kPaceSlice{50};
constexpr size_t kPaceSweepShare = 16;

bool isIcmp(uint8_t proto) {
  return proto == dataplane::kIpProtoIcmp || proto == dataplane::kIpProtoIcmpv6;
}

std::string_view protoText(uint8_t proto, L3 l3) {
  if (l3 == L3::kArp) return "arp";
  if (l3 == L3::kOther) return "non-ip";
  switch (proto) {
    case dataplane::kIpProtoTcp:
      return "tcp";
    case dataplane::kIpProtoUdp:
      return "udp";
    case dataplane::kIpProtoIcmp:
      return "icmp";
    case dataplane::kIpProtoIcmpv6:
      return "icmpv6";
    default:
      return {};
  }
}

FlowKey keyOf(const ParsedPacket& p) {
  FlowKey k;
  k.ip = p.l3 == L3::kIpv4 || p.l3 == L3::kIpv6;
  if (!k.ip) return k;
  k.proto = p.proto;
  k.src = p.src;
  k.dst = p.dst;
  if (isIcmp(p.proto)) {
    k.sport = p.icmp_type;
    k.dport = p.icmp_code;
  } else {
    k.sport = p.sport;
    k.dport = p.dport;
  }
  return k;
}

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const {
    uint64_t h = mix64(k.src.lo ^ (k.src.hi * 31) ^ (uint64_t{k.proto} << 56));
    h = mix64(h ^ k.dst.lo ^ (k.dst.hi * 17));
    return static_cast<size_t>(mix64(h ^ (uint64_t{k.sport} << 16 | k.dport) ^ (k.ip ? 1 : 0)));
  }
};
struct FlowKeyEq {
  bool operator()(const FlowKey& a, const FlowKey& b) const { return a == b; }
};
struct U64Hash {
  size_t operator()(uint64_t x) const { return static_cast<size_t>(mix64(x)); }
};
struct U64Eq {
  bool operator()(uint64_t a, uint64_t b) const { return a == b; }
};

// A flow and what happened to it: the key of the denied-flow and stateless-change tables.
struct TaggedKey {
  FlowKey flow;
  uint32_t tag = 0;  // reason(s) and the detail that decided it
  friend bool operator==(const TaggedKey&, const TaggedKey&) = default;
};
struct TaggedKeyHash {
  size_t operator()(const TaggedKey& k) const {
    return static_cast<size_t>(mix64(FlowKeyHash{}(k.flow) ^ k.tag));
  }
};
struct TaggedKeyEq {
  bool operator()(const TaggedKey& a, const TaggedKey& b) const { return a == b; }
};

std::string withCommas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string_view zeekProto(uint8_t proto) {
  switch (proto) {
    case dataplane::kIpProtoTcp:
      return "tcp";
    case dataplane::kIpProtoUdp:
      return "udp";
    case dataplane::kIpProtoIcmp:
    case dataplane::kIpProtoIcmpv6:
      return "icmp";
    default:
      return "unknown_transport";
  }
}

}  // namespace

std::string FlowKey::str() const {
  if (!ip) return "non-IP";
  auto ep = [&](const rules::IpAddr& a, uint16_t port) {
    if (proto != dataplane::kIpProtoTcp && proto != dataplane::kIpProtoUdp) return a.str();
    return a.isV4() ? fmt::format("{}:{}", a.str(), port) : fmt::format("[{}]:{}", a.str(), port);
  };
  std::string_view name = protoText(proto, L3::kIpv4);
  std::string p = name.empty() ? fmt::format("proto {}", proto) : std::string(name);
  std::string s = fmt::format("{} {} -> {}", p, ep(src, sport), ep(dst, dport));
  if (isIcmp(proto)) s += fmt::format(" type {} code {}", sport, dport);
  return s;
}

struct Replay::Impl {
  rules::CompiledPolicyPtr policy;
  ReplayOptions opt;
  std::shared_ptr<const detail::PolicyTexts> texts_ptr;  // replaced by publish()
  ReplaySummary sum;
  Observer observer;

  std::unique_ptr<dataplane::Engine> engine;
  std::unique_ptr<dataplane::Engine::Worker> worker;
  int dlt = 0;          // classic pcap outputs: the inputs' one link type
  bool ng_out = false;  // pcap outputs in pcapng: the inputs are pcapng or differ in link type
  bool pcap_outputs_open = false;
  uint32_t snaplen = 262144;
  bool nano = true;
  bool need_parsed = false;

  // The burst being assembled.
  struct Meta {
    uint64_t index;
    uint64_t ts;
    uint32_t wirelen;
    int dlt;  // the packet's link type as its trace names it (the pcap outputs keep it)
  };
  std::vector<uint8_t> arena;
  size_t arena_used = 0;
  unsigned n = 0;
  uint64_t burst_first_ts = 0;
  uint64_t burst_max_ts = 0;
  dataplane::PacketRef refs[dataplane::kMaxBurst];
  Meta meta[dataplane::kMaxBurst];
  Verdict verdicts[dataplane::kMaxBurst];
  ParsedPacket parsed[dataplane::kMaxBurst];
  ParsedPacket scratch;
  uint64_t index = 0;
  uint64_t clock = 0;
  uint64_t prev_ts = 0;  // the previous packet's timestamp, in input order

  // Outputs.
  detail::OutFile verdicts_out;
  detail::OutFile conns_out;
  std::unique_ptr<PcapWriter> allowed_out, denied_out;
  std::string pcap_error;

  // Denied flows (bounded: when full, the rarest are dropped and the counts become estimates).
  // Per flow, what the summary lists; the texts are made at the end, for the flows shown (with
  // the policy texts in force when the flow was first seen), so that a flood of new flows costs
  // no allocation per packet.
  struct DeniedAgg {
    FlowKey key;
    Verdict v;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t first_index = 0;
    std::shared_ptr<const detail::PolicyTexts> texts;
  };
  struct ChangeAgg {
    FlowKey key;
    Verdict v;
    Reason stateless = Reason::kDenySg;
    rules::Check deny;  // the rules-only check that denied it (when has_deny)
    bool has_deny = false;
    uint64_t packets = 0;
    uint64_t first_index = 0;
    uint64_t conn_number = 0;  // of v.conn_id
    std::shared_ptr<const detail::PolicyTexts> texts;
  };
  detail::FlatMap<TaggedKey, DeniedAgg, TaggedKeyHash, TaggedKeyEq> denied{4096};
  uint64_t denied_floor = 0;

  // Stateless comparison.
  detail::FlatMap<TaggedKey, ChangeAgg, TaggedKeyHash, TaggedKeyEq> changes{1024};

  // Connection records.
  detail::FlatMap<uint64_t, ConnRecord, U64Hash, U64Eq> tracked{1024};
  // Connection numbers (#1, #2, ... in order of first packet): what every output a person reads
  // shows instead of the engine's id. Ids the engine no longer holds are forgotten now and then
  // (connNumber), so memory follows the live connections, not the trace.
  mutable detail::FlatMap<uint64_t, uint64_t, U64Hash, U64Eq> conn_numbers{1024};
  uint64_t conn_numbers_given = 0;
  size_t conn_numbers_prune_at = 1 << 16;
  detail::FlatMap<FlowKey, ConnRecord, FlowKeyHash, FlowKeyEq> untracked{1024};
  uint64_t conn_seq = 0;
  size_t next_scan = kMinConnScan;
  size_t untracked_cap = kMinConnScan;  // records of flows without a connection kept at once
  std::vector<std::pair<std::string, uint64_t>> states_seen;

  // Progress.
  bool progress_drawn = false;
  std::chrono::steady_clock::time_point start_time = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw{};
  uint64_t total_file_bytes = 0;
  uint64_t done_file_bytes = 0;
  const TraceReader* current_reader = nullptr;

  // Pacing and a shared engine (ReplayOptions::pace, shared_engine). `watched`: either is on, so
  // other threads read the clock and may stop the run.
  bool watched = false;
  bool stopped = false;  // the stop request was seen: no more bursts
  std::atomic<bool> stop_requested{false};
  std::mutex burst_mu;          // held around process() with shared_engine, and by betweenBursts()
  bool policy_changed = false;  // under burst_mu: take the engine's policy before the next burst
  bool pace_anchored = false;
  std::chrono::steady_clock::time_point pace_wall0;
  std::chrono::steady_clock::time_point pace_last_sweep;
  uint64_t pace_trace0 = 0;
  // For nowNs() on other threads: the last burst's time, the anchor (wall ns, 0 = not yet; its
  // trace time is written before the release store) and the burst being waited for.
  std::atomic<uint64_t> now_pub{0};
  std::atomic<int64_t> anchor_wall_ns{0};
  std::atomic<uint64_t> anchor_trace_ns{0};
  std::atomic<uint64_t> pace_target{0};

  Impl(rules::CompiledPolicyPtr p, ReplayOptions o)
      : policy(std::move(p)),
        opt(std::move(o)),
        texts_ptr(std::make_shared<const detail::PolicyTexts>(*policy)) {
    opt.burst = std::clamp<unsigned>(opt.burst, 1, dataplane::kMaxBurst);
    arena.resize(kArenaBytes);
    sum.policy_files = policy->source().files;
    sum.stateless = opt.stateless;
    sum.connections_logged = !opt.connections_path.empty();
    need_parsed = !opt.verdicts_path.empty() || !opt.connections_path.empty() || opt.stateless ||
                  opt.expectations != nullptr;
    if (!(opt.pace > 0)) opt.pace = 0;  // NaN and negative values: full speed
    watched = opt.pace > 0 || opt.shared_engine;
  }

  const detail::PolicyTexts& texts() const { return *texts_ptr; }

  void publish(rules::CompiledPolicyPtr p) {
    flush();
    if (engine && opt.shared_engine) {
      // Another thread may publish too: whatever the engine runs after this is what we describe.
      std::lock_guard lock(burst_mu);
      engine->publish(std::move(p));
      adoptEnginePolicy();
      return;
    }
    policy = std::move(p);
    texts_ptr = std::make_shared<const detail::PolicyTexts>(*policy);
    if (engine) engine->publish(policy);
  }

  // The engine's policy becomes the one the outputs describe (it was published by another
  // thread through betweenBursts(), or by publish()). burst_mu held.
  void adoptEnginePolicy() {
    policy_changed = false;
    rules::CompiledPolicyPtr p = engine->policy();
    if (p == policy) return;
    policy = std::move(p);
    texts_ptr = std::make_shared<const detail::PolicyTexts>(*policy);
    sum.policy_files = policy->source().files;
    ++sum.policy_changes;
  }

  void betweenBursts(const std::function<void()>& fn) {
    std::lock_guard lock(burst_mu);
    fn();
    policy_changed = true;
  }

  uint64_t nowNs() const {
    uint64_t now = now_pub.load(std::memory_order_acquire);
    const int64_t w0 = anchor_wall_ns.load(std::memory_order_acquire);
    if (w0 == 0) return now;
    const int64_t wall = std::chrono::steady_clock::now().time_since_epoch().count();
    const double elapsed = static_cast<double>(std::max<int64_t>(0, wall - w0)) *
                           std::chrono::steady_clock::period::num * 1e9 /
                           std::chrono::steady_clock::period::den;
    uint64_t v =
        anchor_trace_ns.load(std::memory_order_relaxed) + static_cast<uint64_t>(elapsed * opt.pace);
    // Not beyond the burst being waited for: its packets have not been judged yet.
    v = std::min(v, std::max(now, pace_target.load(std::memory_order_relaxed)));
    return std::max(now, v);
  }

  // Sleeps until the wall clock, scaled by the pace, reaches trace time t. Offline while asleep
  // so that reclamation never waits for this thread; expiry keeps sweeping at the trace time the
  // wall clock has reached, so that a long gap in the trace lets connections time out as it goes.
  void pace(uint64_t t) {
    using Clock = std::chrono::steady_clock;
    if (!pace_anchored) {
      pace_anchored = true;
      pace_wall0 = Clock::now();
      pace_trace0 = t;
      pace_target.store(t, std::memory_order_relaxed);
      anchor_trace_ns.store(t, std::memory_order_relaxed);
      anchor_wall_ns.store(std::max<int64_t>(1, pace_wall0.time_since_epoch().count()),
                           std::memory_order_release);
      return;
    }
    const auto due = pace_wall0 + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double, std::nano>(
                                          static_cast<double>(t - pace_trace0) / opt.pace));
    if (Clock::now() >= due) return;
    pace_target.store(t, std::memory_order_relaxed);
    engine->offline(*worker);
    const size_t sweep_buckets = std::max<size_t>(64, engine->capacity() / kPaceSweepShare);
    for (;;) {
      if (stop_requested.load(std::memory_order_relaxed)) return;
      const auto now = Clock::now();
      if (now >= due) return;
      std::this_thread::sleep_for(std::min<Clock::duration>(due - now, kPaceSlice));
      const auto woke = Clock::now();
      if (woke - pace_last_sweep < kPaceSlice) continue;
      pace_last_sweep = woke;
      const double elapsed_ns = std::chrono::duration<double, std::nano>(woke - pace_wall0).count();
      const uint64_t v = std::clamp(
          pace_trace0 + static_cast<uint64_t>(std::max(0.0, elapsed_ns) * opt.pace), clock, t);
      engine->sweep(*worker, v, sweep_buckets);
      engine->offline(*worker);
    }
  }

  // ---- setup ----

  // A table for at most one connection per packet the input can hold (a pcap record is at
  // least 16 + 42 bytes for a minimal TCP/IPv4 frame), with room to spare (a hash table is not
  // filled to the last slot), rounded up to a power of two.
  uint64_t input_packets_bound = 0;  // 0: unknown
  size_t autoCapacity() const {
    if (input_packets_bound == 0) return kDefaultTableCapacity;
    size_t cap = 1024;
    while (cap < 2 * input_packets_bound && cap < kDefaultTableCapacity)
      cap *= 2;
    return cap;
  }

  // The engine reads every packet by its own link type (PacketRef::link): one engine, one
  // connection table, whatever the traces' link types.
  void ensureEngine() {
    if (engine) return;
    dataplane::EngineConfig cfg;
    cfg.table_capacity = opt.table_capacity != 0 ? opt.table_capacity : autoCapacity();
    cfg.fragment_capacity = opt.fragment_capacity;
    cfg.pass_non_ip = opt.pass_non_ip;
    cfg.parse = opt.parse;
    engine = std::make_unique<dataplane::Engine>(cfg, policy);
    untracked_cap = std::max(kMinConnScan, cfg.table_capacity);
    worker = engine->makeWorker();
  }

  // --allowed / --denied: classic pcap of the inputs' link type, as the inputs are; pcapng when
  // an input is pcapng or the inputs differ in link type (a classic pcap holds one link type).
  bool openPcapOutputs() {
    if (pcap_outputs_open) return true;
    pcap_outputs_open = true;
    for (auto [path, out] :
         {std::pair{&opt.allowed_path, &allowed_out}, std::pair{&opt.denied_path, &denied_out}}) {
      if (path->empty()) continue;
      *out = ng_out ? PcapWriter::openNg(*path, &pcap_error)
                    : PcapWriter::open(*path, dlt, snaplen, nano, &pcap_error);
      if (!*out) return false;
    }
    return true;
  }

  // Learns the outputs' format from the traces (their headers; pcapng: the blocks before the
  // first packet) and opens them. false with sum.error when a trace cannot be opened or an
  // output cannot be created.
  bool openPcapOutputsFor(const std::vector<std::string>& paths) {
    if (pcap_outputs_open || paths.empty()) return true;
    if (opt.allowed_path.empty() && opt.denied_path.empty()) {
      pcap_outputs_open = true;
      return true;
    }
    bool first = true;
    for (const auto& path : paths) {
      TraceError err;
      auto reader = TraceReader::open(path, &err);
      if (!reader) continue;  // the run reports it when it gets there
      if (first) {
        dlt = reader->dlt();
        nano = reader->nanoResolution();
        snaplen = std::max<uint32_t>(reader->snaplen(), 1);
        first = false;
      }
      if (reader->format() == TraceFormat::kPcapNg || reader->dlt() != dlt) ng_out = true;
    }
    if (!openPcapOutputs()) {
      sum.error = TraceError{paths.front(), 0, pcap_error};
      return false;
    }
    return true;
  }

  bool openOutputs(std::string* err) {
    if (!opt.verdicts_path.empty() && !verdicts_out.open(opt.verdicts_path, err)) return false;
    if (!opt.connections_path.empty()) {
      if (!conns_out.open(opt.connections_path, err)) return false;
      if (opt.connections_format == ConnFormat::kTsv) writeTsvHeader();
    }
    // The pcap outputs need the trace's link type: check now that they can be created, and
    // write them once the first trace is open.
    for (const std::string* path : {&opt.allowed_path, &opt.denied_path}) {
      if (path->empty()) continue;
      FILE* f = std::fopen(path->c_str(), "wb");
      if (f == nullptr) {
        *err = fmt::format("{}: cannot create: {}", *path, std::strerror(errno));
        return false;
      }
      std::fclose(f);
    }
    return true;
  }

  // ---- the packet path ----

  // Adds a packet to the burst. `stable`: the data outlives the burst (a mapped trace, frames in
  // memory), so it is referenced in place; otherwise it is copied into the arena.
  void push(const uint8_t* data, uint32_t caplen, uint32_t wirelen, uint64_t ts, bool stable,
            dataplane::LinkType link, int link_dlt) {
    if (n > 0 && (n == opt.burst || ts > burst_first_ts + opt.burst_window_ns ||
                  (!stable && arena_used + caplen > arena.size()))) {
      flush();
    }
    if (n == 0) {
      burst_first_ts = ts;
      burst_max_ts = ts;
    } else if (ts > burst_max_ts) {
      burst_max_ts = ts;
    }
    if (stable) {
      refs[n] = dataplane::PacketRef{data, caplen, link};
    } else {
      if (caplen > arena.size()) caplen = static_cast<uint32_t>(arena.size());  // never in pcap
      std::memcpy(arena.data() + arena_used, data, caplen);
      refs[n] = dataplane::PacketRef{arena.data() + arena_used, caplen, link};
      arena_used += caplen;
    }
    meta[n] = Meta{++index, ts, wirelen, link_dlt};
    ++n;
  }

  void flush() {
    if (n == 0) return;
    if (watched) {
      const uint64_t t = std::max(clock, burst_max_ts);
      if (opt.pace > 0) pace(t);
      if (stop_requested.load(std::memory_order_relaxed)) {
        // The burst in hand is not judged: the summary covers what was.
        stopped = true;
        n = 0;
        arena_used = 0;
        return;
      }
      clock = t;
      if (opt.shared_engine) {
        std::lock_guard lock(burst_mu);
        if (policy_changed) adoptEnginePolicy();
        engine->process(*worker, refs, n, clock, verdicts, need_parsed ? parsed : nullptr);
      } else {
        engine->process(*worker, refs, n, clock, verdicts, need_parsed ? parsed : nullptr);
      }
      now_pub.store(clock, std::memory_order_release);
    } else {
      clock = std::max(clock, burst_max_ts);
      engine->process(*worker, refs, n, clock, verdicts, need_parsed ? parsed : nullptr);
    }
    for (unsigned i = 0; i < n; ++i)
      post(i);
    n = 0;
    arena_used = 0;
  }

  void post(unsigned i) {
    const Verdict& v = verdicts[i];
    const Meta& m = meta[i];
    const size_t r = static_cast<size_t>(v.reason);
    ++sum.packets_by_reason[r];
    sum.bytes_by_reason[r] += m.wirelen;
    ++sum.packets;
    sum.bytes += m.wirelen;
    if (sum.packets == 1) sum.first_ts_ns = m.ts;
    sum.last_ts_ns = std::max(sum.last_ts_ns, m.ts);
    if (!sum.traces.empty()) {
      ++sum.traces.back().packets;
      sum.traces.back().bytes += m.wirelen;
    }
    if (v.reason == Reason::kDenyMalformed) {
      ++sum.malformed_by_layer[static_cast<size_t>(v.malformed_layer)];
    }
    if (m.ts < prev_ts) {
      if (sum.ts_backwards++ == 0) sum.ts_backwards_first = m.index;
    }
    prev_ts = m.ts;
    if (refs[i].len < m.wirelen) {
      ++sum.snaplen_cut;
      if (v.reason == Reason::kDenyMalformed) ++sum.snaplen_cut_malformed;
    }
    if (v.conn_id != 0) connNumber(v.conn_id);
    const bool allowed = v.allowed();
    const ParsedPacket* pp = nullptr;
    if (need_parsed) {
      pp = &parsed[i];
    } else if (!allowed || observer) {
      dataplane::parsePacket(refs[i].data, refs[i].len, refs[i].link, opt.parse, &scratch);
      pp = &scratch;
    }
    if (allowed) {
      if (allowed_out) allowed_out->write(m.ts, refs[i].data, refs[i].len, m.wirelen, m.dlt);
    } else {
      if (denied_out) denied_out->write(m.ts, refs[i].data, refs[i].len, m.wirelen, m.dlt);
      noteDenied(*pp, v, m);
    }
    if (opt.stateless) compareStateless(*pp, v, m);
    if (verdicts_out.isOpen()) writeVerdict(*pp, v, m);
    if (conns_out.isOpen()) observeConn(*pp, v, m);
    if (opt.expectations != nullptr) {
      opt.expectations->observe(m.index, *pp, v, [this](const Verdict& x) {
        return texts().describe(x, knownConnNumber(x.conn_id));
      });
    }
    if (observer) observer(m.index, m.ts, v, *pp);
  }

  // ---- connection numbers ----

  // The number of the connection with this engine id, given at its first packet.
  uint64_t connNumber(uint64_t engine_id) {
    bool inserted = false;
    uint64_t& slot = conn_numbers.findOrInsert(engine_id, &inserted);
    if (!inserted) return slot;
    slot = ++conn_numbers_given;
    const uint64_t given = slot;
    if (conn_numbers.size() > conn_numbers_prune_at && engine) {
      // An id whose entry died never comes back (a new entry gets a new generation): keep the
      // live ones only, and this one.
      detail::FlatMap<uint64_t, uint64_t, U64Hash, U64Eq> keep(conn_numbers.size());
      engine->forEachConnection([&](const dataplane::ConnectionInfo& c) {
        if (uint64_t* x = conn_numbers.find(c.id)) {
          bool ins = false;
          keep.findOrInsert(c.id, &ins) = *x;
        }
      });
      bool ins = false;
      keep.findOrInsert(engine_id, &ins) = given;
      conn_numbers = std::move(keep);
      conn_numbers_prune_at = std::max<size_t>(1 << 16, conn_numbers.size() * 2);
    }
    return given;
  }

  // The number already given to an engine id; 0 when none (or forgotten).
  uint64_t knownConnNumber(uint64_t engine_id) const {
    const uint64_t* found = conn_numbers.find(engine_id);
    return found != nullptr ? *found : 0;
  }

  // ---- denied flows ----

  static uint32_t detailTag(const Verdict& v) {
    uint32_t d = 0;
    switch (v.reason) {
      case Reason::kDenySg:
        d = (static_cast<uint32_t>(v.deny_iface) << 1) | static_cast<uint32_t>(v.deny_dir);
        break;
      case Reason::kDenyAcl:
        d = v.acl_entry;
        break;
      case Reason::kDenyMalformed:
        d = static_cast<uint32_t>(v.malformed_layer);
        break;
      default:
        break;
    }
    return (d << 4) ^ static_cast<uint32_t>(v.reason);
  }

  void noteDenied(const ParsedPacket& p, const Verdict& v, const Meta& m) {
    TaggedKey k{keyOf(p), detailTag(v)};
    if (denied.size() >= kMaxDeniedFlows && denied.find(k) == nullptr) {
      // Lossy counting: forget the rarest quarter (at least everything at the floor) and raise
      // the floor to their count. A flow seen again starts from the floor, so a count overstates
      // the truth by at most the floor, and every flow above the floor is still counted.
      sum.top_denied_approximate = true;
      auto& vals = denied.values();
      std::vector<uint64_t> counts;
      counts.reserve(vals.size());
      for (const auto& e : vals)
        counts.push_back(e.packets);
      auto q = counts.begin() + static_cast<long>(counts.size() / 4);
      std::nth_element(counts.begin(), q, counts.end());
      denied_floor = std::max(denied_floor + 1, *q);
      auto& keys = denied.keys();
      for (size_t j = vals.size(); j-- > 0;) {
        if (vals[j].packets <= denied_floor) denied.erase(TaggedKey(keys[j]));
      }
    }
    bool inserted = false;
    DeniedAgg& d = denied.findOrInsert(k, &inserted);
    if (inserted) {
      ++sum.denied_flows;
      d.key = k.flow;
      d.v = v;
      d.texts = texts_ptr;
      d.first_index = m.index;
      d.packets = denied_floor;  // the most it could have had before (0 while exact)
    }
    ++d.packets;
    d.bytes += m.wirelen;
  }

  // ---- per-packet JSON lines ----

  // One JSON line per packet. Hand-assembled (no format-string parsing): this runs for every
  // packet when --verdicts is on.
  void writeVerdict(const ParsedPacket& p, const Verdict& v, const Meta& m) {
    auto& b = verdicts_out.buf();
    auto lit = [&b](std::string_view x) { b.append(x); };
    auto num = [&b](uint64_t x) { detail::appendU64(b, x); };
    auto str = [&b](std::string_view x) {  // x holds no characters that need escaping
      b.push_back('"');
      b.append(x);
      b.push_back('"');
    };
    lit("{\"index\":");
    num(m.index);
    lit(",\"ts\":");
    detail::appendTs(b, m.ts, nano);
    const bool ip = p.l3 == L3::kIpv4 || p.l3 == L3::kIpv6;
    std::string_view pname = protoText(p.proto, p.l3);
    lit(",\"proto\":");
    if (!pname.empty()) {
      str(pname);
    } else {
      num(p.proto);
    }
    if (ip || p.l3 == L3::kArp) {
      lit(",\"src\":\"");
      appendIp(b, p.src);
      lit("\",\"dst\":\"");
      appendIp(b, p.dst);
      b.push_back('"');
    }
    if (ip && p.malformed == dataplane::Layer::kNone) {
      if (isIcmp(p.proto)) {
        lit(",\"icmp_type\":");
        num(p.icmp_type);
        lit(",\"icmp_code\":");
        num(p.icmp_code);
        if (p.icmp_is_query_request || p.icmp_is_query_reply) {
          lit(",\"icmp_id\":");
          num(p.icmp_id);
        }
      } else if (p.proto == dataplane::kIpProtoTcp || p.proto == dataplane::kIpProtoUdp) {
        lit(",\"sport\":");
        num(p.sport);
        lit(",\"dport\":");
        num(p.dport);
      }
      if (p.proto == dataplane::kIpProtoTcp && !(p.is_fragment && !p.first_fragment)) {
        char flags[8];
        size_t fl = 0;
        static constexpr char kLetters[] = "FSRPAUEC";
        for (int bit = 0; bit < 8; ++bit) {
          if (p.tcp_flags & (1u << bit)) flags[fl++] = kLetters[bit];
        }
        lit(",\"tcp_flags\":");
        str(std::string_view(flags, fl));
      }
      if (p.is_fragment) {
        lit(",\"fragment\":{\"id\":");
        num(p.frag_id);
        lit(",\"offset\":");
        num(p.frag_offset * 8u);
        lit(p.more_fragments ? ",\"more\":true}" : ",\"more\":false}");
      }
    }
    if (ip) {
      rules::IfaceId si = policy->interfaceOf(p.src);
      rules::IfaceId di = policy->interfaceOf(p.dst);
      lit(si != rules::kNoIface && di != rules::kNoIface ? ",\"direction\":\"internal\""
          : di != rules::kNoIface                        ? ",\"direction\":\"inbound\""
          : si != rules::kNoIface                        ? ",\"direction\":\"outbound\""
                                                         : ",\"direction\":\"unprotected\"");
    }
    lit((v.flags & kFlagReply) != 0 ? ",\"reply\":true" : ",\"reply\":false");
    lit(v.allowed() ? ",\"verdict\":\"allow\",\"reason\":" : ",\"verdict\":\"deny\",\"reason\":");
    str(dataplane::reasonCode(v.reason));
    lit(",\"rule\":");
    appendRule(b, v);
    if (v.conn_id != 0) {
      lit(",\"conn\":");
      num(knownConnNumber(v.conn_id));
      lit(",\"engine_id\":");
      num(v.conn_id);
    } else {
      lit(",\"conn\":null");
    }
    if (p.proto == dataplane::kIpProtoTcp && ip) {
      lit(",\"tcp_before\":");
      str(dataplane::tcpStateName(v.tcp_before));
      lit(",\"tcp_after\":");
      str(dataplane::tcpStateName(v.tcp_after));
    }
    if (v.reason == Reason::kDenyMalformed) {
      lit(",\"layer\":");
      str(dataplane::layerName(v.malformed_layer));
    }
    if (v.reason == Reason::kAllowExempt) {
      lit(",\"exemption\":");
      str(rules::exemptionName(v.exemption));
    }
    if (v.why != nullptr) {
      lit(",\"why\":");
      appendJsonString(b, v.why);
    }
    if (v.flags != 0) appendFlags(b, v.flags);
    if (opt.stateless) {
      lit(dataplane::reasonAllows(last_stateless)
              ? ",\"stateless\":{\"verdict\":\"allow\",\"reason\":"
              : ",\"stateless\":{\"verdict\":\"deny\",\"reason\":");
      str(dataplane::reasonCode(last_stateless));
      b.push_back('}');
    }
    lit("}\n");
    verdicts_out.maybeFlush();
  }

  void appendRule(fmt::memory_buffer& b, const Verdict& v) {
    if (v.reason == Reason::kDenyAcl && v.acl_entry != rules::kNoAclEntry &&
        v.acl_entry < texts().aclEntryCount()) {
      b.append(texts().aclJson(v.acl_entry));
    } else if (v.reason == Reason::kDenySg && v.deny_iface != rules::kNoIface &&
               v.deny_iface < texts().ifaceCount()) {
      b.append(texts().ifaceJson(v.deny_iface, v.deny_dir));
    } else if (v.rule != rules::kNoRule && v.rule < texts().ruleCount()) {
      b.append(texts().ruleJson(v.rule));
    } else {
      b.append(std::string_view("null"));
    }
  }

  static void appendFlags(fmt::memory_buffer& b, uint16_t flags) {
    static constexpr std::string_view kNames[] = {"new",        "reply",    "tcp-invalid",
                                                  "untracked",  "control",  "fragment",
                                                  "mid-stream", "reopened", "closed"};
    b.append(std::string_view(",\"flags\":["));
    bool first = true;
    for (size_t bit = 0; bit < std::size(kNames); ++bit) {
      if (flags & (1u << bit)) {
        if (!first) b.push_back(',');
        first = false;
        b.push_back('"');
        b.append(kNames[bit]);
        b.push_back('"');
      }
    }
    b.push_back(']');
  }

  // ---- stateless comparison ----

  Reason last_stateless = Reason::kAllowRule;
  rules::Evaluation eval;

  void compareStateless(const ParsedPacket& p, const Verdict& v, const Meta& m) {
    // Control traffic, unparsable packets and later fragments have no rule-only verdict of
    // their own: the comparison leaves them as they are.
    if (!hasRulesAloneVerdict(p, v)) {
      last_stateless = v.reason;
      ++sum.stateless_by_reason[static_cast<size_t>(v.reason)];
      return;
    }
    const Reason sr = statelessReason(*policy, p, v, &eval);
    last_stateless = sr;
    ++sum.stateless_by_reason[static_cast<size_t>(sr)];
    const bool a = v.allowed();
    const bool b = dataplane::reasonAllows(sr);
    if (a == b) return;
    (a ? sum.changed_to_deny : sum.changed_to_allow) += 1;
    TaggedKey k{keyOf(p), static_cast<uint32_t>(v.reason) << 8 | static_cast<uint32_t>(sr)};
    ChangeAgg* c = changes.find(k);
    if (c == nullptr) {
      ++sum.changed_flows;
      if (changes.size() >= kMaxChangeFlows) return;
      bool ins = false;
      c = &changes.findOrInsert(k, &ins);
      c->key = k.flow;
      c->v = v;
      c->stateless = sr;
      c->has_deny = eval.first_deny >= 0;
      if (c->has_deny) c->deny = eval.checks[static_cast<size_t>(eval.first_deny)];
      c->first_index = m.index;
      c->conn_number = knownConnNumber(v.conn_id);
      c->texts = texts_ptr;
    }
    ++c->packets;
  }

  static std::string ruleOnlyDenial(const ChangeAgg& c) {
    const detail::PolicyTexts& t = *c.texts;
    if (!c.has_deny) return "the rules deny it";
    if (c.deny.kind == rules::CheckKind::kAcl) {
      if (c.deny.acl.entry != rules::kNoAclEntry && c.deny.acl.entry < t.aclEntryCount()) {
        return fmt::format("{} denies it", t.aclLabel(c.deny.acl.entry));
      }
      return "a network ACL denies it";
    }
    if (c.deny.iface != rules::kNoIface && c.deny.iface < t.ifaceCount()) {
      return t.ifaceDeny(c.deny.iface, c.deny.dir);
    }
    return "no security-group rule allows it";
  }

  static std::string whyChanged(const ChangeAgg& c) {
    const Verdict& v = c.v;
    switch (v.reason) {
      case Reason::kAllowTracked:
        return fmt::format(
            "part of tracked connection #{}: replies and continuations need no rule in a security "
            "group; judged by rules alone, {}",
            c.conn_number, ruleOnlyDenial(c));
      case Reason::kAllowRelated:
        return fmt::format(
            "an ICMP error about tracked connection #{} passes as related traffic; judged by rules "
            "alone, {}",
            c.conn_number, ruleOnlyDenial(c));
      case Reason::kDenyInvalid:
        return fmt::format("the TCP state machine rejects it ({}); the rules alone allow it",
                           v.why != nullptr ? v.why : "invalid");
      case Reason::kDenyTableFull:
        return "the connection table was full; the rules alone allow it";
      default:
        break;
    }
    if (dataplane::reasonAllows(v.reason)) {
      return fmt::format("{}; judged by rules alone, {}", c.texts->describe(v, c.conn_number),
                         ruleOnlyDenial(c));
    }
    return fmt::format("{}; the rules alone give {}", c.texts->describe(v, c.conn_number),
                       dataplane::reasonCode(c.stateless));
  }

  // ---- connection records ----

  void observeConn(const ParsedPacket& p, const Verdict& v, const Meta& m) {
    if ((p.l3 != L3::kIpv4 && p.l3 != L3::kIpv6) || (v.flags & kFlagControl) ||
        v.reason == Reason::kDenyMalformed) {
      return;
    }
    const bool allowed = v.allowed();
    ConnRecord* r;
    bool from_orig = true;
    if (v.conn_id != 0) {
      bool inserted = false;
      r = &tracked.findOrInsert(v.conn_id, &inserted);
      if (!inserted && (v.flags & kFlagNewConnection)) {
        // The engine reused the id for a new connection: the old one is over.
        ConnRecord old = *r;
        old.end = endOf(old, /*in_engine=*/false);
        emitConn(old);
        *r = ConnRecord{};
        inserted = true;
      }
      const bool reply = (v.flags & kFlagReply) != 0;
      if (inserted) {
        initConn(*r, p, reply);
        r->conn_id = v.conn_id;
        r->conn_number = knownConnNumber(v.conn_id);
        r->first_reason = v.reason;
      }
      if (p.icmp_is_error && r->proto != p.proto) {
        // An ICMP error about this connection: counted, not mixed into its packet counts.
        ++r->icmp_errors;
        if (!allowed) ++r->denied_pkts;
        return;
      }
      from_orig = !reply;
    } else {
      FlowKey k = keyOf(p);
      if (isIcmp(p.proto) && (p.icmp_is_query_request || p.icmp_is_query_reply)) {
        k.sport = k.dport = p.icmp_id;
      }
      FlowKey rev = k;
      std::swap(rev.src, rev.dst);
      std::swap(rev.sport, rev.dport);
      const bool forward = std::tie(k.src, k.sport) <= std::tie(rev.src, rev.sport);
      bool inserted = false;
      r = &untracked.findOrInsert(forward ? k : rev, &inserted);
      if (inserted) {
        initConn(*r, p, false);
        r->first_reason = v.reason;
      }
      // Sent by the sender of the record's first packet? (The record applies its own flip.)
      const rules::IpAddr& first_src = r->flipped ? r->resp_h : r->orig_h;
      const uint16_t first_sport = r->flipped ? r->resp_p : r->orig_p;
      from_orig = inserted || (p.src == first_src && (isIcmp(p.proto) || p.sport == first_sport));
    }
    r->observe(p, from_orig, m.ts);
    if (!allowed) ++r->denied_pkts;
    if (v.flags & kFlagConnClosed) r->engine_closed = true;
    // The rule that opened it: the one that allowed the record's first packet (a flow whose first
    // packet was denied was never opened, whatever later packets did).
    if (r->orig.pkts + r->resp.pkts == 1 &&
        (v.reason == Reason::kAllowRule || v.reason == Reason::kAllowUntracked)) {
      r->opened_by = v.rule;
    }
    if (tracked.size() + untracked.size() >= next_scan || untracked.size() > untracked_cap) {
      scanConnections(false);
    }
  }

  void initConn(ConnRecord& r, const ParsedPacket& p, bool reply) {
    r.seq = conn_seq++;
    r.begin(p, reply);
  }

  uint64_t idleLimitNs(const ConnRecord& r) const {
    const rules::Timeouts& t = policy->timeouts();
    using K = rules::TimeoutKey;
    K k;
    if (r.proto == dataplane::kIpProtoTcp) {
      k = r.tcpClosed()                                                     ? K::kTcpTimeWait
          : (r.orig.syn || r.resp.synack) && !(r.orig.synack || r.resp.any) ? K::kTcpSynSent
                                                                            : K::kTcpEstablished;
    } else if (r.proto == dataplane::kIpProtoUdp) {
      k = r.orig.any && r.resp.any ? K::kUdpStream : K::kUdp;
    } else if (isIcmp(r.proto)) {
      k = K::kIcmp;
    } else {
      k = K::kOther;
    }
    return static_cast<uint64_t>(t.get(k)) * 1000000000ull;
  }

  ConnEnd endOf(const ConnRecord& r, bool in_engine) const {
    if (r.engine_closed || (r.proto == dataplane::kIpProtoTcp && r.tcpClosed())) {
      return ConnEnd::kClosed;
    }
    if (r.conn_id != 0) return in_engine ? ConnEnd::kOpen : ConnEnd::kTimedOut;
    return r.last_ns + idleLimitNs(r) <= clock ? ConnEnd::kTimedOut : ConnEnd::kOpen;
  }

  // Writes out the records whose connection is over (all of them when `final`).
  void scanConnections(bool final) {
    detail::FlatMap<uint64_t, char, U64Hash, U64Eq> live(tracked.size() * 2 + 16);
    if (engine && !tracked.empty()) {
      const uint64_t now = clock;
      engine->forEachConnection([&](const dataplane::ConnectionInfo& c) {
        if (c.expires_ns > now) {
          bool ins = false;
          live.findOrInsert(c.id, &ins);
        }
      });
    }
    std::vector<ConnRecord> done;
    {
      auto& keys = tracked.keys();
      auto& vals = tracked.values();
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
        tracked.erase(id);
    }
    {
      auto& keys = untracked.keys();
      auto& vals = untracked.values();
      std::vector<FlowKey> gone;
      std::vector<size_t> kept;
      for (size_t i = 0; i < vals.size(); ++i) {
        ConnEnd e = endOf(vals[i], false);
        if (final || e == ConnEnd::kTimedOut ||
            (e == ConnEnd::kClosed && vals[i].last_ns + idleLimitNs(vals[i]) <= clock)) {
          vals[i].end = e;
          done.push_back(vals[i]);
          gone.push_back(keys[i]);
        } else {
          kept.push_back(i);
        }
      }
      // More flows without a connection than the table holds connections (a flood of denied
      // SYNs, many untracked flows): the longest idle are written now, so that memory stays
      // bounded; a later packet of one of them starts a new record.
      if (kept.size() > untracked_cap * 3 / 4) {
        const size_t drop = kept.size() - untracked_cap / 2;
        std::nth_element(kept.begin(), kept.begin() + static_cast<long>(drop), kept.end(),
                         [&](size_t a, size_t b) {
                           return std::tie(vals[a].last_ns, vals[a].seq) <
                                  std::tie(vals[b].last_ns, vals[b].seq);
                         });
        for (size_t j = 0; j < drop; ++j) {
          ConnRecord& r = vals[kept[j]];
          r.end = endOf(r, false);
          done.push_back(r);
          gone.push_back(keys[kept[j]]);
        }
        sum.connection_records_early += drop;
      }
      for (const auto& k : gone)
        untracked.erase(k);
    }
    std::sort(done.begin(), done.end(), [](const ConnRecord& a, const ConnRecord& b) {
      return a.first_ns != b.first_ns ? a.first_ns < b.first_ns : a.seq < b.seq;
    });
    for (const auto& r : done)
      emitConn(r);
    next_scan = std::max(kMinConnScan, 2 * (tracked.size() + untracked.size()));
  }

  void emitConn(const ConnRecord& r) {
    ++sum.connection_records;
    ++sum.conn_ends[static_cast<size_t>(r.end)];
    std::string_view state = r.connState();
    bool found = false;
    for (auto& [name, count] : states_seen) {
      if (name == state) {
        ++count;
        found = true;
      }
    }
    if (!found) states_seen.emplace_back(std::string(state), 1);
    if (opt.connections_format == ConnFormat::kTsv) {
      writeConnTsv(r, state);
    } else {
      writeConnJson(r, state);
    }
    conns_out.maybeFlush();
  }

  void writeConnJson(const ConnRecord& r, std::string_view state) {
    auto& b = conns_out.buf();
    auto out = std::back_inserter(b);
    b.append(std::string_view("{\"ts\":"));
    detail::appendTs(b, r.first_ns, nano);
    fmt::format_to(out, ",\"uid\":\"{}\",\"id.orig_h\":\"", r.uid());
    appendIp(b, r.orig_h);
    fmt::format_to(out, "\",\"id.orig_p\":{},\"id.resp_h\":\"", r.orig_p);
    appendIp(b, r.resp_h);
    fmt::format_to(out, "\",\"id.resp_p\":{},\"proto\":\"{}\",\"duration\":", r.resp_p,
                   zeekProto(r.proto));
    detail::appendTs(b, r.last_ns - r.first_ns, nano);
    fmt::format_to(out,
                   ",\"orig_bytes\":{},\"resp_bytes\":{},\"conn_state\":\"{}\",\"history\":\"{}\","
                   "\"orig_pkts\":{},\"orig_ip_bytes\":{},\"resp_pkts\":{},\"resp_ip_bytes\":{},"
                   "\"end\":\"{}\",\"tracked\":{},",
                   r.orig.payload_bytes, r.resp.payload_bytes, state, r.history_str(), r.orig.pkts,
                   r.orig.ip_bytes, r.resp.pkts, r.resp.ip_bytes, connEndName(r.end),
                   r.conn_id != 0);
    if (r.conn_id != 0) {
      fmt::format_to(out, "\"conn_id\":{},\"engine_id\":{},", r.conn_number, r.conn_id);
    } else {
      b.append(std::string_view("\"conn_id\":null,"));
    }
    fmt::format_to(out,
                   "\"first_reason\":\"{}\",\"opened_by\":", dataplane::reasonCode(r.first_reason));
    if (r.opened_by != rules::kNoRule && r.opened_by < texts().ruleCount()) {
      b.append(texts().ruleJson(r.opened_by));
    } else {
      b.append(std::string_view("null"));
    }
    fmt::format_to(out, ",\"denied_pkts\":{},\"icmp_errors\":{}}}\n", r.denied_pkts, r.icmp_errors);
  }

  void writeTsvHeader() {
    conns_out.append(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#path\tconn\n"
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\t"
        "orig_bytes\tresp_bytes\tconn_state\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\t"
        "resp_ip_bytes\tend\ttracked\tconn_id\tfirst_reason\topened_by\tdenied_pkts\t"
        "icmp_errors\n"
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tcount\tstring\t"
        "string\tcount\tcount\tcount\tcount\tstring\tbool\tcount\tstring\tstring\tcount\t"
        "count\n");
  }

  void writeConnTsv(const ConnRecord& r, std::string_view state) {
    auto& b = conns_out.buf();
    auto out = std::back_inserter(b);
    detail::appendTs(b, r.first_ns, nano);
    fmt::format_to(out, "\t{}\t", r.uid());
    appendIp(b, r.orig_h);
    fmt::format_to(out, "\t{}\t", r.orig_p);
    appendIp(b, r.resp_h);
    fmt::format_to(out, "\t{}\t{}\t", r.resp_p, zeekProto(r.proto));
    detail::appendTs(b, r.last_ns - r.first_ns, nano);
    std::string_view hist = r.history_len == 0 ? std::string_view("-") : r.history_str();
    fmt::format_to(out, "\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t", r.orig.payload_bytes,
                   r.resp.payload_bytes, state, hist, r.orig.pkts, r.orig.ip_bytes, r.resp.pkts,
                   r.resp.ip_bytes, connEndName(r.end), r.conn_id != 0 ? "T" : "F");
    if (r.conn_id != 0) {
      fmt::format_to(out, "{}", r.conn_number);
    } else {
      b.push_back('-');
    }
    fmt::format_to(out, "\t{}\t", dataplane::reasonCode(r.first_reason));
    if (r.opened_by != rules::kNoRule && r.opened_by < texts().ruleCount()) {
      b.append(texts().ruleLabel(r.opened_by));
    } else {
      b.push_back('-');
    }
    fmt::format_to(out, "\t{}\t{}\n", r.denied_pkts, r.icmp_errors);
  }

  // ---- progress ----

  void maybeProgress() {
    if (!opt.progress || (index & 0xFFFF) != 0) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_draw < std::chrono::milliseconds(200)) return;
    last_draw = now;
    drawProgress(now);
  }

  void drawProgress(std::chrono::steady_clock::time_point now) {
    double secs = std::chrono::duration<double>(now - start_time).count();
    double rate = secs > 0 ? static_cast<double>(index) / secs : 0;
    uint64_t done = done_file_bytes + (current_reader ? current_reader->offset() : 0);
    double frac =
        total_file_bytes > 0
            ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_file_bytes))
            : 0.0;
    constexpr int kWidth = 30;
    int fill = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(fill), '=');
    if (fill < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    std::string line = fmt::format("\r[{}] {:5.1f}%  {} packets  {:.2f} M packets/s ", bar,
                                   frac * 100, withCommas(index), rate / 1e6);
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    progress_drawn = true;
  }

  void clearProgress() {
    if (progress_drawn) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
      progress_drawn = false;
    }
  }

  // ---- runs ----

  // The traces' total size in bytes; 0 when one is not a regular file.
  static uint64_t filesBytes(const std::vector<std::string>& paths) {
    uint64_t total = 0;
    for (const auto& p : paths) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
      total += static_cast<uint64_t>(st.st_size);
    }
    return total;
  }

  // The link types whose packets a trace held (classic pcap: its one), and the interfaces whose
  // packets were skipped.
  static void noteLinkTypes(const TraceReader& r, TraceSummary* ts) {
    ts->dlts.clear();
    ts->skipped.clear();
    for (const TraceInterface& i : r.interfaces()) {
      const bool used = r.format() == TraceFormat::kPcap || i.packets > 0;
      if (i.link && used && std::find(ts->dlts.begin(), ts->dlts.end(), i.dlt) == ts->dlts.end())
        ts->dlts.push_back(i.dlt);
      if (i.skipped > 0) ts->skipped.push_back(i);
    }
    ts->skipped_packets = r.packetsSkipped();
    if (ts->dlts.empty()) ts->dlts.push_back(r.dlt());
    ts->dlt = ts->dlts.front();
  }

  bool prepareFiles(const std::vector<std::string>& paths) {
    if (engine || paths.empty()) return true;
    if (const uint64_t bytes = filesBytes(paths); bytes > 0)
      input_packets_bound = std::max<uint64_t>(1, bytes / 58);
    if (!openPcapOutputsFor(paths)) return false;
    // The first trace must open (the caller attaches a control server before the run).
    TraceError err;
    if (!TraceReader::open(paths.front(), &err)) {
      sum.error = err;
      return false;
    }
    ensureEngine();
    return true;
  }

  bool prepareFrames() {
    ensureEngine();
    return true;
  }

  // The replay thread is done with the engine for now (a run ended): reclamation must not wait
  // for it, e.g. while a control server keeps publishing before the replay is finished.
  void goOffline() {
    if (engine) engine->offline(*worker);
  }

  bool runFiles(const std::vector<std::string>& paths) {
    const bool ok = runFilesInner(paths);
    goOffline();
    return ok;
  }

  bool runFilesInner(const std::vector<std::string>& paths) {
    bool sizes_known = true;
    for (const auto& p : paths) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        total_file_bytes += static_cast<uint64_t>(st.st_size);
      } else {
        sizes_known = false;
      }
    }
    if (sizes_known && !engine) input_packets_bound = std::max<uint64_t>(1, total_file_bytes / 58);
    if (!openPcapOutputsFor(paths)) return false;
    ensureEngine();
    for (const auto& path : paths) {
      TraceError err;
      auto reader = TraceReader::open(path, &err);
      if (!reader) {
        flush();
        clearProgress();
        sum.error = err;
        return false;
      }
      TraceSummary ts;
      ts.path = path;
      ts.format = reader->format();
      ts.dlt = reader->dlt();
      ts.file_size = reader->fileSize();
      flush();  // packets of the previous file are counted against it
      sum.traces.push_back(ts);
      current_reader = reader.get();
      const bool stable = reader->stableData();
      TracePacket pkt;
      TraceReader::Status status = TraceReader::Status::kPacket;
      while (!stopped && (status = reader->next(&pkt)) == TraceReader::Status::kPacket) {
        push(pkt.data, pkt.caplen, pkt.wirelen, pkt.ts_ns, stable, pkt.link, pkt.dlt);
        maybeProgress();
      }
      flush();
      current_reader = nullptr;
      noteLinkTypes(*reader, &sum.traces.back());
      if (stopped) {
        clearProgress();
        sum.interrupted = true;
        sum.error = TraceError{path, reader->offset(), "interrupted: the replay was stopped here"};
        return false;
      }
      done_file_bytes += reader->fileSize();
      if (status == TraceReader::Status::kError) {
        clearProgress();
        sum.error = reader->error();
        return false;
      }
    }
    clearProgress();
    return true;
  }

  void runFrames(const std::vector<Frame>& frames) {
    if (!engine) input_packets_bound = std::max<uint64_t>(1, frames.size());
    ensureEngine();
    if (!pcap_outputs_open && !frames.empty()) {
      dlt = dltFromLinkType(frames.front().link);
      nano = true;
      for (const auto& f : frames)
        if (f.link != frames.front().link) ng_out = true;
      if (!openPcapOutputs()) {
        sum.error = TraceError{"<frames>", 0, pcap_error};
        return;
      }
    }
    if (sum.traces.empty() || sum.traces.back().path != "<frames>") {
      TraceSummary ts;
      ts.path = "<frames>";
      sum.traces.push_back(ts);
    }
    TraceSummary& ts = sum.traces.back();
    for (const auto& f : frames) {
      if (stopped) break;
      const int fdlt = dltFromLinkType(f.link);
      if (ts.dlts.empty() || ts.dlts.back() != fdlt) {
        if (std::find(ts.dlts.begin(), ts.dlts.end(), fdlt) == ts.dlts.end())
          ts.dlts.push_back(fdlt);
      }
      push(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
           static_cast<uint32_t>(f.bytes.size()), f.ts_ns, /*stable=*/true, f.link, fdlt);
    }
    if (!ts.dlts.empty()) ts.dlt = ts.dlts.front();
    flush();
    if (stopped && !sum.interrupted) {
      sum.interrupted = true;
      sum.error = TraceError{"<frames>", 0, "interrupted: the replay was stopped"};
    }
    goOffline();
  }

  bool finish(std::string* err) {
    flush();
    // A connection idle past its timeout is expired, whether or not the paced sweep reached it
    // before the trace ended: one full sweep at the trace's last time reclaims the rest, so the
    // summary's count is what a person would count (lookups already treated them as gone).
    if (engine && worker) engine->sweep(*worker, clock, std::numeric_limits<size_t>::max());
    goOffline();
    bool ok = true;
    if (engine && opt.shared_engine) {
      // The policy and its hits as one: a publication between them would pair another policy's
      // counters with these rules. Any policy another thread published since the last burst
      // (or behind betweenBursts()'s back) is the one the summary names.
      std::lock_guard lock(burst_mu);
      adoptEnginePolicy();
      sum.engine = engine->counters();
      sum.rule_hits = engine->ruleHits();
      sum.acl_hits = engine->aclHits();
    } else if (engine) {
      sum.engine = engine->counters();
      sum.rule_hits = engine->ruleHits();
      sum.acl_hits = engine->aclHits();
    }
    sum.rule_hits.resize(policy->ruleCount(), 0);
    sum.acl_hits.resize(policy->aclEntryCount(), 0);
    if (conns_out.isOpen()) scanConnections(true);
    sum.conn_states = states_seen;
    std::sort(sum.conn_states.begin(), sum.conn_states.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    // Top denied flows: most packets first, then earliest.
    std::vector<const DeniedAgg*> all;
    for (const auto& d : denied.values())
      all.push_back(&d);
    std::sort(all.begin(), all.end(), [](const DeniedAgg* a, const DeniedAgg* b) {
      return a->packets != b->packets ? a->packets > b->packets : a->first_index < b->first_index;
    });
    if (all.size() > opt.top_flows) all.resize(opt.top_flows);
    sum.top_denied_max_error = denied_floor;
    sum.top_denied.clear();
    for (const DeniedAgg* d : all) {
      sum.top_denied.push_back(DeniedFlow{d->key, d->v.reason, d->texts->detail(d->v), d->packets,
                                          d->bytes, d->first_index});
    }
    std::vector<const ChangeAgg*> ch;
    for (const auto& c : changes.values())
      ch.push_back(&c);
    std::sort(ch.begin(), ch.end(), [](const ChangeAgg* a, const ChangeAgg* b) {
      return a->first_index < b->first_index;
    });
    sum.changes.clear();
    for (const ChangeAgg* c : ch) {
      sum.changes.push_back(StatelessChange{c->key, c->v.reason, c->stateless, c->packets,
                                            c->first_index, whyChanged(*c)});
    }
    std::string e;
    if (!verdicts_out.close(&e)) {
      ok = false;
      *err = e;
    }
    if (!conns_out.close(&e)) {
      ok = false;
      *err = e;
    }
    // Pcap outputs that never saw a trace still become valid (empty) captures.
    if (!pcap_outputs_open && !openPcapOutputs()) {
      ok = false;
      *err = pcap_error;
    }
    for (auto* w : {allowed_out.get(), denied_out.get()}) {
      if (w != nullptr && !w->close(&e)) {
        ok = false;
        *err = e;
      }
    }
    return ok;
  }
};

Replay::Replay(rules::CompiledPolicyPtr policy, ReplayOptions options)
    : impl_(std::make_unique<Impl>(std::move(policy), std::move(options))) {}
Replay::~Replay() = default;

bool Replay::openOutputs(std::string* err) {
  return impl_->openOutputs(err);
}
bool Replay::runFiles(const std::vector<std::string>& paths) {
  return impl_->runFiles(paths);
}
void Replay::runFrames(const std::vector<Frame>& frames) {
  impl_->runFrames(frames);
}
bool Replay::finish(std::string* err) {
  return impl_->finish(err);
}
const ReplaySummary& Replay::summary() const {
  return impl_->sum;
}
const rules::CompiledPolicy& Replay::policy() const {
  return *impl_->policy;
}
void Replay::setObserver(Observer observer) {
  impl_->observer = std::move(observer);
}
uint64_t Replay::connectionNumber(uint64_t engine_id) const {
  return engine_id != 0 ? impl_->knownConnNumber(engine_id) : 0;
}

std::string Replay::describe(const dataplane::Verdict& v) const {
  return impl_->texts().describe(v, impl_->knownConnNumber(v.conn_id));
}
void Replay::publish(rules::CompiledPolicyPtr policy) {
  impl_->publish(std::move(policy));
}
bool Replay::prepareFiles(const std::vector<std::string>& paths) {
  return impl_->prepareFiles(paths);
}
bool Replay::prepareFrames() {
  return impl_->prepareFrames();
}
dataplane::Engine* Replay::engine() {
  return impl_->engine.get();
}
void Replay::betweenBursts(const std::function<void()>& fn) {
  impl_->betweenBursts(fn);
}
uint64_t Replay::nowNs() const {
  return impl_->nowNs();
}
void Replay::requestStop() noexcept {
  impl_->stop_requested.store(true, std::memory_order_relaxed);
}

std::vector<dataplane::Verdict> replayFrames(rules::CompiledPolicyPtr policy,
                                             const std::vector<Frame>& frames,
                                             const ReplayOptions& options) {
  std::vector<dataplane::Verdict> out;
  out.reserve(frames.size());
  Replay r(std::move(policy), options);
  r.setObserver([&](uint64_t, uint64_t, const dataplane::Verdict& v,
                    const dataplane::ParsedPacket&) { out.push_back(v); });
  r.runFrames(frames);
  std::string err;
  r.finish(&err);
  return out;
}

}  // namespace statewall::sim
