// statewalld --gwlb --exception-tap (docs/deploy-gwlb.md "The exception path"): which frames go to
// the Linux stack (without an EAL), the options, and a real one-arm deployment in two network
// namespaces (root): statewalld on net_af_packet over the appliance's veth end, which carries no
// address and on which the appliance's own stack neither answers ARP nor accepts packets
// (arp_ignore, rp_filter), so every answer from its kernel came through the net_tap port: ping and
// ARP, the
// --health-port check over TCP, and GENEVE still returned; a frame to another address is counted
// as dropped, not given to the kernel.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "common/netns_pair.hpp"
#include "common/wait_for.hpp"
#include "dpdk_test_util.hpp"
#include "parse_util.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dpdk/exception.hpp"
#include "statewall/dpdk/gwlb.hpp"
#include "statewall/dpdk/options.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;
using dataplane::Bytes;
using dataplane::FrameOptions;
using dataplane::ipAddr;
using statewall::testing::NamespacePair;
using statewall::testing::waitFor;

TEST(GwlbExceptionFrames, TheKernelGetsArpIcmpAndHealthChecksToUsOnly) {
  const rules::IpAddr me = ipAddr("10.9.0.5");
  const rules::IpAddr node = ipAddr("10.9.0.1");
  const rules::IpAddr other = ipAddr("10.9.0.6");
  const rules::IpAddr me6 = ipAddr("2001:db8:9::5");
  FrameOptions tagged;
  tagged.vlans.push_back({.vid = 7});
  dataplane::NdSpec ns_me{
      .src = ipAddr("2001:db8:9::1"), .dst = ipAddr("ff02::1:ff00:5"), .target = me6};
  dataplane::NdSpec ns_other = ns_me;
  ns_other.dst = ipAddr("ff02::1:ff00:6");
  ns_other.target = ipAddr("2001:db8:9::6");
  struct Case {
    const char* what;
    Bytes frame;
    rules::IpAddr address;
    bool kernel;
  };
  const Case cases[] = {
      {"ARP request for us", dataplane::buildArp({.sender_ip = node, .target_ip = me}), me, true},
      {"ARP reply to us", dataplane::buildArp({.op = 2, .sender_ip = node, .target_ip = me}), me,
       true},
      {"ARP for another address", dataplane::buildArp({.sender_ip = node, .target_ip = other}), me,
       false},
      {"ping to us", dataplane::buildIcmpEcho({.src = node, .dst = me}), me, true},
      {"ping to another address", dataplane::buildIcmpEcho({.src = node, .dst = other}), me, false},
      {"health check SYN to us",
       dataplane::buildTcp({.src = node, .dst = me, .dport = 80, .flags = dataplane::kSyn}), me,
       true},
      {"health check SYN elsewhere",
       dataplane::buildTcp({.src = node, .dst = other, .dport = 80, .flags = dataplane::kSyn}), me,
       false},
      {"UDP to us, not GENEVE", dataplane::buildUdp({.src = node, .dst = me, .dport = 53}), me,
       true},
      {"VLAN-tagged ping to us", dataplane::buildIcmpEcho({.src = node, .dst = me}, tagged), me,
       false},
      {"ICMPv6 echo to us", dataplane::buildIcmpEcho({.src = ipAddr("2001:db8:9::1"), .dst = me6}),
       me6, true},
      {"neighbour solicitation for us", dataplane::buildNd(ns_me), me6, true},
      {"neighbour solicitation for another", dataplane::buildNd(ns_other), me6, false},
      {"not IP at all", dataplane::buildEthertype(0x88cc, Bytes(40, 0)), me, false},
  };
  for (const Case& c : cases)
    EXPECT_EQ(dpdk::gwlbForKernel(c.frame.data(), static_cast<uint32_t>(c.frame.size()), c.address),
              c.kernel)
        << c.what;
}

