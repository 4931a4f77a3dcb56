// The real inline test (root): a client and a server network namespace, each joined by a veth
// pair to the host, where statewalld bridges the two host-side ends with net_af_packet. Client and
// server share one subnet (10.99.0.0/24), so every frame between them crosses the appliance.
//
// The server's group allows inbound tcp 80 and udp 5353 and has no outbound rules; a second server
// address also allows ICMP echo. Through the running appliance: HTTP works (replies pass by
// tracking alone), tcp 2222 is blocked although a listener is there, a UDP request gets its answer,
// ping is answered only at the address whose group allows it, and a connection the server opens to
// the client fails. Then the appliance's counters by reason are checked.
//
// Needs root (namespaces, veths, ethtool) plus ip, ethtool, curl, ping and python3. All traffic
// stays inside this test's namespaces; names carry the pid and everything is removed afterwards.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dpdk_test_util.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPolicy = R"(version: 1
groups:
  server:
    inbound:
      - {proto: tcp, ports: 80, from: 10.99.0.0/24}
      - {proto: udp, ports: 5353, from: 10.99.0.0/24}
    outbound: []
  pingable:
    inbound:
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 10.99.0.0/24}
    outbound: []
interfaces:
  server-quiet: {addresses: [10.99.0.2], groups: [server]}
  server-ping: {addresses: [10.99.0.3], groups: [server, pingable]}
)";

// probe.py tcp HOST PORT SECONDS: exit 0 connected, 1 timed out, 2 refused or other error.
// probe.py udp HOST PORT SECONDS: three tries; exit 0 when the echo came back, 1 when none did.
// probe.py listen-tcp PORT / listen-udp-echo PORT: serve forever, print "ready" once bound.
constexpr const char* kProbe = R"(import socket, sys, time
mode = sys.argv[1]
if mode == "tcp":
    s = socket.socket()
    s.settimeout(float(sys.argv[4]))
    try:
        s.connect((sys.argv[2], int(sys.argv[3])))
        sys.exit(0)
    except socket.timeout:
        sys.exit(1)
    except OSError:
        sys.exit(2)
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(float(sys.argv[4]))
    for i in range(3):
        msg = b"statewall-probe-%d" % i
        s.sendto(msg, (sys.argv[2], int(sys.argv[3])))
        try:
            data, _ = s.recvfrom(2048)
            if data == msg:
                sys.exit(0)
        except socket.timeout:
            pass
    sys.exit(1)
elif mode == "listen-tcp":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        c.close()
elif mode == "listen-udp-echo":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
)";

int sh(const std::string& cmd, const TempDir& dir, std::string* out = nullptr) {
  static int serial = 0;
  RunResult r = run({"/bin/sh", "-c", cmd}, dir, "sh" + std::to_string(serial++), 60s);
  if (out != nullptr) *out = r.out + r.err;
  return r.code;
}

bool haveTool(const std::string& tool, const TempDir& dir) {
  return sh("command -v " + tool + " >/dev/null 2>&1", dir) == 0;
}

// Two namespaces and two veth pairs, removed in the destructor.
class Topology {
 public:
  explicit Topology(const TempDir& dir) : dir_(dir) {
    const std::string id = std::to_string(getpid());
    client_ns = "swc" + id;
    server_ns = "sws" + id;
    client_host = "swca" + id;  // host-side ends, where the appliance attaches
    server_host = "swsa" + id;
    client_if = "swcb" + id;  // inside the namespaces
    server_if = "swsb" + id;
  }
  ~Topology() {
    // Deleting a namespace removes the veth end in it, and with it the pair.
    sh("ip netns del " + client_ns + " 2>/dev/null; ip netns del " + server_ns +
           " 2>/dev/null; ip link del " + client_host + " 2>/dev/null; ip link del " + server_host +
           " 2>/dev/null; true",
       dir_);
  }

