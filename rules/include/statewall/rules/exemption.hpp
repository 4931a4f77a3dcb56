// Traffic that security groups and network ACLs do not filter (docs/design.md "Exempt traffic"):
// the closed set of exemptions a verdict `allow-exempt` names, generated from one table so that
// names and texts cannot drift apart.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "statewall/rules/ip.hpp"

namespace statewall::rules {

// X(enumerator, name, words): `name` is the code outputs print, `words` the phrase explanations
// use.
#define STATEWALL_EXEMPTIONS(X)                                              \
  X(kNone, "none", "no exemption")                                           \
  X(kArp, "arp", "ARP")                                                      \
  X(kNeighbourDiscovery, "neighbour-discovery", "IPv6 neighbour discovery")  \
  X(kInstanceMetadata, "instance-metadata", "the instance metadata service") \
  X(kAmazonDns, "amazon-dns", "the Amazon DNS server")                       \
  X(kTimeSync, "time-sync", "the Amazon Time Sync Service")                  \
  X(kDhcp, "dhcp", "DHCP")

enum class Exemption : uint8_t {
#define STATEWALL_EXEMPTION_ENUM(e, name, words) e,
  STATEWALL_EXEMPTIONS(STATEWALL_EXEMPTION_ENUM)
#undef STATEWALL_EXEMPTION_ENUM
};

inline constexpr size_t kExemptionCount = 0
#define STATEWALL_EXEMPTION_COUNT(e, name, words) +1
    STATEWALL_EXEMPTIONS(STATEWALL_EXEMPTION_COUNT)
#undef STATEWALL_EXEMPTION_COUNT
    ;

inline constexpr std::array<std::string_view, kExemptionCount> kExemptionNames = {
#define STATEWALL_EXEMPTION_NAME(e, name, words) name,
    STATEWALL_EXEMPTIONS(STATEWALL_EXEMPTION_NAME)
#undef STATEWALL_EXEMPTION_NAME
};

inline constexpr std::array<std::string_view, kExemptionCount> kExemptionWords = {
#define STATEWALL_EXEMPTION_WORDS(e, name, words) words,
    STATEWALL_EXEMPTIONS(STATEWALL_EXEMPTION_WORDS)
#undef STATEWALL_EXEMPTION_WORDS
};

constexpr std::string_view exemptionName(Exemption e) {
  return kExemptionNames[static_cast<size_t>(e)];
}
constexpr std::string_view exemptionWords(Exemption e) {
  return kExemptionWords[static_cast<size_t>(e)];
}

// The well-known addresses of the VPC's own services (AWS documentation; docs/design.md): each VPC
// CIDR's base + 2 is an Amazon DNS address too.
inline constexpr uint32_t kInstanceMetadataV4 = 0xA9FEA9FE;             // 169.254.169.254
inline constexpr uint32_t kAmazonDnsV4 = 0xA9FEA9FD;                    // 169.254.169.253
inline constexpr uint32_t kTimeSyncV4 = 0xA9FEA97B;                     // 169.254.169.123
inline constexpr uint64_t kAwsServicesV6Hi = 0xFD00'0EC2'0000'0000ull;  // fd00:ec2::/64
inline constexpr uint64_t kInstanceMetadataV6Lo = 0x254;                // fd00:ec2::254
inline constexpr uint64_t kAmazonDnsV6Lo = 0x253;                       // fd00:ec2::253
inline constexpr uint64_t kTimeSyncV6Lo = 0x123;                        // fd00:ec2::123
inline constexpr uint16_t kDhcpServerPort = 67;
inline constexpr uint16_t kDhcpClientPort = 68;

// Base + 2 of a VPC CIDR: its Amazon DNS address. The CIDR must hold it (a loader checks that:
// at most /30 or /126), so adding to the low word never carries.
constexpr IpAddr vpcDnsAddress(const Cidr& c) {
  IpAddr a = c.addr;
  a.lo += 2;
  return a;
}

}  // namespace statewall::rules
