// A capture of real Linux traffic, made inside the test: two network namespaces joined by a veth
// pair, a Python HTTP server, curl, a UDP exchange, ping, a connection attempt to a closed port and
// one to a port the policy does not open, recorded with tcpdump on the veth (Ethernet) and on
// "any" (Linux cooked capture). Both captures are replayed with a policy written for those
// addresses; each connection must get the verdicts and the Zeek conn_state it should.
//
// Needs root (namespaces) and ip, tcpdump, python3, curl and ping; skipped otherwise. All traffic
// stays inside the two namespaces, which are deleted at the end, also when the test fails.
// With STATEWALL_SAVE_CAPTURE=DIR the veth capture and its policy are copied to DIR (this is how
// examples/linux-capture.pcap was made).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/netns_pair.hpp"
#include "sim_test_util.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {
namespace {

using testing::TempDir;

bool have(const char* tool) {
  return statewall::testing::runShell(std::string("command -v ") + tool).exit_code == 0;
}

// A shell command (its output passed on to the test's log); its exit status.
int sh(const std::string& cmd) {
  const auto r = statewall::testing::runShell(cmd);
  std::fputs(r.out.c_str(), stdout);
  std::fputs(r.err.c_str(), stderr);
  return r.exit_code;
}

// The policy for the capture: the server's interface opens 8080/tcp, 9999/udp, ping, and 7/tcp
// (where nothing listens, so the kernel refuses); 2222/tcp is not open.
constexpr const char* kPolicy = R"(version: 1
timeouts: {profile: linux}
groups:
  server:
    inbound:
      - {proto: tcp, ports: 8080, from: 10.199.0.0/24, description: the Python HTTP server}
      - {proto: udp, ports: 9999, from: 10.199.0.0/24, description: the UDP echo}
      - {proto: icmp, icmp: {type: 8, code: -1}, from: 10.199.0.0/24, description: ping}
      - {proto: tcp, ports: 7, from: 10.199.0.0/24, description: "open in the policy, closed on the host"}
interfaces:
  server-1: {addresses: [10.199.0.2], groups: [server]}
)";

// Two namespaces (10.199.0.1 in a, 10.199.0.2 in b) joined by a veth pair.
using Namespaces = statewall::testing::NamespacePair;

bool waitFor(const std::function<bool()>& cond, int tenths = 100) {
  for (int i = 0; i < tenths; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Whether a capture being written already holds the server's answer on port 2222 (the last
// packet of the test's traffic). A record cut short at the end of the file is not an error here.
bool captureHasRefusal(const std::string& path) {
  TraceError err;
  auto r = TraceReader::open(path, &err);
  if (!r) return false;
  TracePacket p;
  while (r->next(&p) == TraceReader::Status::kPacket) {
    dataplane::ParsedPacket pp;
    if (dataplane::parsePacket(p.data, p.caplen, r->linkType(), &pp) &&
        pp.proto == dataplane::kIpProtoTcp && pp.sport == 2222 &&
        (pp.tcp_flags & dataplane::kRst) != 0) {
      return true;
    }
  }
  return false;
}

std::vector<nlohmann::json> readJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line));
  return out;
}

struct Replayed {
  std::vector<nlohmann::json> verdicts;
  std::vector<nlohmann::json> conns;
  ReplaySummary summary;
};

Replayed replay(const std::string& policy_path, const std::string& trace, const TempDir& dir,
                const std::string& tag) {
  Replayed r;
  auto loaded = rules::loadPolicyFiles({policy_path});
  for (const auto& d : loaded.diagnostics)
    ADD_FAILURE() << d.str();
  if (!loaded.ok()) return r;
  auto compiled = rules::compile(*loaded.policy);
  EXPECT_TRUE(compiled.policy);
  if (!compiled.policy) return r;
  ReplayOptions o;
  o.verdicts_path = dir.file(tag + ".verdicts.jsonl");
  o.connections_path = dir.file(tag + ".conn.jsonl");
  Replay rp(compiled.policy, o);
  std::string err;
  EXPECT_TRUE(rp.openOutputs(&err)) << err;
  EXPECT_TRUE(rp.runFiles({trace})) << (rp.summary().error ? rp.summary().error->str() : "");
  EXPECT_TRUE(rp.finish(&err)) << err;
  r.summary = rp.summary();
  r.verdicts = readJsonLines(o.verdicts_path);
  r.conns = readJsonLines(o.connections_path);
  return r;
}

// The connection record for (proto, responder port), or null.
const nlohmann::json* conn(const Replayed& r, const std::string& proto, int resp_p) {
  for (const auto& c : r.conns) {
    if (c["proto"] == proto && c["id.resp_h"] == "10.199.0.2" && c["id.resp_p"] == resp_p) {
      return &c;
    }
  }
  return nullptr;
}

