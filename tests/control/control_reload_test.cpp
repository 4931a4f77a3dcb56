// Policy hot reload through the control server while packets flow through the engine on another
// thread: the tracked connection never loses a packet across swaps, the untracked flow stops at
// once, new flows follow the new policy. Runs under ThreadSanitizer (label concurrency).
#include <atomic>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include "common/wait_for.hpp"

#include "control_test_util.hpp"
#include "statewall/control/client.hpp"
#include "statewall/control/server.hpp"

namespace statewall::control {
namespace {

using statewall::testing::waitFor;

// The packet thread runs flat out: poll by yielding, never sleep.
constexpr auto kWaitLimit = std::chrono::seconds(120);
constexpr auto kYield = std::chrono::milliseconds(0);

using dataplane::buildTcp;
using dataplane::buildUdp;
using dataplane::ipAddr;
using dataplane::kAck;
using dataplane::kSyn;
using dataplane::Reason;
using nlohmann::json;

constexpr int kSwaps = 21;  // odd: the last swap loads B

// Waits (bounded; a safety net against a hang, not a timing assertion) until pred() holds.
// Stops and joins a thread however the test body exits (an ASSERT returning early included).
class Joiner {
 public:
  Joiner(std::thread& t, std::function<void()> stop) : t_(t), stop_(std::move(stop)) {}
  ~Joiner() {
    if (t_.joinable()) {
      stop_();
      t_.join();
    }
  }