  // Returns an empty string on success, else the failing command and its output. `mtu`: of all
  // four veth ends (0: the default).
  std::string create(unsigned mtu = 0) {
    const std::string off = " tx off rx off gso off gro off tso off";
    const std::vector<std::string> cmds = {
        "ip netns add " + client_ns,
        "ip netns add " + server_ns,
        "ip link add " + client_host + " type veth peer name " + client_if,
        "ip link add " + server_host + " type veth peer name " + server_if,
        "ip link set " + client_if + " netns " + client_ns,
        "ip link set " + server_if + " netns " + server_ns,
        // No IPv6 anywhere: no router solicitations or MLD reports in the counters.
        "echo 1 > /proc/sys/net/ipv6/conf/" + client_host + "/disable_ipv6",
        "echo 1 > /proc/sys/net/ipv6/conf/" + server_host + "/disable_ipv6",
        inNs(client_ns, "sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'"),
        inNs(server_ns, "sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'"),
        // Real frames with real checksums for af_packet: no offloads on either end.
        "ethtool -K " + client_host + off,
        "ethtool -K " + server_host + off,
        inNs(client_ns, "ethtool -K " + client_if + off),
        inNs(server_ns, "ethtool -K " + server_if + off),
        "ip link set " + client_host + " up",
        "ip link set " + server_host + " up",
        inNs(client_ns, "ip link set lo up"),
        inNs(server_ns, "ip link set lo up"),
        inNs(client_ns, "ip addr add 10.99.0.1/24 dev " + client_if),
        inNs(server_ns, "ip addr add 10.99.0.2/24 dev " + server_if),
        inNs(server_ns, "ip addr add 10.99.0.3/24 dev " + server_if),
        inNs(client_ns, "ip link set " + client_if + " up"),
        inNs(server_ns, "ip link set " + server_if + " up"),
    };
    std::vector<std::string> all = cmds;
    if (mtu != 0) {
      const std::string m = " mtu " + std::to_string(mtu);
      all.insert(all.begin() + 6,
                 {"ip link set " + client_host + m, "ip link set " + server_host + m,
                  inNs(client_ns, "ip link set " + client_if + m),
                  inNs(server_ns, "ip link set " + server_if + m)});
    }
    for (const std::string& c : all) {
      std::string out;
      if (sh(c + " 2>&1", dir_, &out) != 0) return c + ": " + out;
    }
    return "";
  }

  static std::string inNs(const std::string& ns, const std::string& cmd) {
    return "ip netns exec " + ns + " " + cmd;
  }

  std::string client_ns, server_ns, client_host, server_host, client_if, server_if;

 private:
  const TempDir& dir_;
};