// Verdicts of the packets between the client and (server, port), either direction.
std::vector<const nlohmann::json*> packetsOf(const Replayed& r, const std::string& proto,
                                             int port) {
  std::vector<const nlohmann::json*> out;
  for (const auto& v : r.verdicts) {
    if (v.value("proto", "") != proto) continue;
    bool to = v["dst"] == "10.199.0.2" && v.value("dport", -1) == port;
    bool from = v["src"] == "10.199.0.2" && v.value("sport", -1) == port;
    if (to || from) out.push_back(&v);
  }
  return out;
}

void checkCapture(const Replayed& r, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_GT(r.summary.packets, 20u) << "the capture is (nearly) empty";
  ASSERT_FALSE(r.conns.empty());
  // HTTP: a full conversation, all allowed, opened by the 8080 rule.
  const auto* http = conn(r, "tcp", 8080);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ((*http)["conn_state"], "SF");
  EXPECT_EQ((*http)["end"], "closed");
  EXPECT_EQ((*http)["denied_pkts"], 0);
  EXPECT_GT((*http)["resp_bytes"].get<uint64_t>(), 100u);  // the directory listing
  EXPECT_EQ((*http)["opened_by"]["index"], 0);
  std::string hist = (*http)["history"];
  EXPECT_EQ(hist.rfind("ShAD", 0), 0u) << hist;
  auto http_pkts = packetsOf(r, "tcp", 8080);
  ASSERT_GE(http_pkts.size(), 8u);
  EXPECT_EQ((*http_pkts[0])["reason"], "allow-rule");
  for (size_t i = 1; i < http_pkts.size(); ++i) {
    EXPECT_EQ((*http_pkts[i])["reason"], "allow-tracked") << (*http_pkts[i]).dump();
  }

  // UDP request and reply.
  const auto* udp = conn(r, "udp", 9999);
  ASSERT_NE(udp, nullptr);
  EXPECT_EQ((*udp)["conn_state"], "SF");
  EXPECT_EQ((*udp)["orig_pkts"], 1);
  EXPECT_EQ((*udp)["resp_pkts"], 1);
  auto udp_pkts = packetsOf(r, "udp", 9999);
  ASSERT_EQ(udp_pkts.size(), 2u);
  EXPECT_EQ((*udp_pkts[0])["reason"], "allow-rule");
  EXPECT_EQ((*udp_pkts[1])["reason"], "allow-tracked");

  // Ping: two requests, two replies, one ICMP connection (Zeek: OTH, type 8 as orig_p).
  const nlohmann::json* icmp = nullptr;
  for (const auto& c : r.conns)
    if (c["proto"] == "icmp" && c["id.orig_p"] == 8) icmp = &c;
  ASSERT_NE(icmp, nullptr);
  EXPECT_EQ((*icmp)["conn_state"], "OTH");
  EXPECT_EQ((*icmp)["orig_pkts"], 2);
  EXPECT_EQ((*icmp)["resp_pkts"], 2);
  EXPECT_EQ((*icmp)["denied_pkts"], 0);

  // Port 7: allowed by the policy, refused by the host: REJ, both packets allowed.
  const auto* rej = conn(r, "tcp", 7);
  ASSERT_NE(rej, nullptr);
  EXPECT_EQ((*rej)["conn_state"], "REJ");
  EXPECT_EQ((*rej)["denied_pkts"], 0);
  auto rej_pkts = packetsOf(r, "tcp", 7);
  ASSERT_EQ(rej_pkts.size(), 2u);
  EXPECT_EQ((*rej_pkts[0])["reason"], "allow-rule");
  EXPECT_EQ((*rej_pkts[1])["reason"], "allow-tracked");

  // Port 2222: not in the policy: the SYN is denied by the server's security group.
  auto ssh = packetsOf(r, "tcp", 2222);
  ASSERT_GE(ssh.size(), 1u);
  EXPECT_EQ((*ssh[0])["reason"], "deny-sg");
  EXPECT_EQ((*ssh[0])["rule"]["interface"], "server-1");
  const auto* denied = conn(r, "tcp", 2222);
  ASSERT_NE(denied, nullptr);
  EXPECT_GE((*denied)["denied_pkts"].get<int>(), 1);
  EXPECT_EQ((*denied)["opened_by"], nullptr);

  // Nothing else was denied (ARP passes as control traffic, the refused SYN's RST leaves the
  // server by its allow-all outbound rule).
  uint64_t denied_total = 0;
  for (size_t i = 0; i < dataplane::kReasonCount; ++i)
    if (!dataplane::kReasonAllows[i]) denied_total += r.summary.packets_by_reason[i];
  EXPECT_EQ(denied_total, 1u);
}

