// statewalld as a service (no root needed: net_pcap and net_null vdevs): its help, one prefix on
// every diagnostic line, and a port name that matches no device.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/wait_for.hpp"
#include "dpdk_test_util.hpp"
#include "pcap_util.hpp"
#include "statewall/control/client.hpp"
#include "statewall/dpdk/port_lock.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kPolicy = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

// Lines of `text` that do not start with `prefix` (empty lines aside).
std::vector<std::string> unprefixed(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line.rfind(prefix, 0) != 0) out.push_back(line);
  return out;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "policy.yaml";
    writeText(policy_, kPolicy);
    empty_ = dir_ / "empty.pcap";
    writePcap(empty_, {});
  }

  // statewalld on two net_pcap ports reading `empty_` (nothing arrives), plus `app` options.
  std::vector<std::string> argv(const std::string& tag, const std::vector<std::string>& app) {
    std::vector<std::string> a = {statewalldPath()};
    for (const auto& e : ealArgs(1, tag))
      a.push_back(e);
    a.push_back("--vdev=net_pcap0,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / (tag + "0.pcap")));
    a.push_back("--vdev=net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / (tag + "1.pcap")));
    a.insert(a.end(),
             {"--", "--policy", policy_, "--inside", "net_pcap0", "--outside", "net_pcap1"});
    a.insert(a.end(), app.begin(), app.end());
    return a;
  }

  TempDir dir_;
  std::string policy_, empty_;
};

// `statewalld --help` (no `--`) shows the appliance's options and DPDK's, and exits 0.
TEST_F(ServiceTest, HelpShowsBothOptionSets) {
  RunResult r = run({statewalldPath(), "--help"}, dir_, "help", 60s);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("--policy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--inside"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--lcores COREMAP"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--vdev"), std::string::npos) << r.out;
}

// Every line on stderr, DPDK's included, starts with "statewalld: " (not the binary's path), and
// a port name that is no device ends with the ports there are.
TEST_F(ServiceTest, OnePrefixOnEveryDiagnosticLine) {
  std::vector<std::string> a = argv("prefix", {});
  for (std::string& s : a)
    if (s == "net_pcap1") s = "net_pcap7";
  a.push_back("--stats-interval");
  a.push_back("nan");  // rejected: the usage error too carries the prefix
  RunResult usage = run(a, dir_, "usage", 60s);
  EXPECT_EQ(usage.code, 2) << usage.err;
  EXPECT_EQ(unprefixed(usage.err, "statewalld: "),
            std::vector<std::string>{"(run with -- --help for the options)"})
      << usage.err;
  a.resize(a.size() - 2);
  RunResult r = run(a, dir_, "prefix", 60s);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_EQ(unprefixed(r.err, "statewalld: "), std::vector<std::string>{}) << r.err;
  EXPECT_NE(r.err.find("statewalld: no DPDK port 'net_pcap7' for --outside; available ports: "),
            std::string::npos)
      << r.err;
}

constexpr const char* kPolicy2 = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 8443, from: 0.0.0.0/0}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