TEST(InlineTest, ApplianceBetweenNamespaces) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  TempDir dir;
  for (const char* tool : {"ip", "ethtool", "curl", "ping", "python3"})
    ASSERT_TRUE(haveTool(tool, dir)) << tool << " is not installed";

  Topology topo(dir);
  const std::string err = topo.create();
  ASSERT_EQ(err, "") << "network setup failed";

  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  const std::string probe = dir / "probe.py";
  writeText(probe, kProbe);
  const std::string www = dir / "www";
  std::filesystem::create_directories(www);
  writeText(www + "/index.html", "statewall-inline-ok\n");

  // The appliance: inside = the server side, outside = the client side.
  const std::string counters = dir / "counters.json";
  std::vector<std::string> argv = {statewalldPath()};
  for (const auto& a : ealArgs(1, "inline"))
    argv.push_back(a);
  const std::vector<std::string> rest = {"--vdev=net_af_packet0,iface=" + topo.server_host,
                                         "--vdev=net_af_packet1,iface=" + topo.client_host,
                                         "--",
                                         "--policy",
                                         policy,
                                         "--inside",
                                         "net_af_packet0",
                                         "--outside",
                                         "net_af_packet1",
                                         "--idle-sleep",
                                         "20",
                                         "--counters-file",
                                         counters};
  argv.insert(argv.end(), rest.begin(), rest.end());
  auto app = std::make_unique<Process>(argv, dir / "statewalld.out", dir / "statewalld.err");
  ASSERT_TRUE(app->waitForOutput("statewalld: running", 60s)) << app->out() << app->err();

  // Servers and the client's listener, each in its namespace (sh finds ip and python3 on PATH;
  // exec keeps one process to kill).
  auto ns = [](const std::string& n, const std::string& cmd) {
    return std::vector<std::string>{"/bin/sh", "-c", "exec " + Topology::inNs(n, cmd)};
  };
  Process http(
      ns(topo.server_ns, "python3 -u -m http.server 80 --bind 10.99.0.2 --directory " + www),
      dir / "http.out", dir / "http.err");
  Process blocked(ns(topo.server_ns, "python3 -u " + probe + " listen-tcp 2222"), dir / "l2222.out",
                  dir / "l2222.err");
  Process echo(ns(topo.server_ns, "python3 -u " + probe + " listen-udp-echo 5353"),
               dir / "echo.out", dir / "echo.err");
  Process client_listener(ns(topo.client_ns, "python3 -u " + probe + " listen-tcp 8080"),
                          dir / "l8080.out", dir / "l8080.err");
  ASSERT_TRUE(http.waitForOutput("Serving HTTP", 30s)) << http.err();
  ASSERT_TRUE(blocked.waitForOutput("ready", 30s)) << blocked.err();
  ASSERT_TRUE(echo.waitForOutput("ready", 30s)) << echo.err();
  ASSERT_TRUE(client_listener.waitForOutput("ready", 30s)) << client_listener.err();

  auto client = [&](const std::string& cmd, std::string* out = nullptr) {
    return sh(Topology::inNs(topo.client_ns, cmd), dir, out);
  };
  auto server = [&](const std::string& cmd, std::string* out = nullptr) {
    return sh(Topology::inNs(topo.server_ns, cmd), dir, out);
  };

  // The listeners work where no appliance is in the way, so a failure below is the appliance's.
  ASSERT_EQ(server("python3 " + probe + " tcp 127.0.0.1 2222 3"), 0);
  ASSERT_EQ(client("python3 " + probe + " tcp 127.0.0.1 8080 3"), 0);

  // 1. HTTP from the client: allowed by the inbound rule; the replies by tracking alone.
  std::string body;
  EXPECT_EQ(client("curl -s -m 10 --retry 2 http://10.99.0.2/", &body), 0) << body;
  EXPECT_NE(body.find("statewall-inline-ok"), std::string::npos) << body;
  // 2. tcp 2222: a listener is there, the appliance drops the SYN.
  EXPECT_EQ(client("python3 " + probe + " tcp 10.99.0.2 2222 3"), 1) << "2222 not blocked";
  // 3. UDP 5353: the request passes by rule, the answer by tracking.
  EXPECT_EQ(client("python3 " + probe + " udp 10.99.0.2 5353 2"), 0) << "no UDP echo";
  // 4. ping: answered where a rule allows echo requests (10.99.0.3), not elsewhere.
  std::string ping_out;
  EXPECT_EQ(client("ping -n -c 2 -W 2 10.99.0.3", &ping_out), 0) << ping_out;
  EXPECT_NE(client("ping -n -c 2 -W 2 10.99.0.2", &ping_out), 0) << ping_out;
  // 5. The server has no outbound rules: it cannot open a connection to the client.
  EXPECT_EQ(server("python3 " + probe + " tcp 10.99.0.1 8080 3"), 1) << "server got out";

  app->signal(SIGTERM);
  ASSERT_EQ(app->wait(60s), 0) << app->out() << app->err();
  const std::string out = app->out();
  EXPECT_NE(out.find("Terminated: stopping"), std::string::npos) << out;
  const std::string text = readText(counters);
  ASSERT_FALSE(text.empty()) << out << app->err();
  const nlohmann::json c = nlohmann::json::parse(text);
  auto n = [&](const char* reason) { return c["reasons"][reason]["packets"].get<uint64_t>(); };
  // Opened by rule: the HTTP SYN, the first UDP request, the first echo request to 10.99.0.3
  // (ping keeps one echo id, so the second request belongs to the same tracked connection).
  EXPECT_GE(n("allow-rule"), 3u) << text;
  EXPECT_GE(c["connections"]["created"].get<uint64_t>(), 3u) << text;
  // Replies and continuations: SYN-ACK, the HTTP response and ACKs, the UDP answer, echo replies.
  EXPECT_GE(n("allow-tracked"), 6u) << text;
  // Denied by the groups: the SYN(s) to 2222, two echo requests to 10.99.0.2, the server's SYN(s).
  EXPECT_GE(n("deny-sg"), 4u) << text;
  EXPECT_EQ(n("deny-malformed"), 0u) << "af_packet delivered frames the parser rejects";
  EXPECT_EQ(n("deny-invalid"), 0u);
  EXPECT_EQ(n("deny-table-full"), 0u);
  uint64_t sum = 0;
  for (const auto& [code, v] : c["reasons"].items())
    sum += v["packets"].get<uint64_t>();
  EXPECT_EQ(sum, c["packets_in"].get<uint64_t>());
  EXPECT_EQ(c["io"]["rx_packets"], c["packets_in"]);
  EXPECT_EQ(c["io"]["tx_packets"].get<uint64_t>() + c["io"]["tx_dropped"].get<uint64_t>(),
            c["allowed"].get<uint64_t>());
  EXPECT_EQ(c["mbuf_pool"]["full"], true);
}

}  // namespace
}  // namespace statewall::dpdk_test

