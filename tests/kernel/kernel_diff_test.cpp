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
    std::string err;
    if (!lab_->setup(&err)) setup_error_ = err;
  }
  static void TearDownTestSuite() {
    delete lab_;
    lab_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "kernel differential test skipped: " << skip_;
    ASSERT_EQ(setup_error_, "") << "lab setup failed";
  }

  // Runs `items` (a subset of a scenario, in order) on the kernel and on statewall.
  bool run(const rules::CompiledPolicyPtr& policy, const std::vector<Item>& items, Outcome* out,
           std::string* err) {
    *out = {};
    if (!lab_->flushConntrack(err)) return false;
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
      if (!lab_->inject(it.side, &frame, &ts, &fwd, err)) return false;
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

bool earlier(const std::vector<Item>& seq, const std::function<bool(const Item&)>& pred) {
  for (size_t i = 0; i + 1 < seq.size(); ++i)
    if (pred(seq[i])) return true;
  return false;
}

const std::vector<Known>& knownDifferences() {
  static const std::vector<Known> k = {
      {"SYN-ACK after RST passes statewall as tracked; Linux ignores it (INVALID)",
       "FINDINGS.md \"1. SYN-ACK after RST\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         return last.kind == Kind::kSynAck && !o.kernel.back() && o.sw.back().allowed() &&
                earlier(seq,
                        [&](const Item& i) { return i.flow == last.flow && i.kind == Kind::kRst; });
       }},
      {"in-window data after the sender's FIN: Linux passes it, statewall marks it INVALID",
       "FINDINGS.md \"2. Data after FIN\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         return (last.kind == Kind::kData || last.kind == Kind::kAck) && o.kernel.back() &&
                !o.sw.back().allowed() && earlier(seq, [&](const Item& i) {
                  return i.flow == last.flow && i.kind == Kind::kFin &&
                         i.from_originator == last.from_originator;
                });
       }},
      {"an ICMP echo request sent back by the pinged host passes statewall as tracked",
       "FINDINGS.md \"3. Echo request back from the pinged host\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         // After a request of the other party with the same id (in a minimal sequence either
         // party's request may come first).
         return last.kind == Kind::kEchoRequest && !o.kernel.back() && o.sw.back().allowed() &&
                earlier(seq, [&](const Item& i) {
                  return i.flow == last.flow && i.kind == Kind::kEchoRequest &&
                         i.from_originator != last.from_originator;
                });
       }},
      {"RST before any reply: Linux deletes the connection at once, statewall keeps it (CLOSE)",
       "FINDINGS.md \"4. RST before any reply\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         if (o.kernel.back() || !o.sw.back().allowed()) return false;
         // An RST of the flow while no reply had been seen (the first reply may be the RST).
         int first_dir = -1;
         for (size_t i = 0; i + 1 < seq.size(); ++i) {
           if (seq[i].flow != last.flow || seq[i].kind == Kind::kIcmpError) continue;
           const int dir = seq[i].from_originator ? 1 : 0;
           if (first_dir < 0) first_dir = dir;
           if (seq[i].kind == Kind::kRst) return true;
           if (dir != first_dir) return false;
         }
         return false;
       }},
      {"old segments and old ACKs (under the lower bound): Linux ignores them (they pass as "
       "established), statewall marks them INVALID",
       "FINDINGS.md \"5. Old segments and old ACKs\"",
       [](const std::vector<Item>&, const Outcome& o) {
         const Verdict& v = o.sw.back();
         return o.kernel.back() && !v.allowed() && (v.flags & dataplane::kFlagTcpInvalid) &&
                v.why != nullptr &&
                std::string(v.why).find("under the lower bound") != std::string::npos;
       }},
      {"an ICMP error sent to the quoted packet's destination (not its sender) passes statewall "
       "as related; Linux does not relate it",
       "FINDINGS.md \"7. ICMP error in the wrong direction\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         return last.kind == Kind::kIcmpError && !last.error_to_sender && !o.kernel.back() &&
                o.sw.back().reason == dataplane::Reason::kAllowRelated;
       }},
      {"an ICMP echo reply sent in the request's direction passes statewall as tracked",
       "FINDINGS.md \"8. Echo reply in the request's direction\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         return last.kind == Kind::kEchoReply && last.from_originator && !o.kernel.back() &&
                o.sw.back().allowed();
       }},
      {"a SYN-ACK sent again in SYN_RECV is INVALID in statewall (ACK over the upper bound); "
       "Linux passes it",
       "FINDINGS.md \"6. SYN-ACK retransmitted\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         return last.kind == Kind::kSynAck && o.kernel.back() && !o.sw.back().allowed() &&
                (o.sw.back().flags & dataplane::kFlagTcpInvalid) &&
                earlier(seq, [&](const Item& i) {
                  return i.flow == last.flow && i.kind == Kind::kSynAck;
                });
       }},
      {"an out-of-window RST after an RST closed the connection: Linux passes it, statewall "
       "marks it INVALID",
       "FINDINGS.md \"9. Second RST out of the window\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         return last.kind == Kind::kRst && o.kernel.back() && !o.sw.back().allowed() &&
                (o.sw.back().flags & dataplane::kFlagTcpInvalid) &&
                earlier(seq,
                        [&](const Item& i) { return i.flow == last.flow && i.kind == Kind::kRst; });
       }},
      {"an RST without ACK answering a SYN: Linux passes it, statewall marks it INVALID (it "
       "does not acknowledge the SYN)",
       "FINDINGS.md \"10. RST without ACK in SYN_SENT\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Verdict& v = o.sw.back();
         return seq.back().kind == Kind::kRst && o.kernel.back() && !v.allowed() &&
                v.tcp_before == dataplane::TcpState::kSynSent &&
                (v.flags & dataplane::kFlagTcpInvalid) && v.why != nullptr &&
                std::string(v.why).find("does not acknowledge the SYN") != std::string::npos;
       }},
      {"an ICMP error quoting an echo reply sent in the request's direction (or a request from "
       "the pinged host) passes statewall as related",
       "FINDINGS.md \"11. ICMP error about a misdirected echo\"",
       [](const std::vector<Item>& seq, const Outcome& o) {
         const Item& last = seq.back();
         const bool misdirected =
             (last.quoted == Kind::kEchoReply && last.quoted_from_originator) ||
             (last.quoted == Kind::kEchoRequest && !last.quoted_from_originator);
         return last.kind == Kind::kIcmpError && misdirected && !o.kernel.back() &&
                o.sw.back().reason == dataplane::Reason::kAllowRelated;
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
  std::string err;
  auto w = sim::PcapWriter::open(base + ".pcap", 1, 65535, true, &err);
  if (!w) {
    ADD_FAILURE() << err;
    return;
  }
  for (const auto& f : o.frames)
    w->write(f.ts_ns, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
             static_cast<uint32_t>(f.bytes.size()));
  if (!w->close(&err)) ADD_FAILURE() << err;
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
    auto loaded =
        rules::loadPolicyTexts({{"seed-" + std::to_string(seed) + ".yaml", sc.policy_yaml}});
    ASSERT_TRUE(loaded.ok()) << sc.policy_yaml
                             << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].str());
    auto compiled = rules::compile(*loaded.policy);
    ASSERT_TRUE(compiled.policy) << sc.policy_yaml;
    const sim::NftExport nft = sim::exportNft(*compiled.policy);
    ASSERT_TRUE(nft.ok()) << nft.errors[0];
    ASSERT_TRUE(nft.warnings.empty())
        << "generated policies must have no untracked flows: " << nft.warnings[0];
    std::string err;
    ASSERT_TRUE(lab_->load(nft.ruleset, sim::conntrackSysctls(compiled.policy->timeouts()), &err))
        << err;

    Outcome o;
    ASSERT_TRUE(run(compiled.policy, sc.items, &o, &err)) << "seed " << seed << ": " << err;
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
    std::vector<Item> min = shrink(compiled.policy, sc.items, target, kfwd, sallow, &runs);
    Outcome mo;
    const bool reran = run(compiled.policy, min, &mo, &err) && !mo.kernel.empty() &&
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

}  // namespace
}  // namespace statewall::kerneltest
