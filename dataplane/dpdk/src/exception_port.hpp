// The exception port of --gwlb (private; statewall/dpdk/exception.hpp says which frames use it):
// a DPDK net_tap port, hot-plugged by statewalld, whose kernel interface carries the GWLB port's
// MAC address and MTU and --address. Frames for the kernel are written into it; what the kernel
// sends out of the interface is read from it and transmitted on the GWLB port.
//
// Threads. One queue pair, serviced by the first forwarding lcore (index 0): it writes its own
// frames for the kernel into the tap directly, drains what the other lcores handed over (each
// through a single-producer single-consumer ring of its own, so no lock and no shared write on
// the packet path) and sends the kernel's frames out of its own tx queue of the GWLB port. The
// exception traffic is small (ARP, pings, health checks): one lcore is plenty, and it keeps the
// tap at one queue (DPDK 22.11's net_tap has at most 8 queues, fewer than the lcores may be).
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spsc_ring.hpp"
#include "statewall/dpdk/exception.hpp"
#include "statewall/dpdk/gwlb.hpp"
#include "statewall/dpdk/report.hpp"

struct rte_mbuf;

namespace statewall::dpdk {

class ExceptionPort {
 public:
  // Frames one lcore may have handed over and the servicing lcore not yet taken.
  static constexpr uint32_t kRingSize = 512;

  ~ExceptionPort();
  ExceptionPort(const ExceptionPort&) = delete;
  ExceptionPort& operator=(const ExceptionPort&) = delete;

  // Hot-plugs the net_tap port with kernel interface `iface` (which must not exist yet), the MAC
  // address of `gwlb_port` and MTU `mtu`; gives the interface `address` (IPv6 off when it is IPv4,
  // so that the kernel sends no router solicitations out of the port) and configures one rx and
  // one tx queue. `lcores`: the forwarding lcores (each but the first gets a ring). Null with
  // *error saying what to change. Main lcore, before the mbuf pool exists.
  static std::unique_ptr<ExceptionPort> create(const std::string& iface, uint16_t gwlb_port,
                                               uint32_t mtu, const GwlbAddress& address,
                                               unsigned lcores, std::string* error);

  // Mbufs the port's rx ring and the rings between lcores can hold at once (for the pool size).
  size_t mbufsNeeded() const;
  // Sets the queues up with mbufs from `pool`. Main lcore.
  bool setupQueues(rte_mempool* pool, std::string* error);
  // Starts the port (the kernel interface goes up). Main lcore, before the lcores run.
  bool start(std::string* error);
  // After the lcores stopped: frees what the rings still hold and stops the port. Main lcore.
  void stop();
  // Closes the port (the kernel interface disappears). After stop(). Main lcore.
  void close();

  // The port's counters, role "exception" (the final ones once stopped). Any thread but
  // concurrently with stop() and close().
  PortReport report() const;
  // For the startup log: "exception tap statewall0 (port 1): 10.9.0.5/24, MAC ..., MTU 1500,
  // serviced by the first forwarding lcore".
  std::string note() const;

  // Forwarding lcore `index` (0..lcores-1): hands `n` frames for the kernel over. Lcore 0 writes
  // them into the tap; the others push them onto their ring (frames that do not fit are freed and
  // counted as kernel_dropped). Counts into `c`, the calling lcore's counters.
  void toKernel(unsigned index, rte_mbuf* const* pkts, unsigned n, GwlbCounters& c) noexcept;
  // Forwarding lcore 0 only: writes what the other lcores handed over into the tap, and sends the
  // frames the kernel wrote into the interface out of `port`'s tx queue `tx_queue`. Returns the
  // frames moved either way.
  unsigned service(uint16_t port, uint16_t tx_queue, GwlbCounters& c) noexcept;

 private:
  ExceptionPort() = default;
  void toTap(rte_mbuf* const* pkts, unsigned n, GwlbCounters& c) noexcept;

  using Ring = SpscRing<rte_mbuf*, kRingSize>;
  std::string iface_;
  GwlbAddress address_{};
  uint16_t port_id_ = 0;
  uint16_t rx_desc_ = 0;
  uint16_t tx_desc_ = 0;
  uint32_t mtu_ = 0;
  uint64_t rx_offloads_ = 0;
  int socket_ = 0;
  std::string mac_;
  std::vector<std::unique_ptr<Ring>> rings_;  // rings_[i]: from forwarding lcore i (0: none)
  bool configured_ = false;
  bool started_ = false;
  bool closed_ = false;
  PortReport final_{};
  bool have_final_ = false;
};

}  // namespace statewall::dpdk
