#include "exception_port.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "port.hpp"
#include "statewall/dataplane/engine.hpp"

namespace statewall::dpdk {
namespace {

// The net_tap device's name in DPDK (the vdev bus picks the driver by this prefix).
constexpr const char* kTapDevice = "net_tap_exception";
// The tap's ring sizes: the exception traffic is a trickle.
constexpr uint16_t kTapDesc = 512;

std::string errnoText(int e) {
  return std::strerror(e < 0 ? -e : e);
}

// The ioctl(2) argument of SIOCSIFADDR on an AF_INET6 socket (the kernel's struct in6_ifreq,
// linux/ipv6.h, which does not mix with glibc's netinet/in.h).
struct In6Ifreq {
  in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

// Gives the kernel interface `iface` the address: ioctl(2), as ifconfig does, so that no netlink
// library is needed. "" on success, else what failed.
std::string setKernelAddress(const std::string& iface, const GwlbAddress& a) {
  if (a.ip.isV4()) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket: ") + std::strerror(errno);
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, iface.c_str(), iface.size());
    auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(a.ip.v4());
    std::string err;
    if (::ioctl(fd, SIOCSIFADDR, &ifr) != 0) {
      err = std::string("SIOCSIFADDR: ") + std::strerror(errno);
    } else {
      const uint32_t mask = a.prefix == 0 ? 0 : ~uint32_t{0} << (32 - a.prefix);
      sin->sin_addr.s_addr = htonl(mask);
      if (::ioctl(fd, SIOCSIFNETMASK, &ifr) != 0)
        err = std::string("SIOCSIFNETMASK: ") + std::strerror(errno);
    }
    ::close(fd);
    return err;
  }
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket(AF_INET6): ") + std::strerror(errno);
  In6Ifreq r{};
  a.ip.toV6Bytes(r.addr.s6_addr);
  r.prefixlen = a.prefix;
  r.ifindex = static_cast<int>(::if_nametoindex(iface.c_str()));
  std::string err;
  if (::ioctl(fd, SIOCSIFADDR, &r) != 0) err = std::string("SIOCSIFADDR: ") + std::strerror(errno);
  ::close(fd);
  return err;
}

// An IPv4 kernel interface need not speak IPv6: with it on, the kernel would send router
// solicitations and MLD reports out of the GWLB port. Best effort (no IPv6 in the kernel: nothing
// to turn off).
void disableIpv6(const std::string& iface) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + iface + "/disable_ipv6";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (::write(fd, "1", 1) != 1) {
    // The interface keeps IPv6: its noise is dropped by the load balancer, nothing breaks.
  }
  ::close(fd);
}

std::string macText(const rte_ether_addr& m) {
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof buf, &m);
  return buf;
}

}  // namespace

ExceptionPort::~ExceptionPort() {
  if (configured_ && !closed_) {
    stop();
    close();
  }
}

std::unique_ptr<ExceptionPort> ExceptionPort::create(const std::string& iface, uint16_t gwlb_port,
                                                     uint32_t mtu, const GwlbAddress& address,
                                                     unsigned lcores, std::string* error) {
  const std::string what = "--exception-tap " + iface + ": ";
  if (::if_nametoindex(iface.c_str()) != 0) {
    *error = what +
             "a network interface of that name exists already; choose another name (a tap left "
             "by another program: ip link del " +
             iface + ")";
    return nullptr;
  }
  rte_ether_addr mac{};
  if (int rc = rte_eth_macaddr_get(gwlb_port, &mac); rc != 0) {
    *error = what + "cannot read the GWLB port's MAC address: " + errnoText(rc);
    return nullptr;
  }
  std::unique_ptr<ExceptionPort> x(new ExceptionPort);
  x->iface_ = iface;
  x->address_ = address;
  x->mac_ = macText(mac);
  x->mtu_ = mtu;
  const std::string args = "iface=" + iface + ",mac=" + x->mac_;
  if (int rc = rte_eal_hotplug_add("vdev", kTapDevice, args.c_str()); rc != 0) {
    *error = what + "cannot create DPDK's net_tap port (" + kTapDevice + "," + args +
             "): " + errnoText(rc) +
             "; it needs /dev/net/tun and CAP_NET_ADMIN (DPDK's messages above say more)";
    return nullptr;
  }
  if (rte_eth_dev_get_port_by_name(kTapDevice, &x->port_id_) != 0) {
    *error = what + "net_tap came up without an ethdev port";
    return nullptr;
  }
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(x->port_id_, &info); rc != 0) {
    *error = what + "cannot read the tap's device info: " + errnoText(rc);
    return nullptr;
  }
  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof conf);
  // The kernel may send frames as long as the MTU: chained mbufs when one does not hold them.
  if (mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN > RTE_MBUF_DEFAULT_DATAROOM)
    x->rx_offloads_ = info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER;
  conf.rxmode.offloads = x->rx_offloads_;
  conf.txmode.offloads = info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  if (int rc = rte_eth_dev_configure(x->port_id_, 1, 1, &conf); rc != 0) {
    *error = what + "cannot configure the tap: " + errnoText(rc);
    return nullptr;
  }
  x->configured_ = true;
  if (mtu != 0)
    if (int rc = rte_eth_dev_set_mtu(x->port_id_, static_cast<uint16_t>(mtu)); rc != 0) {
      *error = what + "cannot set the tap's MTU to " + std::to_string(mtu) + ": " + errnoText(rc);
      return nullptr;
    }
  x->rx_desc_ = kTapDesc;
  x->tx_desc_ = kTapDesc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(x->port_id_, &x->rx_desc_, &x->tx_desc_); rc != 0) {
    *error = what + "cannot adjust the tap's ring sizes: " + errnoText(rc);
    return nullptr;
  }
  const int socket = rte_eth_dev_socket_id(gwlb_port);
  x->socket_ = socket >= 0 ? socket : static_cast<int>(rte_socket_id());
  if (address.ip.isV4()) disableIpv6(iface);
  if (std::string err = setKernelAddress(iface, address); !err.empty()) {
    *error = what + "cannot give the interface " + address.ip.str() + "/" +
             std::to_string(address.prefix) + ": " + err;
    return nullptr;
  }
  x->rings_.resize(lcores);
  for (unsigned i = 1; i < lcores; ++i)
    x->rings_[i] = std::make_unique<Ring>();
  return x;
}