// statewalld from a --config file; SIGHUP reloads the policy files (a bad file keeps the running
// policy, logged); a change through ctl warns that a restart loses it.
TEST_F(ServiceTest, ConfigFileSighupAndRuntimeChanges) {
  const std::string socket = dir_ / "ctl.sock";
  const std::string cfg = dir_ / "statewalld.yaml";
  writeText(cfg,
            "policy: policy.yaml\ninside: net_pcap0\noutside: net_pcap1\n"
            "control-socket: ctl.sock\nidle-sleep: 1000\n");
  std::vector<std::string> a = argv("cfg", {});
  a.resize(a.size() - 7);  // the EAL arguments and "--" only
  a.push_back("--");
  a.push_back("--config");
  a.push_back(cfg);
  Process p(a, dir_ / "d.out", dir_ / "d.err");
  ASSERT_TRUE(p.waitForOutput("statewalld: running", 60s)) << p.out() << p.err();
  EXPECT_NE(p.out().find("control API on unix " + socket), std::string::npos) << p.out();

  auto policyVersion = [&] {
    RunResult r =
        run({statewallPath(), "ctl", "--socket", socket, "--json", "policy", "show"}, dir_, "show");
    const json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j;
  };
  ASSERT_EQ(policyVersion()["version"], 1);

  writeText(policy_, kPolicy2);
  p.signal(SIGHUP);
  ASSERT_TRUE(p.waitForOutput("SIGHUP: running policy version 2", 30s)) << p.out() << p.err();
  json j = policyVersion();
  EXPECT_EQ(j["version"], 2);
  ASSERT_EQ(j["documents"].size(), 1u) << j.dump();
  EXPECT_EQ(j["documents"][0]["text"], kPolicy2);
  EXPECT_EQ(p.out().find("not kept across a restart"), std::string::npos) << p.out();

  writeText(policy_, "version: 1\ngroups:\n  web:\n    inbnd: []\n");
  p.signal(SIGHUP);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline &&
         p.err().find("the running policy (version 2) stays") == std::string::npos)
    std::this_thread::sleep_for(20ms);
  EXPECT_NE(p.err().find("the running policy (version 2) stays"), std::string::npos) << p.err();
  EXPECT_NE(p.err().find("policy.yaml:4:"), std::string::npos) << p.err();
  EXPECT_EQ(policyVersion()["version"], 2);

  // A change through the API works, and says it lasts until the next restart (ctl and the log).
  const std::string other = dir_ / "other.yaml";
  writeText(other, kPolicy);
  RunResult r =
      run({statewallPath(), "ctl", "--socket", socket, "policy", "load", other}, dir_, "load");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: this change is not kept across a restart"), std::string::npos)
      << r.err;
  r = run({statewallPath(), "ctl", "--socket", socket, "timeouts", "set", "udp=40"}, dir_, "tmo");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: this change is not kept across a restart"), std::string::npos)
      << r.err;
  EXPECT_TRUE(
      p.waitForOutput("policy version 4 (1 interface(s), 2 rule(s)); this change is not "
                      "kept across a restart",
                      30s))
      << p.out();

  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
}

// A Unix datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd_ = -1;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return fd_ >= 0; }
  // The next message, or "" after `limit`.
  std::string next(std::chrono::milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return "";
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Sets environment variables for the children this test starts; restores them afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::string& value) : name_(name) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }

 private:
  std::string name_;
};

// packaging/statewalld.service runs statewalld as Type=notify with a watchdog. Its protocol,
// with this test in systemd's place (systemd is not PID 1 here): READY=1 only once the ports
// are up (after "running"), then WATCHDOG=1 again and again while the lcores forward,
// STOPPING=1 on SIGTERM.
TEST_F(ServiceTest, NotifiesReadinessAndWatchdogLikeTheUnitExpects) {
  const std::string unit =
      readText(std::string(STATEWALL_SOURCE_DIR) + "/packaging/statewalld.service");
  ASSERT_NE(unit.find("\nType=notify\n"), std::string::npos) << unit;
  ASSERT_NE(unit.find("\nWatchdogSec="), std::string::npos) << unit;
  ASSERT_NE(unit.find("\nExecReload=/bin/kill -HUP $MAINPID\n"), std::string::npos) << unit;

  NotifySocket sock(dir_ / "notify.sock");
  ASSERT_TRUE(sock.ok());
  ScopedEnv notify("NOTIFY_SOCKET", dir_ / "notify.sock");
  ScopedEnv watchdog("WATCHDOG_USEC", "200000");  // keep-alive every 0.1 s
  Process p(argv("notify", {"--idle-sleep", "1000"}), dir_ / "n.out", dir_ / "n.err");
  ASSERT_TRUE(p.started());
  std::string first = sock.next(60s);
  ASSERT_EQ(first.rfind("READY=1", 0), 0u) << first << "\n" << p.out() << p.err();
  // Sent after the ports were started and the lcores launched, which "running" follows.
  EXPECT_NE(p.out().find("statewalld: running"), std::string::npos) << p.out();
  int watchdogs = 0;
  for (int i = 0; i < 50 && watchdogs < 5; ++i) {
    const std::string m = sock.next(10s);
    ASSERT_FALSE(m.empty()) << "no notification for 10 s; " << watchdogs << " watchdog(s) so far";
    if (m == "WATCHDOG=1") ++watchdogs;
  }
  EXPECT_EQ(watchdogs, 5);
  p.signal(SIGTERM);
  std::string m;
  for (int i = 0; i < 100 && m != "STOPPING=1"; ++i)
    m = sock.next(10s);
  EXPECT_EQ(m, "STOPPING=1");
  EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
}

