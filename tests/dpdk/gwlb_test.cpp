// statewalld --gwlb (Gateway Load Balancer mode, docs/deploy-gwlb.md) on a net_pcap vdev: crafted
// GENEVE frames in, the frames it returns out. Allowed frames come back byte for byte but for the
// swapped outer MAC and IP addresses (the GENEVE header and every option unchanged, checksums
// still valid); denied ones do not come back; malformed GENEVE and frames that are not GENEVE to
// the appliance are counted. Also the classification and the rewrite without an EAL (IPv6 outer).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/wait_for.hpp"
#include "dpdk_test_util.hpp"
#include "pcap_util.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/dpdk/gwlb.hpp"
#include "statewall/dpdk/options.hpp"

namespace statewall::dpdk_test {
namespace {

using namespace std::chrono_literals;
using dataplane::Bytes;
using dataplane::EncapHeader;
using dataplane::FrameOptions;
using dataplane::ipAddr;
using dataplane::TunnelSpec;

constexpr const char* kPolicy = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: [0.0.0.0/0, "::/0"]}
      - {proto: udp, ports: 53, from: 198.51.100.0/25}
    outbound: []
interfaces:
  web-1: {addresses: [10.0.1.10, "2001:db8:1::10"], groups: [web]}
)";

const rules::IpAddr kAppliance = ipAddr("10.9.0.5");
const rules::IpAddr kGwlbNode = ipAddr("10.9.0.1");
const rules::IpAddr kClient = ipAddr("198.51.100.7");
const rules::IpAddr kServer = ipAddr("10.0.1.10");

// AWS's three options (class 0x0108): endpoint id (type 1, 8 bytes), attachment id (type 2, 8
// bytes), flow cookie (type 3, 4 bytes). Length in 4-byte units, in the low 5 bits.
Bytes awsOptions(uint32_t cookie) {
  Bytes o;
  auto opt = [&](uint8_t type, const Bytes& data) {
    o.push_back(0x01);
    o.push_back(0x08);
    o.push_back(type);
    o.push_back(static_cast<uint8_t>(data.size() / 4));
    o.insert(o.end(), data.begin(), data.end());
  };
  opt(1, {0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71});
  opt(2, {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88});
  opt(3, {static_cast<uint8_t>(cookie >> 24), static_cast<uint8_t>(cookie >> 16),
          static_cast<uint8_t>(cookie >> 8), static_cast<uint8_t>(cookie)});
  return o;
}

// Options of odd lengths (1 and 3 words of data) of another class: 4 + 4 + 4 + 12 = 24 bytes,
// and with the third a total of 9 words (an odd option length in the header).
Bytes oddOptions() {
  Bytes o = {0xff, 0x01, 0x05, 0x01, 1,    2,    3,    4,  // 1 word
             0xff, 0x01, 0x06, 0x03, 1,    2,    3,    4,    5,    6,    7,    8,
             9,    10,   11,   12,                                                     // 3 words
             0xff, 0x01, 0x87, 0x02, 0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe};  // 2 words
  return o;
}

FrameOptions geneve(const Bytes& options, bool ip_payload = true, rules::IpAddr to = kAppliance) {
  FrameOptions f;
  f.src_mac = {0x02, 0xaa, 0, 0, 0, 0x01};  // the load balancer node's
  f.dst_mac = {0x02, 0xbb, 0, 0, 0, 0x05};  // the appliance's
  TunnelSpec t;
  t.kind = EncapHeader::Kind::kGeneve;
  t.outer_src = kGwlbNode;
  t.outer_dst = to;
  t.sport = 61234;
  t.geneve_options = options;
  t.geneve_ip = ip_payload;
  f.tunnels.push_back(t);
  return f;
}

// The frame the load balancer expects back: written here on its own terms (Ethernet addresses at
// 0 and 6, IPv4 addresses at 26 and 30 of an untagged frame), not with the code under test.
Frame swappedV4(Frame f) {
  for (int i = 0; i < 6; ++i)
    std::swap(f[i], f[6 + i]);
  for (int i = 0; i < 4; ++i)
    std::swap(f[26 + i], f[30 + i]);
  return f;
}

