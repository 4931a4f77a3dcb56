// Port setup for statewalld (private): resolving a port by id or name, choosing queue counts,
// configuring RSS, rings and offloads. Main lcore only, before forwarding starts.
#pragma once

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

#include "statewall/dpdk/mtu.hpp"
#include "statewall/dpdk/port_lock.hpp"
#include "statewall/dpdk/report.hpp"

namespace statewall::dpdk {

struct PortSetup {
  std::string role;  // "inside" / "outside"
  std::string name;
  uint16_t port_id = 0;
  uint16_t rx_queues = 0;
  uint16_t tx_queues = 0;
  uint16_t rx_desc = 0;  // after rte_eth_dev_adjust_nb_rx_tx_desc
  uint16_t tx_desc = 0;
  bool rss = false;
  int socket = 0;  // NUMA socket of the device, or of the main lcore when unknown
  uint64_t tx_offloads = 0;
  uint64_t rx_offloads = 0;
  // Frames at least this long may have been cut short by the device (af_packet slots); shorter
  // ones are whole. UINT32_MAX: the device never cuts.
  uint32_t rx_frame_max = UINT32_MAX;
  // The mbuf data room (headroom included) the rx queues need; 0 = the default.
  uint32_t data_room = 0;
  uint32_t mtu = 0;     // what the port was configured with; 0: the device's default
  std::string warning;  // for the operator, e.g. an interface MTU the port cannot receive
};

// Finds a port by numeric id or by device name ("net_pcap0", "0000:03:00.0"). When the name is
// that of a --vdev that did not come up, *error says why first (e.g. no such network
// interface), then which ports exist.
bool resolvePort(const std::string& spec, const std::string& role, uint16_t* port_id,
                 std::string* error);

// Locks what the port attaches to (port_lock.hpp), appending the locks to *locks. False with
// *error when another statewalld holds one.
bool lockPort(uint16_t port_id, const std::string& role, const std::string& lock_dir,
              std::vector<PortLock>* locks, std::string* error);

// What the port's device and link allow, for choosePortMtu() (mtu.hpp). False with *error when
// the device info cannot be read.
bool portMtuLimits(uint16_t port_id, const std::string& role, PortMtuLimits* limits,
                   std::string* error);

// Configures the device (for `mtu`, when nonzero, see options.hpp): min(lcores, max_rx_queues) rx
// queues (RSS when more than one and the device hashes), one tx queue per lcore (an error when the
// device has fewer), and the ring sizes the device accepts. Fills *setup.
bool configurePort(uint16_t port_id, const std::string& role, unsigned lcores, uint16_t rx_desc,
                   uint16_t tx_desc, uint32_t mtu, PortSetup* setup, std::string* error);

// Sets up the rings of a configured port with mbufs from `pool`, and promiscuous mode.
bool setupQueues(const PortSetup& setup, rte_mempool* pool, std::string* error);

// The port as set up, with the device's counters when `open` (configured and not closed).
PortReport portReport(const PortSetup& setup, bool open);

// "net_pcap0 (port 0)".
std::string portLabel(const PortSetup& setup);

}  // namespace statewall::dpdk
