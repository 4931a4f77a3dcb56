// statewalld's --flow-log across a policy change (docs/deploy.md, "Flow logs", "Policy changes"),
// with a connection open across it: statewalld's Appliance, its flow-log collector and its control
// API in-process on net_ring ports, this test playing statewalld's main loop (the collector's
// poll() between packets), so that what is judged before and after each step is the test's
// choice. (flow_log_test.cpp runs statewalld as a process, where the main loop's 10 ms rounds
// cannot be placed between two packets.)
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dpdk_test_util.hpp"
#include "ring_appliance.hpp"
#include "statewall/control/api.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dpdk/appliance.hpp"
#include "statewall/dpdk/flow_log.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::dpdk_test {
namespace {

using dataplane::Bytes;
using dataplane::ipAddr;

[[maybe_unused]] ::testing::Environment* const kEal =
    ::testing::AddGlobalTestEnvironment(new RingEal(1, "fs", "test_dpdk_flow_log_swap"));

constexpr const char* kBefore = R"(version: 1
groups:
  web:
    inbound: [{proto: tcp, ports: 443, from: 198.51.100.0/24}]
    outbound: []
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";
// The same rule, now second: a record named by the wrong policy names the wrong rule.
constexpr const char* kAfter = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 80, from: 0.0.0.0/0}
      - {proto: tcp, ports: 443, from: 198.51.100.0/24}
    outbound: []
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

