// The namespaces of the differential test (kernel_lab.hpp).
#include "kernel_lab.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <tuple>

#include "common/run_command.hpp"

namespace statewall::kerneltest {
namespace {

using dataplane::Bytes;
using dataplane::MacAddr;

constexpr const char* kSentinel[2] = {"192.0.2.254", "198.51.100.254"};

uint64_t wallNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Runs fn() with the calling thread in namespace `ns` (a name under /run/netns), then returns to
// the thread's own namespace. Sockets made inside stay in `ns`.
template <class Fn>
Status inNamespace(const std::string& ns, Fn fn) {
  const int self = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  Status st;
  if (self < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
    st = Status::failure("cannot enter namespace " + ns + ": " + std::strerror(errno));
  } else {
    st = fn();
    if (::setns(self, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "cannot return to the test's namespace: %s\n", std::strerror(errno));
      std::abort();
    }
  }
  if (self >= 0) ::close(self);
  if (target >= 0) ::close(target);
  return st;
}

void fixIpv4(Bytes& f, uint16_t id) {
  const size_t l3 = 14;
  f[l3 + 4] = static_cast<uint8_t>(id >> 8);
  f[l3 + 5] = static_cast<uint8_t>(id);
  f[l3 + 10] = f[l3 + 11] = 0;
  const size_t ihl = static_cast<size_t>(f[l3] & 0x0f) * 4;
  const uint16_t sum = dataplane::internetChecksum(std::span<const uint8_t>(f.data() + l3, ihl));
  f[l3 + 10] = static_cast<uint8_t>(sum >> 8);
  f[l3 + 11] = static_cast<uint8_t>(sum);
}

}  // namespace

std::vector<std::string> sideAddresses(Side s) {
  if (s == kClient) return {"192.0.2.10", "192.0.2.20", "192.0.2.99", kSentinel[0]};
  return {"198.51.100.10", "198.51.100.20", "198.51.100.99", kSentinel[1]};
}

Lab::Lab() {
  const std::string pid = std::to_string(::getpid());
  ns_[kClient] = "swkc" + pid;
  ns_[kServer] = "swks" + pid;
  ns_[2] = "swkr" + pid;
  veth_[0] = "kc" + pid;
  veth_[1] = "kcr" + pid;
  veth_[2] = "ks" + pid;
  veth_[3] = "ksr" + pid;
}

Lab::~Lab() {
  for (int& fd : fd_)
    if (fd >= 0) ::close(fd);
  if (ct_fd_ >= 0) ::close(ct_fd_);
  if (!created_) return;
  for (const auto& ns : ns_)
    testing::runShell("ip netns del " + ns + " 2>/dev/null");
}

std::string Lab::unsupported() {
  if (::geteuid() != 0) return "needs root (network namespaces, nftables)";
  for (const char* tool : {"ip", "nft"})
    if (testing::runShell(std::string("command -v ") + tool).exit_code != 0)
      return std::string("needs `") + tool + "` (Debian: iproute2, nftables)";
  const std::string ns = "swkprobe" + std::to_string(::getpid());
  if (testing::runShell("ip netns add " + ns).exit_code != 0)
    return "cannot create a network namespace (ip netns add failed)";
  const auto r = testing::runShell(
      "ip netns exec " + ns +
      " nft -f - <<'EOF'\ntable inet probe {\n chain f {\n  type filter hook forward priority "
      "filter; policy drop;\n  ct state established,related accept\n }\n}\nEOF\n");
  const auto s = testing::runShell("ip netns exec " + ns +
                                   " sysctl -n net.netfilter.nf_conntrack_udp_timeout");
  testing::runShell("ip netns del " + ns);
  if (r.exit_code != 0) return "nftables with conntrack does not work in a namespace: " + r.err;
  if (s.exit_code != 0) return "no per-namespace conntrack sysctls: " + s.err;
  return "";
}

Status Lab::sh(const std::string& cmd) {
  const auto r = testing::runShell(cmd);
  if (r.exit_code == 0) return Status::success();
  return Status::failure("`" + cmd + "` failed (" + std::to_string(r.exit_code) + "): " + r.err);
}

Status Lab::readMac(const std::string& ns, const std::string& dev, MacAddr* mac) {
  const auto r =
      testing::runShell("ip netns exec " + ns + " cat /sys/class/net/" + dev + "/address");
  unsigned b[6];
  if (r.exit_code != 0 || std::sscanf(r.out.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2],
                                      &b[3], &b[4], &b[5]) != 6) {
    return Status::failure("cannot read the MAC address of " + dev + " in " + ns + ": " + r.err);
  }
  for (int i = 0; i < 6; ++i)
    (*mac)[i] = static_cast<uint8_t>(b[i]);
  return Status::success();
}

