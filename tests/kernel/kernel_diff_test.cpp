// The Linux kernel as the oracle: seeded random packet sequences go through a router namespace
// whose nftables ruleset is the policy's security groups (translated by sim/nft_export) with
// conntrack, and through statewall's replay driver with the same policy; each packet's fate is
// compared (forwarded by the kernel vs allowed by statewall). A disagreement is shrunk to a
// minimal sequence by delta debugging over the packet list (each candidate re-run on the kernel
// and on statewall) and printed.
//
// Disagreements listed in knownDifferences() (each with its entry in tests/kernel/FINDINGS.md) are
// printed but do not fail the test; any other fails it. Needs root, `ip` and `nft`, and network
// namespaces with nftables and conntrack; skipped with the reason otherwise.
//
//   STATEWALL_KERNEL_DIFF_SEQUENCES=N   sequences to run (default 40)
//   STATEWALL_KERNEL_DIFF_SEED=S        the first seed (default 1); sequence i uses S + i
//   STATEWALL_KERNEL_DIFF_SAVE=DIR      writes each minimal sequence as DIR/seed-S.pcap with its
//                                       policy DIR/seed-S.yaml (for `statewall explain`)
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "kernel_lab.hpp"
#include "sequence.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/nft_export.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::kerneltest {
namespace {

using dataplane::Verdict;

constexpr uint32_t kTimeoutS = 2;              // every conntrack timeout, both sides
constexpr uint64_t kGapNs = 3'500'000'000ull;  // an idle gap: timeout + 1.5 s
constexpr int kMaxShrinkRuns = 200;            // kernel runs per shrink, at most
constexpr auto kMaxShrinkTime = std::chrono::seconds(90);

uint64_t envOr(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : def;
}

uint64_t wallNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// One run of a list of items on both sides. Gaps have no entry in the per-packet vectors.
struct Outcome {
  std::vector<size_t> item;        // the item index of each packet
  std::vector<bool> kernel;        // forwarded by the router
  std::vector<Verdict> sw;         // statewall's verdict
  std::vector<sim::Frame> frames;  // the packets as sent, with their times
  // The first packet on which the two differ, or -1.
  int firstDifference() const {
    for (size_t i = 0; i < kernel.size(); ++i)
      if (kernel[i] != sw[i].allowed()) return static_cast<int>(i);
    return -1;
  }
};

std::string verdictText(const Verdict& v) {
  std::string s(dataplane::reasonCode(v.reason));
  if (v.flags & dataplane::kFlagTcpInvalid) s += " tcp-invalid";
  if (v.flags & dataplane::kFlagMidStream) s += " mid-stream";
  if (v.tcp_before != dataplane::TcpState::kNone)
    s += std::string(" ") + std::string(dataplane::tcpStateName(v.tcp_before)) + "->" +
         std::string(dataplane::tcpStateName(v.tcp_after));
  if (v.why != nullptr) s += std::string(" (") + v.why + ")";
  return s;
}

class KernelDiff : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_ = Lab::unsupported();
    if (!skip_.empty()) return;
    // One CPU: every frame and its sentinel cross the veths and the router in order.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(::sched_getcpu()), &set);
    ::sched_setaffinity(0, sizeof set, &set);
    lab_ = new Lab();
    if (const Status st = lab_->setup(); !st.ok()) setup_error_ = st.message();
  }
  static void TearDownTestSuite() {
    delete lab_;
    lab_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "kernel differential test skipped: " << skip_;
    ASSERT_EQ(setup_error_, "") << "lab setup failed";
  }

  // Compiles a policy and loads it, translated to nftables, into the router.
  void loadPolicy(const std::string& name, const std::string& yaml, rules::CompiledPolicyPtr* out) {
    auto loaded = rules::loadPolicyTexts({{name, yaml}});
    ASSERT_TRUE(loaded.ok()) << yaml
                             << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].str());
    auto compiled = rules::compile(*loaded.policy);
    ASSERT_TRUE(compiled.policy) << yaml;
    const sim::NftExport nft = sim::exportNft(*compiled.policy);
    ASSERT_TRUE(nft.ok()) << nft.errors[0];
    ASSERT_TRUE(nft.warnings.empty())
        << "the test's policies must have no untracked flows: " << nft.warnings[0];
    ASSERT_EQ(lab_->load(nft.ruleset, sim::conntrackSysctls(compiled.policy->timeouts())).message(),
              "");
    *out = compiled.policy;
  }

  // Runs `items` (a subset of a scenario, in order) on the kernel and on statewall.
  bool run(const rules::CompiledPolicyPtr& policy, const std::vector<Item>& items, Outcome* out,
           std::string* err) {
    *out = {};
    if (const Status st = lab_->flushConntrack(); !st.ok()) {
      *err = st.message();
      return false;
    }
    std::vector<sim::Frame> frames;
    uint64_t last = wallNs();
    for (size_t i = 0; i < items.size(); ++i) {
      const Item& it = items[i];
      if (it.kind == Kind::kGap) {
        // The gap is the input itself: idle until the clock has passed every timeout.
        while (wallNs() < last + kGapNs)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      dataplane::Bytes frame = it.frame;
      uint64_t ts = 0;
      bool fwd = false;
      if (const Status st = lab_->inject(it.side, &frame, &ts, &fwd); !st.ok()) {
        *err = st.message();
        return false;
      }
      last = ts;
      frames.push_back({ts, std::move(frame)});
      out->item.push_back(i);
      out->kernel.push_back(fwd);
    }
    sim::ReplayOptions o;
    o.burst = 1;
    o.table_capacity = 4096;
    out->sw = sim::replayFrames(policy, frames, o);
    if (out->sw.size() != out->kernel.size()) {
      *err = "replay gave " + std::to_string(out->sw.size()) + " verdicts for " +
             std::to_string(out->kernel.size()) + " packets";
      return false;
    }
    out->frames = std::move(frames);
    return true;
  }

  // Delta debugging (ddmin) over the items before `target`: the smallest list found (within the
  // bounds) on which the target packet still gets the same kernel and statewall fates.
  std::vector<Item> shrink(const rules::CompiledPolicyPtr& policy, const std::vector<Item>& items,
                           size_t target, bool kernel_fwd, bool sw_allow, int* runs) {
    const auto start = std::chrono::steady_clock::now();
    auto fails = [&](const std::vector<size_t>& keep) {
      if (*runs >= kMaxShrinkRuns || std::chrono::steady_clock::now() - start > kMaxShrinkTime)
        return false;
      ++*runs;
      std::vector<Item> cand;
      for (size_t k : keep)
        cand.push_back(items[k]);
      cand.push_back(items[target]);
      Outcome o;
      std::string err;
      if (!run(policy, cand, &o, &err) || o.kernel.empty()) return false;
      return o.kernel.back() == kernel_fwd && o.sw.back().allowed() == sw_allow &&
             o.item.back() == cand.size() - 1;
    };
    std::vector<size_t> cur;
    for (size_t i = 0; i < target; ++i)
      cur.push_back(i);
    size_t n = 2;
    while (cur.size() >= 2) {
      // n chunks of near-equal size; first each chunk alone, then (for n > 2) each complement.
      std::vector<std::vector<size_t>> chunks(n);
      for (size_t i = 0; i < cur.size(); ++i)
        chunks[i * n / cur.size()].push_back(cur[i]);
      bool reduced = false;
      for (const auto& c : chunks) {
        if (!c.empty() && fails(c)) {
          cur = c;
          n = 2;
          reduced = true;
          break;
        }
      }
      for (size_t k = 0; !reduced && n > 2 && k < n; ++k) {
        std::vector<size_t> complement;
        for (size_t j = 0; j < n; ++j)
          if (j != k) complement.insert(complement.end(), chunks[j].begin(), chunks[j].end());
        if (fails(complement)) {
          cur = complement;
          n = std::max<size_t>(n - 1, 2);
          reduced = true;
        }
      }
      if (!reduced) {
        if (n >= cur.size()) break;
        n = std::min(cur.size(), n * 2);
      }
    }
    if (cur.size() == 1 && fails({})) cur.clear();
    std::vector<Item> out;
    for (size_t k : cur)
      out.push_back(items[k]);
    out.push_back(items[target]);
    return out;
  }

  static inline Lab* lab_ = nullptr;
  static inline std::string skip_;
  static inline std::string setup_error_;
};