 private:
  std::thread& t_;
  std::function<void()> stop_;
};

struct PacketThreadResult {
  std::vector<Reason> handshake;
  Reason dns_before = Reason::kDenyMalformed;
  uint64_t tracked_packets = 0;
  uint64_t tracked_not_allowed = 0;  // packets of the tracked connection not allow-tracked
  Reason first_bad = Reason::kAllowTracked;
  Reason dns_after = Reason::kAllowTracked;
  Reason https_new_after = Reason::kAllowTracked;
  Reason alt_new_after = Reason::kDenySg;
  Reason tracked_after = Reason::kDenySg;
};

TEST(ReloadTest, PolicySwapsUnderTrafficKeepTrackedConnections) {
  testing::TempDir dir;
  dataplane::Engine engine(testing::smallEngineConfig(), testing::compileYaml(testing::kPolicyA));
  ServerOptions so;
  so.unix_socket = dir.file("control.sock");
  so.threads = 2;
  ControlServer server(engine, so);
  Status started = server.start();
  ASSERT_TRUE(started.ok()) << started.message();

  std::atomic<int> phase{0};  // 0 handshake, 1 streaming, 2 stop streaming and probe, 3 done
  std::atomic<uint64_t> iterations{0};
  PacketThreadResult res;

  std::thread packets([&] {
    auto worker = engine.makeWorker();
    uint64_t now = 1'000'000'000;
    auto send = [&](const dataplane::Bytes& f) {
      now += 100'000;  // 100 us per packet, on the engine's injected clock
      dataplane::PacketRef ref{f.data(), static_cast<uint32_t>(f.size())};
      dataplane::Verdict v;
      engine.process(*worker, &ref, 1, now, &v);
      return v.reason;
    };
    auto c = ipAddr("10.9.0.1"), s = ipAddr("10.0.1.10");
    res.handshake.push_back(send(
        buildTcp({.src = c, .dst = s, .sport = 40001, .dport = 443, .flags = kSyn, .seq = 1000})));
    res.handshake.push_back(send(buildTcp({.src = s,
                                           .dst = c,
                                           .sport = 443,
                                           .dport = 40001,
                                           .flags = kSyn | kAck,
                                           .seq = 5000,
                                           .ack = 1001})));
    res.handshake.push_back(send(buildTcp({.src = c,
                                           .dst = s,
                                           .sport = 40001,
                                           .dport = 443,
                                           .flags = kAck,
                                           .seq = 1001,
                                           .ack = 5001})));
    res.dns_before =
        send(buildUdp({.src = ipAddr("10.9.0.2"), .dst = s, .sport = 5353, .dport = 53}));
    phase.store(1);

    uint32_t seq = 1001;
    auto track = [&](Reason r) {
      ++res.tracked_packets;
      if (r != Reason::kAllowTracked) {
        if (res.tracked_not_allowed == 0) res.first_bad = r;
        ++res.tracked_not_allowed;
      }
    };
    while (phase.load() == 1) {
      // One data segment and its ACK, both directions of the tracked connection.
      track(send(buildTcp({.src = c,
                           .dst = s,
                           .sport = 40001,
                           .dport = 443,
                           .flags = kAck,
                           .seq = seq,
                           .ack = 5001,
                           .payload_len = 100})));
      seq += 100;
      track(send(buildTcp({.src = s,
                           .dst = c,
                           .sport = 443,
                           .dport = 40001,
                           .flags = kAck,
                           .seq = 5001,
                           .ack = seq})));
      // The untracked flow keeps sending too; its verdict depends on the policy of the moment.
      send(buildUdp({.src = ipAddr("10.9.0.2"), .dst = s, .sport = 5353, .dport = 53}));
      iterations.fetch_add(1);
    }
    // The last policy published is B.
    res.dns_after =
        send(buildUdp({.src = ipAddr("10.9.0.2"), .dst = s, .sport = 5353, .dport = 53}));
    res.https_new_after =
        send(buildTcp({.src = c, .dst = s, .sport = 40002, .dport = 443, .flags = kSyn}));
    res.alt_new_after =
        send(buildTcp({.src = c, .dst = s, .sport = 40003, .dport = 8443, .flags = kSyn}));
    res.tracked_after = send(buildTcp({.src = c,
                                       .dst = s,
                                       .sport = 40001,
                                       .dport = 443,
                                       .flags = kAck,
                                       .seq = seq,
                                       .ack = 5001,
                                       .payload_len = 10}));
    phase.store(3);
  });

  Joiner joiner(packets, [&] { phase.store(2); });

  ClientOptions co;
  co.unix_socket = so.unix_socket;
  ControlClient client(co);
  ASSERT_TRUE(waitFor([&] { return phase.load() >= 1; }, kWaitLimit, kYield));
  uint64_t last_version = engine.policyVersion();
  for (int i = 0; i < kSwaps; ++i) {
    // Swaps 0, 2, 4, ... load B, the others A again; the last one (kSwaps is odd) loads B.
    std::string_view text = i % 2 == 0 ? testing::kPolicyB : testing::kPolicyA;
    ClientResponse r;
    Status s = client.request("PUT", "/v1/policy?name=swap.yaml", text, "application/yaml", &r);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(r.status, 200) << r.body;
    uint64_t v = json::parse(r.body)["version"].get<uint64_t>();
    EXPECT_GT(v, last_version);
    last_version = v;
    // Reads while packets flow.
    ASSERT_TRUE(client.request("GET", "/v1/connections?proto=tcp", "", "", &r).ok());
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(client.request("GET", "/v1/stats", "", "", &r).ok());
    EXPECT_EQ(r.status, 200);
    // Let packets run under this policy before the next swap.
    uint64_t seen = iterations.load();
    ASSERT_TRUE(waitFor([&] { return iterations.load() > seen + 10; }, kWaitLimit, kYield));
  }
  // A bad policy in the middle of traffic is rejected and changes nothing.
  {
    ClientResponse r;
    ASSERT_TRUE(client.request("PUT", "/v1/policy", testing::kPolicyBad, "", &r).ok());
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(engine.policyVersion(), last_version);
  }
  phase.store(2);
  ASSERT_TRUE(waitFor([&] { return phase.load() == 3; }, kWaitLimit, kYield));
  packets.join();

  ASSERT_EQ(res.handshake.size(), 3u);
  EXPECT_EQ(res.handshake[0], Reason::kAllowRule);
  EXPECT_EQ(res.handshake[1], Reason::kAllowTracked);
  EXPECT_EQ(res.handshake[2], Reason::kAllowTracked);
  EXPECT_EQ(res.dns_before, Reason::kAllowUntracked) << dataplane::reasonCode(res.dns_before);
  EXPECT_GT(res.tracked_packets, static_cast<uint64_t>(kSwaps) * 20);
  EXPECT_EQ(res.tracked_not_allowed, 0u)
      << "first non-tracked verdict: " << dataplane::reasonCode(res.first_bad);
  EXPECT_EQ(res.dns_after, Reason::kDenySg) << dataplane::reasonCode(res.dns_after);
  EXPECT_EQ(res.https_new_after, Reason::kDenySg) << dataplane::reasonCode(res.https_new_after);
  EXPECT_EQ(res.alt_new_after, Reason::kAllowRule) << dataplane::reasonCode(res.alt_new_after);
  EXPECT_EQ(res.tracked_after, Reason::kAllowTracked) << dataplane::reasonCode(res.tracked_after);

  // The connection is still listed, established, after all the swaps.
  ClientResponse r;
  ASSERT_TRUE(client.request("GET", "/v1/connections?proto=tcp&sport=40001", "", "", &r).ok());
  json j = json::parse(r.body);
  ASSERT_EQ(j["connections"].size(), 1u) << r.body;
  EXPECT_EQ(j["connections"][0]["state"], "established");
  server.stop();
}

// Control requests of every kind from several threads while a packet thread runs: nothing
// crashes or races (TSan), every request gets a well-formed answer.
TEST(ReloadTest, ConcurrentControlRequestsDuringTraffic) {
  testing::TempDir dir;
  dataplane::Engine engine(testing::smallEngineConfig(), testing::compileYaml(testing::kPolicyA));
  ServerOptions so;
  so.unix_socket = dir.file("control.sock");
  so.threads = 2;
  ControlServer server(engine, so);
  ASSERT_TRUE(server.start().ok());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> processed{0};
  std::thread packets([&] {
    auto worker = engine.makeWorker();
    uint64_t now = 1'000'000'000;
    auto s = ipAddr("10.0.1.10");
    for (uint32_t i = 0; !stop.load() && i < 50'000'000; ++i) {
      auto c = dataplane::IpAddr::v4(0x0a090000u | (i % 4096));  // 10.9.x.y
      auto port = static_cast<uint16_t>(1024 + i % 50000);
      dataplane::Bytes f =
          i % 2 ? buildTcp({.src = c, .dst = s, .sport = port, .dport = 443, .flags = kSyn})
                : buildUdp({.src = c, .dst = s, .sport = port, .dport = 53});
      now += 10'000;
      dataplane::PacketRef ref{f.data(), static_cast<uint32_t>(f.size())};
      dataplane::Verdict v;
      engine.process(*worker, &ref, 1, now, &v);
      processed.fetch_add(1, std::memory_order_relaxed);
    }
  });

  Joiner joiner(packets, [&] { stop.store(true); });

  constexpr int kThreads = 4;
  constexpr int kRounds = 15;
  std::atomic<int> bad{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      ClientOptions co;
      co.unix_socket = so.unix_socket;
      ControlClient client(co);
      for (int k = 0; k < kRounds; ++k) {
        ClientResponse r;
        Status st;
        switch ((t + k) % 6) {
          case 0:
            st = client.request("PUT", "/v1/policy", k % 2 ? testing::kPolicyA : testing::kPolicyB,
                                "", &r);
            break;
          case 1:
            st = client.request("GET", "/v1/connections?limit=20", "", "", &r);
            break;
          case 2:
            st = client.request("DELETE", "/v1/connections?proto=udp", "", "", &r);
            break;
          case 3:
            st = client.request("GET", "/metrics", "", "", &r);
            break;
          case 4:
            st = client.request("PUT", "/v1/timeouts", R"({"udp": 45})", "", &r);
            break;
          default:
            st = client.request("GET", "/v1/policy", "", "", &r);
            break;
        }
        if (!st.ok() || r.status != 200) bad.fetch_add(1);
      }
    });
  }
  for (auto& c : clients)
    c.join();
  stop.store(true);
  packets.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(processed.load(), 0u);
  // Packets in = sum over reasons, whatever the control plane did meanwhile.
  dataplane::Counters c = engine.counters();
  uint64_t sum = 0;
  for (size_t r = 0; r < dataplane::kReasonCount; ++r)
    sum += c.packets[r];
  EXPECT_EQ(sum, processed.load());
}

}  // namespace
}  // namespace statewall::control