// A lock directory given only in --config is the one the interfaces are locked in before EAL
// probes the devices: with another process holding an interface's lock there, statewalld stops
// at once naming the --vdev (the early lock), before the driver opens an interface that does
// not even exist. (Failed before: the early lock used /run/statewall, and the driver's "no such
// interface" came first.)
TEST_F(ServiceTest, LockDirFromTheConfigFileLocksBeforeEal) {
  const std::string locks = dir_ / "locks";
  std::filesystem::create_directories(locks);
  const std::string iface = "swlk" + std::to_string(getpid() % 100000);
  // Held by another process: a lock this process holds would count as statewalld's own.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    dpdk::PortLock held;
    std::string why;
    const char ok = held.acquire(locks, "iface-" + iface, &why) ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    ::pause();
    ::_exit(0);
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, '1');
  const std::string cfg = dir_ / "locked.yaml";
  writeText(
      cfg, "policy: policy.yaml\ninside: net_pcap0\noutside: net_pcap1\nlock-dir: " + locks + "\n");
  std::vector<std::string> a = {statewalldPath()};
  for (const auto& e : ealArgs(1, "lockcfg"))
    a.push_back(e);
  a.push_back("--vdev=net_pcap0,iface=" + iface);
  a.push_back("--vdev=net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / "lk1.pcap"));
  a.insert(a.end(), {"--", "--config", cfg});
  RunResult r = run(a, dir_, "lockcfg", 60s);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("statewalld: --vdev net_pcap0 (interface " + iface + "): "),
            std::string::npos)
      << r.err;
}

// Ports of PMDs other than af_packet get one MTU chosen from what both devices and links allow
// (net_pcap on files: no link, no chained mbufs, so 1500 and why), or --mtu; the startup log
// says which. (Failed before: no MTU was set or shown for them.)
TEST_F(ServiceTest, PortMtuIsChosenAndShown) {
  for (const std::string mtu : {"", "9000"}) {
    SCOPED_TRACE(mtu);
    std::vector<std::string> app = {"--exit-when-idle", "100"};
    if (!mtu.empty()) app.insert(app.end(), {"--mtu", mtu});
    RunResult r = run(argv("mtu" + mtu, app), dir_, "mtu" + mtu, 60s);
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    if (mtu.empty()) {
      EXPECT_NE(r.out.find("statewalld: port MTU 1500 (inside port net_pcap0 (port 0) cannot "
                           "chain mbufs and its link's MTU is unknown)"),
                std::string::npos)
          << r.out;
    } else {
      EXPECT_NE(r.out.find("statewalld: port MTU 9000 (--mtu)"), std::string::npos) << r.out;
    }
    const std::string shown = ", MTU " + (mtu.empty() ? std::string("1500") : mtu) + "\n";
    EXPECT_NE(r.out.find("inside net_pcap0 (port 0): 1 rx / 1 tx queues" + shown),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("outside net_pcap1 (port 1): 1 rx / 1 tx queues" + shown),
              std::string::npos)
        << r.out;
  }
}

// What a service manager hears on its notification socket, read all the time by a thread of its
// own (as systemd does: a sender blocks once the socket's small queue is full), in order.
class NotifyRecorder {
 public:
  explicit NotifyRecorder(const std::string& path) : sock_(path) {
    thread_ = std::thread([this] {
      while (!stop_) {
        std::string m = sock_.next(50ms);
        if (m.empty()) continue;
        std::lock_guard lock(mu_);
        messages_.push_back(std::move(m));
      }
    });
  }
  ~NotifyRecorder() {
    stop_ = true;
    thread_.join();
  }
  bool ok() const { return sock_.ok(); }
  // The index of the first message `m` at or after `from`, waiting for it (bounded); -1 if none.
  long find(const std::string& m, size_t from) {
    long at = -1;
    statewall::testing::waitFor(
        [&] {
          std::lock_guard lock(mu_);
          for (size_t i = from; i < messages_.size() && at < 0; ++i)
            if (messages_[i].rfind(m, 0) == 0) at = static_cast<long>(i);
          return at >= 0;
        },
        60s);
    return at;
  }
  size_t count(const std::string& m, size_t from, size_t to) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (size_t i = from; i < to && i < messages_.size(); ++i)
      n += messages_[i] == m;
    return n;
  }

 private:
  NotifySocket sock_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::thread thread_;
};