Status Lab::setup() {
  created_ = true;
  const std::string& c = ns_[kClient];
  const std::string& s = ns_[kServer];
  const std::string& r = ns_[2];
  auto in = [](const std::string& ns, const std::string& cmd) {
    return "ip netns exec " + ns + " " + cmd;
  };
  std::vector<std::string> cmds = {
      "ip netns add " + c,
      "ip netns add " + s,
      "ip netns add " + r,
      "ip link add " + veth_[0] + " netns " + c + " type veth peer name " + veth_[1] + " netns " +
          r,
      "ip link add " + veth_[2] + " netns " + s + " type veth peer name " + veth_[3] + " netns " +
          r,
  };
  for (const auto& ns : ns_) {
    cmds.push_back(in(ns,
                      "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                      "net.ipv6.conf.default.disable_ipv6=1"));
    cmds.push_back(in(ns, "ip link set lo up"));
  }
  // The hosts' own stacks never answer: the test writes every frame itself.
  for (const auto& ns : {c, s})
    cmds.push_back(in(ns,
                      "nft 'add table inet sink; add chain inet sink pre { type filter hook "
                      "prerouting priority -400; policy drop; }'"));
  cmds.push_back(in(r, "ip addr add 192.0.2.1/24 dev " + veth_[1]));
  cmds.push_back(in(r, "ip addr add 198.51.100.1/24 dev " + veth_[3]));
  cmds.push_back(in(r,
                    "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 "
                    "net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.send_redirects=0"));
  for (const auto& [ns, dev] : {std::pair{c, veth_[0]}, std::pair{r, veth_[1]},
                                std::pair{s, veth_[2]}, std::pair{r, veth_[3]}})
    cmds.push_back(in(ns, "ip link set " + dev + " up"));
  for (const auto& cmd : cmds)
    if (Status st = sh(cmd); !st.ok()) return st;
  for (const auto& [ns, dev, mac] : {std::tuple{&c, &veth_[0], &host_mac_[kClient]},
                                     std::tuple{&s, &veth_[2], &host_mac_[kServer]},
                                     std::tuple{&r, &veth_[1], &router_mac_[kClient]},
                                     std::tuple{&r, &veth_[3], &router_mac_[kServer]}})
    if (Status st = readMac(*ns, *dev, mac); !st.ok()) return st;
  auto mac = [](const MacAddr& m) {
    char b[18];
    std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return std::string(b);
  };
  for (Side side : {kClient, kServer})
    for (const auto& a : sideAddresses(side))
      if (Status st = sh(in(r, "ip neigh replace " + a + " lladdr " + mac(host_mac_[side]) +
                                   " dev " + veth_[side == kClient ? 1 : 3] + " nud permanent"));
          !st.ok())
        return st;
  for (Side side : {kClient, kServer})
    if (Status st = openSocket(side); !st.ok()) return st;
  return inNamespace(r, [&] {
    ct_fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (ct_fd_ < 0)
      return Status::failure(std::string("ctnetlink socket: ") + std::strerror(errno));
    return Status::success();
  });
}

Status Lab::openSocket(Side s) {
  const std::string dev = veth_[s == kClient ? 0 : 2];
  return inNamespace(ns_[s], [&] {
    fd_[s] = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ifindex_[s] = static_cast<int>(::if_nametoindex(dev.c_str()));
    if (fd_[s] < 0 || ifindex_[s] == 0) {
      return Status::failure("AF_PACKET socket on " + dev + ": " + std::strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd_[s], SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    const int buf = 4 << 20;
    ::setsockopt(fd_[s], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex_[s];
    if (::bind(fd_[s], reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      return Status::failure("bind AF_PACKET to " + dev + ": " + std::strerror(errno));
    }
    return Status::success();
  });
}

Status Lab::load(const std::string& ruleset,
                 const std::vector<std::pair<std::string, uint32_t>>& sysctls) {
  // The sentinels: accepted ahead of the policy's rules and never tracked.
  const std::string sentinels = std::string("{ ") + kSentinel[0] + ", " + kSentinel[1] + " }";
  const std::string text = "flush ruleset\n" + ruleset +
                           "table inet lab {\n\tchain pre {\n\t\ttype filter hook prerouting "
                           "priority raw;\n\t\tip saddr " +
                           sentinels +
                           " notrack\n\t}\n}\ninsert rule inet statewall forward ip saddr " +
                           sentinels + " accept\n";
  const auto r = testing::runShell("ip netns exec " + ns_[2] + " nft -f -", text);
  if (r.exit_code != 0) {
    return Status::failure("nft -f rejected the ruleset: " + r.err + "\n" + text);
  }
  std::string cmd = "ip netns exec " + ns_[2] + " sysctl -qw";
  for (const auto& [k, v] : sysctls)
    cmd += " " + k + "=" + std::to_string(v);
  return sh(cmd);
}

Status Lab::flushConntrack() {
  struct {
    nlmsghdr nh;
    nfgenmsg nf;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = next_id_;
  req.nf.nfgen_family = AF_INET;
  req.nf.version = NFNETLINK_V0;
  if (::send(ct_fd_, &req, sizeof req, 0) != static_cast<ssize_t>(sizeof req)) {
    return Status::failure(std::string("ctnetlink flush: ") + std::strerror(errno));
  }
  alignas(nlmsghdr) char buf[4096];
  pollfd p{ct_fd_, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) {
    return Status::failure("ctnetlink flush: no answer");
  }
  const ssize_t n = ::recv(ct_fd_, buf, sizeof buf, 0);
  const auto* nh = reinterpret_cast<const nlmsghdr*>(buf);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr) + sizeof(nlmsgerr)) ||
      nh->nlmsg_type != NLMSG_ERROR) {
    return Status::failure("ctnetlink flush: unexpected answer");
  }
  const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(nh));
  if (e->error != 0) {
    return Status::failure(std::string("ctnetlink flush: ") + std::strerror(-e->error));
  }
  return Status::success();
}

bool Lab::drainUntil(Side s, uint16_t id, uint16_t sentinel_id, bool* seen) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  uint8_t buf[65536];
  const rules::IpAddr sentinel_src = dataplane::ipAddr(kSentinel[s == kClient ? 1 : 0]);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_[s], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd_[s], buf, sizeof buf, MSG_DONTWAIT);
    if (n < 34 || buf[12] != 0x08 || buf[13] != 0x00) continue;
    const uint16_t got = static_cast<uint16_t>(buf[18] << 8 | buf[19]);
    if (got == sentinel_id && rules::IpAddr::fromV4Bytes(buf + 26) == sentinel_src) return true;
    if (got == id) *seen = true;
  }
  return false;
}