TEST(NetnsCapture, RealTrafficGetsTheRightVerdictsAndConnStates) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
  for (const char* tool : {"ip", "tcpdump", "python3", "curl", "ping"}) {
    if (!have(tool)) GTEST_SKIP() << tool << " is not installed";
  }
  TempDir dir;
  Namespaces ns("");
  ASSERT_EQ(ns.setup("10.199.0"), "");

  // Servers in B: HTTP on 8080 and a one-shot UDP echo on 9999.
  testing::writeText(dir.file("index.html"), std::string(2000, 'x'));
  ns.spawn(ns.b(), "python3 -m http.server 8080 --bind 10.199.0.2 --directory " + dir.path(),
           dir.file("http.log"));
  ns.spawn(ns.b(),
           "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
           "s.bind(('10.199.0.2', 9999)); d, a = s.recvfrom(2048); s.sendto(d.upper(), a)\"",
           dir.file("udp.log"));
  ASSERT_TRUE(waitFor([&] {
    return sh(ns.inB("ss -ltn") + " | grep -q ':8080 '") == 0 &&
           sh(ns.inB("ss -lun") + " | grep -q ':9999 '") == 0;
  })) << "servers did not start";

  // Two captures on B's side: the veth (Ethernet) and "any" (Linux cooked capture).
  const std::string eth = dir.file("veth.pcap"), any = dir.file("any.pcap");
  pid_t cap1 =
      ns.spawn(ns.b(), "tcpdump -n -U -i " + ns.vethB() + " -w " + eth, dir.file("tcpdump1.log"));
  pid_t cap2 = ns.spawn(ns.b(), "tcpdump -n -U -i any -w " + any, dir.file("tcpdump2.log"));
  ASSERT_TRUE(waitFor([&] {
    return testing::readText(dir.file("tcpdump1.log")).find("listening on") != std::string::npos &&
           testing::readText(dir.file("tcpdump2.log")).find("listening on") != std::string::npos;
  })) << "tcpdump did not start";

  // The traffic, from A.
  EXPECT_EQ(sh(ns.inA("curl -s -o /dev/null --max-time 10 http://10.199.0.2:8080/index.html")), 0);
  EXPECT_EQ(sh(ns.inA("python3 -c \"import socket; s=socket.socket(socket.AF_INET, "
                      "socket.SOCK_DGRAM); s.settimeout(5); s.sendto(b'hello', ('10.199.0.2', "
                      "9999)); print(s.recvfrom(2048))\" >/dev/null")),
            0);
  EXPECT_EQ(sh(ns.inA("ping -c 2 -i 0.2 -W 2 10.199.0.2 >/dev/null")), 0);
  EXPECT_NE(sh(ns.inA("curl -s --max-time 5 http://10.199.0.2:7/ >/dev/null 2>&1")), 0);
  EXPECT_NE(sh(ns.inA("curl -s --max-time 5 http://10.199.0.2:2222/ >/dev/null 2>&1")), 0);
  // tcpdump may hand packets to its file well after they crossed the wire (on a loaded machine,
  // seconds): stop it only once both files hold the last packet sent, the refusal of 2222.
  EXPECT_TRUE(waitFor([&] { return captureHasRefusal(eth) && captureHasRefusal(any); }, 150))
      << "tcpdump did not write the whole exchange within 15 s";
  ns.stop(cap1);
  ns.stop(cap2);

  for (const auto& [log, file] : {std::pair{"tcpdump1.log", eth}, std::pair{"tcpdump2.log", any}}) {
    std::string text = testing::readText(dir.file(log));
    EXPECT_GT(testing::readBytes(file).size(), 24u * 100)
        << file << " is (nearly) empty; " << log << ":\n"
        << text;
  }
  testing::writeText(dir.file("policy.yaml"), kPolicy);
  Replayed on_veth = replay(dir.file("policy.yaml"), eth, dir, "veth");
  checkCapture(on_veth, "veth capture (EN10MB)");
  Replayed on_any = replay(dir.file("policy.yaml"), any, dir, "any");
  checkCapture(on_any, "any capture (Linux cooked)");
  ASSERT_FALSE(on_any.summary.traces.empty());
  EXPECT_NE(on_any.summary.traces[0].dlt, 1);  // LINUX_SLL or LINUX_SLL2

  if (const char* save = std::getenv("STATEWALL_SAVE_CAPTURE")) {
    sh("cp " + eth + " " + std::string(save) + "/linux-capture.pcap");
    sh("cp " + dir.file("policy.yaml") + " " + std::string(save) + "/linux-capture.yaml");
  }
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// A real capture whose interfaces differ in link type, made by the test: dumpcap on the loopback
// (EN10MB) and on "any" (Linux cooked) at once writes one pcapng file with an interface
// description block for each (as Wireshark does for several interfaces). A TCP exchange on
// 127.0.0.1 is captured on both; the replay reads every packet by its own interface's link type
// (before: libpcap refused the file as damaged). Needs root and dumpcap; skipped otherwise. Only
// loopback traffic to a port of the test's own is captured.
TEST(Capture, DumpcapOnLoopbackAndAnyInOnePcapng) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to capture";
  if (!have("dumpcap")) GTEST_SKIP() << "dumpcap is not installed";
  TempDir dir;
  const int server = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(server, 8), 0);
  socklen_t alen = sizeof(addr);
  ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &alen), 0);
  const uint16_t port = ntohs(addr.sin_port);

  const std::string file = dir.file("lo-any.pcapng");
  const std::string log = dir.file("dumpcap.log");
  const std::string filter = "'tcp port " + std::to_string(port) + "'";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    const std::string cmd = "exec dumpcap -i lo -f " + filter + " -i any -f " + filter + " -w " +
                            file + " >" + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  auto stop = [&] {
    ::kill(-pid, SIGINT);
    if (!waitFor([&] { return ::waitpid(pid, nullptr, WNOHANG) == pid; }, 100)) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  };
  // Packets of the exchange on each interface, as far as the file holds them yet.
  auto perInterface = [&](std::map<int, uint64_t>* by_dlt) {
    TraceError err;
    auto r = TraceReader::open(file, &err);
    if (!r) return;
    TracePacket p;
    while (r->next(&p) == TraceReader::Status::kPacket)
      ++(*by_dlt)[p.dlt];
  };
  const bool started =
      waitFor([&] { return testing::readText(log).find("Capturing on") != std::string::npos; });
  if (!started) stop();
  ASSERT_TRUE(started) << testing::readText(log);
  // Exchanges until both interfaces have captured one (the capture starts a moment after dumpcap
  // says so; dumpcap writes its file in batches).
  auto exchange = [&] {
    const int c = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(c);
      return;
    }
    const int s = ::accept(server, nullptr, nullptr);
    const char msg[] = "hello over loopback";
    (void)!::write(c, msg, sizeof(msg));
    char buf[64];
    (void)!::read(s, buf, sizeof(buf));
    ::close(c);
    ::close(s);
  };
  std::map<int, uint64_t> seen;
  const bool captured = waitFor(
      [&] {
        exchange();
        seen.clear();
        perInterface(&seen);
        return seen.size() >= 2;
      },
      200);
  stop();
  ::close(server);
  ASSERT_TRUE(captured) << "dumpcap did not write packets of both interfaces within 20 s: "
                        << testing::readText(log);

  TraceError err;
  auto r = TraceReader::open(file, &err);
  ASSERT_TRUE(r) << err.str();
  ASSERT_GE(r->interfaces().size(), 2u);
  EXPECT_EQ(r->interfaces()[0].dlt, 1);
  EXPECT_TRUE(r->interfaces()[1].dlt == 113 || r->interfaces()[1].dlt == 276)
      << r->interfaces()[1].dlt;

  // Replayed: every packet parsed (none malformed) and seen as the exchange's port, on both
  // link types.
  testing::writeText(dir.file("p.yaml"), "version: 1\nunprotected: allow\n");
  auto loaded = rules::loadPolicyFiles({dir.file("p.yaml")});
  ASSERT_TRUE(loaded.ok());
  auto compiled = rules::compile(*loaded.policy);
  ASSERT_TRUE(compiled.policy);
  Replay replay(compiled.policy, {});
  uint64_t ours = 0, total = 0;
  replay.setObserver(
      [&](uint64_t, uint64_t, const dataplane::Verdict& v, const dataplane::ParsedPacket& p) {
        ++total;
        EXPECT_NE(v.reason, dataplane::Reason::kDenyMalformed) << p.malformed_why;
        if (p.proto == 6 && (p.sport == port || p.dport == port)) ++ours;
      });
  EXPECT_TRUE(replay.runFiles({file})) << replay.summary().error->str();
  std::string ferr;
  EXPECT_TRUE(replay.finish(&ferr)) << ferr;
  EXPECT_GT(total, 0u);
  EXPECT_EQ(ours, total);
  ASSERT_EQ(replay.summary().traces.size(), 1u);
  EXPECT_GE(replay.summary().traces[0].dlts.size(), 2u);
}

}  // namespace
}  // namespace statewall::sim
