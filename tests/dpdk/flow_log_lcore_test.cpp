// statewalld's per-lcore flow-log aggregation (FlowLogLcore) against the library's own statement
// of what a packet counts in (flowlog::flowLogKeys, flowLogBegin, flowLogCount), aggregated here
// in a plain map: the same records in the same order, for flows whose packets change action
// (an egress record shared by packets whose ingress differs), ICMP (ports 0), both directions,
// traffic between unprotected addresses (no record), and a table too small for the window (the
// same totals over several records). No EAL: the lcore's side runs on this thread.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "dpdk_test_util.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dpdk/flow_log.hpp"
#include "statewall/flowlog/flow_log.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::dpdk_test {
namespace {

using dataplane::Bytes;
using dataplane::ipAddr;
using json = nlohmann::json;

constexpr const char* kPolicy = R"(version: 1
groups:
  web:
    inbound: [{proto: tcp, ports: 443, from: 0.0.0.0/0}, {proto: icmp, from: 0.0.0.0/0}]
    outbound: [{proto: tcp, ports: 5432, to: 10.0.2.0/24}, {proto: udp, ports: 53, to: 0.0.0.0/0}]
  db:
    inbound: [{proto: tcp, ports: 5432, from: 10.0.1.10/32}]
    outbound: []
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
  db-1: {addresses: [10.0.2.20], groups: [db]}
)";

// Records as JSON lines without start and end (wall clock for the lcore, any value here).
std::vector<std::string> records(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    j.erase("start");
    j.erase("end");
    out.push_back(j.dump());
  }
  return out;
}

std::vector<Bytes> trace() {
  using dataplane::kAck;
  using dataplane::kFin;
  using dataplane::kSyn;
  const rules::IpAddr web = ipAddr("10.0.1.10"), db = ipAddr("10.0.2.20");
  const rules::IpAddr client = ipAddr("198.51.100.7"), other = ipAddr("203.0.113.9");
  auto tcp = [](rules::IpAddr s, rules::IpAddr d, uint16_t sp, uint16_t dp, uint8_t f, uint32_t seq,
                uint32_t ack, uint16_t len = 0) {
    return dataplane::buildTcp({.src = s,
                                .dst = d,
                                .sport = sp,
                                .dport = dp,
                                .flags = f,
                                .seq = seq,
                                .ack = ack,
                                .payload_len = len});
  };
  std::vector<Bytes> t;
  // A client to web: allowed both ways, then an ACK out of the window (invalid: REJECT).
  t.push_back(tcp(client, web, 40000, 443, kSyn, 100, 0));
  t.push_back(tcp(web, client, 443, 40000, kSyn | kAck, 900, 101));
  t.push_back(tcp(client, web, 40000, 443, kAck, 101, 901, 20));
  t.push_back(tcp(web, client, 443, 40000, kAck, 901, 121, 300));
  t.push_back(tcp(client, web, 40000, 443, kAck, 5'000'000, 901, 20));
  t.push_back(tcp(client, web, 40000, 443, kFin | kAck, 121, 1201));
  // web to db: egress and ingress records; then web to db on a port db does not allow (egress
  // ACCEPT at web? no rule: REJECT at web) and db to web (no outbound rule at db).
  t.push_back(tcp(web, db, 41000, 5432, kSyn, 1, 0));
  t.push_back(tcp(db, web, 5432, 41000, kSyn | kAck, 7, 2));
  t.push_back(tcp(web, db, 41000, 5432, kAck, 2, 8, 100));
  t.push_back(tcp(web, db, 41001, 22, kSyn, 1, 0));
  t.push_back(tcp(db, web, 41002, 443, kSyn, 1, 0));
  // ICMP echo to web, twice with other identifiers (ports 0: one record).
  t.push_back(dataplane::buildIcmpEcho({.src = client, .dst = web, .id = 1, .seq = 1}));
  t.push_back(dataplane::buildIcmpEcho({.src = client, .dst = web, .id = 2, .seq = 1}));
  // Between two unprotected addresses: no record.
  t.push_back(dataplane::buildUdp({.src = client, .dst = other, .sport = 9, .dport = 53}));
  // A scan of db: denied flows.
  for (uint16_t p = 1; p <= 20; ++p)
    t.push_back(tcp(other, db, 50000, p, kSyn, 1, 0));
  // The web to client flow again, and UDP out of web.
  t.push_back(tcp(web, client, 443, 40000, kAck, 1201, 122));
  t.push_back(dataplane::buildUdp({.src = web, .dst = other, .sport = 5353, .dport = 53}));
  t.push_back(dataplane::buildUdp({.src = web, .dst = other, .sport = 5353, .dport = 53}));
  return t;
}

class FlowLogLcoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = rules::loadPolicyTexts({{"p.yaml", kPolicy}});
    ASSERT_TRUE(loaded.ok());
    auto compiled = rules::compile(*loaded.policy);
    ASSERT_TRUE(compiled.policy);
    policy_ = compiled.policy;
    dataplane::EngineConfig cfg;
    cfg.table_capacity = 1024;
    engine_ = std::make_unique<dataplane::Engine>(cfg, policy_);
    worker_ = engine_->makeWorker();
    ASSERT_TRUE(worker_);
  }

  // The trace through the engine in bursts of `burst`, counted by an lcore of `flows` aggregates;
  // its records, and the library's own aggregation of the same verdicts (in order of first
  // packet, one window) written by the same names.
  void run(uint32_t flows, unsigned burst, std::vector<std::string>* lcore,
           std::vector<std::string>* reference) {
    dpdk::FlowLogSettings s;
    s.path = dir_ / "lcore.jsonl";
    s.jsonl = true;
    s.interval_s = 3600;
    s.flows = flows;
    s.ring = 1024;
    std::string err;
    auto c = dpdk::FlowLogCollector::open(s, 1, policy_, engine_->policyVersion(), &err);
    ASSERT_TRUE(c) << err;
    dpdk::FlowLogLcore& l = *c->lcore(0);

    const std::vector<Bytes> t = trace();
    std::vector<flowlog::FlowLogAgg> ref;
    uint64_t now = 1'000'000'000;
    for (size_t at = 0; at < t.size(); at += burst) {
      const unsigned n = static_cast<unsigned>(std::min<size_t>(burst, t.size() - at));
      dataplane::PacketRef refs[dataplane::kMaxBurst];
      for (unsigned i = 0; i < n; ++i)
        refs[i] = {t[at + i].data(), static_cast<uint32_t>(t[at + i].size())};
      dataplane::Verdict v[dataplane::kMaxBurst];
      engine_->process(*worker_, refs, n, now, v, l.parsed());
      for (unsigned i = 0; i < n; ++i) {
        flowlog::FlowLogKey keys[2];
        const unsigned nk = flowlog::flowLogKeys(v[i], l.parsed()[i], *policy_, keys);
        for (unsigned j = 0; j < nk; ++j) {
          auto it = std::find_if(ref.begin(), ref.end(),
                                 [&](const flowlog::FlowLogAgg& a) { return a.key == keys[j]; });
          if (it == ref.end()) {
            ref.emplace_back();
            flowlog::flowLogBegin(&ref.back(), keys[j], now, v[i]);
            it = ref.end() - 1;
          }
          flowlog::flowLogCount(&*it, now, l.parsed()[i]);
        }
      }
      l.count(now, v, n);
      now += 1'000'000;
    }
    c->poll(*engine_);
    ASSERT_TRUE(c->finish(&err)) << err;
    *lcore = records(readText(dir_ / "lcore.jsonl"));

    const std::string ref_path = dir_ / "ref.jsonl";
    auto w = flowlog::FlowLogWriter::open(ref_path, flowlog::FlowLogWriter::Format::kJsonl, &err);
    ASSERT_TRUE(w) << err;
    flowlog::FlowLogNames names(*policy_);
    for (const flowlog::FlowLogAgg& a : ref)
      names.write(*w, a);
    ASSERT_TRUE(w->close(&err)) << err;
    *reference = records(readText(ref_path));
  }

  TempDir dir_;
  rules::CompiledPolicyPtr policy_;
  std::unique_ptr<dataplane::Engine> engine_;
  std::unique_ptr<dataplane::Engine::Worker> worker_;
};

TEST_F(FlowLogLcoreTest, RecordsEqualTheLibrarysAggregationInOrder) {
  for (unsigned burst : {1u, 7u, 32u}) {
    std::vector<std::string> lcore, reference;
    run(65536, burst, &lcore, &reference);
    EXPECT_GT(reference.size(), 25u);
    EXPECT_EQ(lcore, reference) << "burst " << burst;
  }
}

// A table of 3 aggregates: the window's records are handed over whenever it fills, so a flow may
// have several records, but the packets and bytes per record key add up to the library's.
TEST_F(FlowLogLcoreTest, AFullTableSplitsRecordsButLosesNoCount) {
  std::vector<std::string> lcore, reference;
  run(3, 5, &lcore, &reference);
  auto totals = [](const std::vector<std::string>& recs) {
    std::map<std::string, std::pair<uint64_t, uint64_t>> out;
    for (const std::string& r : recs) {
      json j = json::parse(r);
      const uint64_t packets = j["packets"], bytes = j["bytes"];
      j.erase("packets");
      j.erase("bytes");
      j.erase("tcp-flags");  // OR-ed over each record's own packets
      j.erase("rule");       // the first packet's of each record
      j.erase("reason");
      auto& t = out[j.dump()];
      t.first += packets;
      t.second += bytes;
    }
    return out;
  };
  EXPECT_GT(lcore.size(), reference.size());
  EXPECT_EQ(totals(lcore), totals(reference));
}

}  // namespace
}  // namespace statewall::dpdk_test