size_t ExceptionPort::mbufsNeeded() const {
  size_t n = size_t{rx_desc_} + size_t{tx_desc_} + dataplane::kMaxBurst;
  for (const auto& r : rings_)
    if (r) n += kRingSize;
  return n;
}

bool ExceptionPort::setupQueues(rte_mempool* pool, std::string* error) {
  const std::string what = "exception tap " + iface_ + ": ";
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_id_, &info); rc != 0) {
    *error = what + "cannot read device info: " + errnoText(rc);
    return false;
  }
  rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = rx_offloads_;
  if (int rc = rte_eth_rx_queue_setup(port_id_, 0, rx_desc_, static_cast<unsigned>(socket_),
                                      &rxconf, pool);
      rc != 0) {
    *error = what + "rx queue setup failed: " + errnoText(rc);
    return false;
  }
  if (int rc = rte_eth_tx_queue_setup(port_id_, 0, tx_desc_, static_cast<unsigned>(socket_),
                                      &info.default_txconf);
      rc != 0) {
    *error = what + "tx queue setup failed: " + errnoText(rc);
    return false;
  }
  return true;
}

bool ExceptionPort::start(std::string* error) {
  if (int rc = rte_eth_dev_start(port_id_); rc != 0) {
    *error = "exception tap " + iface_ + ": cannot start: " + errnoText(rc);
    return false;
  }
  started_ = true;
  return true;
}

void ExceptionPort::stop() {
  for (auto& r : rings_) {
    rte_mbuf* m = nullptr;
    if (r)
      while (r->pop(&m))
        rte_pktmbuf_free(m);
  }
  if (!configured_ || closed_) return;
  final_ = report();
  have_final_ = true;
  if (started_) {
    rte_eth_dev_stop(port_id_);
    started_ = false;
  }
}

void ExceptionPort::close() {
  if (!configured_ || closed_) return;
  rte_eth_dev_close(port_id_);
  closed_ = true;
}

PortReport ExceptionPort::report() const {
  if (have_final_) return final_;
  PortSetup s;
  s.role = "exception";
  s.name = kTapDevice;
  s.port_id = port_id_;
  s.rx_queues = 1;
  s.tx_queues = 1;
  s.mtu = mtu_;
  return portReport(s, configured_ && !closed_);
}

std::string ExceptionPort::note() const {
  return "exception tap " + iface_ + " (" + kTapDevice + ", port " + std::to_string(port_id_) +
         "): " + address_.ip.str() + "/" + std::to_string(address_.prefix) + ", MAC " + mac_ +
         ", MTU " + std::to_string(mtu_) + "; serviced by the first forwarding lcore";
}

void ExceptionPort::toTap(rte_mbuf* const* pkts, unsigned n, GwlbCounters& c) noexcept {
  rte_mbuf* tx[dataplane::kMaxBurst];
  std::memcpy(tx, pkts, n * sizeof *pkts);
  const uint16_t sent = rte_eth_tx_burst(port_id_, 0, tx, static_cast<uint16_t>(n));
  if (sent < n) {
    rte_pktmbuf_free_bulk(tx + sent, n - sent);
    GwlbCounters::add(c.kernel_dropped, n - sent);
  }
  if (sent > 0) GwlbCounters::add(c.to_kernel, sent);
}

void ExceptionPort::toKernel(unsigned index, rte_mbuf* const* pkts, unsigned n,
                             GwlbCounters& c) noexcept {
  if (index == 0) {
    toTap(pkts, n, c);
    return;
  }
  Ring& r = *rings_[index];
  unsigned i = 0;
  while (i < n && r.push(pkts[i]))
    ++i;
  if (i < n) {
    // Only the mbufs the ring did not take.
    rte_pktmbuf_free_bulk(const_cast<rte_mbuf**>(pkts + i), n - i);
    GwlbCounters::add(c.kernel_dropped, n - i);
  }
}

unsigned ExceptionPort::service(uint16_t port, uint16_t tx_queue, GwlbCounters& c) noexcept {
  unsigned moved = 0;
  rte_mbuf* b[dataplane::kMaxBurst];
  for (size_t i = 1; i < rings_.size(); ++i) {
    unsigned k = 0;
    while (k < dataplane::kMaxBurst && rings_[i]->pop(&b[k]))
      ++k;
    if (k > 0) {
      toTap(b, k, c);
      moved += k;
    }
  }
  const uint16_t n = rte_eth_rx_burst(port_id_, 0, b, dataplane::kMaxBurst);
  if (n == 0) return moved;
  const uint16_t sent = rte_eth_tx_burst(port, tx_queue, b, n);
  if (sent < n) {
    rte_pktmbuf_free_bulk(b + sent, n - sent);
    GwlbCounters::add(c.kernel_dropped, n - sent);
  }
  if (sent > 0) GwlbCounters::add(c.from_kernel, sent);
  return moved + n;
}

}  // namespace statewall::dpdk
