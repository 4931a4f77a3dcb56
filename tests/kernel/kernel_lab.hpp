// Three network namespaces for the differential test against the kernel: client, router and
// server, joined by two veth pairs. The router forwards between 192.0.2.0/24 (client side,
// TEST-NET-1) and 198.51.100.0/24 (server side, TEST-NET-2) through an nftables ruleset with
// conntrack; the client and server namespaces have no addresses and drop whatever their own stack
// would receive, so only the frames the test writes (AF_PACKET) ever leave them.
//
// Ordering: send() writes one frame on one side; the frame then crosses the router in the sending
// thread's softirq. A sentinel (UDP between the two .254 addresses, accepted ahead of the policy
// and not tracked) sent right after it on the same path arrives after it, so "not forwarded" is
// known as soon as the sentinel has arrived: no fixed wait.
//
// Everything lives in namespaces named after the test's pid, deleted by the destructor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "statewall/base/status.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::kerneltest {

using base::Status;

enum Side : uint8_t { kClient = 0, kServer = 1 };

// The addresses the test may use as sources on each side (the router has static neighbours for
// exactly these). .254 on each side is the sentinel's.
inline constexpr const char* kClientNet = "192.0.2.0/24";
inline constexpr const char* kServerNet = "198.51.100.0/24";
std::vector<std::string> sideAddresses(Side s);

class Lab {
 public:
  Lab();
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  // Why the lab cannot run here ("" when it can): not root, no `ip`/`nft`, no network namespaces,
  // no nftables or conntrack in a namespace. Probes with a namespace of its own.
  static std::string unsupported();

  // Builds the namespaces; a failure saying which step failed.
  Status setup();
  // Replaces the router's ruleset with `ruleset` (nft -f text) plus the sentinel's exemptions,
  // and sets the conntrack sysctls.
  Status load(const std::string& ruleset,
              const std::vector<std::pair<std::string, uint32_t>>& sysctls);
  // Empties the router's connection table (ctnetlink).
  Status flushConntrack();

  // Sends `*frame` (Ethernet) out of `side`'s veth towards the router and reports whether the
  // router forwarded it to the other side. The frame is changed to what was sent: the MACs of the
  // veths, and an IPv4 identification unique in the run (checksum fixed). *sent_ns is the
  // wall-clock time just before sending. A failure when the sentinel did not come through (lab
  // broken).
  Status inject(Side side, dataplane::Bytes* frame, uint64_t* sent_ns, bool* forwarded);

  // The MAC addresses the frames of each side must carry as destination (the router's veth).
  const dataplane::MacAddr& routerMac(Side s) const { return router_mac_[s]; }
  const dataplane::MacAddr& hostMac(Side s) const { return host_mac_[s]; }

  std::string routerNs() const { return ns_[2]; }

 private:
  Status sh(const std::string& cmd);
  Status readMac(const std::string& ns, const std::string& dev, dataplane::MacAddr* mac);
  Status openSocket(Side s);
  // Reads frames arriving at side `s` until the sentinel with IP id `sentinel_id`; *seen when the
  // frame with `id` arrived first. false when the sentinel does not arrive within the bound.
  bool drainUntil(Side s, uint16_t id, uint16_t sentinel_id, bool* seen);

  std::string ns_[3];    // client, server, router
  std::string veth_[4];  // client, router-client, server, router-server
  dataplane::MacAddr router_mac_[2]{};
  dataplane::MacAddr host_mac_[2]{};
  int fd_[2] = {-1, -1};  // AF_PACKET on the client's and server's veth
  int ifindex_[2] = {0, 0};
  int ct_fd_ = -1;  // NETLINK_NETFILTER in the router namespace
  uint16_t next_id_ = 1;
  bool created_ = false;
};

}  // namespace statewall::kerneltest
