// Engine behaviour around the verdicts: rule and ACL hit counters, the connection list, expiry by
// sweep, erase, policy publication, a tiny table, and garbage input.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "engine/fixtures.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::fixtures {
namespace {

using namespace dataplane;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kSec = 1'000'000'000ull;

const char* const kPolicy = R"(version: 1
groups:
  srv:
    inbound:
      - {proto: tcp, ports: 80, from: 0.0.0.0/0}
      - {proto: udp, ports: 53, from: 0.0.0.0/0}
      - {proto: tcp, ports: 9999, from: 0.0.0.0/0}
    outbound: []
network_acls:
  acl:
    inbound:
      - {rule: 90, action: deny, proto: all, from: 203.0.113.0/24}
      - {rule: 100, action: allow, proto: all, from: 0.0.0.0/0}
    outbound:
      - {rule: 100, action: allow, proto: all, to: 0.0.0.0/0}
subnets:
  s: {cidr: 10.0.1.0/24, acl: acl}
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)";

rules::RuleId ruleByLabel(const rules::CompiledPolicy& p, const std::string& label) {
  for (rules::RuleId r = 0; r < p.ruleCount(); ++r) {
    if (ruleLabel(p, r) == label) return r;
  }
  ADD_FAILURE() << "no rule " << label;
  return rules::kNoRule;
}

rules::AclEntryId aclEntryByNumber(const rules::CompiledPolicy& p, rules::Direction d, int n) {
  for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e) {
    if (p.aclEntry(e).dir == d && p.aclEntry(e).rule_number == n) return e;
  }
  ADD_FAILURE() << "no ACL entry " << n;
  return rules::kNoAclEntry;
}

// One engine and one worker; packets one at a time at an explicit time.
class Harness {
 public:
  explicit Harness(const std::string& yaml = kPolicy, size_t capacity = 1024)
      : policy_(compileFixturePolicy(yaml)),
        engine_(EngineConfig{.table_capacity = capacity}, policy_),
        worker_(engine_.makeWorker()) {}

  Verdict send(const Bytes& frame, uint64_t now_ns = 1000 * kSec) {
    PacketRef ref{frame.data(), static_cast<uint32_t>(frame.size())};
    Verdict v;
    engine_.process(*worker_, &ref, 1, now_ns, &v);
    return v;
  }

  Engine& engine() { return engine_; }
  Engine::Worker& worker() { return *worker_; }
  const rules::CompiledPolicy& policy() const { return *policy_; }

 private:
  rules::CompiledPolicyPtr policy_;
  Engine engine_;
  std::unique_ptr<Engine::Worker> worker_;
};

Bytes tcp(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags,
          uint32_t seq, uint32_t ack = 0, size_t len = 0) {
  return buildTcp({.src = ipAddr(src),
                   .dst = ipAddr(dst),
                   .sport = sport,
                   .dport = dport,
                   .flags = flags,
                   .seq = seq,
                   .ack = ack,
                   .payload_len = len});
}

// A handshake from 198.51.100.7:sport to srv-1:80; returns the last verdict.
Verdict handshake(Harness& h, uint16_t sport, uint64_t now = 1000 * kSec) {
  EXPECT_EQ(h.send(tcp("198.51.100.7", sport, "10.0.1.10", 80, kSyn, 100), now).reason,
            Reason::kAllowRule);
  EXPECT_EQ(h.send(tcp("10.0.1.10", 80, "198.51.100.7", sport, kSyn | kAck, 500, 101), now).reason,
            Reason::kAllowTracked);
  return h.send(tcp("198.51.100.7", sport, "10.0.1.10", 80, kAck, 101, 501), now);
}

