// statewalld with its control server (--control-socket, --control-listen, --control-token-file) on
// net_pcap vdevs: `statewall ctl` and HTTP against the running daemon over the Unix socket and the
// token-protected loopback TCP port, per-lcore rates, the policy's documents, a policy loaded
// through the API, the server threads kept off the forwarding lcore's CPU, the socket removed at
// exit, and the control setup errors.
#include <dirent.h>
#include <sched.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dpdk_test_util.hpp"
#include "pcap_util.hpp"
#include "statewall/control/client.hpp"
#include "statewall/sim/gen.hpp"

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

constexpr const char* kPolicy2 = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 8443, from: 0.0.0.0/0}
      - {proto: udp, ports: 53, from: 198.51.100.0/24}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr const char* kToken = "s3cret-token-for-the-control-test";

std::set<int> allowedCpus() {
  std::set<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.insert(c);
  return out;
}

// "0-2,5" -> {0, 1, 2, 5}
std::set<int> parseCpuList(const std::string& text) {
  std::set<int> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find(',', i);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(i, end - i);
    const size_t dash = part.find('-');
    if (!part.empty()) {
      const int lo = std::stoi(part.substr(0, dash));
      const int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      for (int c = lo; c <= hi; ++c)
        out.insert(c);
    }
    i = end + 1;
  }
  return out;
}

// The CPUs each thread named `name` of process `pid` may run on.
std::vector<std::set<int>> threadCpus(pid_t pid, const std::string& name) {
  std::vector<std::set<int>> out;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(task.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string dir = task + "/" + e->d_name;
    std::string comm = readText(dir + "/comm");
    while (!comm.empty() && comm.back() == '\n')
      comm.pop_back();
    if (comm != name) continue;
    const std::string status = readText(dir + "/status");
    const std::string key = "Cpus_allowed_list:";
    const size_t k = status.find(key);
    if (k == std::string::npos) continue;
    size_t b = k + key.size();
    while (b < status.size() && (status[b] == '\t' || status[b] == ' '))
      ++b;
    out.push_back(parseCpuList(status.substr(b, status.find('\n', b) - b)));
  }
  closedir(d);
  return out;
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "policy.yaml";
    writeText(policy_, kPolicy);
    policy2_ = dir_ / "policy2.yaml";
    writeText(policy2_, kPolicy2);
    token_ = dir_ / "token";
    writeText(token_, std::string(kToken) + "\n");
    empty_ = dir_ / "empty.pcap";
    writePcap(empty_, {});
    sim::GenOptions g;
    g.seed = 11;
    g.flows = 100;
    g.duration_s = 1.0;
    g.clients = {*rules::Cidr::parse("198.51.100.0/24")};
    g.servers = {*rules::IpAddr::parse("10.0.1.10")};
    g.mix = sim::GenOptions::defaultMix();
    g.mix[static_cast<size_t>(sim::Scenario::kTcpIdle)] = 0;
    sim::GenStats st;
    trace_ = dir_ / "trace.pcap";
    ASSERT_EQ(sim::writeTrace(g, trace_, &st).message(), "");
    packets_ = st.packets;
    ASSERT_GT(packets_, 100u);
    socket_ = dir_ / "ctl.sock";
  }

  // `lcores`: EAL's --lcores map instead of the default one (main lcore and the forwarding lcore
  // on different CPUs when there are two).
  std::vector<std::string> argv(const std::string& tag, const std::vector<std::string>& app,
                                const std::string& lcores = "") {
    std::vector<std::string> a = {statewalldPath()};
    for (const auto& e : ealArgs(1, tag))
      a.push_back(lcores.empty() || e.rfind("--lcores=", 0) != 0 ? e : "--lcores=" + lcores);
    a.push_back("--vdev=net_pcap0,rx_pcap=" + trace_ + ",tx_pcap=" + (dir_ / (tag + "0.pcap")));
    a.push_back("--vdev=net_pcap1,rx_pcap=" + empty_ + ",tx_pcap=" + (dir_ / (tag + "1.pcap")));
    a.insert(a.end(), {"--", "--policy", policy_, "--inside", "0", "--outside", "1"});
    a.insert(a.end(), app.begin(), app.end());
    return a;
  }

  control::ClientResponse get(const control::ClientOptions& o, const std::string& target) {
    control::ClientResponse r;
    control::Status s = control::ControlClient(o).request("GET", target, "", "", &r);
    EXPECT_TRUE(s.ok()) << target << ": " << s.message();
    return r;
  }

  TempDir dir_;
  std::string policy_, policy2_, token_, empty_, trace_, socket_;
  uint64_t packets_ = 0;
};

