// The engine's fast path of established TCP against its general algorithm on random traffic:
// the same bursts go through two engines, one with EngineConfig::fast_paths on and one with it
// off, and every verdict, counter, rule hit and connection must be the same. The traffic is many
// TCP connections between clients and servers under policies where the fast path applies
// (tracked flows, both sides protected) and where it must not (a network ACL on the path,
// untracked flows, mid-stream pickups), with handshakes, data, ACKs, window changes, FINs, RSTs,
// retransmissions, stale and out-of-window segments, SYNs reopening closed connections, idle
// gaps past the timeouts (the sweep kills connections between bursts) and a policy swap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/fixtures.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::fixtures {
namespace {

namespace dp = dataplane;
using dp::Engine;
using dp::Verdict;

// Servers 10.0.1.10-13 (group web), 10.0.2.20 (group db, protected on both sides of its flows
// from web); clients 10.1.0.x (unprotected), or web servers talking to db.
std::string policyYaml(int variant) {
  std::string y = "version: 1\n";
  if (variant == 3) y += "timeouts: {profile: linux}\n";
  y += "groups:\n  web:\n    inbound:\n";
  if (variant == 2) {
    y += "      - {proto: tcp, ports: 80, from: 0.0.0.0/0}\n";  // untracked (AWS)
  } else {
    y += "      - {proto: tcp, ports: 80, from: 10.1.0.0/16}\n";
  }
  y += "      - {proto: tcp, ports: 443, from: 10.1.0.0/16}\n";
  if (variant != 2) y += "    outbound:\n      - {proto: tcp, ports: 5432, to: sg:db}\n";
  y += "  db:\n    inbound:\n      - {proto: tcp, ports: 5432, from: sg:web}\n";
  if (variant == 1) {
    y += "network_acls:\n"
         "  web-acl:\n"
         "    inbound:\n"
         "      - {rule: 100, action: allow, proto: tcp, ports: 80, from: 10.1.0.0/24}\n"
         "      - {rule: 110, action: allow, proto: tcp, ports: 443, from: 10.1.0.0/16}\n"
         "    outbound:\n"
         "      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}\n"
         "subnets:\n"
         "  web: {cidr: [10.0.1.0/24], acl: web-acl}\n";
  }
  y += "interfaces:\n"
       "  web-0: {addresses: [10.0.1.10], groups: [web]}\n"
       "  web-1: {addresses: [10.0.1.11], groups: [web]}\n"
       "  web-2: {addresses: [10.0.1.12], groups: [web]}\n"
       "  web-3: {addresses: [10.0.1.13], groups: [web]}\n"
       "  db-0: {addresses: [10.0.2.20], groups: [db]}\n";
  return y;
}

// One TCP conversation as both endpoints see it.
struct Flow {
  dp::IpAddr client, server;
  uint16_t sport = 0, dport = 0;
  uint32_t nxt[2] = {0, 0};  // next sequence each side sends (0 = client, 1 = server)
  uint32_t rcv[2] = {0, 0};  // next sequence each side expects
  uint16_t win[2] = {0, 0};
  std::optional<uint8_t> wscale[2];
  int stage = 0;  // 0 closed, 1 SYN sent, 2 SYN-ACK sent, 3 open
};

class Traffic {
 public:
  explicit Traffic(uint64_t seed) : rng_(seed) {
    for (int i = 0; i < 48; ++i) {
      Flow f;
      const int kind = pick(4);
      if (kind == 0) {  // web -> db, both sides protected
        f.client = dp::IpAddr::v4(0x0a00010a + pick(4));
        f.server = dp::IpAddr::v4(0x0a000214);
        f.dport = 5432;
      } else {
        f.client = dp::IpAddr::v4(0x0a010000 + pick(600));
        f.server = dp::IpAddr::v4(0x0a00010a + pick(4));
        f.dport = kind == 1 ? 443 : 80;
      }
      f.sport = static_cast<uint16_t>(1024 + pick(60000));
      flows_.push_back(f);
    }
  }

