// pcap files in and out for the statewalld tests (through sim's libpcap reader and writer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "statewall/sim/pcap_io.hpp"

namespace statewall::dpdk_test {

using Frame = std::vector<uint8_t>;

// The generator's default servers are 10.0.1.10 and 2001:db8:1::10, its clients 198.51.100.0/24
// and 2001:db8:ff00::/64, its ports tcp 443/80 and udp 53/123. This policy allows some of each
// and denies the rest; with no outbound rules, replies pass only by tracking.
inline constexpr const char* kGeneratorPolicy = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
      - {proto: udp, ports: 53, from: 198.51.100.0/25}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 0.0.0.0/0}
    outbound: []
interfaces:
  web-1: {addresses: [10.0.1.10, "2001:db8:1::10"], groups: [web]}
)";

// Frames of a pcap file, in order (bytes as captured).
inline std::vector<Frame> readPcap(const std::string& path) {
  std::vector<Frame> frames;
  sim::TraceError err;
  auto r = sim::TraceReader::open(path, &err);
  if (!r) {
    ADD_FAILURE() << "cannot read " << path << ": " << err.str();
    return frames;
  }
  sim::TracePacket p;
  while (r->next(&p) == sim::TraceReader::Status::kPacket)
    frames.emplace_back(p.data, p.data + p.caplen);
  return frames;
}

// Writes frames to an Ethernet pcap, 1 ms apart from `start_ns`.
inline void writePcap(const std::string& path, const std::vector<Frame>& frames,
                      uint64_t start_ns = 1700000000ull * 1000000000ull) {
  auto w_opened = sim::PcapWriter::open(path, 1 /* DLT_EN10MB */, 262144, true);
  ASSERT_TRUE(w_opened) << w_opened.message();
  auto w = std::move(*w_opened);
  uint64_t ts = start_ns;
  for (const Frame& f : frames) {
    w->write(ts, f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
    ts += 1000000;
  }
  ASSERT_EQ(w->close().message(), "");
}

}  // namespace statewall::dpdk_test
