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

#include <fmt/format.h>

#include "conn_log_output.hpp"
#include "conn_tracker.hpp"
#include "describe.hpp"
#include "expect_output.hpp"
#include "flowlog_output.hpp"
#include "pcap_split.hpp"
#include "replay_observer.hpp"
#include "stateless_compare.hpp"
#include "statewall/rules/vocab.hpp"
#include "summary_tally.hpp"
#include "verdict_log.hpp"

namespace statewall::sim {
namespace {

using dataplane::ParsedPacket;
using dataplane::Verdict;

constexpr size_t kArenaBytes = 1 << 20;
// Pacing: the longest single sleep (so that a stop request is noticed during a long trace gap),
// and, at most once per such slice of wall time, a sweep of this share of the table while asleep
// (a whole pass in about 16 slices).
constexpr std::chrono::milliseconds kPaceSlice{50};
constexpr size_t kPaceSweepShare = 16;

// Replay::setObserver's function, per packet.
class FunctionObserver final : public detail::ReplayObserver {
 public:
  explicit FunctionObserver(Replay::Observer fn) : fn_(std::move(fn)) {}
  explicit FunctionObserver(Replay::DetailObserver fn) : detail_fn_(std::move(fn)) {}
  bool wantsDetail() const { return detail_fn_ != nullptr; }
  void packetsJudged(const detail::JudgedBurst& b) override {
    if (b.conns != nullptr) {
      for (unsigned i = 0; i < b.n; ++i)
        detail_fn_(b.meta[i].index, b.meta[i].ts, b.verdicts[i], b.parsed[i], b.conns[i]);
      return;
    }
    for (unsigned i = 0; i < b.n; ++i)
      fn_(b.meta[i].index, b.meta[i].ts, b.verdicts[i], b.parsed[i]);
  }

 private:
  Replay::Observer fn_;
  Replay::DetailObserver detail_fn_;
};

}  // namespace

// The driver: traces in, bursts through the engine, the clock, pacing and policy changes; the
// outputs are its observers (replay_observer.hpp), each in its own file.
struct Replay::Impl {
  rules::CompiledPolicyPtr policy;
  ReplayOptions opt;
  ReplaySummary sum;
  detail::ConnNumbers numbers;
  detail::ReplayContext ctx;

  std::unique_ptr<dataplane::Engine> engine;
  std::unique_ptr<dataplane::Engine::Worker> worker;
  // Parse every packet for the outputs (those that read only denied packets get them parsed
  // anyway).
  bool need_parsed = false;

  // The outputs, and the list the bursts go to: in this order (the verdict log reads what the
  // stateless comparison writes; finish() keeps the last error, as the files close in order).
  std::unique_ptr<detail::SummaryTally> tally;
  std::unique_ptr<detail::StatelessCompare> stateless;
  std::unique_ptr<detail::VerdictLog> verdict_log;
  std::unique_ptr<detail::ConnLogOutput> conn_log;
  std::unique_ptr<detail::FlowLogOutput> flow_log;
  std::unique_ptr<detail::PcapSplit> pcap;
  std::unique_ptr<detail::ExpectOutput> expect;
  std::unique_ptr<FunctionObserver> fn_observer;
  std::vector<detail::ReplayObserver*> observers;

  // The burst being assembled.
  std::vector<uint8_t> arena;
  size_t arena_used = 0;
  unsigned n = 0;
  uint64_t burst_first_ts = 0;
  uint64_t burst_max_ts = 0;
  dataplane::PacketRef refs[dataplane::kMaxBurst];
  detail::PacketMeta meta[dataplane::kMaxBurst];
  Verdict verdicts[dataplane::kMaxBurst];
  dataplane::ConnectionInfo conns[dataplane::kMaxBurst];
  ParsedPacket parsed[dataplane::kMaxBurst];
  dataplane::Reason stateless_reasons[dataplane::kMaxBurst];
  uint64_t index = 0;
  uint64_t clock = 0;

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

  Impl(rules::CompiledPolicyPtr p, ReplayOptions o) : policy(std::move(p)), opt(std::move(o)) {
    opt.burst = std::clamp<unsigned>(opt.burst, 1, dataplane::kMaxBurst);
    arena.resize(kArenaBytes);
    sum.policy_files = policy->source().files;
    sum.stateless = opt.stateless;
    sum.connections_logged = !opt.connections_path.empty();
    need_parsed = !opt.verdicts_path.empty() || !opt.connections_path.empty() ||
                  !opt.flow_log_path.empty() || opt.stateless || opt.expectations != nullptr;
    if (!(opt.pace > 0)) opt.pace = 0;  // NaN and negative values: full speed
    watched = opt.pace > 0 || opt.shared_engine;
    ctx.options = &opt;
    ctx.summary = &sum;
    ctx.policy = policy;
    ctx.texts = std::make_shared<const detail::PolicyTexts>(*policy);
    ctx.numbers = &numbers;
    tally = std::make_unique<detail::SummaryTally>(ctx);
    if (opt.stateless) stateless = std::make_unique<detail::StatelessCompare>(ctx);
    if (!opt.allowed_path.empty() || !opt.denied_path.empty()) {
      pcap = std::make_unique<detail::PcapSplit>(opt.allowed_path, opt.denied_path);
    }
    if (opt.expectations != nullptr) {
      expect = std::make_unique<detail::ExpectOutput>(ctx, opt.expectations);
    }
    listObservers();
  }

