// A SYN flood that fills the connection table (issue 14, "Floods"): with early drop (a full
// table evicts an unreplied entry; docs/design.md, connection tracking) established flows never
// lose a packet and new legitimate connections keep opening while the flood goes on.
//
// One generated trace (sim::writeTrace, the generator behind `statewall gen`), its timestamps
// the trace clock of `statewall replay`:
//   - 16 long-lived HTTPS connections opened before the flood, exchanging data every 20 ms
//     until after it ends;
//   - a SYN flood from spoofed sources (100.64.0.0/10) to port 80, 20,000 SYNs per second for
//     2 s, never answered, into a table of 4,096 connections (full after 0.2 s);
//   - a new legitimate HTTPS connection every 5 ms during the flood (380 of them), each a
//     handshake, one exchange and a FIN close.
// The policy has no outbound rules, so a server's SYN-ACK passes only when its connection's
// entry is still there: a SYN-ACK that got through is a connection that opened.
//
// Run through `statewall replay --table-capacity 4096` and through statewalld on net_pcap vdevs
// (--table-size 4096, one forwarding lcore, its clock real time: the whole trace takes well
// under one SYN_SENT timeout either way, so no flood entry expires). Checked from what each one
// let through (--allowed / the tx pcap) and from its counters.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "dpdk/dpdk_test_util.hpp"
#include "dpdk/pcap_util.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/sim/gen.hpp"

namespace statewall::dpdk_test {
namespace {

constexpr const char* kPolicy = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 80, from: 0.0.0.0/0}
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
    outbound: []
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr size_t kTable = 4096;
constexpr unsigned kEstablished = 16;  // client ports 40000..40015
constexpr unsigned kNew = 380;         // client ports 20000..20379
constexpr unsigned kFloodPps = 20000;
constexpr double kFloodSeconds = 2.0;
constexpr unsigned kNewEveryMs = 5;

enum class Kind { kOther, kLongLived, kOpening, kFlood };

struct Classified {
  Kind kind = Kind::kOther;
  unsigned index = 0;    // flow number within its kind
  bool syn_ack = false;  // a server's SYN-ACK
};

Classified classify(const Frame& f) {
  dataplane::ParsedPacket p;
  dataplane::parsePacket(f.data(), static_cast<uint32_t>(f.size()), dataplane::LinkType::kEthernet,
                         &p);
  Classified c;
  if (p.l3 != dataplane::L3::kIpv4 || p.proto != dataplane::kIpProtoTcp) return c;
  const bool from_server = p.src == rules::IpAddr::v4(0x0A00010Au);  // 10.0.1.10
  const uint16_t client_port = from_server ? p.dport : p.sport;
  const rules::IpAddr& client = from_server ? p.dst : p.src;
  c.syn_ack = from_server && (p.tcp_flags & (dataplane::kSyn | dataplane::kAck)) ==
                                 (dataplane::kSyn | dataplane::kAck);
  static const rules::Cidr kSpoofed = *rules::Cidr::parse("100.64.0.0/10");
  if (kSpoofed.contains(client)) {
    c.kind = Kind::kFlood;
  } else if (client_port >= 40000 && client_port < 40000 + kEstablished) {
    c.kind = Kind::kLongLived;
    c.index = client_port - 40000;
  } else if (client_port >= 20000 && client_port < 20000 + kNew) {
    c.kind = Kind::kOpening;
    c.index = client_port - 20000;
  }
  return c;
}

struct Tally {
  std::vector<uint64_t> established;  // packets per established flow
  std::vector<bool> opened;           // new connections whose SYN-ACK passed
  uint64_t flood = 0;
  size_t openedCount() const {
    size_t n = 0;
    for (bool o : opened)
      n += o;
    return n;
  }
};

Tally tally(const std::vector<Frame>& frames) {
  Tally t;
  t.established.assign(kEstablished, 0);
  t.opened.assign(kNew, false);
  for (const Frame& f : frames) {
    const Classified c = classify(f);
    if (c.kind == Kind::kLongLived) ++t.established[c.index];
    if (c.kind == Kind::kOpening && c.syn_ack) t.opened[c.index] = true;
    if (c.kind == Kind::kFlood) ++t.flood;
  }
  return t;
}

class FloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "policy.yaml";
    writeText(policy_, kPolicy);
    sim::GenOptions g;
    g.seed = 14;
    auto add = [&](const std::string& spec) {
      auto f = sim::parseFlowSpec(spec);
      ASSERT_TRUE(f) << spec << ": " << f.message();
      g.explicit_flows.push_back(*f);
    };
    for (unsigned i = 0; i < kEstablished; ++i) {
      add("tcp 198.51.100." + std::to_string(1 + i) + ":" + std::to_string(40000 + i) +
          " -> 10.0.1.10:443 at=0." + std::to_string(10 + i) + " rtt=20 data=125 req=100 resp=300");
    }
    add("flood 100.64.0.0/10 -> 10.0.1.10:80 count=" +
        std::to_string(static_cast<unsigned>(kFloodPps * kFloodSeconds)) +
        " rate=" + std::to_string(kFloodPps) + " at=0.2");
    for (unsigned i = 0; i < kNew; ++i) {
      const unsigned ms = 300 + i * kNewEveryMs;
      add("tcp 198.51.100." + std::to_string(100 + i % 100) + ":" + std::to_string(20000 + i) +
          " -> 10.0.1.10:443 at=" + std::to_string(ms / 1000) + "." +
          std::to_string(1000 + ms % 1000).substr(1) + " rtt=2 data=1");
    }
    trace_ = dir_ / "flood.pcap";
    sim::GenStats st;
    ASSERT_EQ(sim::writeTrace(g, trace_, &st).message(), "");
    frames_ = readPcap(trace_);
    input_ = tally(frames_);
    ASSERT_EQ(input_.flood, kFloodPps * kFloodSeconds);
    ASSERT_EQ(input_.openedCount(), kNew) << "every new connection is answered in the trace";
    // The long-lived flows span the flood: their last packets come after its last SYN.
    ASSERT_GT(st.last_ts_ns - st.first_ts_ns, static_cast<uint64_t>(2.3e9));
  }

  // Every packet of the established flows passed; nearly every new connection opened.
  void checkThrough(const Tally& out, const std::string& who) {
    for (unsigned i = 0; i < kEstablished; ++i) {
      EXPECT_EQ(out.established[i], input_.established[i])
          << who << ": established flow " << i << " lost packets";
    }
    const size_t opened = out.openedCount();
    // Flood rate per new connection: 20,000 SYN/s against 200 connections/s.
    std::printf(
        "%s: %zu of %u new connections opened during a %u SYN/s flood into a %zu-entry "
        "table (%.0f per second of trace)\n",
        who.c_str(), opened, kNew, kFloodPps, kTable,
        static_cast<double>(opened) / (kNew * kNewEveryMs / 1000.0));
    EXPECT_GE(opened * 100, size_t{kNew} * 95) << who;
  }

  TempDir dir_;
  std::string policy_, trace_;
  std::vector<Frame> frames_;
  Tally input_;
};

