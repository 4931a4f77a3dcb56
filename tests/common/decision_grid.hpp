// The grid of flows over which two forms of one policy (YAML, AWS JSON, a Terraform plan) must
// decide alike: every interface address of `policy`, a few outside addresses, five protocols and
// seven interesting ports, each source to each other destination of its family. The one copy;
// each test compares the decisions in its own terms.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"

namespace statewall::testing {

// Calls check(flow) for every flow of the grid, in a fixed order; source ports are drawn from a
// generator seeded with `seed`. Stops early when check() records a fatal failure (ASSERT_*).
// Returns how many flows were checked.
template <class Check>
size_t forEachGridFlow(const rules::CompiledPolicy& policy, uint32_t seed, Check&& check) {
  std::vector<rules::IpAddr> addrs;
  for (size_t i = 0; i < policy.ifaceCount(); ++i)
    for (const rules::IpAddr& a : policy.iface(static_cast<rules::IfaceId>(i)).addresses)
      addrs.push_back(a);
  for (const char* a : {"198.51.100.7", "192.0.2.5", "203.0.113.9", "10.0.1.99", "2001:db8::1",
                        "2001:db8:1::99", "8.8.8.8"})
    addrs.push_back(*rules::IpAddr::parse(a));
  std::mt19937 rng(seed);
  const uint16_t ports[] = {22, 80, 443, 800, 5432, 8080, 40000};
  const uint8_t protos[] = {rules::kProtoTcp, rules::kProtoUdp, rules::kProtoIcmp,
                            rules::kProtoIcmpV6, 47};
  size_t n = 0;
  for (const rules::IpAddr& src : addrs) {
    for (const rules::IpAddr& dst : addrs) {
      if (src.family != dst.family || src == dst) continue;
      for (uint8_t proto : protos) {
        for (uint16_t port : ports) {
          rules::Flow5 f;
          f.proto = proto;
          f.src = src;
          f.dst = dst;
          f.sport = static_cast<uint16_t>(1024 + rng() % 60000);
          f.dport = port;
          f.icmp_type = proto == rules::kProtoIcmp ? 8 : 128;
          check(f);
          ++n;
          if (::testing::Test::HasFatalFailure()) return n;
        }
      }
    }
  }
  return n;
}

}  // namespace statewall::testing
