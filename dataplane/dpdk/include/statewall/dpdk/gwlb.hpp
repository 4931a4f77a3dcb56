// Gateway Load Balancer mode (statewalld --gwlb; docs/deploy-gwlb.md): one port, GENEVE in and
// out. AWS's Gateway Load Balancer sends each packet of the flows it balances to an appliance in
// GENEVE (UDP port 6081, RFC 8926) with its own options (class 0x0108: the endpoint id, the
// attachment id, the flow cookie). The appliance judges the *inner* packet with the policy and
// returns what it allows to the load balancer node it came from: the outer IP addresses (and
// MAC addresses) swapped, the UDP ports, the GENEVE header and every option byte unchanged. It
// drops what the policy denies.
//
// The frame is read by the engine's one parser (dataplane/include/statewall/dataplane/packet.hpp:
// parsePacket() for the outer packet, findInnerPacket() for the GENEVE header); nothing here
// reads a header the parser has not checked, but for gwlbClassify()'s fast path for the frame
// nearly all traffic is, which makes the parser's checks itself and is tested against it. No
// DPDK types here: the classification and the rewrite are tested without an EAL.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::dpdk {

inline constexpr uint16_t kGenevePort = 6081;
// AWS's GENEVE option class (the load balancer endpoint id is type 1, 8 bytes; the attachment id
// type 2, 8 bytes; the flow cookie type 3, 4 bytes). statewalld returns the options as received,
// so it needs to know none of them; the tests build frames with them.
inline constexpr uint16_t kAwsGeneveOptionClass = 0x0108;

// What a frame received in GWLB mode is.
enum class GwlbFrame : uint8_t {
  kGeneve,     // a GENEVE packet to our address: its inner packet goes to the engine
  kMalformed,  // UDP to our address's port 6081 that is not a well-formed GENEVE packet
  kNotGeneve,  // anything else: ARP, ICMP to us, health checks (the exception path's; see
               // exception.hpp), traffic for other addresses
};

// Where the outer header lies, for returning the frame (gwlbReturnFrame()).
struct GwlbOuter {
  uint16_t l3_offset = 0;  // the outer IP header (after the Ethernet header and any VLAN tags)
  bool v6 = false;
};

// Judges a frame of the one port. kGeneve: *inner is the packet inside the GENEVE header (raw IP,
// bounded by the outer UDP payload) and *outer says where the outer IP header is. kMalformed:
// *why says what is wrong (a static string). `parse` must decapsulate GENEVE on 6081
// (gwlbParseOptions()). Thread-safe; reads only data[0, len).
GwlbFrame gwlbClassify(const uint8_t* data, uint32_t len, const rules::IpAddr& address,
                       const dataplane::ParseOptions& parse, dataplane::PacketRef* inner,
                       GwlbOuter* outer, const char** why) noexcept;
// gwlbClassify() without its fast path for Ethernet/IPv4/UDP/GENEVE frames: the same result for
// every frame (tests/dpdk/gwlb_test.cpp compares the two). For tests, and for the frames the fast
// path does not take.
GwlbFrame gwlbClassifyGeneral(const uint8_t* data, uint32_t len, const rules::IpAddr& address,
                              const dataplane::ParseOptions& parse, dataplane::PacketRef* inner,
                              GwlbOuter* outer, const char** why) noexcept;

// The parse options gwlbClassify() wants: GENEVE on UDP 6081, and nothing else, decapsulated.
dataplane::ParseOptions gwlbParseOptions();

namespace detail {
// Swaps the N-byte fields at a and b: fixed sizes, a few register moves and no library call.
template <size_t N>
inline void swapBytes(uint8_t* a, uint8_t* b) noexcept {
  uint8_t x[N], y[N];
  std::memcpy(x, a, N);
  std::memcpy(y, b, N);
  std::memcpy(a, y, N);
  std::memcpy(b, x, N);
}
}  // namespace detail

// Turns a frame gwlbClassify() accepted into the frame the load balancer expects back: Ethernet
// source and destination swapped, outer IP source and destination swapped. Nothing else changes:
// the IPv4 header checksum and the UDP checksum stay valid (both sums are the same with the
// addresses swapped), the UDP ports, the GENEVE header and its options stay byte for byte.
// `frame` must hold the outer headers (outer.l3_offset + 40 bytes for IPv6, + 20 for IPv4). Inline:
// it runs on every returned frame.
inline void gwlbReturnFrame(uint8_t* frame, const GwlbOuter& outer) noexcept {
  detail::swapBytes<6>(frame, frame + 6);
  // IPv4: source at 12, destination at 16; IPv6: at 8 and 24.
  uint8_t* ip = frame + outer.l3_offset;
  if (outer.v6) {
    detail::swapBytes<16>(ip + 8, ip + 24);
  } else {
    detail::swapBytes<4>(ip + 12, ip + 16);
  }
}

// One forwarding lcore's GWLB counters; written only by that lcore, read by any thread.
struct alignas(64) GwlbCounters {
  std::atomic<uint64_t> geneve{0};     // GENEVE frames to our address, judged on their inner packet
  std::atomic<uint64_t> returned{0};   // of those, allowed and handed back to the port
  std::atomic<uint64_t> malformed{0};  // UDP 6081 to our address that is not well-formed GENEVE
  std::atomic<uint64_t> not_geneve{0};  // everything else but what goes to the kernel: dropped
  // --exception-tap (exception.hpp): frames written into the tap for the kernel, the kernel's
  // frames sent out of the port, and frames either way lost to a full ring or queue.
  std::atomic<uint64_t> to_kernel{0};
  std::atomic<uint64_t> from_kernel{0};
  std::atomic<uint64_t> kernel_dropped{0};

  static void add(std::atomic<uint64_t>& c, uint64_t v) {
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
};

// A plain snapshot of GwlbCounters (or their sum).
struct GwlbStats {
  uint64_t geneve = 0, returned = 0, malformed = 0, not_geneve = 0;
  uint64_t to_kernel = 0, from_kernel = 0, kernel_dropped = 0;

  static GwlbStats snapshot(const GwlbCounters& c);
  GwlbStats& operator+=(const GwlbStats& o);
};

// "gwlb: geneve 10, returned 8, malformed 1, not geneve 3 (dropped); to kernel 5, from kernel 4,
// kernel dropped 0" for the final report.
std::string formatGwlbStats(const GwlbStats& s);

}  // namespace statewall::dpdk