// Both outer checksums of an untagged IPv4/UDP frame are valid.
void expectOuterChecksumsValid(const Frame& f) {
  const size_t ihl = (f[14] & 15) * 4u;
  EXPECT_EQ(dataplane::internetChecksum({f.data() + 14, ihl}), 0) << "IPv4 header checksum";
  const rules::IpAddr src = rules::IpAddr::fromV4Bytes(f.data() + 26);
  const rules::IpAddr dst = rules::IpAddr::fromV4Bytes(f.data() + 30);
  const size_t udp = 14 + ihl;
  const size_t udp_len = (size_t{f[udp + 4]} << 8) | f[udp + 5];
  Bytes l4(f.begin() + static_cast<long>(udp), f.begin() + static_cast<long>(udp + udp_len));
  EXPECT_EQ(dataplane::transportChecksum(src, dst, dataplane::kIpProtoUdp, l4), 0)
      << "UDP checksum";
}

// The frames the tests below send, in the order of CraftedFrames' fields.
struct CraftedFrames {
  Frame syn, synack, ack, dns, ssh, dns_denied, truncated, bad_version, past_end, arp, ping, health,
      elsewhere;
  std::vector<Frame> all() const {
    return {syn,         synack,   ack, dns,  ssh,    dns_denied, truncated,
            bad_version, past_end, arp, ping, health, elsewhere};
  }
};

CraftedFrames craftedFrames() {
  CraftedFrames f;
  using dataplane::buildTcp;
  using dataplane::buildUdp;
  // Allowed: a TCP connection to 443 (SYN, the server's SYN-ACK by tracking, the client's ACK,
  // the last with an Ethernet frame inside and options of odd lengths), DNS from the allowed
  // half of the client range without options.
  f.syn = buildTcp({.src = kClient,
                    .dst = kServer,
                    .sport = 40001,
                    .dport = 443,
                    .flags = dataplane::kSyn,
                    .seq = 100},
                   geneve(awsOptions(0x01020304)));
  f.synack = buildTcp({.src = kServer,
                       .dst = kClient,
                       .sport = 443,
                       .dport = 40001,
                       .flags = dataplane::kSyn | dataplane::kAck,
                       .seq = 5000,
                       .ack = 101},
                      geneve(awsOptions(0x01020304)));
  f.ack = buildTcp({.src = kClient,
                    .dst = kServer,
                    .sport = 40001,
                    .dport = 443,
                    .flags = dataplane::kAck,
                    .seq = 101,
                    .ack = 5001,
                    .payload_len = 300},
                   geneve(oddOptions(), false));
  f.dns = buildUdp({.src = kClient, .dst = kServer, .sport = 5353, .dport = 53, .payload_len = 40},
                   geneve({}));
  // Denied by the policy: SSH, DNS from the other half of the range.
  f.ssh = buildTcp({.src = kClient, .dst = kServer, .dport = 22, .flags = dataplane::kSyn},
                   geneve(awsOptions(9)));
  f.dns_denied =
      buildUdp({.src = ipAddr("198.51.100.200"), .dst = kServer, .dport = 53, .payload_len = 20},
               geneve(awsOptions(10)));
  // Malformed GENEVE: a header cut short, version 1, options running past the packet.
  f.truncated = buildUdp({.src = kGwlbNode,
                          .dst = kAppliance,
                          .sport = 61234,
                          .dport = dpdk::kGenevePort,
                          .payload_len = 5},
                         FrameOptions{});
  f.bad_version = f.syn;
  const size_t geneve_at = 14 + 20 + 8;
  f.bad_version[geneve_at] |= 0x40;
  f.past_end = f.dns;
  f.past_end[geneve_at] = 0x3f;  // 63 words of options in a 40-byte payload
  // Not GENEVE to the appliance: ARP for it, a ping to it, a health check SYN to it, GENEVE to
  // another address.
  FrameOptions plain;
  plain.src_mac = {0x02, 0xaa, 0, 0, 0, 0x01};
  f.arp = dataplane::buildArp({.sender_ip = kGwlbNode, .target_ip = kAppliance}, plain);
  f.ping = dataplane::buildIcmpEcho({.src = kGwlbNode, .dst = kAppliance}, plain);
  f.health =
      buildTcp({.src = kGwlbNode, .dst = kAppliance, .dport = 80, .flags = dataplane::kSyn}, plain);
  f.elsewhere = buildTcp(
      {.src = kClient, .dst = kServer, .sport = 40009, .dport = 443, .flags = dataplane::kSyn},
      geneve(awsOptions(11), true, ipAddr("10.9.0.6")));

  return f;
}