namespace statewall::dpdk_test {
namespace {

// One veth pair in the host namespace, removed in the destructor: two ports for statewalld
// without any traffic.
class VethPair {
 public:
  explicit VethPair(const TempDir& dir) : dir_(dir) {
    const std::string id = std::to_string(getpid());
    a = "swla" + id;
    b = "swlb" + id;
  }
  ~VethPair() { sh("ip link del " + a + " 2>/dev/null; true", dir_); }
  std::string create() {
    for (const std::string& c : {"ip link add " + a + " type veth peer name " + b,
                                 "ip link set " + a + " up", "ip link set " + b + " up"}) {
      std::string out;
      if (sh(c + " 2>&1", dir_, &out) != 0) return c + ": " + out;
    }
    return "";
  }
  std::string a, b;

 private:
  const TempDir& dir_;
};

std::vector<std::string> afPacketArgv(const std::string& tag, const std::string& inside_if,
                                      const std::string& outside_if, const std::string& policy,
                                      const std::vector<std::string>& app) {
  std::vector<std::string> argv = {statewalldPath()};
  for (const auto& a : ealArgs(1, tag))
    argv.push_back(a);
  argv.insert(argv.end(), {"--vdev=net_af_packet0,iface=" + inside_if,
                           "--vdev=net_af_packet1,iface=" + outside_if, "--", "--policy", policy,
                           "--inside", "net_af_packet0", "--outside", "net_af_packet1"});
  argv.insert(argv.end(), app.begin(), app.end());
  return argv;
}

// A second statewalld on the interfaces of a running one exits 2 naming the first one's pid
// (both would otherwise forward every frame).
TEST(InlineTest, SecondInstanceOnTheSameInterfacesIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (veth, af_packet)";
  TempDir dir;
  VethPair veth(dir);
  ASSERT_EQ(veth.create(), "");
  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  const std::string locks = dir / "locks";
  Process first(
      afPacketArgv("lock1", veth.a, veth.b, policy, {"--idle-sleep", "1000", "--lock-dir", locks}),
      dir / "first.out", dir / "first.err");
  ASSERT_TRUE(first.waitForOutput("statewalld: running", 60s)) << first.out() << first.err();

  RunResult r =
      run(afPacketArgv("lock2", veth.a, veth.b, policy, {"--lock-dir", locks}), dir, "second", 60s);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("interface " + veth.a + "): in use by another statewalld (pid " +
                       std::to_string(first.pid()) + ")"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("statewalld: running"), std::string::npos) << r.out;

  first.signal(SIGTERM);
  EXPECT_EQ(first.wait(60s), 0) << first.out() << first.err();
  // Its locks died with it: the interfaces are free again.
  Process again(
      afPacketArgv("lock4", veth.a, veth.b, policy, {"--idle-sleep", "1000", "--lock-dir", locks}),
      dir / "again.out", dir / "again.err");
  EXPECT_TRUE(again.waitForOutput("statewalld: running", 60s)) << again.out() << again.err();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait(60s), 0) << again.out() << again.err();
}

// Jumbo frames: every link at MTU 9000, a 2 MB download through the appliance succeeds (its
// 9000-byte frames used to arrive cut to af_packet's 2048-byte slots and be denied as malformed),
// and statewalld says how it sized the rings.
TEST(InlineTest, JumboFramesPassAtMtu9000) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  TempDir dir;
  for (const char* tool : {"ip", "ethtool", "curl", "python3"})
    ASSERT_TRUE(haveTool(tool, dir)) << tool << " is not installed";
  Topology topo(dir);
  ASSERT_EQ(topo.create(9000), "") << "network setup failed";
  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  const std::string www = dir / "www";
  std::filesystem::create_directories(www);
  std::string blob(2 * 1024 * 1024, '\0');
  for (size_t i = 0; i < blob.size(); ++i)
    blob[i] = static_cast<char>('a' + (i * 7919 + i / 4096) % 26);
  writeText(www + "/blob.bin", blob);