TEST(GwlbExceptionOptions, ExceptionTapAndAddressPrefix) {
  auto parse = [](std::vector<std::string> args) {
    args.insert(args.begin(), {"--policy", "/dev/null"});
    return parseStatewalld(args);
  };
  const std::vector<std::string> gwlb = {"--gwlb", "--port", "0", "--address", "10.9.0.5/24"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> a = gwlb;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  dpdk::ParseResult named = parse(with({"--exception-tap", "gwlb-exc0"}));
  ASSERT_TRUE(named.options) << named.message;
  EXPECT_EQ(named.options->exception_tap, "gwlb-exc0");
  EXPECT_EQ(named.options->address, "10.9.0.5/24");
  dpdk::ParseResult bare = parse(with({"--exception-tap", "--health-port", "8080"}));
  ASSERT_TRUE(bare.options) << bare.message;
  EXPECT_EQ(bare.options->exception_tap, dpdk::kDefaultExceptionTap);
  EXPECT_EQ(bare.options->health_port, 8080);
  dpdk::ParseResult off = parse(gwlb);
  ASSERT_TRUE(off.options) << off.message;
  EXPECT_EQ(off.options->exception_tap, "");

  // In a --config file: a name, or true for the default one, false for none.
  TempDir dir;
  for (const auto& [value, want] : std::vector<std::pair<std::string, std::string>>{
           {"gwlb-exc1", "gwlb-exc1"}, {"true", dpdk::kDefaultExceptionTap}, {"false", ""}}) {
    writeText(dir / "c.yaml",
              "policy: /dev/null\ngwlb: true\nport: \"0\"\naddress: 10.9.0.5\n"
              "exception-tap: " +
                  value + "\n");
    dpdk::ParseResult r = parseStatewalld({"--config", dir / "c.yaml"});
    ASSERT_TRUE(r.options) << value << ": " << r.message;
    EXPECT_EQ(r.options->exception_tap, want) << value;
  }

  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {with({"--exception-tap", "a-name-far-too-long"}), "at most 15"},
      {with({"--exception-tap", "tap,mac=x"}), "letters, digits"},
      {{"--inside", "0", "--outside", "1", "--exception-tap", "t0"}, "--gwlb"},
      {{"--gwlb", "--port", "0", "--address", "10.9.0.5/33"}, "/LEN"},
      {{"--gwlb", "--port", "0", "--address", "10.9.0.5/"}, "/LEN"},
  };
  for (const auto& [args, want] : bad) {
    dpdk::ParseResult r = parse(args);
    EXPECT_FALSE(r.options) << want;
    EXPECT_EQ(r.exit_code, 2) << want;
    EXPECT_NE(r.message.find(want), std::string::npos) << r.message;
  }
  const std::optional<dpdk::GwlbAddress> v6 = dpdk::parseGwlbAddress("2001:db8:9::5/64");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->ip, ipAddr("2001:db8:9::5"));
  EXPECT_EQ(v6->prefix, 64);
  EXPECT_EQ(dpdk::parseGwlbAddress("10.9.0.5")->prefix, 32);
}

// An interface of the tap's name exists (lo, everywhere): statewalld says so and exits 2 before
// touching it.
TEST(GwlbExceptionOptions, AnExistingInterfaceNameIsRefused) {
  TempDir dir;
  writeText(dir / "policy.yaml", "version: 1\n");
  std::vector<std::string> argv = {statewalldPath()};
  for (const std::string& a : ealArgs(1, "exc-lo"))
    argv.push_back(a);
  for (const std::string& a :
       {std::string("--vdev=net_null0"), std::string("--"), std::string("--policy"),
        dir / "policy.yaml", std::string("--gwlb"), std::string("--port"), std::string("net_null0"),
        std::string("--address"), std::string("10.9.0.5"), std::string("--exception-tap"),
        std::string("lo"), std::string("--lock-dir"), dir / "locks"})
    argv.push_back(a);
  RunResult r = run(argv, dir, "lo", 60s);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--exception-tap lo: a network interface of that name exists already"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(NamespacePair::sh("ip link show lo >/dev/null 2>&1"), 0);
}

// raw.py send IFACE HEX: writes one Ethernet frame. raw.py exchange IFACE HEX SECONDS: writes it
// and waits for the frame the GWLB appliance returns (Ethernet and IPv4 addresses swapped,
// everything else equal); exit 0 when it came, 1 when not.
constexpr const char* kRaw = R"(import socket, sys, time
iface, frame = sys.argv[2], bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((iface, 0))
s.send(frame)
if sys.argv[1] == "send":
    sys.exit(0)
want = frame[6:12] + frame[0:6] + frame[12:26] + frame[30:34] + frame[26:30] + frame[34:]
deadline = time.time() + float(sys.argv[4])
while time.time() < deadline:
    s.settimeout(max(0.01, deadline - time.time()))
    try:
        data, addr = s.recvfrom(65536)
    except socket.timeout:
        break
    if addr[2] != socket.PACKET_OUTGOING and data == want:
        sys.exit(0)
sys.exit(1)
)";

constexpr const char* kPolicy = R"(version: 1
groups:
  dns:
    inbound:
      - {proto: udp, ports: 53, from: 198.51.100.0/24}
    outbound: []
interfaces:
  dns-1: {addresses: [10.0.1.10], groups: [dns]}
)";

std::string hex(const Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

dataplane::MacAddr parseMac(const std::string& text) {
  dataplane::MacAddr m{};
  unsigned v[6] = {};
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6)
    for (int i = 0; i < 6; ++i)
      m[i] = static_cast<uint8_t>(v[i]);
  return m;
}

