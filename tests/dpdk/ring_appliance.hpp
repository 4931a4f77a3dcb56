// For the tests that run statewalld's Appliance in-process on net_ring ports: EAL set up once per
// test program, and a frame handed to an rx ring and waited for.
#pragma once

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dpdk_test_util.hpp"
#include "statewall/dpdk/appliance.hpp"

namespace statewall::dpdk_test {

// EAL for the whole program: `lcores` worker lcores, no hugepages, no PCI. Register it once
// with ::testing::AddGlobalTestEnvironment(new RingEal(...)); tests check RingEal::ok.
class RingEal : public ::testing::Environment {
 public:
  RingEal(unsigned lcores, std::string tag, std::string program)
      : lcores_(lcores), tag_(std::move(tag)), program_(std::move(program)) {}
  void SetUp() override {
    args_ = {program_};
    for (const std::string& a : ealArgs(lcores_, tag_))
      args_.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args_)
      argv.push_back(a.data());
    ok = rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
  }
  void TearDown() override {
    if (ok) rte_eal_cleanup();
  }
  static inline bool ok = false;

 private:
  unsigned lcores_;
  std::string tag_, program_;
  std::vector<std::string> args_;
};

// Copies `frame` into an mbuf from `pool`, enqueues it on `rx` and waits (bounded) until the
// appliance's lcores have handled `handled` packets in all (their rx counter is updated once a
// burst was sent or freed). A gtest failure when it cannot.
inline void sendAndWait(dpdk::Appliance& app, rte_mempool* pool, rte_ring* rx,
                        const std::vector<uint8_t>& frame, uint64_t handled) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  ASSERT_NE(m, nullptr);
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
              frame.size());
  ASSERT_EQ(rte_ring_enqueue(rx, m), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (app.report().io.rx_packets < handled && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(app.report().io.rx_packets, handled) << "packet " << handled << " not handled";
}

}  // namespace statewall::dpdk_test
