// statewalld's option parsing and report formats (no EAL needed).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "dpdk_test_util.hpp"
#include "parse_util.hpp"
#include "statewall/dpdk/mtu.hpp"
#include "statewall/dpdk/options.hpp"
#include "statewall/dpdk/port_lock.hpp"
#include "statewall/dpdk/report.hpp"

namespace statewall::dpdk {
namespace {

using dpdk_test::TempDir;

ParseResult parse(const std::vector<std::string>& args) {
  return dpdk_test::parseStatewalld(args);
}

class OptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "p.yaml";
    policy2_ = dir_ / "q.yaml";
    dpdk_test::writeText(policy_, "version: 1\n");
    dpdk_test::writeText(policy2_, "version: 1\n");
  }
  TempDir dir_;
  std::string policy_, policy2_;
};

TEST_F(OptionsTest, Defaults) {
  ParseResult r = parse({"--policy", policy_, "--inside", "0", "--outside", "net_pcap1"});
  ASSERT_TRUE(r.options) << r.message;
  const Options& o = *r.options;
  EXPECT_EQ(o.policies, std::vector<std::string>{policy_});
  EXPECT_EQ(o.inside, "0");
  EXPECT_EQ(o.outside, "net_pcap1");
  EXPECT_EQ(o.lcores, 0u);
  EXPECT_EQ(o.table_size, size_t{1} << 20);
  EXPECT_EQ(o.mbufs, 0u);
  EXPECT_FALSE(o.pass_non_ip);
  EXPECT_EQ(o.stats_interval_s, 0.0);
  EXPECT_EQ(o.exit_when_idle_ms, 0u);
  EXPECT_EQ(o.burst, 32u);
}

TEST_F(OptionsTest, AllFlags) {
  ParseResult r = parse({"--policy",
                         policy_,
                         "--policy",
                         policy2_,
                         "--inside",
                         "net_pcap0",
                         "--outside",
                         "net_pcap1",
                         "--lcores",
                         "2",
                         "--table-size",
                         "4096",
                         "--mbufs",
                         "8191",
                         "--pass-non-ip",
                         "--stats-interval",
                         "0.5",
                         "--burst",
                         "64",
                         "--exit-when-idle",
                         "250",
                         "--counters-file",
                         "/tmp/c.json",
                         "--idle-sleep",
                         "10",
                         "--rx-desc",
                         "512",
                         "--tx-desc",
                         "256",
                         "--tx-retries",
                         "3"});
  ASSERT_TRUE(r.options) << r.message;
  const Options& o = *r.options;
  EXPECT_EQ(o.policies, (std::vector<std::string>{policy_, policy2_}));
  EXPECT_EQ(o.lcores, 2u);
  EXPECT_EQ(o.table_size, 4096u);
  EXPECT_EQ(o.mbufs, 8191u);
  EXPECT_TRUE(o.pass_non_ip);
  EXPECT_DOUBLE_EQ(o.stats_interval_s, 0.5);
  EXPECT_EQ(o.burst, 64u);
  EXPECT_EQ(o.exit_when_idle_ms, 250u);
  EXPECT_EQ(o.counters_file, "/tmp/c.json");
  EXPECT_EQ(o.idle_sleep_us, 10u);
  EXPECT_EQ(o.rx_desc, 512u);
  EXPECT_EQ(o.tx_desc, 256u);
  EXPECT_EQ(o.tx_retries, 3u);
}

TEST_F(OptionsTest, Errors) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;  // in the message
  };
  const std::vector<Case> cases = {
      {{"--inside", "0", "--outside", "1"}, "--policy"},
      {{"--policy", policy_, "--outside", "1"}, "--inside"},
      {{"--policy", policy_, "--inside", "0"}, "--outside"},
      {{"--policy", dir_ / "missing.yaml", "--inside", "0", "--outside", "1"}, "missing.yaml"},
      {{"--policy", policy_, "--inside", "0", "--outside", "0"}, "different"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--burst", "65"}, "--burst"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--burst", "0"}, "--burst"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--lcores", "0"}, "--lcores"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--table-size", "x"},
       "--table-size"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--table-size", "2147483648"},
       "--table-size"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--bogus"}, "--bogus"},
      // Accepted before (NaN passes every ">= 0" check by failing it).
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--stats-interval", "nan"},
       "--stats-interval: expected a number of seconds, 0 (off) to 86400, found 'nan'"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--stats-interval", "inf"},
       "found 'inf'"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--stats-interval", "-1"},
       "found '-1'"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--stats-interval", "1e300"},
       "found '1e300'"},
      {{"--policy", policy_, "--inside", "0", "--outside", "1", "--stats-interval", "2x"},
       "found '2x'"},
  };
  for (const Case& c : cases) {
    ParseResult r = parse(c.args);
    EXPECT_FALSE(r.options) << c.expect;
    EXPECT_EQ(r.exit_code, 2) << c.expect;
    EXPECT_NE(r.message.find(c.expect), std::string::npos) << r.message;
  }
}