// The value of `statewall_gwlb_frames_total{kind="KIND"}` in a /metrics text, -1 when absent.
long long gwlbFrames(const std::string& metrics, const std::string& kind) {
  const std::string key = "statewall_gwlb_frames_total{kind=\"" + kind + "\"} ";
  const size_t at = metrics.find(key);
  return at == std::string::npos ? -1 : std::stoll(metrics.substr(at + key.size()));
}

TEST(GwlbExceptionNetns, TheKernelAnswersArpPingAndHealthChecksThroughTheTap) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  TempDir dir;
  for (const char* tool : {"ip", "ethtool", "curl", "ping", "python3"})
    ASSERT_EQ(NamespacePair::sh(std::string("command -v ") + tool + " >/dev/null 2>&1"), 0)
        << tool << " is not installed";

  // a: the appliance, b: the load balancer. The appliance's veth end loses its address; its own
  // stack answers no ARP there (arp_ignore 1: only for addresses of the interface) and takes no
  // packet from it (rp_filter 1: the way back to 10.98.0.2 is the tap), although 10.98.0.5 is
  // one of its addresses once the tap exists: whatever answers at 10.98.0.5 is the kernel behind
  // statewalld's tap. No transmit checksum offload on either end: af_packet must see whole
  // checksums, which the kernel behind the tap checks.
  NamespacePair ns("gx");
  ASSERT_EQ(ns.setup("10.98.0"), "");
  const std::string va = ns.vethA(), vb = ns.vethB();
  const std::string off = " tx off rx off gso off gro off tso off";
  for (const std::string& c : {ns.inA("ip addr flush dev " + va), ns.inA("ethtool -K " + va + off),
                               ns.inB("ethtool -K " + vb + off),
                               ns.inA("sysctl -qw net.ipv4.conf." + va +
                                      ".arp_ignore=1 net.ipv4.conf." + va + ".rp_filter=1")})
    ASSERT_EQ(NamespacePair::sh(c + " >/dev/null 2>&1"), 0) << c;
  const std::string tap = "swgxt" + std::to_string(getpid());
  RunResult mac =
      run({"/bin/sh", "-c", ns.inA("cat /sys/class/net/" + va + "/address")}, dir, "mac-a");
  RunResult mac_b =
      run({"/bin/sh", "-c", ns.inB("cat /sys/class/net/" + vb + "/address")}, dir, "mac-b");
  ASSERT_EQ(mac.code, 0);
  ASSERT_EQ(mac_b.code, 0);
  const std::string appliance_mac = mac.out.substr(0, 17);

  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  const std::string raw = dir / "raw.py";
  writeText(raw, kRaw);
  const std::string sock = dir / "ctl.sock";
  const std::string counters = dir / "counters.json";
  // Two forwarding lcores on two af_packet queues: frames for the kernel arrive on both, and the
  // second hands its own over to the first, which services the tap.
  std::string cmd = "exec " + ns.inA(statewalldPath());
  for (const std::string& a : ealArgs(2, "exc"))
    cmd += " " + a;
  cmd += " --vdev=net_af_packet0,iface=" + va + ",qpairs=2 -- --policy " + policy +
         " --gwlb --port net_af_packet0 --address 10.98.0.5/24 --exception-tap " + tap +
         " --health-port 8080 --control-socket " + sock + " --idle-sleep 20 --counters-file " +
         counters + " --lock-dir " + (dir / "locks");
  Process app({"/bin/sh", "-c", cmd}, dir / "statewalld.out", dir / "statewalld.err");
  ASSERT_TRUE(app.waitForOutput("statewalld: running", 60s)) << app.out() << app.err();

  // The tap carries the port's MAC and the address.
  RunResult link = run({"/bin/sh", "-c", ns.inA("ip -o addr show dev " + tap)}, dir, "addr");
  EXPECT_NE(link.out.find("inet 10.98.0.5/24"), std::string::npos) << link.out << link.err;
  RunResult lmac =
      run({"/bin/sh", "-c", ns.inA("cat /sys/class/net/" + tap + "/address")}, dir, "tap-mac");
  EXPECT_EQ(lmac.out.substr(0, 17), appliance_mac);

  auto metrics = [&] {
    return run({"/bin/sh", "-c",
                "curl -s --max-time 5 --unix-socket " + sock + " http://x/metrics"},
               dir, "metrics")
        .out;
  };

  // 1. ping (the load balancer's ARP for 10.98.0.5 first, answered by the kernel too).
  EXPECT_TRUE(waitFor(
      [&] { return NamespacePair::sh(ns.inB("ping -c 1 -W 1 10.98.0.5 >/dev/null 2>&1")) == 0; },
      30s, 100ms))
      << app.err();
  // The load balancer learnt the port's MAC for 10.98.0.5 from the kernel's ARP reply.
  RunResult neigh = run({"/bin/sh", "-c", ns.inB("ip neigh show 10.98.0.5")}, dir, "neigh");
  EXPECT_NE(neigh.out.find("lladdr " + appliance_mac), std::string::npos) << neigh.out;
  // 2. The health check: TCP to the control plane's --health-port, through the kernel.
  std::string code;
  EXPECT_TRUE(waitFor(
      [&] {
        code = run({"/bin/sh", "-c",
                    ns.inB("curl -s -o /dev/null -w '%{http_code}' --max-time 3 "
                           "http://10.98.0.5:8080/health")},
                   dir, "curl")
                   .out;
        return code == "200";
      },
      30s, 100ms))
      << "last status " << code << "\n"
      << app.err();

  // 3. GENEVE still comes back: one allowed inner packet, AWS-style (no options needed here).
  FrameOptions g;
  g.src_mac = parseMac(mac_b.out);
  g.dst_mac = parseMac(appliance_mac);
  dataplane::TunnelSpec t;
  t.kind = dataplane::EncapHeader::Kind::kGeneve;
  t.outer_src = ipAddr("10.98.0.2");
  t.outer_dst = ipAddr("10.98.0.5");
  t.sport = 61234;
  t.geneve_ip = true;
  g.tunnels.push_back(t);
  const Bytes geneve = dataplane::buildUdp(
      {.src = ipAddr("198.51.100.7"), .dst = ipAddr("10.0.1.10"), .dport = 53, .payload_len = 30},
      g);
  EXPECT_TRUE(waitFor(
      [&] {
        return NamespacePair::sh(ns.inB("python3 " + raw + " exchange " + vb + " " + hex(geneve) +
                                        " 2 >/dev/null 2>&1")) == 0;
      },
      30s, 100ms));

  // 4. A frame to another address is dropped and counted, not given to the kernel: nothing else
  // in this closed topology is addressed elsewhere, so not-geneve goes from 0 to exactly 1.
  const std::string before = metrics();
  ASSERT_EQ(gwlbFrames(before, "not-geneve"), 0) << before;
  FrameOptions plain;
  plain.src_mac = g.src_mac;
  plain.dst_mac = g.dst_mac;
  const Bytes elsewhere =
      dataplane::buildIcmpEcho({.src = ipAddr("10.98.0.2"), .dst = ipAddr("10.98.0.77")}, plain);
  ASSERT_EQ(
      NamespacePair::sh(ns.inB("python3 " + raw + " send " + vb + " " + hex(elsewhere) + " 2>&1")),
      0);
  std::string after;
  EXPECT_TRUE(waitFor(
      [&] {
        after = metrics();
        return gwlbFrames(after, "not-geneve") >= 1;
      },
      30s, 50ms))
      << after;
  EXPECT_EQ(gwlbFrames(after, "not-geneve"), 1) << after;
  EXPECT_GT(gwlbFrames(after, "to-kernel"), 0) << after;
  EXPECT_GT(gwlbFrames(after, "from-kernel"), 0) << after;
  EXPECT_EQ(gwlbFrames(after, "kernel-dropped"), 0) << after;
  // The same counters in GET /v1/stats (`statewall ctl stats`).
  const nlohmann::json stats = nlohmann::json::parse(
      run({"/bin/sh", "-c", "curl -s --max-time 5 --unix-socket " + sock + " http://x/v1/stats"},
          dir, "stats")
          .out,
      nullptr, false);
  ASSERT_TRUE(stats.is_object());
  EXPECT_EQ(stats["io"]["gwlb"]["not_geneve"], 1) << stats.dump();
  EXPECT_GT(stats["io"]["gwlb"]["to_kernel"], 0) << stats.dump();
  EXPECT_GT(stats["io"]["gwlb"]["from_kernel"], 0) << stats.dump();
  EXPECT_EQ(stats["io"]["gwlb"]["kernel_dropped"], 0) << stats.dump();

  app.signal(SIGTERM);
  ASSERT_EQ(app.wait(60s), 0) << app.out() << app.err();
  const nlohmann::json c = nlohmann::json::parse(readText(counters), nullptr, false);
  ASSERT_TRUE(c.is_object()) << readText(counters);
  EXPECT_GE(c["gwlb"]["returned"], 1);
  EXPECT_GT(c["gwlb"]["to_kernel"], 0);
  EXPECT_GT(c["gwlb"]["from_kernel"], 0);
  EXPECT_EQ(c["gwlb"]["not_geneve"], 1);
  EXPECT_EQ(c["ports"].size(), 2u);
  EXPECT_EQ(c["ports"][1]["role"], "exception");
  EXPECT_EQ(c["mbuf_pool"]["full"], true);
  EXPECT_NE((app.out() + app.err()).find("to kernel"), std::string::npos) << app.out();
  // The tap went with statewalld.
  EXPECT_NE(NamespacePair::sh(ns.inA("ip link show " + tap + " >/dev/null 2>&1")), 0);
}

}  // namespace
}  // namespace statewall::dpdk_test
