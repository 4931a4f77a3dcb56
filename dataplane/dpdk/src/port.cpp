#include "port.hpp"

#include <net/if.h>
#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <charconv>
#include <cstring>

#include "statewall/dpdk/mtu.hpp"

namespace statewall::dpdk {
namespace {

// A Toeplitz key made of one repeated 16-bit pattern hashes (a, b) and (b, a) alike, so both
// directions of a flow seen on one port land on the same queue (Woo and Park, "Scalable TCP
// session monitoring with symmetric receive-side scaling"). Not needed for correctness (the
// connection table is shared), but it keeps a flow's two directions on one lcore's cache.
constexpr uint8_t kSymmetricRssKey[40] = {
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a};

std::string errnoText(int rc) {
  return rte_strerror(rc < 0 ? -rc : rc);
}

// What to add to a vdev's arguments to get more queues, for error messages.
std::string queueHint(const std::string& driver) {
  if (driver == "net_pcap") return " (net_pcap: give one rx_pcap= / tx_pcap= per queue)";
  if (driver == "net_af_packet") return " (net_af_packet: add qpairs=N)";
  if (driver == "net_ring") return " (net_ring: create the port with more rings)";
  return "";
}

}  // namespace

PortReport portReport(const PortSetup& s, bool open) {
  PortReport p;
  p.role = s.role;
  p.name = s.name;
  p.port_id = s.port_id;
  p.rx_queues = s.rx_queues;
  p.tx_queues = s.tx_queues;
  p.rss = s.rss;
  p.mtu = s.mtu;
  rte_eth_stats st{};
  if (open && rte_eth_stats_get(s.port_id, &st) == 0) {
    p.ipackets = st.ipackets;
    p.opackets = st.opackets;
    p.ibytes = st.ibytes;
    p.obytes = st.obytes;
    p.imissed = st.imissed;
    p.ierrors = st.ierrors;
    p.oerrors = st.oerrors;
    p.rx_nombuf = st.rx_nombuf;
  }
  return p;
}

std::string portLabel(const PortSetup& s) {
  return s.name + " (port " + std::to_string(s.port_id) + ")";
}

// Why a --vdev named `name` gave no port: an interface its arguments name does not exist, or
// (empty) nothing we can tell beyond DPDK's own messages.
std::string vdevFailure(const std::string& name) {
  const rte_devargs* da;
  RTE_EAL_DEVARGS_FOREACH("vdev", da) {
    if (name != da->name) continue;
    const std::string args = da->args != nullptr ? da->args : "";
    const std::string given = "--vdev=" + name + (args.empty() ? "" : "," + args);
    for (const std::string& iface : vdevInterfaces(args)) {
      if (if_nametoindex(iface.c_str()) != 0) continue;
      std::string known;
      if (struct if_nameindex* list = if_nameindex(); list != nullptr) {
        for (struct if_nameindex* i = list; i->if_index != 0; ++i)
          known += (known.empty() ? "" : ", ") + std::string(i->if_name);
        if_freenameindex(list);
      }
      return "no such network interface '" + iface + "' (" + given +
             "); this network namespace has: " + (known.empty() ? "none" : known);
    }
    return "the device of " + given + " did not start; DPDK's messages above say why";
  }
  return "";
}

bool resolvePort(const std::string& spec, const std::string& role, uint16_t* port_id,
                 std::string* error) {
  unsigned value = 0;
  const char* end = spec.data() + spec.size();
  auto [ptr, ec] = std::from_chars(spec.data(), end, value);
  if (!spec.empty() && ec == std::errc() && ptr == end) {
    if (value < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port(static_cast<uint16_t>(value))) {
      *port_id = static_cast<uint16_t>(value);
      return true;
    }
  } else if (rte_eth_dev_get_port_by_name(spec.c_str(), port_id) == 0) {
    return true;
  }
  std::string known;
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(p, name) != 0) continue;
    known += (known.empty() ? "" : ", ") + std::to_string(p) + " = " + name;
  }
  if (std::string why = vdevFailure(spec); !why.empty()) {
    *error = role + " port " + spec + ": " + why;
    return false;
  }
  *error = "no DPDK port '" + spec + "' for --" + role + "; available ports: " +
           (known.empty() ? std::string("none (bind a NIC to a DPDK driver, or add --vdev=...)")
                          : known);
  return false;
}

