// statewalld --gwlb on two forwarding lcores (docs/deploy-gwlb.md, "Several lcores"): RSS on the
// outer header may put the two directions of an inner flow on different rx queues, hence on
// different lcores; the shared connection table keeps them one connection. The Appliance of
// statewalld on an in-process net_ring port with two rx queues (lcore i polls queue i): the
// client's packets go into queue 0, the server's into queue 1, one at a time, each after the
// lcores have counted the one before, so the order between the lcores is the test's.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dpdk_test_util.hpp"
#include "ring_appliance.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dpdk/appliance.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::dpdk_test {
namespace {

using dataplane::Bytes;
using dataplane::ipAddr;

[[maybe_unused]] ::testing::Environment* const kEal =
    ::testing::AddGlobalTestEnvironment(new RingEal(2, "gl", "test_dpdk_gwlb_lcores"));

// The protected client may open TCP 443 connections out; nothing may come in but replies.
constexpr const char* kPolicy = R"(version: 1
groups:
  client:
    inbound: []
    outbound: [{proto: tcp, ports: 443, to: 198.51.100.0/24}]
interfaces:
  client-1: {addresses: [10.0.1.10], groups: [client]}
)";

const rules::IpAddr kClient = ipAddr("10.0.1.10");
const rules::IpAddr kServer = ipAddr("198.51.100.7");

// GENEVE from a load balancer node to the appliance (10.9.0.5) with AWS's flow cookie option
// (class 0x0108, type 3).
dataplane::FrameOptions geneve() {
  dataplane::FrameOptions f;
  f.src_mac = {0x02, 0xaa, 0, 0, 0, 0x01};
  f.dst_mac = {0x02, 0xbb, 0, 0, 0, 0x05};
  dataplane::TunnelSpec t;
  t.kind = dataplane::EncapHeader::Kind::kGeneve;
  t.outer_src = ipAddr("10.9.0.1");
  t.outer_dst = ipAddr("10.9.0.5");
  t.sport = 61234;
  t.geneve_ip = true;
  t.geneve_options = {0x01, 0x08, 0x03, 0x01, 0xc0, 0x0c, 0x1e, 0x5e};
  f.tunnels.push_back(t);
  return f;
}

// The frame the load balancer gets back: Ethernet and outer IPv4 addresses swapped.
Bytes swapped(Bytes f) {
  for (int i = 0; i < 6; ++i)
    std::swap(f[i], f[6 + i]);
  for (int i = 0; i < 4; ++i)
    std::swap(f[26 + i], f[30 + i]);
  return f;
}