// The watchdog is withheld while a forwarding lcore is stuck: statewalld-test-hooks (statewalld
// with its test hooks honoured, a test build only) stalls the lcore named in
// STATEWALLD_TEST_STALL_FILE while the file exists. Then GET /v1/health answers 503 naming the
// lcore and no WATCHDOG=1 reaches the service manager (this test, on NOTIFY_SOCKET), until the
// lcore is released. The notifications are put in order by SIGHUP's RELOADING=1, not by time.
TEST_F(ServiceTest, WatchdogIsWithheldWhileAForwardingLcoreIsStalled) {
  NotifyRecorder notes(dir_ / "wd.sock");
  ASSERT_TRUE(notes.ok());
  ScopedEnv notify("NOTIFY_SOCKET", dir_ / "wd.sock");
  ScopedEnv watchdog("WATCHDOG_USEC", "200000");  // keep-alive every 0.1 s
  const std::string stall_file = dir_ / "stall";
  ScopedEnv hook("STATEWALLD_TEST_STALL_FILE", stall_file);
  const std::string socket = dir_ / "wd-control.sock";
  std::vector<std::string> a = argv("wd", {"--idle-sleep", "1000", "--control-socket", socket});
  a[0] = std::string(STATEWALL_BINARY_DIR) + "/tests/dpdk/statewalld-test-hooks";
  Process p(a, dir_ / "wd.out", dir_ / "wd.err");
  ASSERT_TRUE(p.started());
  const long ready = notes.find("READY=1", 0);
  ASSERT_GE(ready, 0) << p.out() << p.err();
  ASSERT_GE(notes.find("WATCHDOG=1", static_cast<size_t>(ready)), 0) << p.err();
  const std::string out = p.out();
  const size_t at = out.find("; lcores ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string lcore = std::to_string(std::stoi(out.substr(at + 9)));

  control::ClientOptions co;
  co.unix_socket = socket;
  auto health = [&](json* body) {
    control::ClientResponse r;
    const control::Status s = control::ControlClient(co).request("GET", "/v1/health", "", "", &r);
    EXPECT_TRUE(s.ok()) << s.message();
    *body = json::parse(r.body, nullptr, false);
    return r.status;
  };
  // How long the health detail says the lcore has been quiet ("... no progress for 6.0 s").
  auto quiet = [&] {
    json h;
    health(&h);
    const std::string d = h.value("detail", std::string());
    const size_t f = d.find(" for ");
    return f == std::string::npos ? 0.0 : std::stod(d.substr(f + 5));
  };
  json h;
  EXPECT_EQ(health(&h), 200) << h.dump();

  writeText(stall_file, lcore + "\n");
  ASSERT_TRUE(statewall::testing::waitFor([&] { return health(&h) == 503; }, 60s, 50ms))
      << h.dump() << p.err();
  EXPECT_EQ(h["status"], "unhealthy");
  EXPECT_NE(h["detail"].get<std::string>().find("lcore " + lcore + " made no progress"),
            std::string::npos)
      << h.dump();
  ASSERT_TRUE(statewall::testing::waitFor(
      [&] {
        return p.err().find("withholding the watchdog keep-alive: lcore " + lcore) !=
               std::string::npos;
      },
      60s, 20ms))
      << p.err();
  EXPECT_NE(p.err().find("test hook: lcore " + lcore + " stalled"), std::string::npos) << p.err();
  // Marker 1 (what came before it was sent before the keep-alive was withheld), at least a
  // second of the daemon's own time (ten keep-alive periods), marker 2: nothing in between is a
  // keep-alive.
  p.signal(SIGHUP);
  const long first = notes.find("RELOADING=1", 0);
  ASSERT_GE(first, 0) << p.err();
  const double q0 = quiet();
  ASSERT_TRUE(statewall::testing::waitFor([&] { return quiet() >= q0 + 1.0; }, 60s, 50ms));
  p.signal(SIGHUP);
  const long second = notes.find("RELOADING=1", static_cast<size_t>(first) + 1);
  ASSERT_GT(second, first) << p.err();
  EXPECT_EQ(notes.count("WATCHDOG=1", static_cast<size_t>(first), static_cast<size_t>(second)), 0u);

  // Released: the keep-alive and the health come back.
  std::filesystem::remove(stall_file);
  EXPECT_GE(notes.find("WATCHDOG=1", static_cast<size_t>(second)), 0) << p.err();
  EXPECT_TRUE(statewall::testing::waitFor([&] { return health(&h) == 200; }, 60s, 50ms))
      << h.dump();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
}

}  // namespace
}  // namespace statewall::dpdk_test