// A disagreement that is understood: listed, with its minimal sequence, in
// tests/kernel/FINDINGS.md. `matches` sees the minimal sequence and its outcome (the last packet
// is the one the two disagree on).
struct Known {
  const char* name;
  const char* finding;  // the section of tests/kernel/FINDINGS.md
  std::function<bool(const std::vector<Item>&, const Outcome&)> matches;
};

const std::vector<Known>& knownDifferences() {
  // Only deliberate differences (docs/semantics.md says why for each). The differences that were
  // fixed (FINDINGS.md 1-4, 7-11, 13) have no entry: if one comes back, the test fails.
  static const std::vector<Known> k = {
      {"old segments and old ACKs (under the lower bound): Linux ignores them (they pass as "
       "established), statewall marks them INVALID",
       "FINDINGS.md \"5. Old segments and old ACKs\"",
       [](const std::vector<Item>&, const Outcome& o) {
         const Verdict& v = o.sw.back();
         return o.kernel.back() && !v.allowed() && (v.flags & dataplane::kFlagTcpInvalid) &&
                v.why != nullptr &&
                std::string(v.why).find("under the lower bound") != std::string::npos;
       }},
      {"a SYN-ACK outside the window after the handshake began (a new ISN, or far away): Linux "
       "ignores it (passes it unchecked); statewall, as pf and Open vSwitch, marks it INVALID",
       "FINDINGS.md \"6. SYN-ACK with a new ISN\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         const Verdict& v = o.sw.back();
         return last.kind == Kind::kSynAck && o.kernel.back() && !v.allowed() &&
                (v.flags & dataplane::kFlagTcpInvalid) &&
                v.tcp_before != dataplane::TcpState::kSynSent;
       }},
      {"an RST outside the window while a FIN is unacknowledged: Linux checks no RST once a FIN "
       "was seen; statewall, as pf and Open vSwitch, marks it INVALID",
       "FINDINGS.md \"12. RST out of the window while a FIN is unacknowledged\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Verdict& v = o.sw.back();
         return seq.back().kind == Kind::kRst && o.kernel.back() && !v.allowed() &&
                (v.flags & dataplane::kFlagTcpInvalid) &&
                (v.tcp_before == dataplane::TcpState::kFinWait ||
                 v.tcp_before == dataplane::TcpState::kLastAck);
       }},
      {"mid-stream pickup (docs/design.md: a loose entry; Linux picks up liberally)",
       "FINDINGS.md \"Known by design: mid-stream pickup\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         // The disagreeing packet's flow starts, in the minimal sequence, without its SYN.
         for (size_t p = 0; p < o.item.size(); ++p)
           if (seq[o.item[p]].flow == seq.back().flow && seq[o.item[p]].kind != Kind::kIcmpError)
             return (o.sw[p].flags & dataplane::kFlagMidStream) != 0;
         return false;
       }},
  };
  return k;
}

