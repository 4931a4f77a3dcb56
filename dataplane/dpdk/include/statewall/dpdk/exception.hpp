// The exception path of Gateway Load Balancer mode (statewalld --gwlb --exception-tap NAME;
// docs/deploy-gwlb.md "The exception path"): what is not GENEVE but is the appliance's own
// traffic (ARP for its address, ICMP to it, the load balancer's TCP or HTTP health checks) goes to
// the Linux stack through a DPDK net_tap port whose kernel interface carries the port's MAC and
// --address; the kernel's replies, read back from that port, go out of the GWLB port.
//
// The choice of frames is here, without DPDK types, so that it is tested without an EAL; the
// port itself is dataplane/dpdk/src/exception_port.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "statewall/rules/ip.hpp"

namespace statewall::dpdk {

// The kernel interface's name when --exception-tap is given without one.
inline constexpr const char* kDefaultExceptionTap = "statewall0";

// --address IP[/LEN]: the appliance's address on the GWLB port and, for the exception tap, the
// length of the subnet's prefix (the kernel's on-link route); a bare address is a host prefix
// (/32, /128).
struct GwlbAddress {
  rules::IpAddr ip{};
  uint8_t prefix = 32;
};
std::optional<GwlbAddress> parseGwlbAddress(std::string_view text);

// True when a frame of the GWLB port that gwlbClassify() called kNotGeneve belongs to the kernel
// behind the exception tap: an untagged ARP packet whose target is `address`, an untagged IPv4 or
// IPv6 packet to `address` (ICMP, TCP, UDP to ports other than GENEVE's), or an ICMPv6 neighbour
// solicitation to `address`'s solicited-node multicast group. Anything else (other addresses,
// VLAN tags, broadcasts not for us) stays dropped. Thread-safe; reads only data[0, len).
bool gwlbForKernel(const uint8_t* data, uint32_t len, const rules::IpAddr& address) noexcept;

}  // namespace statewall::dpdk