Status Lab::inject(Side side, Bytes* frame_io, uint64_t* sent_ns, bool* forwarded) {
  auto nextId = [&] {
    if (next_id_ == 0) ++next_id_;
    return next_id_++;
  };
  const uint16_t id = nextId();
  const uint16_t sid = nextId();
  Bytes& frame = *frame_io;
  std::memcpy(frame.data(), router_mac_[side].data(), 6);
  std::memcpy(frame.data() + 6, host_mac_[side].data(), 6);
  fixIpv4(frame, id);
  const Side other = side == kClient ? kServer : kClient;
  Bytes sentinel =
      dataplane::buildUdp({.src = dataplane::ipAddr(kSentinel[side]),
                           .dst = dataplane::ipAddr(kSentinel[other]),
                           .sport = 9,
                           .dport = 9},
                          {.src_mac = host_mac_[side], .dst_mac = router_mac_[side], .ip_id = sid});
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex_[side];
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, router_mac_[side].data(), 6);
  *forwarded = false;
  *sent_ns = wallNs();
  for (const Bytes* f : {&frame, &sentinel}) {
    if (::sendto(fd_[side], f->data(), f->size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) !=
        static_cast<ssize_t>(f->size())) {
      return Status::failure(std::string("sendto: ") + std::strerror(errno));
    }
  }
  if (!drainUntil(other, id, sid, forwarded)) {
    return Status::failure(
        "the sentinel sent after the packet did not cross the router within 5 s");
  }
  return Status::success();
}

}  // namespace statewall::kerneltest