  // The next frame of some flow.
  dp::Bytes next() {
    Flow& f = flows_[pick(static_cast<uint32_t>(flows_.size()))];
    int side = pick(2);
    uint8_t flags = dp::kAck;
    size_t len = 0;
    bool deliver = true;
    if (f.stage == 0) {
      if (chance(15)) {  // mid-stream: an ACK with data out of nowhere
        f.nxt[0] = static_cast<uint32_t>(rng_());
        f.nxt[1] = static_cast<uint32_t>(rng_());
        f.rcv[0] = f.nxt[1];
        f.rcv[1] = f.nxt[0];
        f.win[0] = f.win[1] = static_cast<uint16_t>(1000 + pick(60000));
        f.wscale[0] = f.wscale[1] = std::nullopt;
        f.stage = 3;
        side = 0;
        len = pick(500);
      } else {
        open(f);
        side = 0;
        flags = dp::kSyn;
      }
    } else if (f.stage == 1) {
      side = chance(85) ? 1 : 0;
      flags = side == 1 ? static_cast<uint8_t>(dp::kSyn | dp::kAck) : dp::kSyn;
    } else if (f.stage == 2 && chance(80)) {
      side = 0;
    } else {
      const int k = pick(100);
      if (k < 3) {
        flags = dp::kFin | dp::kAck;
      } else if (k < 5) {
        flags = chance(50) ? dp::kRst : static_cast<uint8_t>(dp::kRst | dp::kAck);
      } else if (k < 7) {
        open(f);  // a new SYN: reopens a closed connection, fails the window on an open one
        side = 0;
        flags = dp::kSyn;
      } else if (k < 9) {
        flags = static_cast<uint8_t>(rng_());
      } else if (k < 55) {
        flags = dp::kAck | dp::kPsh;
        len = 1 + pick(1400);
      }
      if (chance(10)) f.win[side] = static_cast<uint16_t>(chance(85) ? 1 + pick(65535) : pick(8));
    }
    dp::TcpSpec t;
    t.src = side == 0 ? f.client : f.server;
    t.dst = side == 0 ? f.server : f.client;
    t.sport = side == 0 ? f.sport : f.dport;
    t.dport = side == 0 ? f.dport : f.sport;
    t.flags = flags;
    t.seq = f.nxt[side];
    t.ack = (flags & dp::kAck) != 0 ? f.rcv[side] : 0;
    t.window = f.win[side];
    t.payload_len = len;
    if ((flags & dp::kSyn) != 0) {
      t.seq = f.nxt[side] - 1;  // the ISN: nxt already counts the SYN
      t.wscale = f.wscale[side];
      t.mss = 1460;
    }
    // Perturbations the receiver drops: retransmissions, stale or future numbers.
    const int k = pick(100);
    if (k < 6) {
      t.seq -= pick(5000);
      deliver = false;
    } else if (k < 9) {
      t.seq += pick(1u << 22);
      deliver = false;
    } else if (k < 12) {
      t.ack -= pick(300000);
      deliver = false;
    } else if (k < 14) {
      t.ack += pick(9000);
      deliver = false;
    }
    if (deliver && chance(95)) {
      const uint32_t end = t.seq + static_cast<uint32_t>(len) + ((flags & dp::kSyn) ? 1u : 0u) +
                           ((flags & dp::kFin) ? 1u : 0u);
      if ((flags & dp::kSyn) == 0 && static_cast<int32_t>(end - f.nxt[side]) > 0) f.nxt[side] = end;
      if (static_cast<int32_t>(end - f.rcv[1 - side]) > 0 || (flags & dp::kSyn))
        f.rcv[1 - side] = end;
      if ((flags & dp::kSyn) && side == 1 && f.stage == 1) f.stage = 2;
      if (f.stage == 2 && side == 0 && flags == dp::kAck) f.stage = 3;
      if ((flags & (dp::kRst | dp::kFin)) && chance(50)) f.stage = 0;
    }
    return dp::buildTcp(t);
  }

  bool chance(int percent) { return static_cast<int>(rng_() % 100) < percent; }
  int pick(uint32_t n) { return static_cast<int>(rng_() % n); }

 private:
  void open(Flow& f) {
    const uint32_t isn_c = static_cast<uint32_t>(rng_());
    const uint32_t isn_s = static_cast<uint32_t>(rng_());
    f.nxt[0] = isn_c + 1;
    f.nxt[1] = isn_s + 1;
    f.rcv[0] = isn_s + 1;
    f.rcv[1] = isn_c + 1;
    f.win[0] = static_cast<uint16_t>(1000 + pick(64000));
    f.win[1] = static_cast<uint16_t>(1000 + pick(64000));
    for (auto& w : f.wscale)
      w = chance(70) ? std::optional<uint8_t>(static_cast<uint8_t>(pick(15))) : std::nullopt;
    f.stage = 1;
  }