bool lockPort(uint16_t port_id, const std::string& role, const std::string& lock_dir,
              std::vector<PortLock>* locks, std::string* error) {
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0 || info.device == nullptr)
    return true;  // configurePort() reports an unreadable device
  const rte_bus* bus = rte_dev_bus(info.device);
  const rte_devargs* da = rte_dev_devargs(info.device);
  const std::string device = rte_dev_name(info.device) != nullptr ? rte_dev_name(info.device) : "";
  const std::string args = da != nullptr && da->args != nullptr ? da->args : "";
  for (const std::string& name :
       portLockNames(bus != nullptr ? rte_bus_name(bus) : "", device, args)) {
    PortLock lock;
    std::string why;
    if (!lock.acquire(lock_dir, name, &why)) {
      char port_name[RTE_ETH_NAME_MAX_LEN] = {};
      rte_eth_dev_get_name_by_port(port_id, port_name);
      const std::string what =
          name.rfind("iface-", 0) == 0 ? "interface " + name.substr(6) : device;
      *error = role + " port " + port_name + " (" + what + "): " + why;
      return false;
    }
    locks->push_back(std::move(lock));
  }
  return true;
}

bool portMtuLimits(uint16_t port_id, const std::string& role, PortMtuLimits* limits,
                   std::string* error) {
  PortSetup s;
  s.port_id = port_id;
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port_id, name);
  s.name = name;
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
    *error = role + " port " + portLabel(s) + ": cannot read device info: " + errnoText(rc);
    return false;
  }
  PortMtuLimits l;
  l.label = role + " port " + portLabel(s);
  l.af_packet = info.driver_name != nullptr && std::string(info.driver_name) == "net_af_packet";
  l.max_mtu = info.max_mtu;
  l.max_rx_pktlen = info.max_rx_pktlen;
  l.scatter = (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) != 0;
  const rte_devargs* da = info.device != nullptr ? rte_dev_devargs(info.device) : nullptr;
  l.iface = vdevArg(da != nullptr && da->args != nullptr ? da->args : "", "iface");
  l.link_mtu = l.iface.empty() ? -1 : interfaceMtu(l.iface);
  *limits = l;
  return true;
}