// STATEWALL_KERNEL_DIFF_SAVE: the minimal sequence and its policy, for `statewall explain`.
void save(uint64_t seed, const std::string& yaml, const Outcome& o) {
  const char* dir = std::getenv("STATEWALL_KERNEL_DIFF_SAVE");
  if (dir == nullptr || *dir == '\0') return;
  const std::string base = std::string(dir) + "/seed-" + std::to_string(seed);
  auto opened = sim::PcapWriter::open(base + ".pcap", 1, 65535, true);
  if (!opened) {
    ADD_FAILURE() << opened.message();
    return;
  }
  std::unique_ptr<sim::PcapWriter> w = std::move(*opened);
  for (const auto& f : o.frames)
    w->write(f.ts_ns, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
             static_cast<uint32_t>(f.bytes.size()));
  if (const auto closed = w->close(); !closed.ok()) ADD_FAILURE() << closed.message();
  FILE* y = std::fopen((base + ".yaml").c_str(), "w");
  if (y == nullptr) return;
  std::fputs(yaml.c_str(), y);
  std::fclose(y);
}

std::string printSequence(const std::vector<Item>& seq, const Outcome& o) {
  std::ostringstream s;
  size_t p = 0;
  for (size_t i = 0; i < seq.size(); ++i) {
    s << "    " << (i + 1) << ". [" << (seq[i].side == kClient ? "client" : "server") << "] "
      << seq[i].what;
    if (seq[i].kind != Kind::kGap && p < o.kernel.size() && o.item[p] == i) {
      s << "\n         kernel: " << (o.kernel[p] ? "forwarded" : "dropped")
        << "   statewall: " << (o.sw[p].allowed() ? "allow" : "deny") << " ("
        << verdictText(o.sw[p]) << ")" << (o.kernel[p] != o.sw[p].allowed() ? "   <-- differ" : "");
      ++p;
    }
    s << "\n";
  }
  return s.str();
}