TEST(EngineCounters, RuleHitsCountRuleDecisionsOnly) {
  Harness h;
  for (uint16_t p = 1000; p < 1003; ++p)
    EXPECT_EQ(handshake(h, p).reason, Reason::kAllowTracked);
  const Bytes req = buildUdp(
      {.src = ipAddr("198.51.100.7"), .dst = ipAddr("10.0.1.10"), .sport = 5000, .dport = 53});
  const Bytes resp = buildUdp(
      {.src = ipAddr("10.0.1.10"), .dst = ipAddr("198.51.100.7"), .sport = 53, .dport = 5000});
  EXPECT_EQ(h.send(req).reason, Reason::kAllowRule);
  EXPECT_EQ(h.send(resp).reason, Reason::kAllowTracked);
  EXPECT_EQ(h.send(req).reason, Reason::kAllowTracked);

  const auto hits = h.engine().ruleHits();
  ASSERT_EQ(hits.size(), h.policy().ruleCount());
  // Tracked packets do not consult security-group rules (docs/design.md "Lookup comes first").
  EXPECT_EQ(hits[ruleByLabel(h.policy(), "srv inbound tcp 80 from 0.0.0.0/0")], 3u);
  EXPECT_EQ(hits[ruleByLabel(h.policy(), "srv inbound udp 53 from 0.0.0.0/0")], 1u);
  EXPECT_EQ(hits[ruleByLabel(h.policy(), "srv inbound tcp 9999 from 0.0.0.0/0")], 0u);
  const Counters c = h.engine().counters();
  EXPECT_EQ(c.totalPackets(), 12u);
  EXPECT_EQ(c.packets[static_cast<size_t>(Reason::kAllowRule)], 4u);
  EXPECT_EQ(c.packets[static_cast<size_t>(Reason::kAllowTracked)], 8u);
  EXPECT_EQ(c.connections_created, 4u);
}

TEST(EngineCounters, AclHitsNameTheDecidingEntry) {
  Harness h;
  for (uint16_t p = 1; p <= 2; ++p) {
    const Verdict v = h.send(tcp("203.0.113.5", p, "10.0.1.10", 80, kSyn, 1));
    EXPECT_EQ(v.reason, Reason::kDenyAcl);
    EXPECT_EQ(v.acl_entry, aclEntryByNumber(h.policy(), rules::Direction::kInbound, 90));
  }
  const auto hits = h.engine().aclHits();
  ASSERT_EQ(hits.size(), h.policy().aclEntryCount());
  EXPECT_EQ(hits[aclEntryByNumber(h.policy(), rules::Direction::kInbound, 90)], 2u);
  // Nothing fell through to the inbound '*' entry.
  EXPECT_EQ(hits[h.policy().acl(0).default_entry[0]], 0u);
  // The packets never reached srv's security group (docs/design.md: arriving at D a packet meets
  // D's subnet ACL, then D's groups), so its rules were not hit.
  EXPECT_EQ(h.engine().ruleHits()[ruleByLabel(h.policy(), "srv inbound tcp 80 from 0.0.0.0/0")],
            0u);
}

TEST(EngineCounters, ConnectionListAndExpiry) {
  Harness h;
  EXPECT_EQ(handshake(h, 4000).reason, Reason::kAllowTracked);
  EXPECT_EQ(h.engine().connectionCount(), 1u);
  size_t seen = 0;
  h.engine().forEachConnection([&](const ConnectionInfo& ci) {
    ++seen;
    EXPECT_EQ(ci.proto, kIpProtoTcp);
    EXPECT_EQ(ci.orig_src, ipAddr("198.51.100.7"));
    EXPECT_EQ(ci.orig_dst, ipAddr("10.0.1.10"));
    EXPECT_EQ(ci.orig_sport, 4000);
    EXPECT_EQ(ci.orig_dport, 80);
    EXPECT_EQ(ci.tcp_state, TcpState::kEstablished);
    EXPECT_TRUE(ci.replied);
    EXPECT_TRUE(ci.dst_side_tracked);
    EXPECT_EQ(ci.opened_by, ruleByLabel(h.policy(), "srv inbound tcp 80 from 0.0.0.0/0"));
    // AWS profile: established connections idle 432000 s.
    EXPECT_EQ(ci.expires_ns, 1000 * kSec + 432000 * kSec);
  });
  EXPECT_EQ(seen, 1u);

  const uint64_t later = 1000 * kSec + 432001 * kSec;
  for (int i = 0; i < 64 && h.engine().connectionCount() != 0; ++i) {
    h.engine().sweep(h.worker(), later, 1 << 20);
  }
  EXPECT_EQ(h.engine().connectionCount(), 0u);
  EXPECT_GE(h.engine().counters().connections_expired, 1u);
  // The expired connection gives no help any more.
  EXPECT_EQ(h.send(tcp("10.0.1.10", 80, "198.51.100.7", 4000, kAck, 501, 101), later).reason,
            Reason::kDenySg);
}