TEST(GwlbFrames, IpV6OuterIsReturnedWithItsAddressesSwapped) {
  const rules::IpAddr node = ipAddr("2001:db8:9::1");
  const rules::IpAddr me = ipAddr("2001:db8:9::5");
  FrameOptions f = geneve(awsOptions(7), true, me);
  f.tunnels[0].outer_src = node;
  const Bytes frame = dataplane::buildTcp(
      {.src = kClient, .dst = kServer, .dport = 443, .flags = dataplane::kSyn}, f);
  const dataplane::ParseOptions parse = dpdk::gwlbParseOptions();
  dataplane::PacketRef inner{};
  dpdk::GwlbOuter outer;
  const char* why = nullptr;
  ASSERT_EQ(dpdk::gwlbClassify(frame.data(), static_cast<uint32_t>(frame.size()), me, parse, &inner,
                               &outer, &why),
            dpdk::GwlbFrame::kGeneve);
  EXPECT_TRUE(outer.v6);
  EXPECT_EQ(inner.link, dataplane::LinkType::kRawIp);
  // The inner packet is the IPv4 TCP SYN: 20 + 20 bytes at the end of the frame.
  EXPECT_EQ(inner.len, 40u);
  EXPECT_EQ(inner.data, frame.data() + frame.size() - 40);
  // Not to us: another address, or the same frame seen by an appliance at another address.
  EXPECT_EQ(dpdk::gwlbClassify(frame.data(), static_cast<uint32_t>(frame.size()), node, parse,
                               &inner, &outer, &why),
            dpdk::GwlbFrame::kNotGeneve);
  Bytes back = frame;
  dpdk::gwlbReturnFrame(back.data(), outer);
  ASSERT_EQ(back.size(), frame.size());
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(back[i], frame[6 + i]);
    EXPECT_EQ(back[6 + i], frame[i]);
  }
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(back[14 + 8 + i], frame[14 + 24 + i]);
    EXPECT_EQ(back[14 + 24 + i], frame[14 + 8 + i]);
  }
  EXPECT_TRUE(std::equal(back.begin() + 12, back.begin() + 22, frame.begin() + 12));
  EXPECT_TRUE(std::equal(back.begin() + 54, back.end(), frame.begin() + 54));
}

// What gwlbClassify() or gwlbClassifyGeneral() made of a frame: the result and every output.
struct Classified {
  dpdk::GwlbFrame f = dpdk::GwlbFrame::kNotGeneve;
  dataplane::PacketRef inner{nullptr, 0xdead, dataplane::LinkType::kPpp};
  dpdk::GwlbOuter outer{0xbeef, true};
  const char* why = "(unset)";
};

// gwlbClassify() and its general path on the first `len` bytes of `frame` (an exact-size copy,
// so that a read past `len` shows under AddressSanitizer): "" when they agree in every output.
std::string fastVsGeneral(const Frame& frame, size_t len, const rules::IpAddr& address,
                          const dataplane::ParseOptions& parse, dpdk::GwlbFrame* result) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len + 1]);
  std::memcpy(copy.get(), frame.data(), len);
  const auto n = static_cast<uint32_t>(len);
  Classified a, b;
  a.f = dpdk::gwlbClassify(copy.get(), n, address, parse, &a.inner, &a.outer, &a.why);
  b.f = dpdk::gwlbClassifyGeneral(copy.get(), n, address, parse, &b.inner, &b.outer, &b.why);
  *result = b.f;
  std::string d;
  if (a.f != b.f)
    d += "result " + std::to_string(int(a.f)) + " vs " + std::to_string(int(b.f)) + "\n";
  if (a.inner.data != b.inner.data || a.inner.len != b.inner.len || a.inner.link != b.inner.link)
    d += "inner packet differs\n";
  if (a.outer.l3_offset != b.outer.l3_offset || a.outer.v6 != b.outer.v6)
    d += "outer header differs\n";
  if (std::strcmp(a.why, b.why) != 0) d += std::string("why: ") + a.why + " vs " + b.why + "\n";
  return d;
}

