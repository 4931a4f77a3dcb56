// A policy swap under load loses no packet of a tracked connection, tested while a replay runs:
// a paced Replay (the driver of `statewall replay --pace --control-socket`) streams a generated
// trace with long TCP connections, an untracked UDP flow and a stream of new flows, while this
// thread swaps policies through the control server's HTTP API several times mid-trace: one swap
// removes the rule that opened the long connections, the next puts it back, and so on. Every
// packet is checked against the policy that judged it, as the replay reports it (so the replay's
// outputs name the right policy too). Runs under ThreadSanitizer (label concurrency).
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "common/wait_for.hpp"

#include "control_test_util.hpp"
#include "statewall/control/client.hpp"
#include "statewall/control/server.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::control {
namespace {

using statewall::testing::waitFor;

using dataplane::Reason;
using nlohmann::json;

// The long connections and the new flows to 443 come from 198.51.100.0/24: tracked. DNS from
// anywhere with the default allow-all outbound rule: untracked.
constexpr std::string_view kPolicyA = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 198.51.100.0/24}
      - {proto: udp, ports: 53, from: 0.0.0.0/0}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

// 443 and DNS removed, 8443 added.
constexpr std::string_view kPolicyB = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 8443, from: 198.51.100.0/24}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr int kLongConnections = 30;
constexpr uint16_t kLongPortBase = 40000;
constexpr uint16_t kNew443Base = 50000;
constexpr uint16_t kNew8443Base = 52000;
constexpr uint16_t kDnsClientPort = 5353;
constexpr uint64_t kMs = 1'000'000;

enum class Kind : uint8_t { kLong, kDns, kNew443, kNew8443, kOther };

// One judged packet, as the observer saw it on the replay thread.
struct Seen {
  Kind kind = Kind::kOther;
  bool from_client = false;
  bool syn_only = false;  // SYN without ACK
  Reason reason = Reason::kDenyMalformed;
  int generation = 0;  // which policy judged it: 0 the initial A, then one per swap
  std::string policy_file;
  std::string text;  // replay.describe(), for the SYNs of new flows
};

Kind kindOf(const dataplane::ParsedPacket& p, bool* from_client) {
  const bool from_server = p.sport == 443 || p.sport == 8443 || p.sport == 53;
  const uint16_t client_port = from_server ? p.dport : p.sport;
  *from_client = !from_server;
  if (p.proto == dataplane::kIpProtoUdp)
    return client_port == kDnsClientPort ? Kind::kDns : Kind::kOther;
  if (p.proto != dataplane::kIpProtoTcp) return Kind::kOther;
  if (client_port >= kLongPortBase && client_port < kLongPortBase + kLongConnections)
    return Kind::kLong;
  if (client_port >= kNew443Base && client_port < kNew8443Base) return Kind::kNew443;
  if (client_port >= kNew8443Base) return Kind::kNew8443;
  return Kind::kOther;
}

std::vector<sim::Frame> makeTrace() {
  sim::GenOptions g;
  auto add = [&](const std::string& spec) {
    auto f = sim::parseFlowSpec(spec);
    ASSERT_TRUE(f) << spec << ": " << f.message();
    g.explicit_flows.push_back(*f);
  };
  // Long connections: about 3 s of request/response rounds each.
  for (int i = 0; i < kLongConnections; ++i)
    add("tcp 198.51.100." + std::to_string(10 + i) + ":" + std::to_string(kLongPortBase + i) +
        " -> 10.0.1.10:443 at=" + std::to_string(0.003 * i) + " rtt=20 data=150 req=100 resp=300");
  // An untracked DNS flow: a query every 10 ms for 3.2 s.
  add("udp 203.0.113.5:" + std::to_string(kDnsClientPort) +
      " -> 10.0.1.10:53 count=320 interval=10");
  // New flows all along: one to 443 and one to 8443 every 30 ms.
  for (int k = 0; k < 100; ++k) {
    const std::string at = std::to_string(0.1 + 0.03 * k);
    const std::string client = "198.51.100." + std::to_string(100 + k % 100);
    add("tcp " + client + ":" + std::to_string(kNew443Base + k) + " -> 10.0.1.10:443 at=" + at +
        " rtt=5 data=1");
    add("tcp " + client + ":" + std::to_string(kNew8443Base + k) + " -> 10.0.1.10:8443 at=" + at +
        " rtt=5 data=1");
  }
  sim::TraceGenerator gen(g);
  std::vector<sim::Frame> frames;
  sim::GenPacket p;
  while (gen.next(&p))
    frames.push_back({p.ts_ns, p.frame});
  return frames;
}