TEST(FlowLogSwap, RecordsAreHandedOverUnderThePolicyTheyWereCountedWith) {
  ASSERT_TRUE(RingEal::ok) << "EAL did not initialise";
  TempDir dir;
  const int socket = static_cast<int>(rte_socket_id());
  auto ring = [&](const char* name) {
    return rte_ring_create(name, 64, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
  };
  rte_ring* in_rx = ring("fs_in_rx");
  rte_ring* in_tx = ring("fs_in_tx");
  rte_ring* out_rx = ring("fs_out_rx");
  rte_ring* out_tx = ring("fs_out_tx");
  ASSERT_TRUE(in_rx && in_tx && out_rx && out_tx) << rte_strerror(rte_errno);
  ASSERT_GE(rte_eth_from_rings("fsi", &in_rx, 1, &in_tx, 1, static_cast<unsigned>(socket)), 0);
  ASSERT_GE(rte_eth_from_rings("fso", &out_rx, 1, &out_tx, 1, static_cast<unsigned>(socket)), 0);
  rte_mempool* pool =
      rte_pktmbuf_pool_create("fs_pkts", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  ASSERT_NE(pool, nullptr) << rte_strerror(rte_errno);

  auto loaded = rules::loadPolicyTexts({{"before.yaml", kBefore}});
  ASSERT_TRUE(loaded.ok());
  auto compiled = rules::compile(*loaded.policy);
  ASSERT_TRUE(compiled.policy);
  dpdk::Options o;
  o.inside = "net_ring_fsi";
  o.outside = "net_ring_fso";
  o.lcores = 1;
  o.table_size = 1024;
  o.rx_desc = 64;
  o.tx_desc = 64;
  o.flow_log = dir / "swap.jsonl";
  o.flow_log_jsonl = true;
  o.flow_log_interval = 3600;
  std::string err;
  std::unique_ptr<dpdk::FlowLogCollector> collector;  // outlives the lcores
  std::unique_ptr<dpdk::Appliance> app = dpdk::Appliance::create(o, compiled.policy, &err);
  ASSERT_TRUE(app) << err;
  ASSERT_TRUE(dpdk::attachFlowLog(o, *app, &collector, &err)) << err;
  control::ControlApi api(app->engine());
  const uint64_t start = static_cast<uint64_t>(std::time(nullptr));
  ASSERT_TRUE(app->start(&err)) << err;

  const rules::IpAddr client = ipAddr("198.51.100.7"), server = ipAddr("10.0.1.10");
  auto tcp = [&](bool from_client, uint8_t flags, uint32_t seq, uint32_t ack, size_t len = 0) {
    return dataplane::buildTcp({.src = from_client ? client : server,
                                .dst = from_client ? server : client,
                                .sport = static_cast<uint16_t>(from_client ? 40000 : 443),
                                .dport = static_cast<uint16_t>(from_client ? 443 : 40000),
                                .flags = flags,
                                .seq = seq,
                                .ack = ack,
                                .payload_len = len});
  };
  uint64_t sent = 0;
  auto send = [&](const Bytes& f) { sendAndWait(*app, pool, in_rx, f, ++sent); };

  using dataplane::kAck;
  using dataplane::kSyn;
  // The connection opens under the first policy.
  send(tcp(true, kSyn, 100, 0));
  send(tcp(false, kSyn | kAck, 900, 101));
  send(tcp(true, kAck, 101, 901));
  collector->poll(app->engine());
  // The change, through the control API.
  const control::ApiResponse put =
      api.handle({"PUT", "/v1/policy?name=after.yaml", "", std::string(kAfter)});
  ASSERT_EQ(put.status, 200) << put.body;
  // Judged by the new policy before the main loop's next round has noticed it: documented as
  // attributed by the previous policy.
  send(dataplane::buildTcp(
      {.src = ipAddr("203.0.113.9"), .dst = server, .sport = 5555, .dport = 22, .flags = kSyn}));
  collector->poll(app->engine());  // the main loop's next round: the collector follows
  // The connection goes on, tracked, under the new policy.
  send(tcp(true, kAck, 101, 901, 50));
  send(tcp(false, kAck, 901, 151));
  collector->poll(app->engine());
  app->requestStop();
  app->stop();
  ASSERT_TRUE(collector->finish(&err)) << err;
  const dpdk::Report r = app->report();
  app->close();
  app.reset();
  EXPECT_EQ(r.io.tx_packets, 5u);
  for (rte_ring* q : {out_tx, in_tx}) {
    rte_mbuf* m;
    while (rte_ring_dequeue(q, reinterpret_cast<void**>(&m)) == 0)
      rte_pktmbuf_free(m);
  }
  EXPECT_EQ(rte_mempool_avail_count(pool), pool->size) << "mbufs leaked";
  if (static_cast<uint64_t>(std::time(nullptr)) / 3600 != start / 3600)
    GTEST_SKIP() << "the run crossed an hour boundary: records split by window";

  // In the order written: what the lcore handed over at the change, then the rest at exit.
  std::vector<std::string> got;
  std::istringstream in(readText(dir / "swap.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    got.push_back(j.value("flow-direction", "?") + " " + j.value("srcaddr", "?") + " " +
                  std::to_string(j.value("packets", 0)) + " " + j.value("action", "?") + " " +
                  j.value("rule", "-") + " " + j.value("reason", "?"));
  }
  const std::vector<std::string> want = {
      // Handed over at the change, named by the first policy: the connection's packets so far,
      // and the probe judged before the collector followed the change.
      "ingress 198.51.100.7 2 ACCEPT web inbound[0] allow-rule",
      "egress 10.0.1.10 1 ACCEPT web inbound[0] allow-tracked",
      "ingress 203.0.113.9 1 REJECT - deny-sg",
      // Under the new policy: the connection tracked across the change, new records of the same
      // window. The rule is the opening rule's position in the first policy named by the new one
      // (docs/deploy.md's known limitation: here the new tcp 80 rule, not the https rule that
      // opened it, now inbound[1]); a fix names "web inbound[1]" and changes these two lines.
      "ingress 198.51.100.7 1 ACCEPT web inbound[0] allow-tracked",
      "egress 10.0.1.10 1 ACCEPT web inbound[0] allow-tracked",
  };
  EXPECT_EQ(got, want) << readText(dir / "swap.jsonl");
  for (rte_ring* q : {in_rx, in_tx, out_rx, out_tx})
    rte_ring_free(q);
  rte_mempool_free(pool);
}

}  // namespace
}  // namespace statewall::dpdk_test
