// A real one-arm fleet behind a Gateway Load Balancer (issue 17), in network namespaces (root):
//
//   client 10.210.1.2 --- lb (10.210.10.1) --- server 10.210.2.2
//                        /     |
//         appl1 10.210.11.2   appl2 10.210.12.2   (veths at MTU 9000)
//
// The load balancer is tests/tools/geneve_user.py `gwlb` in namespace lb (the kernel here has no
// geneve driver, and Linux's could not add AWS's options or spread flows anyway): policy routing
// sends what arrives from the client and the server into its TUN device; it wraps each packet in
// GENEVE with AWS's options, sends it to one appliance by a symmetric hash of the inner 5-tuple
// over the healthy ones, checks that what comes back carries the options byte for byte, and
// writes the inner packet back. Each appliance is one statewalld `--gwlb` on net_af_packet over
// its veth (no address on it), two forwarding lcores on two af_packet queues, `--exception-tap`
// for ARP, ICMP and the load balancer's HTTP health checks, answered by its kernel from
// statewalld's `--health-port`.
//
// Two lcores: the load balancer uses a different outer UDP source port for each direction of a
// flow, and the kernel's fanout hashes the outer header, so the two directions of a connection
// may be judged on different lcores; the connections pass (replies by tracking in the shared
// table, server-first packets denied) and each lcore returned GENEVE. Which lcore judged which
// packet of a connection is not observable from outside (the per-lcore counters are totals).
//
// Through the fleet: curl to a python3 http.server and a UDP exchange, spread over both
// appliances (the load balancer's flow table and each statewalld's counters say so). Then the
// appliance carrying three established TCP connections is stopped; the load balancer (failover
// `rebalance`) marks it unhealthy and re-hashes its flows to the other one, which picks them up as
// docs/semantics.md ("Mid-stream pickup") says and docs/deploy-gwlb.md ("Failover") documents:
//   - new connections (HTTP, UDP) pass;
//   - a moved connection whose client speaks first is picked up (the server's inbound rule allows
//     the client's packet) and the server's answer passes by tracking;
//   - a moved connection whose server speaks first is denied (`deny-sg`: the server has no
//     outbound rules) until the client speaks, and then the server's retransmission passes;
//   - with `strict: true` loaded on the surviving appliance, a moved connection is picked up just
//     the same (strict denies INVALID packets, and a pickup makes none);
//   - a connection that was on the surviving appliance all along is not disturbed.
// With AWS's default target failover (`no_rebalance`) an existing flow stays with the stopped
// appliance instead (its packets go on being sent there; nothing comes back) while new flows go to
// the healthy one. An appliance with a stalled lcore (the test hook) answers its health check
// with 503 through the tap; the load balancer marks it unhealthy and new flows go to the other.
// Every wait is bounded and waits for a condition; everything is removed at the end.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/wait_for.hpp"
#include "dpdk_test_util.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using statewall::testing::waitFor;

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, standard library only
constexpr int kHealthPort = 8081;

// The server's group: HTTP, the echo port and UDP 5353 from the client's subnet; no outbound
// rules, so the server's packets pass only by tracking. The client is not protected.
std::string policyText(bool strict) {
  return std::string("version: 1\n") + (strict ? "strict: true\n" : "") +
         "groups:\n"
         "  server:\n"
         "    inbound:\n"
         "      - {proto: tcp, ports: 80, from: 10.210.1.0/24}\n"
         "      - {proto: tcp, ports: 8080, from: 10.210.1.0/24}\n"
         "      - {proto: udp, ports: 5353, from: 10.210.1.0/24}\n"
         "    outbound: []\n"
         "interfaces:\n"
         "  server-1: {addresses: [10.210.2.2], groups: [server]}\n";
}

// probe.py serve PORT DIR: a TCP server; each connection from client port P appends what it
// hears to DIR/P.heard, answers "echo:" + each line, and sends DIR/P.say (then removed) when it
// appears. probe.py hold HOST PORT LPORT DIR: one connection from local port LPORT; writes
// DIR/connected, sends DIR/say (then removed) when it appears, appends what it hears to
// DIR/heard. probe.py udp-echo PORT / udp HOST PORT LPORT: a UDP echo server; one exchange from
// LPORT (three tries), exit 0 when the echo came back.
constexpr const char* kProbe = R"(import os, socket, sys, threading, time
def pump(conn, say, heard, echo):
    conn.setblocking(False)
    buf = b""
    while True:
        if os.path.exists(say):
            data = open(say, "rb").read()
            os.remove(say)
            conn.sendall(data)
        try:
            chunk = conn.recv(4096)
            if not chunk:
                return
            with open(heard, "ab") as f:
                f.write(chunk)
            buf += chunk
            while echo and b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(b"echo:" + line + b"\n")
        except BlockingIOError:
            time.sleep(0.02)