// gwlbClassify()'s fast path gives what the general path gives: on every frame the tests here
// send, plus an IPv6 outer header, a VLAN tag and GENEVE around IPv6; each cut at every length,
// and each byte before the inner packet changed (every bit flipped, one up, one down, 0, 0xff);
// seen by the appliance and by another address; with statewalld's parse options, with 6081
// mapped to another tunnel, and with the default tunnel ports.
TEST(GwlbFrames, FastPathAgreesWithTheGeneralPath) {
  std::vector<Frame> bases = craftedFrames().all();
  const rules::IpAddr node6 = ipAddr("2001:db8:9::1"), me6 = ipAddr("2001:db8:9::5");
  FrameOptions v6 = geneve(awsOptions(7), true, me6);
  v6.tunnels[0].outer_src = node6;
  bases.push_back(dataplane::buildTcp(
      {.src = kClient, .dst = kServer, .dport = 443, .flags = dataplane::kAck}, v6));
  FrameOptions vlan = geneve(awsOptions(8));
  vlan.vlans = {dataplane::VlanTag{.vid = 7}};
  bases.push_back(dataplane::buildTcp(
      {.src = kClient, .dst = kServer, .dport = 443, .flags = dataplane::kAck}, vlan));
  bases.push_back(dataplane::buildTcp({.src = ipAddr("2001:db8::7"),
                                       .dst = ipAddr("2001:db8:1::10"),
                                       .dport = 443,
                                       .flags = dataplane::kAck,
                                       .payload_len = 10},
                                      geneve(awsOptions(9))));
  dataplane::ParseOptions other = dpdk::gwlbParseOptions();
  other.tunnel_ports[0].kind = EncapHeader::Kind::kVxlan;
  dataplane::ParseOptions defaults;
  defaults.decap = true;
  const dataplane::ParseOptions parses[] = {dpdk::gwlbParseOptions(), other, defaults};
  size_t compared = 0, geneve_frames = 0, malformed = 0;
  for (size_t bi = 0; bi < bases.size(); ++bi) {
    const Frame& base = bases[bi];
    // The variants: the frame, each cut, each header byte changed.
    std::vector<std::pair<Frame, size_t>> variants;
    for (size_t len = 0; len <= base.size(); ++len)
      variants.emplace_back(base, len);
    const size_t header_bytes = std::min<size_t>(base.size(), 14 + 4 + 40 + 8 + 8 + 36 + 1);
    for (size_t at = 0; at < header_bytes; ++at) {
      const uint8_t b = base[at];
      const uint8_t values[] = {static_cast<uint8_t>(b + 1), static_cast<uint8_t>(b - 1), 0, 0xff};
      for (uint8_t v : values) {
        variants.emplace_back(base, base.size());
        variants.back().first[at] = v;
      }
      for (int bit = 0; bit < 8; ++bit) {
        variants.emplace_back(base, base.size());
        variants.back().first[at] ^= static_cast<uint8_t>(1u << bit);
      }
    }
    for (const auto& [frame, len] : variants) {
      for (const rules::IpAddr& address : {kAppliance, kGwlbNode, me6}) {
        for (size_t pi = 0; pi < std::size(parses); ++pi) {
          dpdk::GwlbFrame result;
          const std::string d = fastVsGeneral(frame, len, address, parses[pi], &result);
          ASSERT_TRUE(d.empty()) << "base frame " << bi << ", " << len << " of " << frame.size()
                                 << " bytes, address " << address.str() << ", parse options " << pi
                                 << ":\n"
                                 << d;
          ++compared;
          if (result == dpdk::GwlbFrame::kGeneve) ++geneve_frames;
          if (result == dpdk::GwlbFrame::kMalformed) ++malformed;
        }
      }
    }
  }
  // Both outcomes were reached many times, not only the frames neither path takes.
  EXPECT_GT(geneve_frames, 5000u) << compared;
  EXPECT_GT(malformed, 5000u) << compared;
}

