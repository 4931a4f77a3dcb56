// One statewalld per interface: before it configures a port, statewalld takes an exclusive
// flock(2) on a file named after what the port attaches to (a PCI address, or the kernel
// interface of an af_packet / af_xdp / pcap vdev), under --lock-dir (default /run/statewall).
// A second instance on the same interface is refused with the first one's pid; a lock dies with
// its process, so a crash leaves nothing to clean up. No DPDK here: tested without an EAL.
#pragma once

#include <string>
#include <vector>

namespace statewall::dpdk {

inline constexpr const char* kDefaultLockDir = "/run/statewall";

// The lock names of a device: "pci-0000:03:00.0" for a PCI device, "iface-eth1" for each kernel
// interface a vdev's arguments name (iface=, rx_iface=, tx_iface=, rx_iface_in=); none for
// devices that attach to nothing shared (net_ring, net_null, net_pcap on files). `bus` is the
// EAL bus name ("pci", "vdev", ...), `args` the device arguments ("iface=eth1,qpairs=2").
std::vector<std::string> portLockNames(const std::string& bus, const std::string& device,
                                       const std::string& args);

// The kernel interfaces a vdev's arguments name (iface=, rx_iface=, tx_iface=, rx_iface_in=),
// each once, in order.
std::vector<std::string> vdevInterfaces(const std::string& args);

// The value of `key` in a device's arguments ("iface=eth1,framesz=4096"), empty when absent.
std::string vdevArg(const std::string& args, const std::string& key);

// An exclusive lock held until destruction. Not copyable.
class PortLock {
 public:
  PortLock() = default;
  ~PortLock();
  PortLock(PortLock&& o) noexcept;
  PortLock& operator=(PortLock&& o) noexcept;

  // Takes the lock `dir`/`name`.lock (creating `dir` when missing) and writes our pid into it.
  // A lock this process already holds through another PortLock succeeds without a second one.
  // On failure returns false and sets *error: held by another process (with its pid when the
  // file names one), or the directory or file cannot be made.
  bool acquire(const std::string& dir, const std::string& name, std::string* error);
  const std::string& path() const { return path_; }

 private:
  void release();

  int fd_ = -1;
  std::string path_;
};

// Locks the kernel interfaces of the --vdev arguments among `eal_args` (before EAL probes the
// devices: a second af_packet instance on an interface may already fail inside the driver). On
// failure returns false with *error naming the --vdev and the holder.
bool lockVdevInterfaces(const std::vector<std::string>& eal_args, const std::string& dir,
                        std::vector<PortLock>* locks, std::string* error);

}  // namespace statewall::dpdk