mode = sys.argv[1]
if mode == "serve":
    d = sys.argv[3]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, peer = s.accept()
        p = os.path.join(d, str(peer[1]))
        threading.Thread(target=pump, args=(c, p + ".say", p + ".heard", True), daemon=True).start()
elif mode == "hold":
    d = sys.argv[5]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[4])))
    s.settimeout(20)
    s.connect((sys.argv[2], int(sys.argv[3])))
    open(os.path.join(d, "connected"), "w").close()
    pump(s, os.path.join(d, "say"), os.path.join(d, "heard"), False)
elif mode == "udp-echo":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[4])))
    s.settimeout(2)
    for i in range(3):
        msg = b"fleet-%d" % i
        s.sendto(msg, (sys.argv[2], int(sys.argv[3])))
        try:
            if s.recvfrom(2048)[0] == msg:
                sys.exit(0)
        except socket.timeout:
            pass
    sys.exit(1)
)";

int sh(const std::string& cmd, const TempDir& dir, std::string* out = nullptr) {
  static int serial = 0;
  RunResult r = run({"/bin/sh", "-c", cmd}, dir, "sh" + std::to_string(serial++), 60s);
  if (out != nullptr) *out = r.out + r.err;
  return r.code;
}

std::string inNs(const std::string& ns, const std::string& cmd) {
  return "ip netns exec " + ns + " " + cmd;
}

// A process started in namespace `ns` through sh (exec keeps one process to signal).
std::unique_ptr<Process> spawnIn(const std::string& ns, const std::string& cmd, const TempDir& dir,
                                 const std::string& tag) {
  return std::make_unique<Process>(
      std::vector<std::string>{"/bin/sh", "-c", "exec " + inNs(ns, cmd)}, dir / (tag + ".out"),
      dir / (tag + ".err"));
}