TEST(GwlbOptions, GwlbNeedsOnePortAndAnAddress) {
  auto parse = [](std::vector<std::string> args) {
    args.insert(args.begin(), {"statewalld", "--policy", "/dev/null"});
    std::vector<const char*> argv;
    for (const auto& a : args)
      argv.push_back(a.c_str());
    return dpdk::parseOptions(static_cast<int>(argv.size()), argv.data());
  };
  dpdk::ParseResult ok =
      parse({"--gwlb", "--port", "0", "--address", "10.9.0.5", "--health-port", "8080"});
  ASSERT_TRUE(ok.options) << ok.message;
  EXPECT_TRUE(ok.options->gwlb);
  EXPECT_EQ(ok.options->port, "0");
  EXPECT_EQ(ok.options->address, "10.9.0.5");
  EXPECT_EQ(ok.options->health_port, 8080);
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--gwlb", "--address", "10.9.0.5"}, "--port"},
      {{"--gwlb", "--port", "0"}, "--address"},
      {{"--gwlb", "--port", "0", "--address", "10.9.0.500"}, "10.9.0.500"},
      {{"--gwlb", "--port", "0", "--address", "10.9.0.5", "--inside", "1"}, "--inside"},
      {{"--inside", "0", "--outside", "1", "--port", "2"}, "--gwlb"},
      {{"--outside", "1"}, "--inside"},
      {{"--gwlb", "--port", "0", "--address", "10.9.0.5", "--health-port", "0"}, "--health-port"},
  };
  for (const auto& [args, want] : bad) {
    dpdk::ParseResult r = parse(args);
    EXPECT_FALSE(r.options) << want;
    EXPECT_EQ(r.exit_code, 2) << want;
    EXPECT_NE(r.message.find(want), std::string::npos) << r.message;
  }
}

class GwlbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = dir_ / "policy.yaml";
    writeText(policy_, kPolicy);
  }

  // Runs statewalld --gwlb over `in`; returns the counters file and sets *out to the frames it
  // sent.
  nlohmann::json runGwlb(const std::vector<Frame>& in, std::vector<Frame>* out,
                         const std::string& address = "10.9.0.5") {
    const std::string in_path = dir_ / "in.pcap";
    const std::string out_path = dir_ / "out.pcap";
    const std::string counters = dir_ / "counters.json";
    writePcap(in_path, in);
    std::vector<std::string> argv = {statewalldPath()};
    for (const auto& a : ealArgs(1, "gwlb"))
      argv.push_back(a);
    argv.push_back("--vdev=net_pcap0,rx_pcap=" + in_path + ",tx_pcap=" + out_path);
    const std::vector<std::string> app = {"--",         "--policy",        policy_,
                                          "--gwlb",     "--port",          "net_pcap0",
                                          "--address",  address,           "--exit-when-idle",
                                          "300",        "--counters-file", counters,
                                          "--lock-dir", dir_ / "locks"};
    argv.insert(argv.end(), app.begin(), app.end());
    RunResult r = run(argv, dir_, "gwlb");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    *out = readPcap(out_path);
    return nlohmann::json::parse(readText(counters), nullptr, false);
  }

  TempDir dir_;
  std::string policy_;
};