TEST_F(OptionsTest, Help) {
  ParseResult r = parse({"--help"});
  EXPECT_FALSE(r.options);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--policy", "--inside", "--outside", "--lcores", "--table-size",
                           "--mbufs", "--pass-non-ip", "--stats-interval", "--exit-when-idle",
                           "--control-socket", "--control-listen", "--control-token-file"})
    EXPECT_NE(r.message.find(flag), std::string::npos) << flag;
}

TEST_F(OptionsTest, ControlOptions) {
  const std::string token = dir_ / "token";
  dpdk_test::writeText(token, "0123456789abcdef0123\n");
  const std::vector<std::string> base = {"--policy", policy_, "--inside", "0", "--outside", "1"};
  {
    ParseResult r = parse(base);
    ASSERT_TRUE(r.options) << r.message;
    EXPECT_FALSE(r.options->controlEnabled());
  }
  {
    std::vector<std::string> a = base;
    a.insert(a.end(), {"--control-socket", dir_ / "c.sock"});
    ParseResult r = parse(a);
    ASSERT_TRUE(r.options) << r.message;
    EXPECT_TRUE(r.options->controlEnabled());
    EXPECT_EQ(r.options->control_socket, dir_ / "c.sock");
    EXPECT_EQ(r.options->control_listen, "");
  }
  for (const std::string listen : {"127.0.0.1:9180", "127.1.2.3:0", "localhost:65535", "[::1]:9"}) {
    std::vector<std::string> a = base;
    a.insert(a.end(), {"--control-socket", dir_ / "c.sock", "--control-listen", listen,
                       "--control-token-file", token});
    ParseResult r = parse(a);
    ASSERT_TRUE(r.options) << listen << ": " << r.message;
    EXPECT_EQ(r.options->control_listen, listen);
    EXPECT_EQ(r.options->control_token_file, token);
  }
  {  // TCP only is allowed too
    std::vector<std::string> a = base;
    a.insert(a.end(), {"--control-listen", "127.0.0.1:0", "--control-token-file", token});
    ParseResult r = parse(a);
    ASSERT_TRUE(r.options) << r.message;
    EXPECT_TRUE(r.options->controlEnabled());
  }
  struct Case {
    std::vector<std::string> extra;
    std::string expect;  // in the message
  };
  const std::vector<Case> cases = {
      {{"--control-listen", "127.0.0.1:9180"}, "needs --control-token-file"},
      {{"--control-token-file", token}, "give --control-listen too"},
      {{"--control-listen", "127.0.0.1:9180", "--control-token-file", dir_ / "nope"},
       "--control-token-file"},
      {{"--control-listen", "0.0.0.0:9180", "--control-token-file", token}, "only loopback"},
      {{"--control-listen", "10.0.0.1:9180", "--control-token-file", token}, "only loopback"},
      {{"--control-listen", "[2001:db8::1]:9180", "--control-token-file", token}, "only loopback"},
      {{"--control-listen", "::1:9180", "--control-token-file", token}, "in brackets"},
      {{"--control-listen", "127.0.0.1", "--control-token-file", token}, "expected HOST:PORT"},
      {{"--control-listen", "127.0.0.1:65536", "--control-token-file", token}, "0..65535"},
      {{"--control-listen", "127.0.0.1:x", "--control-token-file", token}, "0..65535"},
      {{"--control-listen", "example.com:80", "--control-token-file", token}, "IP address"},
      {{"--control-socket", "/" + std::string(120, 's')}, "longer than 107 bytes"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> a = base;
    a.insert(a.end(), c.extra.begin(), c.extra.end());
    ParseResult r = parse(a);
    EXPECT_FALSE(r.options) << c.expect;
    EXPECT_EQ(r.exit_code, 2) << c.expect;
    EXPECT_NE(r.message.find(c.expect), std::string::npos) << r.message;
  }
  EXPECT_EQ(checkControlListen("127.0.0.1:1"), "");
  EXPECT_NE(checkControlListen("192.168.1.1:1"), "");
}

Report sampleReport() {
  Report r;
  r.seconds = 2.5;
  r.reason_packets[static_cast<size_t>(dataplane::Reason::kAllowRule)] = 3;
  r.reason_bytes[static_cast<size_t>(dataplane::Reason::kAllowRule)] = 300;
  r.reason_packets[static_cast<size_t>(dataplane::Reason::kAllowTracked)] = 7;
  r.reason_packets[static_cast<size_t>(dataplane::Reason::kDenySg)] = 2;
  r.reason_packets[static_cast<size_t>(dataplane::Reason::kDenyMalformed)] = 1;
  r.connections_created = 3;
  IoCounters l;
  l.lcore = 1;
  l.rx_packets = 13;
  l.tx_packets = 10;
  l.denied = 3;
  r.lcores.push_back(l);
  r.io += l;
  PortReport p;
  p.role = "inside";
  p.name = "net_pcap0";
  p.ipackets = 13;
  r.ports.push_back(p);
  r.pool = {8191, 8191};
  r.pool_checked = true;
  return r;
}

TEST(PortLockTest, NamesComeFromThePciAddressOrTheKernelInterface) {
  using V = std::vector<std::string>;
  EXPECT_EQ(portLockNames("pci", "0000:03:00.0", ""), V{"pci-0000:03:00.0"});
  EXPECT_EQ(portLockNames("vdev", "net_af_packet0", "iface=veth1,qpairs=2"), V{"iface-veth1"});
  EXPECT_EQ(portLockNames("vdev", "net_af_xdp0", "qpairs=1,iface=ens5"), V{"iface-ens5"});
  // net_pcap on one interface both ways: one lock.
  EXPECT_EQ(portLockNames("vdev", "net_pcap0", "rx_iface=eth1,tx_iface=eth1"), V{"iface-eth1"});
  EXPECT_EQ(portLockNames("vdev", "net_pcap0", "rx_iface_in=a,tx_iface=b"),
            (V{"iface-a", "iface-b"}));
  // Files, rings, null devices: nothing shared, no lock.
  EXPECT_EQ(portLockNames("vdev", "net_pcap0", "rx_pcap=/tmp/a.pcap,tx_pcap=/tmp/b.pcap"), V{});
  EXPECT_EQ(portLockNames("vdev", "net_null0", ""), V{});
  // Never a path out of the lock directory.
  EXPECT_EQ(portLockNames("vdev", "net_af_packet0", "iface=../x"), V{"iface-.._x"});
}

TEST(PortLockTest, ASecondHolderIsRefusedWithTheFirstOnesPid) {
  TempDir dir;
  const std::string locks = dir / "locks";  // created on demand
  // Another process holds iface-veth1 until we close `release`.
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(release[1]);  // so that the parent's close is the end of the pipe
    ::close(ready[0]);
    PortLock held;
    std::string e;
    const char ok = held.acquire(locks, "iface-veth1", &e) ? 'y' : 'n';
    if (::write(ready[1], &ok, 1) != 1) _exit(1);
    char c;
    while (::read(release[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  PortLock second;
  std::string error;
  EXPECT_FALSE(second.acquire(locks, "iface-veth1", &error));
  EXPECT_NE(error.find("in use by another statewalld (pid " + std::to_string(child) + ")"),
            std::string::npos)
      << error;
  PortLock other;
  EXPECT_TRUE(other.acquire(locks, "iface-veth2", &error)) << error;
  EXPECT_EQ(other.path(), locks + "/iface-veth2.lock");
  EXPECT_EQ(dpdk_test::readText(other.path()), std::to_string(getpid()) + "\n");
  // Released when its holder exits.
  ::close(release[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(second.acquire(locks, "iface-veth1", &error)) << error;
  // Within one process a lock already held counts (statewalld locks vdev interfaces before EAL
  // and the appliance locks every port again): no refusal of ourselves.
  PortLock again;
  EXPECT_TRUE(again.acquire(locks, "iface-veth1", &error)) << error;
  ::close(ready[0]);
  // A lock directory that cannot be made is named.
  PortLock bad;
  EXPECT_FALSE(bad.acquire(dir / "no/such/dir", "iface-x", &error));
  EXPECT_NE(error.find("no/such/dir"), std::string::npos) << error;
}

TEST(MtuTest, AfPacketSlotsFollowTheInterfaceMtu) {
  EXPECT_EQ(afPacketFrameSize(1500, 4096), 2048u);
  EXPECT_EQ(afPacketFrameSize(9000, 4096), 12288u);
  auto mtuOf = [](const std::string& iface) {
    return iface == "big" ? 9000 : iface == "std" ? 1500 : -1;
  };
  std::vector<std::string> notes;
  const std::vector<std::string> in = {"statewalld",
                                       "--vdev=net_af_packet0,iface=big",
                                       "--vdev",
                                       "net_af_packet1,iface=std",
                                       "--vdev=net_af_packet2,iface=big,framesz=4096",
                                       "--vdev=net_pcap0,iface=big",
                                       "-l",
                                       "0,1"};
  std::vector<std::string> out = sizeAfPacketVdevs(in, 0, mtuOf, 4096, &notes);
  EXPECT_EQ(out[1], "--vdev=net_af_packet0,iface=big,framesz=12288,blocksz=12288");
  EXPECT_EQ(out[3], "net_af_packet1,iface=std");  // 1500 fits the default
  EXPECT_EQ(out[4], in[4]);                       // the operator chose
  EXPECT_EQ(out[5], in[5]);                       // not af_packet
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("interface big has MTU 9000"), std::string::npos) << notes[0];
  // --mtu applies to every af_packet port without framesz.
  notes.clear();
  out = sizeAfPacketVdevs(in, 4000, mtuOf, 4096, &notes);
  EXPECT_EQ(out[3], "net_af_packet1,iface=std,framesz=8192,blocksz=8192");
}

// One MTU for both ports of other PMDs: the largest both devices and both links allow, chained
// mbufs where the device can, a warning for an interface whose MTU is over the port's. (Failed
// before: there was no choice; such ports kept the device's default without a word.)
TEST(MtuTest, PortMtuIsTheLargestBothDevicesAndLinksAllow) {
  auto port = [](const std::string& label, uint32_t max_mtu, uint32_t max_rx, bool scatter,
                 const std::string& iface = "", int link = -1) {
    PortMtuLimits l;
    l.label = label;
    l.max_mtu = max_mtu;
    l.max_rx_pktlen = max_rx;
    l.scatter = scatter;
    l.iface = iface;
    l.link_mtu = link;
    return l;
  };
  // NICs that chain mbufs, no kernel interface: the smaller device maximum.
  PortMtuLimits p[2] = {port("inside", 9600, 9618, true), port("outside", 9216, 16000, true)};
  MtuChoice c = choosePortMtu(p, 0);
  EXPECT_EQ(c.mtu, 9216u);
  EXPECT_NE(c.note.find("outside's device maximum"), std::string::npos) << c.note;
  EXPECT_TRUE(c.warnings.empty());
  // max_rx_pktlen counts the Ethernet header and FCS.
  p[1] = port("outside", 65535, 9018, true);
  EXPECT_EQ(choosePortMtu(p, 0).mtu, 9000u);
  // No more than the appliance judges whole.
  p[0] = port("inside", 65535, UINT32_MAX, true);
  p[1] = port("outside", 65535, UINT32_MAX, true);
  EXPECT_EQ(choosePortMtu(p, 0).mtu, kMaxAutoMtu);
  // Known links: a frame must fit both; the larger link is warned about.
  p[0] = port("inside", 65535, UINT32_MAX, false, "big", 9000);
  p[1] = port("outside", 65535, UINT32_MAX, false, "std", 1500);
  c = choosePortMtu(p, 0);
  EXPECT_EQ(c.mtu, 1500u);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("inside: interface big has MTU 9000 but the port's MTU is 1500"),
            std::string::npos)
      << c.warnings[0];
  p[1].link_mtu = 9000;
  c = choosePortMtu(p, 0);
  EXPECT_EQ(c.mtu, 9000u);  // followed even without chaining: the mbufs grow
  EXPECT_TRUE(c.warnings.empty());
  // A device that cannot chain, behind an unknown link, keeps 1500 (--mtu asks for more).
  p[0] = port("inside", 65535, UINT32_MAX, false);
  p[1] = port("outside", 65535, UINT32_MAX, true, "lo", 65536);
  c = choosePortMtu(p, 0);
  EXPECT_EQ(c.mtu, kDefaultMtu);
  EXPECT_NE(c.note.find("inside cannot chain mbufs"), std::string::npos) << c.note;
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("interface lo has MTU 65536"), std::string::npos);
  // --mtu decides; a larger link is still named.
  c = choosePortMtu(p, 4000);
  EXPECT_EQ(c.mtu, 4000u);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("raise --mtu"), std::string::npos) << c.warnings[0];
  // Two af_packet ports: their slots decide (sizeAfPacketVdevs).
  p[0].af_packet = p[1].af_packet = true;
  EXPECT_EQ(choosePortMtu(p, 0).mtu, 0u);
}

TEST(MtuTest, FrameCutShort) {
  // Ethernet + IPv4 header claiming 100 bytes of IP.
  std::vector<uint8_t> f(14 + 20, 0);
  f[12] = 0x08;
  f[13] = 0x00;
  f[14 + 2] = 0;
  f[14 + 3] = 100;
  EXPECT_TRUE(frameCutShort(f.data(), static_cast<uint32_t>(f.size())));
  f.resize(14 + 100);
  EXPECT_FALSE(frameCutShort(f.data(), static_cast<uint32_t>(f.size())));
  // IPv6 behind a VLAN tag: payload 60 + header 40.
  std::vector<uint8_t> v(14 + 4 + 40, 0);
  v[12] = 0x81;
  v[16] = 0x86;
  v[17] = 0xdd;
  v[18 + 5] = 60;
  EXPECT_TRUE(frameCutShort(v.data(), static_cast<uint32_t>(v.size())));
  v.resize(18 + 100);
  EXPECT_FALSE(frameCutShort(v.data(), static_cast<uint32_t>(v.size())));
  // ARP and runts are never "cut short".
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_FALSE(frameCutShort(arp.data(), 42));
  EXPECT_FALSE(frameCutShort(arp.data(), 10));
}

// --config FILE: the same options as YAML; the command line overrides the file; relative paths
// are the file's; unknown keys and bad values are named with their line.
TEST_F(OptionsTest, ConfigFile) {
  const std::string cfg = dir_ / "statewalld.yaml";
  dpdk_test::writeText(cfg,
                       "policy: [p.yaml, q.yaml]\ninside: net_af_packet0\noutside: "
                       "net_af_packet1\nlcores: 2\ntable-size: 1000\npass-non-ip: true\n"
                       "mtu: 9000\n");
  ParseResult r = parse({"--config", cfg, "--lcores", "3"});
  ASSERT_TRUE(r.options) << r.message;
  EXPECT_EQ(r.options->policies, (std::vector<std::string>{policy_, policy2_}));
  EXPECT_EQ(r.options->inside, "net_af_packet0");
  EXPECT_EQ(r.options->lcores, 3u);
  EXPECT_EQ(r.options->table_size, 1000u);
  EXPECT_TRUE(r.options->pass_non_ip);
  EXPECT_EQ(r.options->mtu, 9000u);
  EXPECT_EQ(r.options->config_file, cfg);
  // A policy on the command line replaces the file's list.
  r = parse({"--config=" + cfg, "--policy", policy2_});
  ASSERT_TRUE(r.options) << r.message;
  EXPECT_EQ(r.options->policies, std::vector<std::string>{policy2_});

  struct Case {
    std::string text, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"inside: 0\noutside: 1\npolicy: p.yaml\nlcore: 2\n",
            "statewalld.yaml:4: unknown option 'lcore'"},
           {"inside: 0\noutside: 1\npolicy: p.yaml\nburst: 0\n", "--burst"},
           {"inside: [0\n", "statewalld.yaml:2:"},
           {"inside: 0\noutside: 1\npolicy: p.yaml\npass-non-ip: maybe\n",
            "expected true or false"},
           {"- a\n", "expected a mapping"},
       }) {
    dpdk_test::writeText(cfg, c.text);
    r = parse({"--config", cfg});
    EXPECT_FALSE(r.options) << c.text;
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.message.find(c.expect), std::string::npos) << c.text << " -> " << r.message;
  }
  r = parse({"--config", dir_ / "missing.yaml"});
  EXPECT_FALSE(r.options);
  EXPECT_NE(r.message.find("missing.yaml"), std::string::npos) << r.message;
}