// The five namespaces and their veths; deleting the namespaces (in the destructor, also when the
// test fails) removes every device in them.
class Fleet {
 public:
  explicit Fleet(const TempDir& dir) : dir_(dir) {
    const std::string id = std::to_string(getpid());
    for (const char* role : {"c", "s", "l", "a1", "a2"})
      ns[role] = "swf" + std::string(role) + id;
  }
  ~Fleet() {
    std::string cmd;
    for (const auto& [role, name] : ns)
      cmd += "ip netns del " + name + " 2>/dev/null; ";
    sh(cmd + "true", dir_);
  }
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // "" when built; otherwise the failing command and its output.
  std::string create() {
    const std::string off = " tx off rx off gso off gro off tso off";
    std::vector<std::string> cmds;
    for (const auto& [role, name] : ns) {
      cmds.push_back("ip netns add " + name);
      cmds.push_back(inNs(name, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1"));
      cmds.push_back(inNs(name, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1"));
      cmds.push_back(inNs(name, "ip link set lo up"));
    }
    // A veth between the load balancer and `role`: "l<role>" in lb, "v<role>" in `role`.
    auto link = [&](const std::string& role, const std::string& net, const std::string& mtu) {
      const std::string l = "l" + role, v = "v" + role;
      for (const std::string& c :
           {"ip link add " + l + " netns " + ns["l"] + " mtu " + mtu + " type veth peer name " + v +
                " netns " + ns[role] + " mtu " + mtu,
            inNs(ns["l"], "ethtool -K " + l + off), inNs(ns[role], "ethtool -K " + v + off),
            inNs(ns["l"], "ip addr add " + net + ".1/24 dev " + l),
            inNs(ns["l"], "ip link set " + l + " up"), inNs(ns[role], "ip link set " + v + " up")})
        cmds.push_back(c);
      // An appliance's veth carries no address: its address is on statewalld's exception tap,
      // and its own stack neither answers ARP on the veth (arp_ignore 1) nor accepts packets
      // from it (rp_filter 1: the way back is the tap), so whatever answers at the appliance's
      // address is the kernel behind the tap (docs/deploy-gwlb.md "The exception path").
      if (role[0] == 'a')
        cmds.push_back(inNs(ns[role], "sysctl -qw net.ipv4.conf." + v +
                                          ".arp_ignore=1 net.ipv4.conf." + v + ".rp_filter=1"));
      else
        cmds.push_back(inNs(ns[role], "ip addr add " + net + ".2/24 dev " + v));
    };
    link("c", "10.210.1", "1500");
    link("s", "10.210.2", "1500");
    link("a1", "10.210.11", "9000");
    link("a2", "10.210.12", "9000");
    const std::string lb = ns["l"];
    for (const std::string& c : {
             inNs(ns["c"], "ip route add default via 10.210.1.1"),
             inNs(ns["s"], "ip route add default via 10.210.2.1"),
             // The load balancer: forwards, no reverse-path filter (packets come back from the
             // TUN device), the GENEVE address on lo.
             inNs(lb, "sysctl -qw net.ipv4.ip_forward=1"),
             inNs(lb, "sysctl -qw net.ipv4.conf.all.rp_filter=0"),
             inNs(lb, "sysctl -qw net.ipv4.conf.default.rp_filter=0"),
             inNs(lb, "ip addr add 10.210.10.1/32 dev lo"),
         })
      cmds.push_back(c);
    for (const std::string& c : cmds) {
      std::string out;
      if (sh(c + " 2>&1", dir_, &out) != 0) return c + ": " + out;
    }
    return "";
  }

  // Once the load balancer's TUN device `dev` exists: what arrives from the client or the server
  // goes into it; what it writes back is routed by the main table.
  std::string routeThrough(const std::string& dev) {
    const std::string lb = ns["l"];
    for (const std::string& c :
         {inNs(lb, "sysctl -qw net.ipv4.conf." + dev + ".rp_filter=0"),
          inNs(lb, "ip route add default dev " + dev + " table 100"),
          inNs(lb, "ip rule add iif lc lookup 100"), inNs(lb, "ip rule add iif ls lookup 100")}) {
      std::string out;
      if (sh(c + " 2>&1", dir_, &out) != 0) return c + ": " + out;
    }
    return "";
  }

  std::map<std::string, std::string> ns;

 private:
  const TempDir& dir_;
};

// The statewalld with the test hooks honoured (STATEWALLD_TEST_STALL_FILE stalls an lcore).
std::string statewalldTestHooksPath() {
  return std::string(STATEWALL_BINARY_DIR) + "/tests/dpdk/statewalld-test-hooks";
}

// One appliance: statewalld --gwlb on net_af_packet over its veth `iface` in namespace `ns`, two
// forwarding lcores on two af_packet queues (the kernel's fanout hashes the outer header), ARP,
// ICMP and the load balancer's health checks to its kernel through the exception tap (default
// name statewall0, in the appliance's namespace), answered on kHealthPort by statewalld's control
// plane, and a control socket for its counters. With `stall_file`, the test-hooks build, which
// stalls the forwarding lcore that file names while it exists.
std::unique_ptr<Process> startAppliance(const std::string& ns, const std::string& iface,
                                        const std::string& address, const std::string& policy,
                                        const std::string& tag, const TempDir& dir,
                                        const std::string& stall_file = "") {
  std::string cmd = stall_file.empty() ? statewalldPath()
                                       : "env STATEWALLD_TEST_STALL_FILE=" + stall_file + " " +
                                             statewalldTestHooksPath();
  for (const auto& a : ealArgs(2, tag))
    cmd += " " + a;
  cmd += " --vdev=net_af_packet0,iface=" + iface + ",qpairs=2 -- --policy " + policy +
         " --gwlb --port net_af_packet0 --address " + address +
         "/24 --exception-tap --health-port " + std::to_string(kHealthPort) + " --control-socket " +
         (dir / (tag + ".sock")) + " --counters-file " + (dir / (tag + ".counters.json")) +
         " --lock-dir " + (dir / (tag + ".locks")) + " --idle-sleep 20";
  auto p = spawnIn(ns, cmd, dir, tag);
  if (!p->waitForOutput(": running", 60s)) {
    ADD_FAILURE() << tag << " did not start: " << p->out() << p->err();
    return nullptr;
  }
  return p;
}

// The forwarding lcores statewalld reported at startup ("...; lcores 1 2"), in its order.
std::vector<int> forwardingLcores(const std::string& out) {
  std::vector<int> lcores;
  const size_t at = out.find("; lcores ");
  if (at == std::string::npos) return lcores;
  std::istringstream in(out.substr(at + 9, out.find('\n', at) - at - 9));
  for (int l; in >> l;)
    lcores.push_back(l);
  return lcores;
}

// `statewall ctl --json stats` of one appliance (null when it does not answer).
json stats(const std::string& tag, const TempDir& dir) {
  RunResult r = run({statewallPath(), "ctl", "--socket", dir / (tag + ".sock"), "--json", "stats"},
                    dir, "ctl-" + tag, 30s);
  return r.code == 0 ? json::parse(r.out, nullptr, false) : json();
}

uint64_t reason(const json& s, const char* r) {
  return s.is_object() ? s["reasons"][r]["packets"].get<uint64_t>() : 0;
}

uint64_t gwlbReturned(const json& s) {
  return s.is_object() && s["io"].is_object() ? s["io"]["gwlb"]["returned"].get<uint64_t>() : 0;
}

// The load balancer's state file (null while it is being replaced or not there yet).
json lbState(const TempDir& dir) {
  return json::parse(readText(dir / "lb.json"), nullptr, false);
}

// The appliance index (0, 1) the load balancer sends the flow from the client's port `cport`
// to, or -1 when it has no such flow.
int applianceOf(const json& st, int proto, int cport) {
  if (!st.is_object()) return -1;
  const std::string c = "10.210.1.2:" + std::to_string(cport);
  for (const auto& f : st["flows"])
    if (f["proto"] == proto && (f["src"] == c || f["dst"] == c)) return f["appliance"].get<int>();
  return -1;
}

// Whether the load balancer sent the flow of `proto` from client port `cport` with two different
// outer UDP source ports (one each way).
bool twoOuterPorts(const json& st, int proto, int cport) {
  const std::string c = "10.210.1.2:" + std::to_string(cport);
  for (const auto& f : st.is_object() ? st["flows"] : json::array())
    if (f["proto"] == proto && (f["src"] == c || f["dst"] == c))
      return f["sports"].size() == 2 && f["sports"][0] != f["sports"][1];
  return false;
}

bool haveTool(const std::string& tool, const TempDir& dir) {
  return sh("command -v " + tool + " >/dev/null 2>&1", dir) == 0;
}

// A long-lived connection from the client (probe.py hold), and the appliance its flow went to.
struct Held {
  int port = 0;
  std::string dir;
  std::unique_ptr<Process> proc;
  int appliance = -1;
};

class GwlbFleetTest : public ::testing::Test {
 protected:
  // Builds the fleet and starts both appliances, the load balancer (target failover `failover`)
  // once both are healthy, and the servers; appliance 0 with the stall hook on `stall_file` when
  // given. Call through ASSERT_NO_FATAL_FAILURE.
  void start(const std::string& failover, const std::string& stall_file = "") {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    for (const char* tool : {"ip", "ethtool", "curl", kPython})
      ASSERT_TRUE(haveTool(tool, dir_)) << tool << " is not installed";
    ASSERT_EQ(fleet_.create(), "") << "network setup failed";
    auto& ns = fleet_.ns;
    writeText(policy_, policyText(false));
    writeText(strict_, policyText(true));
    writeText(probe_, kProbe);
    std::filesystem::create_directories(www_);
    writeText(www_ + "/index.html", "statewall-fleet-ok\n");
    std::filesystem::create_directories(srv_);

    appl_[0] = startAppliance(ns["a1"], "va1", addrs_[0], policy_, tags_[0], dir_, stall_file);
    appl_[1] = startAppliance(ns["a2"], "va2", addrs_[1], policy_, tags_[1], dir_);
    ASSERT_TRUE(appl_[0] && appl_[1]);
    lb_ = spawnIn(ns["l"],
                  std::string(kPython) + " " + STATEWALL_GENEVE_USER +
                      " gwlb --dev gwlb0 --local 10.210.10.1 --appliance " + addrs_[0] + ":" +
                      std::to_string(kHealthPort) + " --appliance " + addrs_[1] + ":" +
                      std::to_string(kHealthPort) + " --failover " + failover +
                      " --health-interval 0.5 --health-timeout 5 --state " + (dir_ / "lb.json") +
                      " --max-seconds 500",
                  dir_, "lb");
    ASSERT_TRUE(lb_->waitForOutput(" ready", 30s)) << lb_->out() << lb_->err();
    ASSERT_EQ(fleet_.routeThrough("gwlb0"), "");
    // Both appliances pass their health checks (answered by the kernel behind the exception tap
    // from statewalld's --health-port server: 200 while its lcores make progress and a policy is
    // loaded).
    ASSERT_TRUE(waitFor(
        [&] {
          const json st = lbState(dir_);
          return st.is_object() && st["appliances"][0]["healthy"] == true &&
                 st["appliances"][1]["healthy"] == true;
        },
        60s, 50ms))
        << readText(dir_ / "lb.json") << lb_->err();

    http_ = spawnIn(
        ns["s"],
        std::string(kPython) + " -u -m http.server 80 --bind 10.210.2.2 --directory " + www_, dir_,
        "http");
    echo_ = spawnIn(ns["s"], std::string(kPython) + " -u " + probe_ + " serve 8080 " + srv_, dir_,
                    "echo");
    udp_ = spawnIn(ns["s"], std::string(kPython) + " -u " + probe_ + " udp-echo 5353", dir_,
                   "udpecho");
    ASSERT_TRUE(http_->waitForOutput("Serving HTTP", 30s)) << http_->err();
    ASSERT_TRUE(echo_->waitForOutput("ready", 30s)) << echo_->err();
    ASSERT_TRUE(udp_->waitForOutput("ready", 30s)) << udp_->err();
  }

  int client(const std::string& cmd, std::string* out = nullptr) {
    return sh(inNs(fleet_.ns["c"], cmd), dir_, out);
  }

  // curl from client port `port`: whether the page came.
  bool curlFrom(int port) {
    std::string body;
    const int rc = client(
        "curl -s -m 10 --retry 2 --local-port " + std::to_string(port) + " http://10.210.2.2/",
        &body);
    return rc == 0 && body.find("statewall-fleet-ok") != std::string::npos;
  }

  // One UDP exchange from client port `port`: whether the echo came back.
  bool udpFrom(int port) {
    return client(std::string(kPython) + " " + probe_ + " udp 10.210.2.2 5353 " +
                  std::to_string(port)) == 0;
  }

  // Waits until the load balancer's state file shows the flow of `proto` from client port `port`
  // on appliance `want` (-1: on any); returns the appliance (-1 when none within the limit). The
  // file is rewritten every 100 ms or so.
  int waitForFlow(int proto, int port, int want = -1) {
    int got = -1;
    waitFor(
        [&] {
          got = applianceOf(lbState(dir_), proto, port);
          return want < 0 ? got >= 0 : got == want;
        },
        30s, 20ms);
    return got;
  }

  // Opens a long-lived connection to the echo port from client port `port`; a line goes through
  // and its echo comes back. Call through ASSERT_NO_FATAL_FAILURE.
  void hold(int port) {
    Held h;
    h.port = port;
    h.dir = dir_ / ("hold" + std::to_string(port));
    std::filesystem::create_directories(h.dir);
    h.proc = spawnIn(fleet_.ns["c"],
                     std::string(kPython) + " -u " + probe_ + " hold 10.210.2.2 8080 " +
                         std::to_string(port) + " " + h.dir,
                     dir_, "hold" + std::to_string(port));
    ASSERT_TRUE(waitFor([&] { return std::filesystem::exists(h.dir + "/connected"); }, 30s, 20ms))
        << h.proc->err();
    writeText(h.dir + "/say", "hello\n");
    ASSERT_TRUE(heard(h, "echo:hello", 30s)) << port;
    h.appliance = waitForFlow(6, port);
    ASSERT_GE(h.appliance, 0) << readText(dir_ / "lb.json");
    held_.push_back(std::move(h));
  }

  // Whether the client side of `h` hears `text` within `limit`.
  bool heard(const Held& h, const std::string& text, std::chrono::milliseconds limit = 60s) {
    return waitFor([&] { return readText(h.dir + "/heard").find(text) != std::string::npos; },
                   limit, 20ms);
  }

  // Stops appliance `i` (statewalld exits on SIGTERM; its health port closes with it) and waits
  // until the load balancer marks it unhealthy (two failed checks).
  void fail(int i) {
    appl_[i]->signal(SIGTERM);
    stopped_[i] = true;
    ASSERT_EQ(appl_[i]->wait(60s), 0) << appl_[i]->out() << appl_[i]->err();
    ASSERT_TRUE(waitFor(
        [&] {
          const json st = lbState(dir_);
          return st.is_object() && st["appliances"][i]["healthy"] == false;
        },
        60s, 50ms))
        << readText(dir_ / "lb.json");
  }

  // Stops everything still running, in order: clients, servers, load balancer, appliances; then
  // checks each appliance's final counters: both forwarding lcores received frames (the fanout
  // spread the outer flows), and with `both_returned` both returned GENEVE.
  void stopAll(bool both_returned = false) {
    for (auto& h : held_)
      h.proc->signal(SIGTERM);
    for (auto* p : {http_.get(), echo_.get(), udp_.get()})
      p->signal(SIGTERM);
    lb_->signal(SIGTERM);
    EXPECT_EQ(lb_->wait(30s), 0) << lb_->err();
    EXPECT_EQ(lbState(dir_)["stopped"], true);
    for (int i = 0; i < 2; ++i) {
      if (stopped_[i]) continue;
      appl_[i]->signal(SIGTERM);
      EXPECT_EQ(appl_[i]->wait(60s), 0) << appl_[i]->err();
    }
    for (int i = 0; i < 2; ++i) {
      const json c = json::parse(readText(dir_ / (tags_[i] + ".counters.json")), nullptr, false);
      ASSERT_TRUE(c.is_object()) << tags_[i];
      ASSERT_EQ(c["lcores"].size(), 2u) << tags_[i] << ": " << c.dump();
      for (const auto& l : c["lcores"]) {
        EXPECT_GT(l["rx_packets"].get<uint64_t>(), 0u) << tags_[i] << ": " << c.dump();
        if (both_returned) {
          EXPECT_GT(l["tx_packets"].get<uint64_t>(), 0u) << tags_[i] << ": " << c.dump();
        }
      }
    }
  }

  TempDir dir_;
  Fleet fleet_{dir_};
  const std::string policy_ = dir_ / "policy.yaml", strict_ = dir_ / "strict.yaml";
  const std::string probe_ = dir_ / "probe.py", www_ = dir_ / "www", srv_ = dir_ / "srv";
  const std::string tags_[2] = {"appl1", "appl2"};
  const std::string addrs_[2] = {"10.210.11.2", "10.210.12.2"};
  // Declared after fleet_, so stopped before its namespaces go.
  std::unique_ptr<Process> appl_[2], lb_, http_, echo_, udp_;
  std::vector<Held> held_;
  bool stopped_[2] = {false, false};
};

// target_failover `rebalance`: the stopped appliance's flows move to the other one.
TEST_F(GwlbFleetTest, FlowsSpreadOverTwoAppliancesAndFailOverAsTheMidStreamRuleSays) {
  ASSERT_NO_FATAL_FAILURE(start("rebalance"));
  if (IsSkipped()) return;

  // 1. HTTP and UDP from several client ports: every one gets through, and the flows are spread
  //    over both appliances (the hash is fixed, so which port goes where is too).
  for (int port : {40001, 40002, 40003, 40004, 40005, 40006}) {
    EXPECT_TRUE(curlFrom(port)) << "no page for client port " << port;
    EXPECT_TRUE(udpFrom(port + 1000)) << "no UDP echo from port " << port + 1000;
  }
  {
    EXPECT_TRUE(waitFor(
        [&] {
          const json st = lbState(dir_);
          return st.is_object() && st["appliances"][0]["returned"].get<uint64_t>() > 0 &&
                 st["appliances"][1]["returned"].get<uint64_t>() > 0;
        },
        30s, 20ms))
        << "the flows did not spread over both appliances: " << readText(dir_ / "lb.json");
    const json st = lbState(dir_);
    ASSERT_TRUE(st.is_object());
    // Every returned packet carried the options byte for byte and the ports unchanged.
    EXPECT_EQ(st["counters"]["bad_options"], 0) << st.dump();
    EXPECT_EQ(st["counters"]["bad_port"], 0) << st.dump();
    EXPECT_EQ(st["counters"]["unknown_flow"], 0) << st.dump();
    for (int i = 0; i < 2; ++i) {
      const json s = stats(tags_[i], dir_);
      ASSERT_TRUE(s.is_object()) << tags_[i];
      EXPECT_GT(gwlbReturned(s), 0u) << tags_[i] << ": " << s.dump();
      EXPECT_GT(reason(s, "allow-rule"), 0u) << tags_[i] << ": " << s.dump();
      EXPECT_GT(reason(s, "allow-tracked"), 0u) << tags_[i] << ": " << s.dump();
      EXPECT_EQ(s["io"]["gwlb"]["malformed"], 0) << tags_[i] << ": " << s.dump();
      // ARP and the health checks went through the exception tap, both ways, none lost.
      EXPECT_GT(s["io"]["gwlb"]["to_kernel"], 0) << tags_[i] << ": " << s.dump();
      EXPECT_GT(s["io"]["gwlb"]["from_kernel"], 0) << tags_[i] << ": " << s.dump();
      EXPECT_EQ(s["io"]["gwlb"]["kernel_dropped"], 0) << tags_[i] << ": " << s.dump();
    }
    // The load balancer chose a different outer UDP source port for each direction of every
    // flow (so the kernel's fanout may put the two directions on different lcores). Its state
    // file is rewritten every 100 ms or so: wait until it has every flow.
    auto twoEach = [&](const json& now) {
      for (int port : {40001, 40002, 40003, 40004, 40005, 40006})
        if (!twoOuterPorts(now, 6, port) || !twoOuterPorts(now, 17, port + 1000)) return false;
      return true;
    };
    EXPECT_TRUE(waitFor([&] { return twoEach(lbState(dir_)); }, 30s, 20ms))
        << readText(dir_ / "lb.json");
  }

  // 2. Long-lived connections to the echo port, until three of them share one appliance (at most
  //    five by pigeonhole); each exchanges a line through it.
  std::map<int, std::vector<size_t>> on;  // appliance -> indices into held_
  int victim = -1;
  for (int port = 42001; port <= 42005 && victim < 0; ++port) {
    ASSERT_NO_FATAL_FAILURE(hold(port));
    on[held_.back().appliance].push_back(held_.size() - 1);
    if (on[held_.back().appliance].size() == 3) victim = held_.back().appliance;
  }
  ASSERT_GE(victim, 0);
  const int survivor = 1 - victim;
  const std::string& tag = tags_[survivor];
  Held& x = held_[on[victim][0]];  // the client speaks first after the move
  Held& y = held_[on[victim][1]];  // the server speaks first after the move
  Held& z = held_[on[victim][2]];  // moved after `strict: true` was loaded on the survivor

  // 3. The victim stops; the load balancer marks it unhealthy.
  const json before = stats(tag, dir_);
  ASSERT_NO_FATAL_FAILURE(fail(victim));

  // 4. New connections pass, all through the survivor.
  EXPECT_TRUE(curlFrom(40101));
  EXPECT_TRUE(udpFrom(41101));
  EXPECT_EQ(waitForFlow(6, 40101, survivor), survivor);
  EXPECT_EQ(waitForFlow(17, 41101, survivor), survivor);

  // 5. X, client first: the survivor has no entry; the client's data is an ACK-class packet its
  //    rules allow (the server's inbound tcp 8080), so it is picked up, and the echo passes by
  //    tracking.
  writeText(x.dir + "/say", "after-failover\n");
  EXPECT_TRUE(heard(x, "echo:after-failover"))
      << "the moved connection (client first) was not picked up: " << stats(tag, dir_);
  EXPECT_EQ(waitForFlow(6, x.port, survivor), survivor);

  // 6. Y, server first: the server's data has no connection on the survivor and the server has
  //    no outbound rule: deny-sg, and so is each retransmission, until the client speaks; then
  //    the client's packet is picked up and the server's retransmission passes by tracking.
  const uint64_t denied_before = reason(stats(tag, dir_), "deny-sg");
  writeText(srv_ + "/" + std::to_string(y.port) + ".say", "server-first\n");
  EXPECT_TRUE(
      waitFor([&] { return reason(stats(tag, dir_), "deny-sg") > denied_before; }, 60s, 100ms))
      << stats(tag, dir_);
  EXPECT_EQ(readText(y.dir + "/heard").find("server-first"), std::string::npos)
      << "the server's first packet passed without a connection";
  writeText(y.dir + "/say", "client-now\n");
  EXPECT_TRUE(heard(y, "echo:client-now", 90s)) << readText(y.dir + "/heard");
  EXPECT_TRUE(heard(y, "server-first", 90s)) << readText(y.dir + "/heard");

  // 7. Z under `strict: true` on the survivor: strict denies packets the tracker marks INVALID;
  //    a pickup is not one, so Z is picked up like X, and nothing was denied as invalid.
  {
    RunResult r =
        run({statewallPath(), "ctl", "--socket", dir_ / (tag + ".sock"), "policy", "load", strict_},
            dir_, "ctl-load", 30s);
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    writeText(z.dir + "/say", "strict-now\n");
    EXPECT_TRUE(heard(z, "echo:strict-now")) << "strict refused the pickup: " << stats(tag, dir_);
    EXPECT_EQ(reason(stats(tag, dir_), "deny-invalid"), 0u);
  }

  // 8. The connections that were on the survivor all along go on as before.
  for (size_t i : on[survivor]) {
    writeText(held_[i].dir + "/say", "unmoved\n");
    EXPECT_TRUE(heard(held_[i], "echo:unmoved")) << held_[i].port;
  }

  // The survivor's connection table holds the three picked-up connections, each keyed from the
  // client (the packet that opened it), and the load balancer moved their flows.
  {
    RunResult r = run({statewallPath(), "ctl", "--socket", dir_ / (tag + ".sock"), "--json",
                       "connections", "--dport", "8080"},
                      dir_, "ctl-conns", 30s);
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    const json c = json::parse(r.out);
    for (const Held* h : {&x, &y, &z}) {
      bool found = false;
      for (const auto& e : c["connections"])
        found |= e["sport"] == h->port && e["src"] == "10.210.1.2" && e["state"] == "established";
      EXPECT_TRUE(found) << h->port << ": " << c.dump();
    }
    const json st = lbState(dir_);
    EXPECT_GE(st["counters"]["rehashed"].get<uint64_t>(), 3u) << st.dump();
    EXPECT_EQ(st["counters"]["bad_options"], 0) << st.dump();
    const json after = stats(tag, dir_);
    EXPECT_GT(reason(after, "allow-rule"), reason(before, "allow-rule"));
    EXPECT_EQ(after["io"]["gwlb"]["malformed"], 0) << after.dump();
  }
  stopAll(true);
}

// target_failover `no_rebalance`, AWS's default: an existing flow stays with the failed appliance
// (its packets go on being sent there, and nothing comes back), while new flows go to the healthy
// one and pass.
TEST_F(GwlbFleetTest, NoRebalanceKeepsExistingFlowsOnTheFailedAppliance) {
  ASSERT_NO_FATAL_FAILURE(start("no_rebalance"));
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(hold(42001));
  const Held& h = held_.back();
  const int victim = h.appliance, survivor = 1 - victim;
  ASSERT_NO_FATAL_FAILURE(fail(victim));

  // A new connection goes to the survivor, the one healthy appliance, and passes.
  EXPECT_TRUE(curlFrom(40201));
  EXPECT_EQ(waitForFlow(6, 40201, survivor), survivor);

  // The held connection's next line: the load balancer sends it (and the client's
  // retransmission) to the failed appliance; none comes back.
  auto flow = [&] {
    const json st = lbState(dir_);
    for (const auto& f : st.is_object() ? st["flows"] : json::array())
      if (f["proto"] == 6 && f["src"] == "10.210.1.2:" + std::to_string(h.port)) return f;
    return json();
  };
  const json was = flow();
  ASSERT_TRUE(was.is_object());
  writeText(h.dir + "/say", "stuck\n");
  EXPECT_TRUE(waitFor(
      [&] {
        const json f = flow();
        return f.is_object() && f["sent"].get<uint64_t>() >= was["sent"].get<uint64_t>() + 2;
      },
      60s, 50ms))
      << readText(dir_ / "lb.json");
  const json now = flow();
  EXPECT_EQ(now["appliance"], victim) << now.dump();
  EXPECT_EQ(now["rehashed"], 0) << now.dump();
  EXPECT_EQ(now["returned"], was["returned"]) << now.dump();
  EXPECT_EQ(readText(h.dir + "/heard").find("echo:stuck"), std::string::npos);
  stopAll();
}

// A wedged appliance: one of its forwarding lcores stalls (the test hook; not the first, which
// services the exception tap). Its --health-port answers 503 through the tap, the load balancer
// marks it unhealthy, and new flows go to the other appliance and pass.
TEST_F(GwlbFleetTest, AWedgedLcoreFailsTheHealthCheckAndNewFlowsGoToTheOtherAppliance) {
  const std::string stall_file = dir_ / "stall";
  ASSERT_NO_FATAL_FAILURE(start("no_rebalance", stall_file));
  if (IsSkipped()) return;
  EXPECT_TRUE(curlFrom(40301));
  const std::vector<int> lcores = forwardingLcores(appl_[0]->out());
  ASSERT_EQ(lcores.size(), 2u) << appl_[0]->out();
  writeText(stall_file, std::to_string(lcores[1]) + "\n");
  const std::string hooked = "test hook: lcore " + std::to_string(lcores[1]) + " stalled";
  ASSERT_TRUE(waitFor([&] { return appl_[0]->err().find(hooked) != std::string::npos; }, 30s, 20ms))
      << appl_[0]->err();
  // 503 (the health checks the fanout gives the stalled lcore time out instead), then unhealthy.
  EXPECT_TRUE(waitFor(
      [&] {
        const json st = lbState(dir_);
        return st.is_object() && st["appliances"][0]["last_status"] == 503;
      },
      60s, 20ms))
      << readText(dir_ / "lb.json") << appl_[0]->err();
  ASSERT_TRUE(waitFor(
      [&] {
        const json st = lbState(dir_);
        return st.is_object() && st["appliances"][0]["healthy"] == false;
      },
      60s, 50ms))
      << readText(dir_ / "lb.json");
  const json healthy = lbState(dir_);
  EXPECT_EQ(healthy["appliances"][1]["healthy"], true) << healthy.dump();
  // New connections all go to the healthy appliance and pass.
  for (int port : {40311, 40312, 40313, 40314}) {
    EXPECT_TRUE(curlFrom(port)) << port;
    EXPECT_EQ(waitForFlow(6, port, 1), 1) << port << ": " << readText(dir_ / "lb.json");
  }
  EXPECT_TRUE(udpFrom(41311));
  EXPECT_EQ(waitForFlow(17, 41311, 1), 1) << readText(dir_ / "lb.json");
  stopAll();
}

}  // namespace
}  // namespace statewall::dpdk_test