TEST_F(FloodTest, ReplayKeepsEstablishedFlowsAndOpensNewConnections) {
  const std::string allowed = dir_ / "allowed.pcap";
  RunResult r = run({statewallPath(), "replay", "--policy", policy_, trace_, "--table-capacity",
                     std::to_string(kTable), "--allowed", allowed, "--json"},
                    dir_, "replay");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  checkThrough(tally(readPcap(allowed)), "replay");
  // The table filled: most flood SYNs got in by evicting an older one.
  const uint64_t evicted = j["connections"]["evicted"].get<uint64_t>();
  EXPECT_GT(evicted, kFloodPps * kFloodSeconds - 2 * kTable) << j["connections"].dump();
  EXPECT_LE(evicted, kFloodPps * kFloodSeconds + kNew);
}

TEST_F(FloodTest, StatewalldKeepsEstablishedFlowsAndOpensNewConnections) {
  if (!std::filesystem::exists(statewalldPath())) GTEST_SKIP() << "statewalld not built";
  const std::string empty = dir_ / "empty.pcap";
  writePcap(empty, {});
  const std::string out0 = dir_ / "out0.pcap", out1 = dir_ / "out1.pcap";
  const std::string counters = dir_ / "counters.json";
  std::vector<std::string> argv = {statewalldPath()};
  for (const auto& a : ealArgs(1, "flood"))
    argv.push_back(a);
  argv.push_back("--vdev=net_pcap0,rx_pcap=" + trace_ + ",tx_pcap=" + out0);
  argv.push_back("--vdev=net_pcap1,rx_pcap=" + empty + ",tx_pcap=" + out1);
  for (const std::string& a :
       {std::string("--"), std::string("--policy"), policy_, std::string("--inside"),
        std::string("net_pcap0"), std::string("--outside"), std::string("net_pcap1"),
        std::string("--lcores"), std::string("1"), std::string("--table-size"),
        std::to_string(kTable), std::string("--exit-when-idle"), std::string("300"),
        std::string("--counters-file"), counters})
    argv.push_back(a);
  RunResult r = run(argv, dir_, "statewalld");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string text = readText(counters);
  ASSERT_FALSE(text.empty()) << r.out << r.err;
  const nlohmann::json c = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(c.is_discarded()) << text;
  EXPECT_EQ(c["packets_in"], frames_.size());
  // Everything entered on the inside port: what passed left by the outside port.
  const std::vector<Frame> forwarded = readPcap(out1);
  EXPECT_EQ(forwarded.size(), c["allowed"].get<uint64_t>());
  checkThrough(tally(forwarded), "statewalld");
  const uint64_t evicted = c["connections"]["evicted"].get<uint64_t>();
  EXPECT_GT(evicted, kFloodPps * kFloodSeconds - 2 * kTable) << c["connections"].dump();
  EXPECT_NE(r.out.find("evicted "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace statewall::dpdk_test