  std::mt19937_64 rng_;
  std::vector<Flow> flows_;
};

bool sameText(const char* a, const char* b) {
  return (a == nullptr || b == nullptr) ? a == b : std::string_view(a) == b;
}

bool sameVerdict(const Verdict& a, const Verdict& b) {
  return a.reason == b.reason && a.malformed_layer == b.malformed_layer && a.flags == b.flags &&
         a.tcp_before == b.tcp_before && a.tcp_after == b.tcp_after && a.rule == b.rule &&
         a.deny_iface == b.deny_iface && a.deny_dir == b.deny_dir && a.acl_entry == b.acl_entry &&
         a.conn_id == b.conn_id && sameText(a.why, b.why);
}

struct Stats {
  uint64_t tracked = 0;  // allow-tracked verdicts: the fast path's candidates
  uint64_t other = 0;
};

void runVariant(int variant, uint64_t seed, Stats* stats) {
  SCOPED_TRACE("policy variant " + std::to_string(variant) + ", seed " + std::to_string(seed));
  auto policy = compileFixturePolicy(policyYaml(variant));
  auto swapped = compileFixturePolicy(policyYaml(variant == 0 ? 1 : 0));
  dp::EngineConfig config;
  config.table_capacity = 4096;
  std::unique_ptr<Engine> engines[2];
  std::unique_ptr<Engine::Worker> workers[2];
  for (int k = 0; k < 2; ++k) {
    config.fast_paths = k == 0;
    engines[k] = std::make_unique<Engine>(config, policy);
    workers[k] = engines[k]->makeWorker();
  }
  Traffic traffic(seed);
  uint64_t now = 1'000'000'000;
  std::vector<dp::Bytes> frames;
  std::vector<dp::PacketRef> refs;
  Verdict out[2][dp::kMaxBurst];
  for (int burst = 0; burst < 400; ++burst) {
    if (burst == 250) {
      for (auto& e : engines)
        e->publish(swapped);
    }
    const unsigned n = 1 + static_cast<unsigned>(traffic.pick(dp::kMaxBurst));
    frames.clear();
    refs.clear();
    for (unsigned i = 0; i < n; ++i)
      frames.push_back(traffic.next());
    for (const auto& f : frames)
      refs.push_back(dp::PacketRef{f.data(), static_cast<uint32_t>(f.size())});
    for (int k = 0; k < 2; ++k)
      engines[k]->process(*workers[k], refs.data(), n, now, out[k]);
    for (unsigned i = 0; i < n; ++i) {
      if (out[0][i].reason == dp::Reason::kAllowTracked) {
        ++stats->tracked;
      } else {
        ++stats->other;
      }
      if (!sameVerdict(out[0][i], out[1][i])) {
        const auto& pol = burst >= 250 ? *swapped : *policy;
        ADD_FAILURE() << "burst " << burst << " packet " << i
                      << " differs:\n fast:    " << describeVerdict(pol, out[0][i])
                      << "\n general: " << describeVerdict(pol, out[1][i]);
        return;
      }
    }
    // Mostly microseconds apart; now and then an idle gap past some timeouts (the sweep, run
    // explicitly here, then kills and reclaims the idle connections in both engines alike).
    now += traffic.chance(3) ? static_cast<uint64_t>(40 + traffic.pick(200)) * 1'000'000'000 : 1000;
    if (traffic.chance(5)) {
      for (int k = 0; k < 2; ++k)
        engines[k]->sweep(*workers[k], now, 1 << 20);
    }
  }
  const dp::Counters a = engines[0]->counters();
  const dp::Counters b = engines[1]->counters();
  for (size_t r = 0; r < dp::kReasonCount; ++r) {
    EXPECT_EQ(a.packets[r], b.packets[r]);
    EXPECT_EQ(a.bytes[r], b.bytes[r]);
  }
  EXPECT_EQ(a.connections_created, b.connections_created);
  EXPECT_EQ(a.connections_expired, b.connections_expired);
  EXPECT_EQ(a.tcp_invalid, b.tcp_invalid);
  EXPECT_EQ(engines[0]->ruleHits(), engines[1]->ruleHits());
  EXPECT_EQ(engines[0]->aclHits(), engines[1]->aclHits());
  // The same connections in the same states, expiring at the same time.
  std::vector<std::string> conns[2];
  for (int k = 0; k < 2; ++k) {
    engines[k]->forEachConnection([&](const dp::ConnectionInfo& c) {
      conns[k].push_back(
          std::to_string(c.id) + " " + c.orig_src.str() + ":" + std::to_string(c.orig_sport) + " " +
          c.orig_dst.str() + ":" + std::to_string(c.orig_dport) + " " +
          std::string(dp::tcpStateName(c.tcp_state)) + " " + std::to_string(c.src_side_tracked) +
          std::to_string(c.dst_side_tracked) + std::to_string(c.replied) + " " +
          std::to_string(c.opened_by) + " " + std::to_string(c.expires_ns));
    });
  }
  EXPECT_EQ(conns[0], conns[1]);
  EXPECT_FALSE(conns[0].empty());
}

TEST(EngineFastPath, SameVerdictsAsTheGeneralAlgorithm) {
  Stats stats;
  for (int variant = 0; variant < 4; ++variant) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      runVariant(variant, seed * 1000 + static_cast<uint64_t>(variant), &stats);
      if (HasFailure()) return;
    }
  }
  // Enough of both kinds of packet for the comparison to mean something.
  EXPECT_GT(stats.tracked, 20000u);
  EXPECT_GT(stats.other, 20000u);
}

}  // namespace
}  // namespace statewall::fixtures
