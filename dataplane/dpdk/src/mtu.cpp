#include "statewall/dpdk/mtu.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "statewall/dpdk/port_lock.hpp"

namespace statewall::dpdk {

uint32_t afPacketFrameSize(uint32_t mtu, uint32_t page) {
  const uint32_t need = mtu + kFrameOverhead + kAfPacketSlotOverhead;
  if (need <= kAfPacketDefaultFrameSize) return kAfPacketDefaultFrameSize;
  return (need + page - 1) / page * page;
}

std::vector<std::string> sizeAfPacketVdevs(const std::vector<std::string>& eal_args, uint32_t mtu,
                                           const std::function<int(const std::string&)>& iface_mtu,
                                           uint32_t page, std::vector<std::string>* notes) {
  std::vector<std::string> out = eal_args;
  for (size_t i = 0; i < out.size(); ++i) {
    // "--vdev=DEV,ARGS" or "--vdev DEV,ARGS"
    std::string* value = nullptr;
    size_t offset = 0;
    if (out[i].rfind("--vdev=", 0) == 0) {
      value = &out[i];
      offset = 7;
    } else if (out[i] == "--vdev" && i + 1 < out.size()) {
      value = &out[++i];
    }
    if (value == nullptr || value->compare(offset, 13, "net_af_packet") != 0) continue;
    const std::string spec = value->substr(offset);
    const size_t comma = spec.find(',');
    const std::string args = comma == std::string::npos ? "" : spec.substr(comma + 1);
    if (!vdevArg(args, "framesz").empty()) continue;  // the operator chose
    const std::string iface = vdevArg(args, "iface");
    int want = static_cast<int>(mtu);
    if (want == 0) want = iface.empty() ? -1 : iface_mtu(iface);
    if (want <= 0) continue;
    const uint32_t frame = afPacketFrameSize(static_cast<uint32_t>(want), page);
    if (frame == kAfPacketDefaultFrameSize) continue;
    std::string extra = "framesz=" + std::to_string(frame);
    if (vdevArg(args, "blocksz").empty()) extra += ",blocksz=" + std::to_string(frame);
    *value += (comma == std::string::npos ? "," : ",") + extra;
    notes->push_back(spec.substr(0, comma) + ": " +
                     (mtu != 0 ? "--mtu " + std::to_string(mtu)
                               : "interface " + iface + " has MTU " + std::to_string(want)) +
                     ": receiving into " + std::to_string(frame) + "-byte af_packet slots (" +
                     extra + "; give framesz= in --vdev to choose)");
  }
  return out;
}

MtuChoice choosePortMtu(const PortMtuLimits ports[2], uint32_t requested) {
  MtuChoice c;
  if (ports[0].af_packet && ports[1].af_packet) return c;
  std::string why;
  auto limit = [&](uint32_t value, const std::string& what) {
    if (value >= c.mtu) return;
    c.mtu = value;
    why = what;
  };
  if (requested != 0) {
    c.mtu = requested;
    why = "--mtu";
  } else {
    c.mtu = kMaxAutoMtu;
    why = "the longest frame the appliance judges whole";
    for (int i = 0; i < 2; ++i) {
      const PortMtuLimits& p = ports[i];
      if (!p.af_packet) {
        limit(p.max_mtu, p.label + "'s device maximum");
        if (p.max_rx_pktlen > kEthOverhead)
          limit(p.max_rx_pktlen - kEthOverhead, p.label + "'s longest receivable frame");
        if (!p.scatter && p.link_mtu <= 0)
          limit(kDefaultMtu, p.label + " cannot chain mbufs and its link's MTU is unknown");
      }
      if (p.link_mtu > 0)
        limit(static_cast<uint32_t>(p.link_mtu), "interface " + p.iface + "'s MTU");
    }
  }
  c.note = "port MTU " + std::to_string(c.mtu) + " (" + why + ")";
  for (int i = 0; i < 2; ++i) {
    const PortMtuLimits& p = ports[i];
    if (p.af_packet || p.link_mtu <= 0 || static_cast<uint32_t>(p.link_mtu) <= c.mtu) continue;
    c.warnings.push_back(p.label + ": interface " + p.iface + " has MTU " +
                         std::to_string(p.link_mtu) + " but the port's MTU is " +
                         std::to_string(c.mtu) + " (" + why +
                         "): longer frames are dropped by the device; lower the interface's MTU" +
                         (requested != 0 ? " or raise --mtu"
                                         : " or give --mtu (a device that cannot chain mbufs then "
                                           "gets larger ones)"));
  }
  return c;
}

int interfaceMtu(const std::string& iface) {
  if (iface.empty() || iface.size() >= IFNAMSIZ) return -1;
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, iface.data(), iface.size());
  const int rc = ::ioctl(s, SIOCGIFMTU, &ifr);
  ::close(s);
  return rc == 0 ? ifr.ifr_mtu : -1;
}

bool frameCutShort(const uint8_t* f, uint32_t len) {
  uint32_t off = 12;
  for (int tags = 0; tags < 2 && len >= off + 2; ++tags) {
    const uint16_t type = static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
    if (type != 0x8100 && type != 0x88a8) break;
    off += 4;
  }
  if (len < off + 2) return false;
  const uint16_t type = static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
  const uint32_t l3 = off + 2;
  if (type == 0x0800 && len >= l3 + 4)
    return l3 + (static_cast<uint32_t>(f[l3 + 2]) << 8 | f[l3 + 3]) > len;
  if (type == 0x86dd && len >= l3 + 6)
    return l3 + 40 + (static_cast<uint32_t>(f[l3 + 4]) << 8 | f[l3 + 5]) > len;
  return false;
}

}  // namespace statewall::dpdk