TEST_F(GwlbTest, AllowedFramesComeBackSwappedDeniedAndMalformedDoNot) {
  const auto& [syn, synack, ack, dns, ssh, dns_denied, truncated, bad_version, past_end, arp, ping,
               health, elsewhere] = craftedFrames();
  std::vector<Frame> out;
  const nlohmann::json c = runGwlb({arp, syn, ssh, synack, truncated, ack, ping, bad_version, dns,
                                    dns_denied, health, past_end, elsewhere},
                                   &out);
  ASSERT_TRUE(c.is_object());
  ASSERT_EQ(out.size(), 4u);
  const Frame want[] = {swappedV4(syn), swappedV4(synack), swappedV4(ack), swappedV4(dns)};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(out[i] == want[i]) << "returned frame " << i << " differs";
    expectOuterChecksumsValid(out[i]);
  }
  EXPECT_EQ(c["gwlb"]["geneve"], 6);
  EXPECT_EQ(c["gwlb"]["returned"], 4);
  EXPECT_EQ(c["gwlb"]["malformed"], 3);
  EXPECT_EQ(c["gwlb"]["not_geneve"], 4);
  // The engine saw the six inner packets only.
  EXPECT_EQ(c["packets_in"], 6);
  EXPECT_EQ(c["reasons"]["allow-rule"]["packets"], 2);
  EXPECT_EQ(c["reasons"]["allow-tracked"]["packets"], 2);
  EXPECT_EQ(c["reasons"]["deny-sg"]["packets"], 2);
  EXPECT_EQ(c["io"]["rx_packets"], 13);
  EXPECT_EQ(c["ports"].size(), 1u);
  EXPECT_EQ(c["ports"][0]["role"], "gwlb");
}

// A TCP port free on every address now (bound to port 0 and released), for --health-port.
uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// GET /health HTTP/1.0 to 127.0.0.1:port, as a load balancer's health check asks; the status
// code, or -1 when nothing answers.
int healthStatus(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /health HTTP/1.0\r\nHost: appliance\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      std::string resp;
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
        resp.append(buf, static_cast<size_t>(n));
      if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() >= 12) status = std::atoi(resp.c_str() + 9);
    }
  }
  ::close(fd);
  return status;
}

TEST_F(GwlbTest, HealthPortTurns503WhileAForwardingLcoreIsStalled) {
  const std::string empty = dir_ / "empty.pcap";
  writePcap(empty, {});
  const std::string stall_file = dir_ / "stall";
  ::setenv("STATEWALLD_TEST_STALL_FILE", stall_file.c_str(), 1);
  const uint16_t port = freePort();
  ASSERT_NE(port, 0);
  std::vector<std::string> argv = {std::string(STATEWALL_BINARY_DIR) +
                                   "/tests/dpdk/statewalld-test-hooks"};
  for (const auto& a : ealArgs(1, "health"))
    argv.push_back(a);
  argv.push_back("--vdev=net_pcap0,rx_pcap=" + empty + ",tx_pcap=" + (dir_ / "h-out.pcap"));
  for (const std::string& a :
       {std::string("--"), std::string("--policy"), policy_, std::string("--gwlb"),
        std::string("--port"), std::string("net_pcap0"), std::string("--address"),
        std::string("10.9.0.5"), std::string("--health-port"), std::to_string(port),
        std::string("--idle-sleep"), std::string("1000"), std::string("--lock-dir"),
        dir_ / "locks"})
    argv.push_back(a);
  Process p(argv, dir_ / "h.out", dir_ / "h.err");
  ::unsetenv("STATEWALLD_TEST_STALL_FILE");
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(p.waitForOutput(": running", 60s)) << p.out() << p.err();
  const std::string out = p.out();
  const size_t at = out.find("; lcores ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string lcore = std::to_string(std::stoi(out.substr(at + 9)));
  using statewall::testing::waitFor;
  EXPECT_TRUE(waitFor([&] { return healthStatus(port) == 200; }, 30s, 50ms)) << p.err();
  writeText(stall_file, lcore + "\n");
  // Stuck after 5 s without progress, measured once a second.
  EXPECT_TRUE(waitFor([&] { return healthStatus(port) == 503; }, 60s, 100ms)) << p.err();
  std::filesystem::remove(stall_file);
  EXPECT_TRUE(waitFor([&] { return healthStatus(port) == 200; }, 60s, 100ms)) << p.err();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(60s), 0) << p.out() << p.err();
}

}  // namespace
}  // namespace statewall::dpdk_test