TEST(ReplaySwapTest, PolicySwapsDuringAPacedReplayKeepTrackedConnections) {
  const std::vector<sim::Frame> frames = makeTrace();
  ASSERT_GT(frames.size(), 10000u);
  const uint64_t t0 = frames.front().ts_ns;
  ASSERT_GT(frames.back().ts_ns - t0, 3000 * kMs);

  sim::ReplayOptions ro;
  ro.pace = 2;  // about 1.6 s of wall time for 3.2 s of trace
  ro.shared_engine = true;
  ro.table_capacity = 4096;
  sim::Replay replay(testing::compileYaml(kPolicyA, "a.yaml"), ro);
  ASSERT_TRUE(replay.prepareFrames());
  ASSERT_NE(replay.engine(), nullptr);

  std::vector<Seen> seen;
  seen.reserve(frames.size());
  const rules::CompiledPolicy* last_policy = &replay.policy();
  int generation = 0;
  replay.setObserver(
      [&](uint64_t, uint64_t, const dataplane::Verdict& v, const dataplane::ParsedPacket& p) {
        Seen s;
        s.kind = kindOf(p, &s.from_client);
        s.syn_only = p.proto == dataplane::kIpProtoTcp && (p.tcp_flags & dataplane::kSyn) != 0 &&
                     (p.tcp_flags & dataplane::kAck) == 0;
        s.reason = v.reason;
        if (&replay.policy() != last_policy) {
          last_policy = &replay.policy();
          ++generation;
        }
        s.generation = generation;
        s.policy_file = replay.policy().source().files.at(0);
        if (s.syn_only && (s.kind == Kind::kNew443 || s.kind == Kind::kNew8443))
          s.text = replay.describe(v);
        seen.push_back(std::move(s));
      });

  testing::TempDir dir;
  ServerOptions so;
  so.unix_socket = dir.file("control.sock");
  so.threads = 2;
  HostHooks hooks;
  hooks.now_ns = [&replay] { return replay.nowNs(); };
  hooks.publish_guard = [&replay](const std::function<void()>& publish) {
    replay.betweenBursts(publish);
  };
  ControlServer server(*replay.engine(), so, hooks);
  Status started = server.start();
  ASSERT_TRUE(started.ok()) << started.message();

  std::atomic<bool> done{false};
  std::thread runner([&] {
    replay.runFrames(frames);
    done.store(true);
  });
  struct Join {
    std::thread& t;
    sim::Replay& r;
    ~Join() {
      if (t.joinable()) {
        r.requestStop();
        t.join();
      }
    }
  } join{runner, replay};

  ClientOptions co;
  co.unix_socket = so.unix_socket;
  ControlClient client(co);
  auto load = [&](std::string_view text, const std::string& name) {
    ClientResponse r;
    Status s = client.request("PUT", "/v1/policy?name=" + name, text, "application/yaml", &r);
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  };

  // The long connections are open after 0.4 s of trace: the API lists them while the replay runs.
  ASSERT_TRUE(waitFor([&] { return replay.nowNs() >= t0 + 400 * kMs || done.load(); }));
  ASSERT_FALSE(done.load()) << "the replay ended before the first swap";
  {
    ClientResponse r;
    ASSERT_TRUE(
        client.request("GET", "/v1/connections?dport=443&state=established", "", "", &r).ok());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_GE(json::parse(r.body)["matched"].get<int>(), kLongConnections) << r.body;
  }

  // B, A, B, A: each policy runs for at least 0.3 s of trace time before the next swap.
  const std::vector<std::pair<std::string_view, std::string>> swaps = {
      {kPolicyB, "b.yaml"}, {kPolicyA, "a.yaml"}, {kPolicyB, "b.yaml"}, {kPolicyA, "a.yaml"}};
  uint64_t expected_version = 1;
  int swaps_mid_trace = 0;
  for (const auto& [text, name] : swaps) {
    json j = load(text, name);
    ++expected_version;
    EXPECT_EQ(j["version"], expected_version) << j.dump();
    if (!done.load()) ++swaps_mid_trace;
    const uint64_t after = replay.nowNs();
    ASSERT_TRUE(waitFor([&] { return replay.nowNs() >= after + 300 * kMs || done.load(); }));
  }
  {
    ClientResponse r;
    ASSERT_TRUE(client.request("GET", "/v1/stats", "", "", &r).ok());
    EXPECT_EQ(json::parse(r.body)["policy_version"], expected_version);
  }
  runner.join();
  server.stop();
  std::string err;
  ASSERT_TRUE(replay.finish(&err)) << err;
  ASSERT_EQ(seen.size(), frames.size());
  EXPECT_EQ(swaps_mid_trace, 4) << "the trace ended before every swap: the checks below are weaker";

  // Which policy judged each generation: the initial A, then the swaps in order.
  std::map<int, std::string> files;
  for (const Seen& s : seen)
    files[s.generation] = s.policy_file;
  ASSERT_GE(files.size(), 3u) << "fewer than two swaps happened while packets flowed";
  for (const auto& [gen, file] : files)
    EXPECT_EQ(file, gen % 2 == 0 ? "a.yaml" : "b.yaml") << "generation " << gen;

  // 1. Every packet of every long (tracked) connection passes, through every swap.
  std::map<int, uint64_t> long_by_gen;
  uint64_t long_not_tracked = 0;
  for (const Seen& s : seen) {
    if (s.kind != Kind::kLong) continue;
    ++long_by_gen[s.generation];
    if (s.syn_only) {
      EXPECT_EQ(s.reason, Reason::kAllowRule);
      EXPECT_EQ(s.generation, 0);
    } else if (s.reason != Reason::kAllowTracked) {
      ++long_not_tracked;
    }
  }
  EXPECT_EQ(long_not_tracked, 0u);
  EXPECT_GT(long_by_gen[1], 0u) << "no packet of the long connections ran under B";
  EXPECT_GT(long_by_gen[2], 0u) << "no packet of the long connections ran after the rule's return";

  // 2. The untracked DNS flow follows the rule at once: allowed under A, stopped under B.
  std::map<int, uint64_t> dns_allowed, dns_denied;
  for (const Seen& s : seen) {
    if (s.kind != Kind::kDns || !s.from_client) continue;
    const bool a = s.generation % 2 == 0;
    if (a) {
      EXPECT_EQ(s.reason, Reason::kAllowUntracked) << "generation " << s.generation;
    } else {
      EXPECT_EQ(s.reason, Reason::kDenySg) << "generation " << s.generation;
    }
    (dataplane::reasonAllows(s.reason) ? dns_allowed : dns_denied)[s.generation]++;
  }
  EXPECT_GT(dns_denied[1], 0u);
  EXPECT_GT(dns_allowed[2], 0u);

  // 3. New flows follow the policy running when their SYN arrives, and the replay's text names
  //    that policy's rule.
  std::map<std::pair<Kind, bool>, uint64_t> new_syns;  // (kind, under A) -> SYNs
  for (const Seen& s : seen) {
    if (!s.syn_only || !s.from_client || (s.kind != Kind::kNew443 && s.kind != Kind::kNew8443))
      continue;
    const bool a = s.generation % 2 == 0;
    const bool allowed_by_policy = (s.kind == Kind::kNew443) == a;
    new_syns[{s.kind, a}]++;
    if (allowed_by_policy) {
      EXPECT_EQ(s.reason, Reason::kAllowRule) << s.text;
      EXPECT_NE(s.text.find(s.kind == Kind::kNew443 ? "tcp 443" : "tcp 8443"), std::string::npos)
          << s.text;
    } else {
      EXPECT_EQ(s.reason, Reason::kDenySg) << s.text;
    }
  }
  for (Kind k : {Kind::kNew443, Kind::kNew8443})
    for (bool a : {true, false})
      EXPECT_GT((new_syns[{k, a}]), 0u)
          << (k == Kind::kNew443 ? "443" : "8443") << " under " << (a ? "A" : "B");

  // 4. The summary: every packet counted once; rules and hits are those of the last policy (A).
  const sim::ReplaySummary& sum = replay.summary();
  EXPECT_EQ(sum.packets, frames.size());
  uint64_t by_reason = 0;
  for (uint64_t n : sum.packets_by_reason)
    by_reason += n;
  EXPECT_EQ(by_reason, frames.size());
  EXPECT_EQ(sum.policy_changes, files.size() - 1);
  EXPECT_EQ(sum.policy_files, std::vector<std::string>{files.rbegin()->second});
  EXPECT_EQ(sum.rule_hits.size(), replay.policy().ruleCount());
  EXPECT_EQ(replay.engine()->policy().get(), &replay.policy());
}

// Pacing (with its sweeps while asleep) and a shared engine change no verdict.
TEST(ReplaySwapTest, PacingDoesNotChangeVerdicts) {
  std::vector<sim::Frame> frames = makeTrace();
  // 0.3 s of trace is enough here; at 50x it takes a few ms.
  while (!frames.empty() && frames.back().ts_ns > frames.front().ts_ns + 300 * kMs)
    frames.pop_back();
  auto run = [&](double pace, bool shared) {
    sim::ReplayOptions ro;
    ro.pace = pace;
    ro.shared_engine = shared;
    ro.table_capacity = 4096;
    return sim::replayFrames(testing::compileYaml(kPolicyA, "a.yaml"), frames, ro);
  };
  const std::vector<dataplane::Verdict> plain = run(0, false);
  const std::vector<dataplane::Verdict> paced = run(50, true);
  ASSERT_EQ(plain.size(), frames.size());
  ASSERT_EQ(paced.size(), frames.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].reason, paced[i].reason) << "packet " << i;
    EXPECT_EQ(plain[i].rule, paced[i].rule) << "packet " << i;
    EXPECT_EQ(plain[i].tcp_after, paced[i].tcp_after) << "packet " << i;
  }
}

}  // namespace
}  // namespace statewall::control
