// Jumbo frames: sizing af_packet rings for the interfaces' MTU, and telling a frame the kernel cut
// short from a whole one. No DPDK here: tested without an EAL.
//
// af_packet copies each received frame into a ring slot of `framesz` bytes (default 2048); a
// longer frame arrives cut to what the slot holds, and its IP header then claims more bytes than
// the frame has. statewalld therefore adds framesz=/blocksz= to an af_packet --vdev that has
// none when the interface's MTU (or --mtu) needs larger slots, and counts frames that still
// arrive cut short as oversize (never as a policy verdict).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace statewall::dpdk {

inline constexpr uint32_t kAfPacketDefaultFrameSize = 2048;
// Bytes of a ring slot before the frame: the TPACKET_V2 header and sockaddr_ll, aligned (the
// kernel puts an Ethernet header at offset 66); 96 leaves room for the alignment of other
// link layers. A frame this much shorter than the slot is certainly whole.
inline constexpr uint32_t kAfPacketSlotOverhead = 96;
// Ethernet header, one VLAN tag and the FCS beyond the MTU.
inline constexpr uint32_t kFrameOverhead = 22;
// What DPDK adds to an MTU to compare it with a device's max_rx_pktlen: Ethernet header and FCS.
inline constexpr uint32_t kEthOverhead = 18;
// The longest frame the appliance judges whole (its lcores linearise chained mbufs into slots of
// this size), and so the largest port MTU it chooses by itself.
inline constexpr uint32_t kMaxJudgedFrame = 16 * 1024;
inline constexpr uint32_t kMaxAutoMtu = kMaxJudgedFrame - kFrameOverhead;
inline constexpr uint32_t kDefaultMtu = 1500;

// What one port's device and link allow: its rte_eth_dev_info, and the kernel interface its
// --vdev names (iface=), if any.
struct PortMtuLimits {
  std::string label;           // "inside port net_pcap0 (port 0)"
  bool af_packet = false;      // sized by its ring slots instead (sizeAfPacketVdevs)
  uint32_t max_mtu = 0;        // rte_eth_dev_info::max_mtu
  uint32_t max_rx_pktlen = 0;  // rte_eth_dev_info::max_rx_pktlen (a whole frame)
  bool scatter = false;        // can receive a frame into chained mbufs
  std::string iface;           // the kernel interface behind the port; empty: none known
  int link_mtu = -1;           // its MTU; -1 unknown
};

struct MtuChoice {
  uint32_t mtu = 0;  // for both ports (those that are not af_packet); 0: none to set
  std::string note;  // how it was chosen, for the startup log
  std::vector<std::string> warnings;  // an interface MTU over the port's
};

// The MTU of both ports. `requested` is --mtu (0: not given). Without it: the largest both
// devices accept (max_mtu, max_rx_pktlen), at most kMaxAutoMtu, at most each known link's MTU
// (a frame must fit both links to cross), and at most kDefaultMtu for a device that cannot chain
// mbufs behind an unknown link (its mbufs would have to grow to the device's maximum for frames
// that may never come; --mtu asks for that). A warning names each interface whose MTU exceeds
// the chosen one: its longer frames are dropped by the device.
MtuChoice choosePortMtu(const PortMtuLimits ports[2], uint32_t requested);

// The slot size (a multiple of `page`, at least the default) that holds a frame of `mtu` bytes of
// IP.
uint32_t afPacketFrameSize(uint32_t mtu, uint32_t page);

// The EAL arguments with framesz=N,blocksz=N added to each net_af_packet --vdev that names no
// framesz and whose interface needs slots over the default: for `mtu` bytes when nonzero (--mtu),
// else for the interface's MTU as `iface_mtu` reads it (-1: unknown, left alone). Each change is
// described in *notes.
std::vector<std::string> sizeAfPacketVdevs(const std::vector<std::string>& eal_args, uint32_t mtu,
                                           const std::function<int(const std::string&)>& iface_mtu,
                                           uint32_t page, std::vector<std::string>* notes);

// The MTU of a kernel network interface, -1 when it cannot be read.
int interfaceMtu(const std::string& iface);

// True when `frame` (`len` bytes as received) is an IPv4 or IPv6 packet (after at most two VLAN
// tags) whose header claims more bytes than the frame holds: cut short on the way in.
bool frameCutShort(const uint8_t* frame, uint32_t len);

}  // namespace statewall::dpdk