  void listObservers() {
    observers.clear();
    for (detail::ReplayObserver* o : std::initializer_list<detail::ReplayObserver*>{
             tally.get(), stateless.get(), verdict_log.get(), conn_log.get(), flow_log.get(),
             pcap.get(), expect.get(), fn_observer.get()}) {
      if (o != nullptr) observers.push_back(o);
    }
  }

  template <class Fn>
  void setObserver(Fn fn) {
    fn_observer = fn ? std::make_unique<FunctionObserver>(std::move(fn)) : nullptr;
    listObservers();
  }
  // The engine's connection facts per packet, when an observer asked for them.
  dataplane::ConnectionInfo* connDetail() {
    return fn_observer && fn_observer->wantsDetail() ? conns : nullptr;
  }

  const detail::PolicyTexts& texts() const { return *ctx.texts; }

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
    ctx.policy = policy;
    ctx.texts = std::make_shared<const detail::PolicyTexts>(*policy);
    if (engine) engine->publish(policy);
  }

  // The engine's policy becomes the one the outputs describe (it was published by another
  // thread through betweenBursts(), or by publish()). burst_mu held.
  void adoptEnginePolicy() {
    policy_changed = false;
    rules::CompiledPolicyPtr p = engine->policy();
    if (p == policy) return;
    policy = std::move(p);
    ctx.policy = policy;
    ctx.texts = std::make_shared<const detail::PolicyTexts>(*policy);
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
    ctx.engine = engine.get();
    ctx.table_capacity = cfg.table_capacity;
    worker = engine->makeWorker();
  }

  // The pcap outputs learn their format from the traces and open; false with sum.error.
  bool openPcapOutputsFor(const std::vector<std::string>& paths) {
    if (!pcap || pcap->isOpen() || paths.empty()) return true;
    std::string err;
    if (!pcap->openForTraces(paths, &err)) {
      sum.error = TraceError{paths.front(), 0, err};
      return false;
    }
    ctx.nano = pcap->nano();
    return true;
  }

  bool openOutputs(std::string* err) {
    if (!opt.verdicts_path.empty()) {
      verdict_log = std::make_unique<detail::VerdictLog>(ctx);
      if (!verdict_log->open(opt.verdicts_path, err)) return false;
    }
    if (!opt.connections_path.empty()) {
      conn_log = std::make_unique<detail::ConnLogOutput>(ctx, &observers);
      if (!conn_log->open(opt.connections_path, opt.connections_format, err)) return false;
    }
    if (!opt.flow_log_path.empty()) {
      flow_log = std::make_unique<detail::FlowLogOutput>(ctx);
      if (!flow_log->open(opt.flow_log_path, opt.flow_log_jsonl, opt.flow_log_interval_s, err))
        return false;
    }
    listObservers();
    // The pcap outputs need the trace's link type: check now that they can be created, and
    // write them once the first trace is open.
    return !pcap || pcap->check(err);
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
    meta[n] = detail::PacketMeta{++index, ts, wirelen, link_dlt};
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
        engine->process(*worker, refs, n, clock, verdicts, need_parsed ? parsed : nullptr,
                        connDetail());
      } else {
        engine->process(*worker, refs, n, clock, verdicts, need_parsed ? parsed : nullptr,
                        connDetail());
      }
      now_pub.store(clock, std::memory_order_release);
    } else {
      clock = std::max(clock, burst_max_ts);
      engine->process(*worker, refs, n, clock, verdicts, need_parsed ? parsed : nullptr,
                      connDetail());
    }
    dispatch();
    n = 0;
    arena_used = 0;
  }

  // Hands the judged burst to the outputs: one call per output and burst.
  void dispatch() {
    numbers.number(verdicts, n, engine.get());
    if (!need_parsed) {
      // The outputs that read only denied packets (and a Replay::Observer, all) get them parsed.
      for (unsigned i = 0; i < n; ++i) {
        if (!verdicts[i].allowed() || fn_observer)
          dataplane::parsePacket(refs[i].data, refs[i].len, refs[i].link, opt.parse, &parsed[i]);
      }
    }
    detail::JudgedBurst b;
    b.n = n;
    b.clock = clock;
    b.refs = refs;
    b.meta = meta;
    b.verdicts = verdicts;
    b.parsed = parsed;
    b.stateless = stateless ? stateless_reasons : nullptr;
    b.conns = connDetail();
    for (detail::ReplayObserver* o : observers)
      o->packetsJudged(b);
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
                                   frac * 100, rules::withThousands(index), rate / 1e6);
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
    if (pcap && !pcap->isOpen() && !frames.empty()) {
      std::string err;
      if (!pcap->openForFrames(frames, &err)) {
        sum.error = TraceError{"<frames>", 0, err};
        return;
      }
      ctx.nano = pcap->nano();
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
    if (conn_log) conn_log->endAll(clock);
    bool ok = true;
    for (detail::ReplayObserver* o : observers) {
      std::string e;
      if (!o->finish(&e)) {
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
  impl_->setObserver(std::move(observer));
}
void Replay::setObserver(DetailObserver observer) {
  impl_->setObserver(std::move(observer));
}
uint64_t Replay::connectionNumber(uint64_t engine_id) const {
  return engine_id != 0 ? impl_->numbers.find(engine_id) : 0;
}

std::string Replay::describe(const dataplane::Verdict& v) const {
  return impl_->texts().describe(v, impl_->numbers.find(v.conn_id));
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