TEST_F(KernelDiff, RandomSequencesAgreeWithNfConntrack) {
  const uint64_t n = envOr("STATEWALL_KERNEL_DIFF_SEQUENCES", 40);
  const uint64_t seed0 = envOr("STATEWALL_KERNEL_DIFF_SEED", 1);
  uint64_t packets = 0, forwarded = 0, dropped = 0, agree_packets = 0;
  std::map<std::string, int> by_known;
  int unknown = 0, unreproduced = 0;
  std::string report;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t seed = seed0 + i;
    const Scenario sc = generate(seed, kTimeoutS);
    rules::CompiledPolicyPtr policy;
    ASSERT_NO_FATAL_FAILURE(
        loadPolicy("seed-" + std::to_string(seed) + ".yaml", sc.policy_yaml, &policy));
    std::string err;
    Outcome o;
    ASSERT_TRUE(run(policy, sc.items, &o, &err)) << "seed " << seed << ": " << err;
    for (size_t p = 0; p < o.kernel.size(); ++p) {
      ++packets;
      (o.kernel[p] ? forwarded : dropped)++;
      if (o.kernel[p] == o.sw[p].allowed()) ++agree_packets;
      EXPECT_EQ(o.sw[p].flags & dataplane::kFlagUntracked, 0)
          << "seed " << seed << ": the generator made an untracked flow";
    }
    const int d = o.firstDifference();
    if (d < 0) continue;

    // Only the first disagreement of a sequence is examined: what follows it may be its echo.
    const size_t target = o.item[static_cast<size_t>(d)];
    const bool kfwd = o.kernel[static_cast<size_t>(d)];
    const bool sallow = o.sw[static_cast<size_t>(d)].allowed();
    int runs = 0;
    std::vector<Item> min = shrink(policy, sc.items, target, kfwd, sallow, &runs);
    Outcome mo;
    const bool reran = run(policy, min, &mo, &err) && !mo.kernel.empty() &&
                       mo.kernel.back() == kfwd && mo.sw.back().allowed() == sallow &&
                       mo.kernel.back() != mo.sw.back().allowed();
    std::ostringstream s;
    s << "seed " << seed << ": packet " << (target + 1) << " of " << sc.items.size() << ": kernel "
      << (kfwd ? "forwarded" : "dropped") << ", statewall " << (sallow ? "allowed" : "denied")
      << "; shrunk to " << min.size() << " items in " << runs << " runs\n";
    if (!reran) {
      ++unreproduced;
      s << "  (the minimal sequence did not reproduce it on a re-run: timing; full sequence)\n"
        << printSequence(sc.items, o);
      report += s.str();
      continue;
    }
    const Known* known = nullptr;
    for (const Known& k : knownDifferences())
      if (k.matches(min, mo)) {
        known = &k;
        break;
      }
    if (known != nullptr) {
      ++by_known[known->name];
      s << "  known: " << known->name << " [" << known->finding << "]\n";
    } else {
      ++unknown;
      s << "  NOT KNOWN\n  policy:\n" << sc.policy_yaml;
    }
    s << printSequence(min, mo);
    save(seed, sc.policy_yaml, mo);
    report += s.str();
    if (known == nullptr)
      ADD_FAILURE() << "a disagreement with the kernel that is not in the known table:\n"
                    << s.str();
  }
  std::printf(
      "\nkernel differential test: %llu sequences (seeds %llu..%llu), %llu packets "
      "(kernel forwarded %llu, dropped %llu), %llu agree\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(seed0),
      static_cast<unsigned long long>(seed0 + n - 1), static_cast<unsigned long long>(packets),
      static_cast<unsigned long long>(forwarded), static_cast<unsigned long long>(dropped),
      static_cast<unsigned long long>(agree_packets));
  for (const auto& [name, count] : by_known)
    std::printf("  known disagreement, %d sequence(s): %s\n", count, name.c_str());
  std::printf("  not known: %d sequence(s); not reproduced: %d\n\n%s", unknown, unreproduced,
              report.c_str());
  // A lab that forwards everything or nothing tests nothing.
  EXPECT_GT(forwarded, 0u);
  EXPECT_GT(dropped, 0u);
}