  const std::string counters = dir / "counters.json";
  Process app(afPacketArgv(
                  "jumbo", topo.server_host, topo.client_host, policy,
                  {"--idle-sleep", "20", "--counters-file", counters, "--lock-dir", dir / "locks"}),
              dir / "statewalld.out", dir / "statewalld.err");
  ASSERT_TRUE(app.waitForOutput("statewalld: running", 60s)) << app.out() << app.err();
  EXPECT_NE(app.out().find("interface " + topo.server_host + " has MTU 9000: receiving into"),
            std::string::npos)
      << app.out();
  EXPECT_EQ(app.err().find("warning"), std::string::npos) << app.err();

  Process http({"/bin/sh", "-c",
                "exec " + Topology::inNs(topo.server_ns,
                                         "python3 -u -m http.server 80 --bind "
                                         "10.99.0.2 --directory " +
                                             www)},
               dir / "http.out", dir / "http.err");
  ASSERT_TRUE(http.waitForOutput("Serving HTTP", 30s)) << http.err();
  const std::string got = dir / "got.bin";
  std::string out;
  EXPECT_EQ(sh(Topology::inNs(topo.client_ns,
                              "curl -s -S -m 60 -o " + got + " http://10.99.0.2/blob.bin"),
               dir, &out),
            0)
      << out;
  EXPECT_TRUE(readText(got) == blob)
      << "the download differs (" << readText(got).size() << " bytes)";

  app.signal(SIGTERM);
  ASSERT_EQ(app.wait(60s), 0) << app.out() << app.err();
  const nlohmann::json c = nlohmann::json::parse(readText(counters));
  EXPECT_EQ(c["reasons"]["deny-malformed"]["packets"], 0) << c.dump();
  EXPECT_EQ(c["io"]["oversize"], 0) << c.dump();
  EXPECT_EQ(c["mbuf_pool"]["full"], true);
}

// Frames longer than the af_packet slots (the operator fixed framesz= below the MTU): a startup
// warning, and the cut-short frames are counted as oversize, never as a policy denial.
TEST(InlineTest, FramesCutShortAreOversizeNotMalformed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  TempDir dir;
  Topology topo(dir);
  ASSERT_EQ(topo.create(9000), "") << "network setup failed";
  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  std::vector<std::string> argv = afPacketArgv(
      "cut", topo.server_host, topo.client_host, policy,
      {"--idle-sleep", "20", "--counters-file", dir / "counters.json", "--lock-dir", dir / "l"});
  for (std::string& a : argv)
    if (a.rfind("--vdev=", 0) == 0) a += ",framesz=2048";
  Process app(argv, dir / "statewalld.out", dir / "statewalld.err");
  ASSERT_TRUE(app.waitForOutput("statewalld: running", 60s)) << app.out() << app.err();
  EXPECT_NE(
      app.err().find("warning: inside port net_af_packet0 (port 0): interface " + topo.server_host +
                     " has MTU 9000 but the port receives frames of at "
                     "most"),
      std::string::npos)
      << app.err();
  // A 5000-byte ping: one frame over the slot (ICMP to 10.99.0.3 is allowed by the policy).
  std::string out;
  sh(Topology::inNs(topo.client_ns, "ping -n -c 2 -W 1 -s 5000 -M do 10.99.0.3"), dir, &out);
  app.signal(SIGTERM);
  ASSERT_EQ(app.wait(60s), 0) << app.out() << app.err();
  const nlohmann::json c = nlohmann::json::parse(readText(dir / "counters.json"));
  EXPECT_GE(c["io"]["oversize"].get<uint64_t>(), 2u) << c.dump();
  EXPECT_EQ(c["reasons"]["deny-malformed"]["packets"], 0) << c.dump();
}