TEST_F(ControlTest, CtlAndHttpAgainstTheRunningDaemon) {
  // The main lcore and the forwarding lcore share the last CPU we may use, so that the control
  // threads, which start with the main lcore's affinity, must be moved off it (when there is
  // another CPU to move them to).
  const std::set<int> mine = allowedCpus();
  ASSERT_FALSE(mine.empty());
  const int shared_cpu = *mine.rbegin();
  const std::string lcores = "0@" + std::to_string(shared_cpu) + ",1@" + std::to_string(shared_cpu);
  Process p(argv("ctl",
                 {"--control-socket", socket_, "--control-listen", "127.0.0.1:0",
                  "--control-token-file", token_, "--idle-sleep", "1000"},
                 lcores),
            dir_ / "d.out", dir_ / "d.err");
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(p.waitForOutput("statewalld: running", 60s)) << p.out() << p.err();
  const std::string out = p.out();
  const std::string tcp_tag = "tcp 127.0.0.1:";
  const size_t at = out.find(tcp_tag);
  ASSERT_NE(at, std::string::npos) << out;
  const int port = std::stoi(out.substr(at + tcp_tag.size()));
  ASSERT_GT(port, 0) << out;

  control::ClientOptions unix_opts;
  unix_opts.unix_socket = socket_;
  control::ClientOptions tcp_opts;
  tcp_opts.url = "http://127.0.0.1:" + std::to_string(port);
  tcp_opts.token = kToken;

  // The whole trace goes through; the API sees every packet (bounded wait, not a timing check).
  json stats;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    control::ClientResponse r = get(unix_opts, "/v1/stats");
    ASSERT_EQ(r.status, 200) << r.body;
    stats = json::parse(r.body);
    if (stats["packets"] == packets_ && !stats["lcores"].empty()) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(stats["packets"], packets_) << stats.dump();
  EXPECT_EQ(stats["policy_version"], 1);
  EXPECT_GT(stats["reasons"]["allow-rule"]["packets"].get<uint64_t>(), 0u);
  EXPECT_GT(stats["reasons"]["deny-sg"]["packets"].get<uint64_t>(), 0u);
  // Per-lcore rates from the appliance: one entry, for the forwarding lcore (EAL lcore 1).
  ASSERT_EQ(stats["lcores"].size(), 1u) << stats.dump();
  EXPECT_EQ(stats["lcores"][0]["lcore"], 1);
  EXPECT_GE(stats["lcores"][0]["packets_per_second"].get<double>(), 0.0);

  // The I/O side in /metrics: the inside port (net_pcap0) received the whole trace.
  {
    control::ClientResponse r = get(unix_opts, "/metrics");
    ASSERT_EQ(r.status, 200);
    const std::string want =
        "statewall_port_rx_packets_total{port=\"inside\",device=\"net_pcap0\"} " +
        std::to_string(packets_) + "\n";
    EXPECT_NE(r.body.find(want), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("statewall_port_tx_bytes_total{port=\"outside\",device=\"net_pcap1\"} "),
              std::string::npos)
        << r.body;
    for (const char* name : {"statewall_mbufs_in_use ", "statewall_mbufs_capacity ",
                             "statewall_tx_dropped_total ", "statewall_uptime_seconds ",
                             "statewall_port_rx_nombuf_total{", "statewall_port_rx_missed_total{"})
      EXPECT_NE(r.body.find(name), std::string::npos) << name << "\n" << r.body;
    EXPECT_NE(r.body.find("dpdk_version=\"DPDK "), std::string::npos) << r.body;
    const json health = json::parse(get(tcp_opts, "/v1/health").body);
    EXPECT_EQ(health["status"], "ok") << health.dump();
    const json version = json::parse(get(unix_opts, "/v1/version").body);
    EXPECT_EQ(version["dpdk_version"].get<std::string>().rfind("DPDK ", 0), 0u) << version.dump();
  }

  // The drop log: the trace's denied packets with addresses, reason and the nearest rule.
  {
    json drops;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      control::ClientResponse r = get(unix_opts, "/v1/drops?limit=1000");
      ASSERT_EQ(r.status, 200) << r.body;
      drops = json::parse(r.body);
      if (!drops["drops"].empty()) break;
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_FALSE(drops["drops"].empty()) << drops.dump();
    const uint64_t denied = stats["packets"].get<uint64_t>() -
                            stats["reasons"]["allow-rule"]["packets"].get<uint64_t>() -
                            stats["reasons"]["allow-tracked"]["packets"].get<uint64_t>();
    EXPECT_LE(drops["drops"].size(), denied);
    bool sg = false;
    for (const json& d : drops["drops"]) {
      EXPECT_TRUE(d.contains("src") && d.contains("dst") && d.contains("reason")) << d.dump();
      if (d["reason"] == "deny-sg" && d["dst"] == "10.0.1.10") {
        sg = true;
        EXPECT_EQ(d["rule"], "no inbound rule of web-1 (groups web) allows it") << d.dump();
        EXPECT_EQ(d["port"], "inside") << d.dump();  // the trace is replayed on net_pcap0
      }
    }
    EXPECT_TRUE(sg) << drops.dump();
    // The cursor: nothing after the last one.
    const json rest = json::parse(
        get(unix_opts, "/v1/drops?after=" + std::to_string(drops["next_after"].get<uint64_t>()))
            .body);
    EXPECT_TRUE(rest["drops"].empty()) << rest.dump();
    RunResult r = run({statewallPath(), "ctl", "--socket", socket_, "drops"}, dir_, "ctl-drops");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("deny-sg"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("no inbound rule of web-1"), std::string::npos) << r.out;
  }
  // --follow holds GET /v1/drops?follow=1 open; it ends cleanly (exit 0) when statewalld stops.
  Process follow({statewallPath(), "ctl", "--socket", socket_, "drops", "--follow"},
                 dir_ / "follow.out", dir_ / "follow.err");
  EXPECT_TRUE(follow.waitForOutput("deny-sg: no inbound rule of web-1", 30s))
      << follow.out() << follow.err();

  // TCP: the token is required.
  {
    control::ClientOptions no_token = tcp_opts;
    no_token.token.clear();
    EXPECT_EQ(get(no_token, "/v1/stats").status, 401);
    control::ClientOptions wrong = tcp_opts;
    wrong.token = "not-the-right-token-at-all";
    EXPECT_EQ(get(wrong, "/v1/stats").status, 401);
    control::ClientResponse r = get(tcp_opts, "/v1/stats");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["packets"], packets_);
  }
  // The running policy, with the document statewalld loaded it from.
  {
    control::ClientResponse r = get(unix_opts, "/v1/policy");
    ASSERT_EQ(r.status, 200);
    const json j = json::parse(r.body);
    EXPECT_EQ(j["version"], 1);
    ASSERT_EQ(j["documents"].size(), 1u) << j.dump();
    EXPECT_EQ(j["documents"][0]["name"], policy_);
    EXPECT_EQ(j["documents"][0]["text"], kPolicy);
  }

  // `statewall ctl` over both transports.
  {
    RunResult r =
        run({statewallPath(), "ctl", "--socket", socket_, "--json", "stats"}, dir_, "ctl-stats");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(json::parse(r.out)["packets"], packets_);
    r = run({statewallPath(), "ctl", "--url", tcp_opts.url, "--token-file", token_, "stats"}, dir_,
            "ctl-stats-tcp");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("allow-rule"), std::string::npos) << r.out;
    r = run(
        {statewallPath(), "ctl", "--socket", socket_, "--json", "connections", "--dport", "443"},
        dir_, "ctl-conns");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_GT(json::parse(r.out)["matched"].get<uint64_t>(), 0u) << r.out;
  }
  // A policy loaded through the API is published to the running engine.
  {
    RunResult r = run({statewallPath(), "ctl", "--socket", socket_, "policy", "load", policy2_},
                      dir_, "ctl-load");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_TRUE(p.waitForOutput("control: published policy version 2", 30s)) << p.out();
    control::ClientResponse g = get(tcp_opts, "/v1/stats");
    ASSERT_EQ(g.status, 200);
    const json j = json::parse(g.body);
    EXPECT_EQ(j["policy_version"], 2);
    // 8443, DNS and the default allow-all outbound rule.
    ASSERT_EQ(j["rules"].size(), 3u) << j.dump();
    EXPECT_EQ(j["rules"][0]["text"], "tcp 8443 from 0.0.0.0/0");
    // A bad policy is refused; the running one stays.
    const std::string bad = dir_ / "bad.yaml";
    writeText(bad, "version: 1\ngroups:\n  web:\n    inbnd: []\n");
    r = run({statewallPath(), "ctl", "--socket", socket_, "policy", "load", bad}, dir_, "ctl-bad");
    EXPECT_EQ(r.code, 1) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find("bad.yaml:4:"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(json::parse(get(unix_opts, "/v1/stats").body)["policy_version"], 2);
  }

  // The server's threads run on the CPUs statewalld got minus the forwarding lcore's; when that
  // leaves none, on the main lcore's.
  {
    std::set<int> expect = mine;
    expect.erase(shared_cpu);
    if (expect.empty()) expect = {shared_cpu};
    EXPECT_NE(p.out().find(mine.size() > 1 ? "its threads run on CPU" : "every CPU forwards"),
              std::string::npos)
        << p.out();
    const std::vector<std::set<int>> threads = threadCpus(p.pid(), "sw-control");
    ASSERT_FALSE(threads.empty()) << "no sw-control thread";
    for (const std::set<int>& t : threads)
      EXPECT_EQ(t, expect);
  }

  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
  EXPECT_FALSE(fs::exists(socket_)) << "the socket file outlives statewalld";
  EXPECT_EQ(follow.wait(30s), 0) << follow.out() << follow.err();
  EXPECT_NE(follow.out().find("(the stream ended: the control server is stopping)"),
            std::string::npos)
      << follow.out();
}

// Control setup errors: exit 2 before forwarding anything, with a message naming the problem.
TEST_F(ControlTest, SetupErrors) {
  const std::string not_socket = dir_ / "plain-file";
  writeText(not_socket, "x");
  const std::string short_token = dir_ / "short";
  writeText(short_token, "abc\n");
  struct Case {
    std::vector<std::string> app;
    std::string expect;  // in stderr
  };
  const std::vector<Case> cases = {
      {{"--control-socket", not_socket}, "exists and is not a socket"},
      {{"--control-socket", dir_ / "no-such-dir/c.sock"}, "no-such-dir"},
      {{"--control-listen", "127.0.0.1:0", "--control-token-file", short_token}, "token"},
      {{"--control-listen", "0.0.0.0:9180", "--control-token-file", token_}, "only loopback"},
      {{"--control-listen", "127.0.0.1:9180"}, "needs --control-token-file"},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expect);
    RunResult r = run(argv("err" + std::to_string(i), c.app), dir_, "err" + std::to_string(i), 60s);
    ++i;
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("statewalld: running"), std::string::npos) << r.out;
  }
  EXPECT_EQ(readText(not_socket), "x") << "a file that is not a socket was replaced";
}

}  // namespace
}  // namespace statewall::dpdk_test