// Engine::process's opt-in connection detail: per packet, the connection as that packet left it,
// even when later packets of the same burst change it (docs/design.md "Connection tracking").
TEST(EngineCounters, ConnectionDetailPerPacketOfABurst) {
  Harness h;
  const Bytes req = buildUdp(
      {.src = ipAddr("198.51.100.7"), .dst = ipAddr("10.0.1.10"), .sport = 5000, .dport = 53});
  const Bytes resp = buildUdp(
      {.src = ipAddr("10.0.1.10"), .dst = ipAddr("198.51.100.7"), .sport = 53, .dport = 5000});
  const Bytes syn = tcp("198.51.100.7", 4000, "10.0.1.10", 80, kAck, 100, 1);  // mid-stream
  const Bytes denied = tcp("198.51.100.7", 4001, "10.0.1.10", 81, kSyn, 100);
  const std::vector<const Bytes*> frames = {&req, &resp, &req, &syn, &denied};
  std::vector<PacketRef> refs;
  for (const Bytes* f : frames)
    refs.push_back(PacketRef{f->data(), static_cast<uint32_t>(f->size())});
  Verdict v[5];
  ConnectionInfo c[5];
  h.engine().process(h.worker(), refs.data(), 5, 1000 * kSec, v, nullptr, c);
  ASSERT_NE(v[0].conn_id, 0u);
  EXPECT_EQ(c[0].id, v[0].conn_id);
  EXPECT_TRUE(c[0].dst_side_tracked && c[0].dst_side_protected);
  EXPECT_FALSE(c[0].src_side_tracked || c[0].src_side_protected);
  EXPECT_TRUE(c[0].dstSideTracks());
  EXPECT_FALSE(c[0].replied);
  EXPECT_EQ(c[0].timeoutKey(), rules::TimeoutKey::kUdp);
  EXPECT_TRUE(c[1].replied);
  EXPECT_FALSE(c[1].stream);
  EXPECT_EQ(c[1].timeoutKey(), rules::TimeoutKey::kUdp);
  EXPECT_TRUE(c[2].stream);  // the originator sent again after a reply
  EXPECT_EQ(c[2].timeoutKey(), rules::TimeoutKey::kUdpStream);
  EXPECT_TRUE(c[3].mid_stream);
  EXPECT_EQ(c[3].tcp_state, TcpState::kEstablished);
  EXPECT_EQ(c[3].timeoutKey(), rules::TimeoutKey::kTcpEstablished);
  EXPECT_EQ(c[4].id, 0u);  // denied: no connection
  // Without the detail, the same verdicts.
  Harness h2;
  Verdict v2[5];
  h2.engine().process(h2.worker(), refs.data(), 5, 1000 * kSec, v2);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(v2[i].reason, v[i].reason) << i;
}