// A mistyped interface: the last line, the one an operator reads, names the missing interface
// (not only "no DPDK port 'net_af_packet0'", the consequence).
TEST(InlineTest, AMistypedInterfaceIsTheHeadline) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (af_packet)";
  TempDir dir;
  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  const std::string typo = "swtypo" + std::to_string(getpid());
  RunResult r = run(afPacketArgv("typo", typo, "lo", policy, {"--lock-dir", dir / "locks"}), dir,
                    "typo", 60s);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  // DPDK's own lines (af_packet's SIOCGIFINDEX failure) carry statewalld's prefix too.
  EXPECT_NE(r.err.find("statewalld: dpdk: "), std::string::npos) << r.err;
  std::string last = r.err;
  while (!last.empty() && last.back() == '\n')
    last.pop_back();
  last = last.substr(last.rfind('\n') + 1);
  EXPECT_EQ(
      last.rfind("statewalld: inside port net_af_packet0: no such network interface '" + typo +
                     "' (--vdev=net_af_packet0,iface=" + typo + "); this network namespace has: lo",
                 0),
      0u)
      << r.err;
}

// A PMD other than af_packet on kernel interfaces (net_pcap iface=): the port MTU follows the
// links when they agree, and a link whose MTU is over the port's is named at startup. (Failed
// before: these ports kept 1500 whatever the links had, without a word.)
TEST(InlineTest, PcapPortsFollowTheirLinksMtuAndWarnAboutALargerOne) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  TempDir dir;
  ASSERT_TRUE(haveTool("ip", dir) && haveTool("ethtool", dir));
  Topology topo(dir);
  ASSERT_EQ(topo.create(), "") << "network setup failed";
  const std::string policy = dir / "policy.yaml";
  writeText(policy, kPolicy);
  auto start = [&](const std::string& tag) {
    std::vector<std::string> argv = {statewalldPath()};
    for (const auto& a : ealArgs(1, tag))
      argv.push_back(a);
    argv.push_back("--vdev=net_pcap0,iface=" + topo.server_host);
    argv.push_back("--vdev=net_pcap1,iface=" + topo.client_host);
    argv.insert(argv.end(), {"--", "--policy", policy, "--inside", "net_pcap0", "--outside",
                             "net_pcap1", "--lock-dir", dir / "locks", "--idle-sleep", "1000"});
    return argv;
  };
  // Both links at 9000: the ports take it (larger mbufs: net_pcap cannot chain them).
  ASSERT_EQ(sh("ip link set " + topo.server_host + " mtu 9000 && ip link set " + topo.client_host +
                   " mtu 9000",
               dir),
            0);
  {
    Process p(start("mtu9000"), dir / "a.out", dir / "a.err");
    ASSERT_TRUE(p.waitForOutput("running", 60s)) << p.out() << p.err();
    EXPECT_NE(p.out().find("port MTU 9000 (interface " + topo.server_host + "'s MTU)"),
              std::string::npos)
        << p.out();
    EXPECT_NE(p.out().find("inside net_pcap0 (port 0): 1 rx / 1 tx queues, MTU 9000"),
              std::string::npos)
        << p.out();
    EXPECT_EQ(p.err().find("warning"), std::string::npos) << p.err();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
  }
  // The client side back at 1500: a 9000-byte frame cannot cross; the server side is named.
  ASSERT_EQ(sh("ip link set " + topo.client_host + " mtu 1500", dir), 0);
  {
    Process p(start("mtu1500"), dir / "b.out", dir / "b.err");
    ASSERT_TRUE(p.waitForOutput("running", 60s)) << p.out() << p.err();
    EXPECT_NE(p.out().find("port MTU 1500 (interface " + topo.client_host + "'s MTU)"),
              std::string::npos)
        << p.out();
    EXPECT_NE(p.err().find("warning: inside port net_pcap0 (port 0): interface " +
                           topo.server_host + " has MTU 9000 but the port's MTU is 1500"),
              std::string::npos)
        << p.err();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
  }
}

}  // namespace
}  // namespace statewall::dpdk_test