bool configurePort(uint16_t port_id, const std::string& role, unsigned lcores, uint16_t rx_desc,
                   uint16_t tx_desc, uint32_t mtu, PortSetup* setup, std::string* error) {
  PortSetup s;
  s.role = role;
  s.port_id = port_id;
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port_id, name);
  s.name = name;

  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
    *error = role + " port " + portLabel(s) + ": cannot read device info: " + errnoText(rc);
    return false;
  }
  const std::string driver = info.driver_name != nullptr ? info.driver_name : "";
  if (info.max_tx_queues < lcores) {
    *error = role + " port " + portLabel(s) + " has " + std::to_string(info.max_tx_queues) +
             " tx queue(s), but each of the " + std::to_string(lcores) +
             " forwarding lcores needs its own" + queueHint(driver) + "; or lower --lcores";
    return false;
  }
  s.rx_queues = static_cast<uint16_t>(std::min<unsigned>(lcores, info.max_rx_queues));
  s.tx_queues = static_cast<uint16_t>(lcores);
  if (s.rx_queues == 0) {
    *error = role + " port " + portLabel(s) + " has no rx queue";
    return false;
  }

  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof conf);
  const uint64_t rss_hf =
      (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  if (s.rx_queues > 1 && rss_hf != 0) {
    s.rss = true;
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
    if (info.hash_key_size == sizeof kSymmetricRssKey) {
      conf.rx_adv_conf.rss_conf.rss_key = const_cast<uint8_t*>(kSymmetricRssKey);
      conf.rx_adv_conf.rss_conf.rss_key_len = sizeof kSymmetricRssKey;
    }
  }
  // Multi-segment mbufs may arrive (e.g. net_pcap with frames longer than one mbuf) and are
  // forwarded as they are; fast free is valid because every mbuf comes from our one pool with
  // refcnt 1.
  s.tx_offloads =
      info.tx_offload_capa & (RTE_ETH_TX_OFFLOAD_MULTI_SEGS | RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE);
  conf.txmode.offloads = s.tx_offloads;

  // Frame sizes. af_packet: the slot size is a device argument (statewalld sized it for the
  // interface MTU unless given); the rx mbufs must hold a whole slot. Others: `mtu` (chosen by
  // choosePortMtu) is the port MTU, received into chained mbufs when the device can, else into
  // larger ones.
  if (driver == "net_af_packet") {
    const rte_devargs* da = info.device != nullptr ? rte_dev_devargs(info.device) : nullptr;
    const std::string args = da != nullptr && da->args != nullptr ? da->args : "";
    uint32_t frame = kAfPacketDefaultFrameSize;
    if (const std::string v = vdevArg(args, "framesz"); !v.empty())
      frame = static_cast<uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
    s.rx_frame_max = frame > kAfPacketSlotOverhead ? frame - kAfPacketSlotOverhead : 0;
    s.data_room = frame + RTE_PKTMBUF_HEADROOM;
    const std::string iface = vdevArg(args, "iface");
    const int link_mtu = interfaceMtu(iface);
    if (link_mtu > 0 && static_cast<uint32_t>(link_mtu) + kFrameOverhead > s.rx_frame_max)
      s.warning = role + " port " + portLabel(s) + ": interface " + iface + " has MTU " +
                  std::to_string(link_mtu) + " but the port receives frames of at most " +
                  std::to_string(s.rx_frame_max) + " bytes (framesz=" + std::to_string(frame) +
                  "): longer frames arrive cut short and are dropped, counted as oversize; "
                  "raise framesz= in --vdev or lower the interface MTU";
  } else if (mtu != 0) {
    if (mtu > info.max_mtu || mtu < info.min_mtu) {
      *error = role + " port " + portLabel(s) + ": --mtu " + std::to_string(mtu) +
               " is outside what the device allows (" + std::to_string(info.min_mtu) + ".." +
               std::to_string(info.max_mtu) + ")";
      return false;
    }
    conf.rxmode.mtu = mtu;
    s.mtu = mtu;
    const uint32_t frame = mtu + kFrameOverhead;
    if (frame > RTE_MBUF_DEFAULT_DATAROOM) {
      if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) {
        s.rx_offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
      } else {
        s.data_room = frame + RTE_PKTMBUF_HEADROOM;
      }
    }
    conf.rxmode.offloads = s.rx_offloads;
  }

  if (int rc = rte_eth_dev_configure(port_id, s.rx_queues, s.tx_queues, &conf); rc != 0) {
    *error = role + " port " + portLabel(s) + ": cannot configure " + std::to_string(s.rx_queues) +
             " rx / " + std::to_string(s.tx_queues) + " tx queues: " + errnoText(rc);
    return false;
  }
  uint16_t nb_rx = rx_desc, nb_tx = tx_desc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &nb_rx, &nb_tx); rc != 0) {
    *error = role + " port " + portLabel(s) + ": cannot adjust ring sizes: " + errnoText(rc);
    return false;
  }
  s.rx_desc = nb_rx;
  s.tx_desc = nb_tx;
  const int socket = rte_eth_dev_socket_id(port_id);
  s.socket = socket >= 0 ? socket : static_cast<int>(rte_socket_id());
  *setup = s;
  return true;
}

bool setupQueues(const PortSetup& s, rte_mempool* pool, std::string* error) {
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(s.port_id, &info); rc != 0) {
    *error = s.role + " port " + portLabel(s) + ": cannot read device info: " + errnoText(rc);
    return false;
  }
  for (uint16_t q = 0; q < s.rx_queues; ++q) {
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = s.rx_offloads;
    if (int rc = rte_eth_rx_queue_setup(s.port_id, q, s.rx_desc, static_cast<unsigned>(s.socket),
                                        &rxconf, pool);
        rc != 0) {
      *error = s.role + " port " + portLabel(s) + ": rx queue " + std::to_string(q) +
               " setup failed: " + errnoText(rc) +
               (rc == -ENOMEM ? " (out of memory: give EAL more memory or lower --rx-desc)" : "");
      return false;
    }
  }
  for (uint16_t q = 0; q < s.tx_queues; ++q) {
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = s.tx_offloads;
    if (int rc = rte_eth_tx_queue_setup(s.port_id, q, s.tx_desc, static_cast<unsigned>(s.socket),
                                        &txconf);
        rc != 0) {
      *error = s.role + " port " + portLabel(s) + ": tx queue " + std::to_string(q) +
               " setup failed: " + errnoText(rc) +
               (rc == -ENOMEM ? " (out of memory: give EAL more memory or lower --tx-desc)" : "");
      return false;
    }
  }
  // A bump in the wire forwards frames for any MAC address. Some vdevs cannot (and need not).
  if (int rc = rte_eth_promiscuous_enable(s.port_id); rc != 0 && rc != -ENOTSUP) {
    *error =
        s.role + " port " + portLabel(s) + ": cannot enable promiscuous mode: " + errnoText(rc);
    return false;
  }
  return true;
}

}  // namespace statewall::dpdk