// Hand-written TCP reset and handshake cases (tests/kernel/FINDINGS.md 4, 6, 9, 10): each packet
// must get the kernel's fate, except those marked deliberate (docs/semantics.md lists them), which
// must differ as stated. The random sequences find such cases; these keep them checked.
struct TcpCase {
  const char* name;
  struct Pkt {
    bool from_client;
    uint8_t flags;
    uint32_t seq, ack;  // relative to the client's / server's ISN as the sender's and the ack's
    size_t len = 0;
    bool deliberate = false;  // statewall differs from Linux here on purpose
  };
  std::vector<Pkt> pkts;
};

TEST_F(KernelDiff, TcpResetCasesAgreeWithNfConntrack) {
  const std::string t = std::to_string(kTimeoutS);
  std::string yaml = "version: 1\ntimeouts: {profile: linux";
  for (const char* k : {"tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait",
                        "tcp_close_wait", "tcp_last_ack", "tcp_time_wait", "tcp_close"})
    yaml += std::string(", ") + k + ": " + t;
  yaml +=
      "}\nunprotected: deny\n"
      "groups:\n"
      "  client:\n    inbound: []\n    outbound: [{proto: tcp, ports: 80, to: 198.51.100.0/24}]\n"
      "  web:\n    inbound: [{proto: tcp, ports: 80, from: 192.0.2.0/24}]\n    outbound: []\n"
      "interfaces:\n"
      "  client-1: {addresses: [192.0.2.10], groups: [client]}\n"
      "  server-1: {addresses: [198.51.100.10], groups: [web]}\n";
  rules::CompiledPolicyPtr policy;
  ASSERT_NO_FATAL_FAILURE(loadPolicy("tcp-cases.yaml", yaml, &policy));
  std::string err;

  using dataplane::kAck, dataplane::kFin, dataplane::kPsh, dataplane::kRst, dataplane::kSyn;
  constexpr uint8_t kSA = kSyn | kAck, kRA = kRst | kAck, kFA = kFin | kAck, kPA = kPsh | kAck;
  constexpr uint32_t kFar = 0x40000000u;
  const std::vector<TcpCase> cases = {
      {"4: the responder refuses the SYN; later packets are first packets",
       {{true, kSyn, 0, 0},
        {false, kRA, 1, 1},
        {false, kAck, 1, 1},
        {false, kSA, 0, 1},
        {true, kPA, 1, 1, 50}}},
      {"4: the originator aborts before any reply; its SYN opens anew",
       {{true, kSyn, 0, 0},
        {true, kRst, 1, 0},
        {false, kSA, 0, 1},
        {true, kSyn, 0, 0},
        {false, kSA, 0, 1}}},
      {"10: a bare RST with any sequence answers the SYN",
       {{true, kSyn, 0, 0},
        {false, kRst, 0x9abcdef0u, 0},
        {true, kSyn, 0, 0},
        {false, kSA, 0, 1},
        {true, kAck, 1, 1}}},
      {"9: a second RST far outside the window after a reset",
       {{true, kSyn, 0, 0}, {false, kSA, 0, 1}, {false, kRst, 1, 0}, {false, kRA, 1 + kFar, 1}}},
      {"9: after a reset of a replied connection, the SYN-ACK again and stragglers",
       {{true, kSyn, 0, 0},
        {false, kSA, 0, 1},
        {true, kAck, 1, 1},
        {true, kRst, 1, 0},
        {false, kSA, 0, 1},
        {false, kAck, 1, 1}}},
      {"9: an RST far outside the window once a FIN is acknowledged (CLOSE_WAIT)",
       {{true, kSyn, 0, 0},
        {false, kSA, 0, 1},
        {true, kAck, 1, 1},
        {true, kFA, 1, 1},
        {false, kAck, 1, 2},
        {false, kRst, 1 + kFar, 0}}},
      // pf and Open vSwitch check the reset against the window while the FIN is not
      // acknowledged; Linux checks nothing once a FIN was seen (docs/semantics.md "Resets").
      {"9: an RST far outside the window while a FIN is unacknowledged (FIN_WAIT)",
       {{true, kSyn, 0, 0},
        {false, kSA, 0, 1},
        {true, kAck, 1, 1},
        {true, kFA, 1, 1},
        {false, kRst, 1 + kFar, 0, 0, true}}},
      // Linux ignores (passes) any SYN-ACK in SYN_RECV; pf, Open vSwitch and statewall check
      // it: this one acknowledges a SYN never sent (docs/semantics.md "After a reset").
      {"6: a SYN-ACK with a new ISN acknowledging a SYN never seen",
       {{true, kSyn, 0, 0}, {false, kSA, 0, 1}, {false, kSA, 300000, 100001, 0, true}}},
      {"6: the SYN-ACK, the SYN and the final ACK sent twice",
       {{true, kSyn, 0, 0},
        {false, kSA, 0, 1},
        {false, kSA, 0, 1},
        {true, kSyn, 0, 0},
        {false, kSA, 0, 1},
        {true, kAck, 1, 1},
        {true, kAck, 1, 1},
        {false, kPA, 1, 1, 100}}},
  };
  const uint32_t c_isn = 1000000, s_isn = 7000000;
  uint16_t port = 41000;
  for (const TcpCase& c : cases) {
    SCOPED_TRACE(c.name);
    for (const bool scale : {false, true}) {
      ++port;
      std::vector<Item> items;
      for (const auto& k : c.pkts) {
        dataplane::TcpSpec spec{
            .src = dataplane::ipAddr(k.from_client ? "192.0.2.10" : "198.51.100.10"),
            .dst = dataplane::ipAddr(k.from_client ? "198.51.100.10" : "192.0.2.10"),
            .sport = static_cast<uint16_t>(k.from_client ? port : 80),
            .dport = static_cast<uint16_t>(k.from_client ? 80 : port),
            .flags = k.flags,
            .seq = (k.from_client ? c_isn : s_isn) + k.seq,
            .ack = (k.flags & kAck) ? (k.from_client ? s_isn : c_isn) + k.ack : 0,
            .window = 65535,
            .payload_len = k.len};
        if (k.flags & kSyn) {
          spec.mss = 1460;
          if (scale) spec.wscale = static_cast<uint8_t>(k.from_client ? 6 : 2);
        }
        Item it;
        it.kind = (k.flags & kRst)                       ? Kind::kRst
                  : (k.flags & kSyn) && (k.flags & kAck) ? Kind::kSynAck
                  : (k.flags & kSyn)                     ? Kind::kSyn
                  : (k.flags & kFin)                     ? Kind::kFin
                  : k.len > 0                            ? Kind::kData
                                                         : Kind::kAck;
        it.side = k.from_client ? kClient : kServer;
        it.frame = dataplane::buildTcp(spec);
        it.flow = 0;
        it.from_originator = k.from_client;
        items.push_back(std::move(it));
      }
      Outcome o;
      ASSERT_TRUE(run(policy, items, &o, &err)) << err;
      ASSERT_EQ(o.kernel.size(), c.pkts.size());
      for (size_t i = 0; i < c.pkts.size(); ++i) {
        const bool same = o.kernel[i] == o.sw[i].allowed();
        EXPECT_EQ(same, !c.pkts[i].deliberate)
            << "packet " << (i + 1) << (scale ? " (window scaling)" : "") << ": kernel "
            << (o.kernel[i] ? "forwarded" : "dropped") << ", statewall " << verdictText(o.sw[i]);
      }
    }
  }
}

}  // namespace
}  // namespace statewall::kerneltest