TEST(ReportTest, Sums) {
  Report r = sampleReport();
  EXPECT_EQ(r.packetsIn(), 13u);
  EXPECT_EQ(r.allowedPackets(), 10u);
  EXPECT_EQ(r.deniedPackets(), 3u);
  EXPECT_TRUE(r.pool.full());
  r.pool.available = 8190;
  EXPECT_FALSE(r.pool.full());
}

TEST(ReportTest, TextHasEveryReason) {
  const std::string text = formatReport(sampleReport());
  for (std::string_view code : dataplane::kReasonCodes)
    EXPECT_NE(text.find(std::string(code)), std::string::npos) << code;
  EXPECT_NE(text.find("packets in"), std::string::npos);
  EXPECT_NE(text.find("8191 of 8191 free (full)"), std::string::npos) << text;
  EXPECT_NE(text.find("net_pcap0"), std::string::npos);
}

TEST(ReportTest, Json) {
  const nlohmann::json j = nlohmann::json::parse(reportJson(sampleReport()));
  EXPECT_EQ(j["packets_in"], 13);
  EXPECT_EQ(j["allowed"], 10);
  EXPECT_EQ(j["denied"], 3);
  EXPECT_EQ(j["reasons"].size(), dataplane::kReasonCount);
  EXPECT_EQ(j["reasons"]["allow-rule"]["packets"], 3);
  EXPECT_EQ(j["reasons"]["allow-rule"]["bytes"], 300);
  EXPECT_EQ(j["reasons"]["deny-sg"]["packets"], 2);
  EXPECT_EQ(j["reasons"]["deny-table-full"]["packets"], 0);
  EXPECT_EQ(j["io"]["rx_packets"], 13);
  EXPECT_EQ(j["lcores"][0]["lcore"], 1);
  EXPECT_EQ(j["ports"][0]["name"], "net_pcap0");
  EXPECT_EQ(j["mbuf_pool"]["full"], true);
  EXPECT_EQ(j["mbuf_pool"]["size"], 8191);
}