TEST(GwlbLcores, BothDirectionsOnDifferentLcoresAreOneConnection) {
  ASSERT_TRUE(RingEal::ok) << "EAL did not initialise";
  const int socket = static_cast<int>(rte_socket_id());
  rte_ring* rx[2];
  rte_ring* tx[2];
  for (int q = 0; q < 2; ++q) {
    rx[q] = rte_ring_create(("gl_rx" + std::to_string(q)).c_str(), 64, socket,
                            RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx[q] = rte_ring_create(("gl_tx" + std::to_string(q)).c_str(), 64, socket,
                            RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_NE(rx[q], nullptr) << rte_strerror(rte_errno);
    ASSERT_NE(tx[q], nullptr) << rte_strerror(rte_errno);
  }
  ASSERT_GE(rte_eth_from_rings("gl", rx, 2, tx, 2, static_cast<unsigned>(socket)), 0)
      << rte_strerror(rte_errno);
  rte_mempool* pool =
      rte_pktmbuf_pool_create("gl_pkts", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  ASSERT_NE(pool, nullptr) << rte_strerror(rte_errno);

  auto loaded = rules::loadPolicyTexts({{"policy.yaml", kPolicy}});
  ASSERT_TRUE(loaded.ok());
  auto compiled = rules::compile(*loaded.policy);
  ASSERT_TRUE(compiled.policy);
  dpdk::Options o;
  o.gwlb = true;
  o.port = "net_ring_gl";
  o.address = "10.9.0.5";
  o.lcores = 2;
  o.table_size = 1024;
  o.rx_desc = 64;
  o.tx_desc = 64;
  std::string err;
  std::unique_ptr<dpdk::Appliance> app = dpdk::Appliance::create(o, compiled.policy, &err);
  ASSERT_TRUE(app) << err;
  ASSERT_TRUE(app->start(&err)) << err;

  const Bytes syn = dataplane::buildTcp({.src = kClient,
                                         .dst = kServer,
                                         .sport = 40100,
                                         .dport = 443,
                                         .flags = dataplane::kSyn,
                                         .seq = 100},
                                        geneve());
  const Bytes synack = dataplane::buildTcp({.src = kServer,
                                            .dst = kClient,
                                            .sport = 443,
                                            .dport = 40100,
                                            .flags = dataplane::kSyn | dataplane::kAck,
                                            .seq = 7000,
                                            .ack = 101},
                                           geneve());
  const Bytes ack = dataplane::buildTcp({.src = kClient,
                                         .dst = kServer,
                                         .sport = 40100,
                                         .dport = 443,
                                         .flags = dataplane::kAck,
                                         .seq = 101,
                                         .ack = 7001,
                                         .payload_len = 100},
                                        geneve());
  // Not a reply: the server opening a connection to the client.
  const Bytes unsolicited = dataplane::buildTcp({.src = kServer,
                                                 .dst = kClient,
                                                 .sport = 443,
                                                 .dport = 40101,
                                                 .flags = dataplane::kSyn,
                                                 .seq = 9000},
                                                geneve());
  const std::pair<int, const Bytes*> order[] = {
      {0, &syn}, {1, &synack}, {0, &ack}, {1, &unsolicited}};
  uint64_t sent = 0;
  for (const auto& [q, f] : order) {
    sendAndWait(*app, pool, rx[q], *f, ++sent);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  app->requestStop();
  app->stop();
  const dpdk::Report r = app->report();
  app->close();
  app.reset();

  auto drain = [](rte_ring* ring) {
    std::vector<Bytes> out;
    rte_mbuf* m;
    while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) {
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.emplace_back(d, d + m->data_len);
      rte_pktmbuf_free(m);
    }
    return out;
  };
  const std::vector<Bytes> out0 = drain(tx[0]), out1 = drain(tx[1]);
  // Each lcore received its queue's two packets and sent back what was allowed on its own queue.
  ASSERT_EQ(r.lcores.size(), 2u);
  EXPECT_EQ(r.lcores[0].rx_packets, 2u);
  EXPECT_EQ(r.lcores[1].rx_packets, 2u);
  ASSERT_EQ(out0.size(), 2u);
  ASSERT_EQ(out1.size(), 1u) << "the SYN-ACK on the other lcore was not taken as a reply";
  EXPECT_TRUE(out0[0] == swapped(syn));
  EXPECT_TRUE(out1[0] == swapped(synack));
  EXPECT_TRUE(out0[1] == swapped(ack));
  // One connection, created by the SYN, found by the SYN-ACK on the other lcore; the
  // unsolicited SYN denied.
  EXPECT_EQ(r.connections_created, 1u);
  EXPECT_EQ(r.connections_live, 1u);
  using dataplane::Reason;
  EXPECT_EQ(r.reason_packets[static_cast<size_t>(Reason::kAllowRule)], 1u);
  EXPECT_EQ(r.reason_packets[static_cast<size_t>(Reason::kAllowTracked)], 2u);
  EXPECT_EQ(r.reason_packets[static_cast<size_t>(Reason::kDenySg)], 1u);
  for (rte_ring* q : {rx[0], rx[1], tx[0], tx[1]})
    rte_ring_free(q);
  EXPECT_EQ(rte_mempool_avail_count(pool), pool->size) << "mbufs leaked";
  rte_mempool_free(pool);
}

}  // namespace
}  // namespace statewall::dpdk_test
