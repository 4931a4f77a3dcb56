#include "statewall/dpdk/exception.hpp"

#include <charconv>

#include "statewall/dataplane/packet.hpp"

namespace statewall::dpdk {

std::optional<GwlbAddress> parseGwlbAddress(std::string_view text) {
  GwlbAddress a;
  const size_t slash = text.find('/');
  const std::optional<rules::IpAddr> ip = rules::IpAddr::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  a.ip = *ip;
  const unsigned max = ip->isV4() ? 32 : 128;
  a.prefix = static_cast<uint8_t>(max);
  if (slash == std::string_view::npos) return a;
  const std::string_view len = text.substr(slash + 1);
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
  if (len.empty() || ec != std::errc() || end != len.data() + len.size() || v > max)
    return std::nullopt;
  a.prefix = static_cast<uint8_t>(v);
  return a;
}

bool gwlbForKernel(const uint8_t* data, uint32_t len, const rules::IpAddr& address) noexcept {
  dataplane::ParsedPacket p;
  dataplane::parsePacket(data, len, dataplane::LinkType::kEthernet, &p);
  // The tap is an untagged interface: the kernel would drop a tagged frame.
  if (p.vlan_count != 0) return false;
  switch (p.l3) {
    case dataplane::L3::kArp:
    case dataplane::L3::kIpv4:
      // ARP: the target protocol address.
      return p.dst == address;
    case dataplane::L3::kIpv6: {
      if (p.dst == address) return true;
      // A neighbour solicitation for our address goes to its solicited-node multicast group,
      // ff02::1:ffXX:XXXX with the address's low 24 bits.
      if (address.isV4() || p.proto != dataplane::kIpProtoIcmpv6 || p.icmp_type != 135)
        return false;
      const rules::IpAddr group =
          rules::IpAddr::v6(0xff02000000000000ull, 0x00000001ff000000ull | (address.lo & 0xffffff));
      return p.dst == group;
    }
    default:
      return false;
  }
}

}  // namespace statewall::dpdk