TEST(EngineCounters, EraseConnections) {
  Harness h;
  EXPECT_EQ(handshake(h, 4100).reason, Reason::kAllowTracked);
  EXPECT_EQ(handshake(h, 4101).reason, Reason::kAllowTracked);
  EXPECT_EQ(
      h.engine().eraseConnections([](const ConnectionInfo& ci) { return ci.orig_sport == 4100; }),
      1u);
  EXPECT_EQ(h.engine().connectionCount(), 1u);
  EXPECT_EQ(h.send(tcp("10.0.1.10", 80, "198.51.100.7", 4100, kAck, 501, 101)).reason,
            Reason::kDenySg);
  EXPECT_EQ(h.send(tcp("10.0.1.10", 80, "198.51.100.7", 4101, kAck, 501, 101)).reason,
            Reason::kAllowTracked);
}

TEST(EngineCounters, PublishSwapsThePolicy) {
  Harness h;
  const uint64_t v0 = h.engine().policyVersion();
  EXPECT_EQ(h.engine().policy().get(), &h.policy());
  auto next = compileFixturePolicy(R"(version: 1
groups:
  srv:
    inbound: [{proto: tcp, ports: 8080, from: 0.0.0.0/0}]
    outbound: []
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)");
  h.engine().publish(next);
  EXPECT_NE(h.engine().policyVersion(), v0);
  EXPECT_EQ(h.engine().policy(), next);
  EXPECT_EQ(h.engine().ruleHits().size(), next->ruleCount());
  EXPECT_EQ(h.engine().aclHits().size(), next->aclEntryCount());
  EXPECT_EQ(h.send(tcp("198.51.100.7", 1, "10.0.1.10", 80, kSyn, 1)).reason, Reason::kDenySg);
  const Verdict v = h.send(tcp("198.51.100.7", 1, "10.0.1.10", 8080, kSyn, 1));
  EXPECT_EQ(v.reason, Reason::kAllowRule);
  EXPECT_EQ(ruleLabel(*next, v.rule), "srv inbound tcp 8080 from 0.0.0.0/0");
}

// A replaced policy is freed once the worker has passed a quiescent point, without waiting for
// the next publish() (statewalld's lcores never go offline, so only the periodic call frees it).
TEST(EngineCounters, ReplacedPolicyFreedAfterTheGracePeriod) {
  Harness h;
  EXPECT_EQ(h.send(tcp("198.51.100.7", 1, "10.0.1.10", 80, kSyn, 1)).reason, Reason::kAllowRule);
  std::weak_ptr<const rules::CompiledPolicy> first = h.engine().policy();
  auto next = compileFixturePolicy(kPolicy);
  h.engine().publish(next);
  // The worker has not passed a quiescent point since the swap: nothing may be freed yet.
  EXPECT_EQ(h.engine().reclaimRetiredPolicies(), 0u);
  h.send(tcp("198.51.100.7", 2, "10.0.1.10", 80, kSyn, 1));  // ends with a quiescent point
  EXPECT_EQ(h.engine().reclaimRetiredPolicies(), 1u);
  EXPECT_EQ(h.engine().reclaimRetiredPolicies(), 0u);
  // The engine's reference is gone; only the harness's copy keeps the first policy alive.
  EXPECT_EQ(first.use_count(), 1);
}

// Early drop: a full table evicts the oldest unanswered SYN for each new one (counted), and
// denies new connections only once its entries have replies.
TEST(EngineCounters, TinyTableEvictsUnrepliedThenDenies) {
  Harness h(kPolicy, 2);
  EXPECT_GE(h.engine().capacity(), 2u);
  constexpr uint64_t kMs = kSec / 1000;
  for (uint16_t p = 1; p <= 200; ++p) {
    const Verdict v =
        h.send(tcp("198.51.100.7", p, "10.0.1.10", 80, kSyn, 1), 1000 * kSec + p * kMs);
    ASSERT_EQ(v.reason, Reason::kAllowRule) << p;
  }
  EXPECT_EQ(h.engine().connectionCount(), 2u);
  EXPECT_EQ(h.engine().counters().connections_created, 200u);
  EXPECT_EQ(h.engine().counters().connections_evicted, 198u);
  // The two newest are left; their SYN-ACKs make them replied.
  for (uint16_t p : {199, 200}) {
    const Verdict v =
        h.send(tcp("10.0.1.10", 80, "198.51.100.7", p, kSyn | kAck, 7, 2), 1000 * kSec + 201 * kMs);
    EXPECT_EQ(v.reason, Reason::kAllowTracked) << p;
  }
  const Verdict full =
      h.send(tcp("198.51.100.7", 201, "10.0.1.10", 80, kSyn, 1), 1000 * kSec + 202 * kMs);
  EXPECT_EQ(full.reason, Reason::kDenyTableFull);
  EXPECT_EQ(h.engine().counters().connections_evicted, 198u);
  EXPECT_EQ(h.engine().counters().packets[static_cast<size_t>(Reason::kDenyTableFull)], 1u);
  EXPECT_EQ(h.engine().connectionCount(), 2u);
}