TEST(ReportTest, StatsLine) {
  Report a = sampleReport();
  Report b = a;
  b.seconds = 3.5;
  b.reason_packets[static_cast<size_t>(dataplane::Reason::kAllowTracked)] += 1000;
  const std::string line = formatStatsLine(b, &a);
  EXPECT_NE(line.find("(1000 pps)"), std::string::npos) << line;
  EXPECT_NE(line.find("allow-tracked=1007"), std::string::npos) << line;
}

TEST(ReportTest, LcoreRxRates) {
  Report a = sampleReport();
  IoCounters other;
  other.lcore = 2;
  a.lcores.push_back(other);
  Report b = a;
  b.seconds = a.seconds + 2;
  b.lcores[0].rx_packets += 1000;
  b.lcores[0].rx_bytes += 64000;
  b.lcores[1].rx_packets += 10;
  IoCounters fresh;  // an lcore the previous report does not have: no rate yet
  fresh.lcore = 3;
  fresh.rx_packets = 99;
  b.lcores.push_back(fresh);
  const std::vector<LcoreRxRate> r = lcoreRxRates(a, b);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].lcore, 1u);
  EXPECT_DOUBLE_EQ(r[0].packets_per_second, 500);
  EXPECT_DOUBLE_EQ(r[0].bytes_per_second, 32000);
  EXPECT_EQ(r[1].lcore, 2u);
  EXPECT_DOUBLE_EQ(r[1].packets_per_second, 5);
  EXPECT_EQ(r[2].lcore, 3u);
  EXPECT_DOUBLE_EQ(r[2].packets_per_second, 0);
  // The same instant twice: no division by zero.
  for (const LcoreRxRate& x : lcoreRxRates(b, b))
    EXPECT_DOUBLE_EQ(x.packets_per_second, 0);
}

TEST(LcoreCountersTest, OneCacheLineEach) {
  static_assert(alignof(LcoreCounters) == 64);
  LcoreCounters c[2];
  EXPECT_GE(reinterpret_cast<uintptr_t>(&c[1]) - reinterpret_cast<uintptr_t>(&c[0]), 64u);
  LcoreCounters::add(c[0].rx_packets, 5);
  LcoreCounters::add(c[0].rx_packets, 2);
  IoCounters s = IoCounters::snapshot(c[0], 3);
  EXPECT_EQ(s.rx_packets, 7u);
  EXPECT_EQ(s.lcore, 3u);
}

}  // namespace
}  // namespace statewall::dpdk
