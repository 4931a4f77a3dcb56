// Seeded random scenarios for the differential test against the kernel: a policy (YAML, security
// groups only, no all-addresses peers so that no flow is untracked) for the lab's addresses, and a
// packet sequence: random interleavings of TCP conversations (handshakes, data, retransmissions,
// out-of-window segments, bad ACKs, RSTs, FINs, odd flag combinations, reopening SYNs, packets
// after the close), UDP exchanges, ICMP echo queries (and replies in the wrong direction), ICMP
// errors about earlier packets (towards their sender or not, from the host or a router on the
// path), and idle gaps longer than every timeout. The same seed gives the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernel_lab.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::kerneltest {

// What a packet is, for the known-differences table and the printed sequences.
enum class Kind : uint8_t {
  kGap,
  kSyn,
  kSynAck,
  kAck,
  kData,
  kFin,
  kRst,
  kOddFlags,
  kUdp,
  kEchoRequest,
  kEchoReply,
  kIcmpError,
};

struct Item {
  Kind kind = Kind::kGap;
  Side side = kClient;     // the namespace that sends it
  dataplane::Bytes frame;  // Ethernet; MACs and IPv4 id are set when injected
  int flow = -1;           // the generator's flow (ICMP errors: the quoted packet's flow)
  bool from_originator = true;
  bool error_to_sender = true;  // ICMP errors: sent to the quoted packet's source
  Kind quoted = Kind::kGap;     // ICMP errors: what the quoted packet is
  bool quoted_from_originator = true;
  std::string what;  // one line for people, e.g. "tcp 192.0.2.10:40001 > 198.51.100.10:80 S seq=0"
};

struct Scenario {
  std::string policy_yaml;
  std::vector<Item> items;
};

// `timeout_s`: every conntrack timeout of the policy; a gap lasts longer than it.
Scenario generate(uint64_t seed, uint32_t timeout_s);

}  // namespace statewall::kerneltest