TEST(EngineCounters, TcpInvalidCounted) {
  Harness h;
  EXPECT_EQ(handshake(h, 4200).reason, Reason::kAllowTracked);
  const uint64_t before = h.engine().counters().tcp_invalid;
  const Verdict v = h.send(tcp("198.51.100.7", 4200, "10.0.1.10", 80, kSyn | kFin, 101));
  EXPECT_NE(v.flags & kFlagTcpInvalid, 0);
  // Data far beyond the client's window (a bare ACK's sequence number is not checked).
  const Verdict w =
      h.send(tcp("10.0.1.10", 80, "198.51.100.7", 4200, kAck, 501 + 1000000, 101, 10));
  EXPECT_NE(w.flags & kFlagTcpInvalid, 0);
  EXPECT_EQ(w.reason, Reason::kDenySg);
  EXPECT_EQ(h.engine().counters().tcp_invalid, before + 2);
}

TEST(EngineCounters, ParsedPacketsHandedBack) {
  Harness h;
  const Bytes f = tcp("198.51.100.7", 4300, "10.0.1.10", 80, kSyn, 1);
  PacketRef ref{f.data(), static_cast<uint32_t>(f.size())};
  Verdict v;
  ParsedPacket pp;
  h.engine().process(h.worker(), &ref, 1, kSec, &v, &pp);
  EXPECT_EQ(v.reason, Reason::kAllowRule);
  EXPECT_EQ(pp.src, ipAddr("198.51.100.7"));
  EXPECT_EQ(pp.dport, 80);
  EXPECT_EQ(pp.tcp_flags, kSyn);
}

// Random bytes and mutated real frames: every packet gets exactly one reason, nothing crashes.
TEST(EngineCounters, GarbageInGetsOneReasonEach) {
  Harness h;
  std::mt19937 rng(12345);
  const Bytes base = tcp("198.51.100.7", 4400, "10.0.1.10", 80, kSyn, 1);
  size_t n = 0;
  for (int round = 0; round < 200; ++round) {
    std::vector<Bytes> frames;
    for (int i = 0; i < 32; ++i) {
      Bytes b = base;
      if (i % 2 == 0) {
        b.resize(rng() % 100);
        for (auto& x : b)
          x = static_cast<uint8_t>(rng());
      } else {
        for (int k = 0; k < 3; ++k)
          b[rng() % b.size()] = static_cast<uint8_t>(rng());
        b.resize(rng() % (b.size() + 1));
      }
      frames.push_back(std::move(b));
    }
    PacketRef refs[32];
    for (int i = 0; i < 32; ++i) {
      refs[i] = PacketRef{frames[i].data(), static_cast<uint32_t>(frames[i].size())};
    }
    Verdict v[32];
    h.engine().process(h.worker(), refs, 32, static_cast<uint64_t>(round + 1) * kSec, v);
    for (const Verdict& x : v)
      EXPECT_LT(static_cast<size_t>(x.reason), kReasonCount);
    n += 32;
  }
  EXPECT_EQ(h.engine().counters().totalPackets(), n);
}

}  // namespace
}  // namespace statewall::fixtures
