// The replay driver through its library API: bursts vs one packet at a time, clock from the
// trace, counts, damaged input, every output read back, the stateless comparison, expectations.
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_command.hpp"
#include "policy_util.hpp"
#include "sim_test_util.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim {
namespace {

using testing::compilePolicy;
using testing::examplePolicy;

using dataplane::LinkType;
using dataplane::Reason;
using testing::TempDir;

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1700000000ull * kSec;

// A client (unprotected) and a server whose group opens tcp 443 and udp 53, with no outbound
// rules: every packet the server sends must be a tracked reply.
constexpr const char* kServerPolicy = R"(version: 1
timeouts: {profile: aws, udp: 30, udp_stream: 60}
groups:
  srv:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
      - {proto: udp, ports: 53, from: 0.0.0.0/0}
    outbound: []
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)";

std::vector<Frame> generated(const GenOptions& o) {
  TraceGenerator g(o);
  std::vector<Frame> out;
  GenPacket p;
  while (g.next(&p))
    out.push_back(Frame{p.ts_ns, p.frame});
  return out;
}

GenOptions mixed(uint64_t seed, uint64_t flows = 400) {
  GenOptions o;
  o.seed = seed;
  o.flows = flows;
  o.duration_s = 20;
  o.mix.assign(kScenarioCount, 1.0);
  o.scan_ports = 30;
  o.flood_packets = 100;
  o.idle_gap_s = 100;
  o.explicit_flows.push_back(*parseFlowSpec("tcp 203.0.113.5 -> 10.0.1.10:22"));
  o.explicit_flows.push_back(*parseFlowSpec("tcp 192.0.2.9 -> 10.0.1.10:443"));
  o.explicit_flows.push_back(*parseFlowSpec("tcp 10.0.2.10 -> 10.0.3.10:5432 data=3"));
  o.explicit_flows.push_back(*parseFlowSpec("tcp 10.0.1.10 -> 10.0.2.10:8080 data=2"));
  o.explicit_flows.push_back(*parseFlowSpec("tcp 10.0.1.10 -> 10.0.3.10:5432"));
  o.explicit_flows.push_back(*parseFlowSpec("scan 198.51.100.66 -> 10.0.1.11 ports=8000-8009"));
  return o;
}

// The replay's bursts must decide exactly what the engine decides one packet at a time.
TEST(Replay, BurstsDecideAsOnePacketAtATime) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  auto frames = generated(mixed(11));
  ASSERT_GT(frames.size(), 3000u);

  auto burst = replayFrames(policy, frames);
  ASSERT_EQ(burst.size(), frames.size());

  dataplane::EngineConfig cfg;
  dataplane::Engine engine(cfg, policy);
  auto worker = engine.makeWorker();
  std::set<std::string> reasons;
  for (size_t i = 0; i < frames.size(); ++i) {
    dataplane::PacketRef ref{frames[i].bytes.data(), static_cast<uint32_t>(frames[i].bytes.size())};
    dataplane::Verdict v;
    engine.process(*worker, &ref, 1, frames[i].ts_ns, &v);
    ASSERT_EQ(v.reason, burst[i].reason) << "packet " << i + 1;
    ASSERT_EQ(v.flags, burst[i].flags) << "packet " << i + 1;
    ASSERT_EQ(v.rule, burst[i].rule) << "packet " << i + 1;
    reasons.insert(std::string(dataplane::reasonCode(v.reason)));
  }
  // The trace is varied enough to make the comparison mean something.
  EXPECT_TRUE(reasons.count("allow-rule") && reasons.count("allow-tracked") &&
              reasons.count("deny-sg") && reasons.count("deny-acl"))
      << ::testing::PrintToString(reasons);
}

TEST(Replay, CountsAddUpAndAgreeWithTheEngine) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  auto frames = generated(mixed(5));
  Replay r(policy, {});
  std::vector<uint64_t> order;
  r.setObserver([&](uint64_t index, uint64_t, const dataplane::Verdict&,
                    const dataplane::ParsedPacket&) { order.push_back(index); });
  r.runFrames(frames);
  std::string err;
  ASSERT_TRUE(r.finish(&err)) << err;
  const auto& s = r.summary();
  EXPECT_EQ(s.packets, frames.size());
  uint64_t sum = 0, bytes = 0, fbytes = 0;
  for (size_t i = 0; i < dataplane::kReasonCount; ++i) {
    sum += s.packets_by_reason[i];
    bytes += s.bytes_by_reason[i];
    EXPECT_EQ(s.packets_by_reason[i], s.engine.packets[i]) << dataplane::kReasonCodes[i];
  }
  for (const auto& f : frames)
    fbytes += f.bytes.size();
  EXPECT_EQ(sum, s.packets);
  EXPECT_EQ(bytes, fbytes);
  EXPECT_EQ(s.engine.totalPackets(), s.packets);
  ASSERT_EQ(order.size(), frames.size());
  for (size_t i = 0; i < order.size(); ++i)
    ASSERT_EQ(order[i], i + 1);
  EXPECT_EQ(s.rule_hits.size(), policy->ruleCount());
  EXPECT_FALSE(s.top_denied.empty());
  for (size_t i = 1; i < s.top_denied.size(); ++i) {
    EXPECT_GE(s.top_denied[i - 1].packets, s.top_denied[i].packets);
  }
}

// Packet timestamps are the engine's clock: a reply after the UDP timeout is no longer part of
// the connection (and the server has no outbound rule), one before it is.
TEST(Replay, TraceTimeDrivesIdleTimeouts) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  for (uint64_t gap_s : {5ull, 29ull, 31ull, 500ull}) {
    dataplane::UdpSpec q;
    q.src = dataplane::ipAddr("198.51.100.7");
    q.dst = dataplane::ipAddr("10.0.1.10");
    q.sport = 5000;
    q.dport = 53;
    q.payload_len = 30;
    dataplane::UdpSpec a = q;
    std::swap(a.src, a.dst);
    std::swap(a.sport, a.dport);
    std::vector<Frame> frames = {{kT0, dataplane::buildUdp(q)},
                                 {kT0 + gap_s * kSec, dataplane::buildUdp(a)}};
    auto v = replayFrames(policy, frames);
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].reason, Reason::kAllowRule);
    EXPECT_EQ(v[1].reason, gap_s < 30 ? Reason::kAllowTracked : Reason::kDenySg)
        << "reply " << gap_s << " s after the request";
  }
}

// A connection idle past its timeout is counted as expired at the end of the run, even when the
// paced sweep never reached its bucket (a large table, one late packet of another flow).
TEST(Replay, ConnectionsIdlePastTheirTimeoutCountAsExpired) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  dataplane::UdpSpec q;
  q.src = dataplane::ipAddr("198.51.100.7");
  q.dst = dataplane::ipAddr("10.0.1.10");
  q.sport = 5000;
  q.dport = 53;
  q.payload_len = 30;
  dataplane::UdpSpec late = q;
  late.sport = 5001;
  std::vector<Frame> frames = {{kT0, dataplane::buildUdp(q)},
                               {kT0 + 100 * kSec, dataplane::buildUdp(late)}};
  ReplayOptions o;
  o.table_capacity = 1 << 16;
  Replay r(policy, o);
  r.runFrames(frames);
  std::string err;
  ASSERT_TRUE(r.finish(&err)) << err;
  // The first flow idled 100 s past its 30 s timeout; the second is 0 s old.
  EXPECT_EQ(r.summary().engine.connections_created, 2u);
  EXPECT_EQ(r.summary().engine.connections_expired, 1u);
  EXPECT_NE(formatSummaryText(r.summary(), *policy, nullptr).find("2 created, 1 expired"),
            std::string::npos);
}

// More distinct denied flows than the summary keeps exactly: the heavy hitter still comes out on
// top with its exact count, and the summary says the flow counts are estimates.
TEST(Replay, TopDeniedFlowsSurviveAFlood) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  GenOptions o;
  std::string err;
  o.explicit_flows.push_back(
      *parseFlowSpec("flood 100.64.0.0/10 -> 10.0.1.10:22 count=100000 rate=1000000"));
  auto flood = generated(o);
  ASSERT_EQ(flood.size(), 100000u);
  dataplane::TcpSpec heavy;
  heavy.src = dataplane::ipAddr("203.0.113.9");
  heavy.dst = dataplane::ipAddr("10.0.1.10");
  heavy.sport = 4444;
  heavy.dport = 22;
  heavy.flags = dataplane::kSyn;
  const auto heavy_frame = dataplane::buildTcp(heavy);
  std::vector<Frame> frames;
  for (size_t i = 0; i < flood.size(); ++i) {
    frames.push_back(flood[i]);
    if (i % 200 == 0) frames.push_back(Frame{flood[i].ts_ns, heavy_frame});
  }
  Replay r(policy, {});
  r.runFrames(frames);
  ASSERT_TRUE(r.finish(&err));
  const auto& s = r.summary();
  EXPECT_TRUE(s.top_denied_approximate);
  EXPECT_GT(s.denied_flows, 65536u);
  ASSERT_FALSE(s.top_denied.empty());
  EXPECT_EQ(s.top_denied[0].key.str(), "tcp 203.0.113.9:4444 -> 10.0.1.10:22");
  EXPECT_EQ(s.top_denied[0].packets, 500u);
  EXPECT_EQ(s.packets_by_reason[static_cast<size_t>(Reason::kDenySg)], frames.size());
}

TEST(Replay, StatelessComparisonShowsTheRepliesARuleSetAloneWouldDrop) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  GenOptions o;
  std::string err;
  o.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7 -> 10.0.1.10:443 data=2"));
  o.explicit_flows.push_back(*parseFlowSpec("udp 198.51.100.8 -> 10.0.1.10:53 at=1"));
  auto frames = generated(o);
  ReplayOptions opt;
  opt.stateless = true;
  Replay r(policy, opt);
  r.runFrames(frames);
  ASSERT_TRUE(r.finish(&err)) << err;
  const auto& s = r.summary();
  // Every packet the server sent is a tracked reply that the rules alone deny.
  uint64_t server_packets = 0;
  for (const auto& f : frames) {
    dataplane::ParsedPacket p;
    ASSERT_TRUE(dataplane::parsePacket(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
                                       LinkType::kEthernet, &p));
    if (p.src == dataplane::ipAddr("10.0.1.10")) ++server_packets;
  }
  EXPECT_GE(server_packets, 5u);
  EXPECT_EQ(s.changed_to_deny, server_packets);
  EXPECT_EQ(s.changed_to_allow, 0u);
  EXPECT_EQ(s.stateless_by_reason[static_cast<size_t>(Reason::kAllowTracked)], 0u);
  ASSERT_EQ(s.changes.size(), 2u);  // one TCP and one UDP flow
  EXPECT_EQ(s.changes[0].stateful, Reason::kAllowTracked);
  EXPECT_EQ(s.changes[0].stateless, Reason::kDenySg);
  EXPECT_NE(s.changes[0].why.find("need no rule in a security group"), std::string::npos)
      << s.changes[0].why;
  EXPECT_NE(s.changes[0].why.find("no outbound rule of srv-1"), std::string::npos)
      << s.changes[0].why;
}

TEST(Replay, DamagedTraceStopsWithTheSummaryBeforeTheDamage) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  TempDir dir;
  std::string err;
  GenStats st;
  ASSERT_EQ(writeTrace(mixed(3, 50), dir.file("good.pcap"), &st).message(), "");
  auto bytes = testing::readBytes(dir.file("good.pcap"));
  // Cut the last record in half.
  bytes.resize(bytes.size() - 20);
  testing::writeBytes(dir.file("cut.pcap"), bytes);

  Replay r(policy, {});
  EXPECT_FALSE(r.runFiles({dir.file("good.pcap"), dir.file("cut.pcap")}));
  ASSERT_TRUE(r.finish(&err)) << err;
  const auto& s = r.summary();
  ASSERT_TRUE(s.error);
  EXPECT_EQ(s.error->file, dir.file("cut.pcap"));
  EXPECT_GT(s.error->offset, 24u);
  EXPECT_EQ(s.packets, 2 * st.packets - 1);
  ASSERT_EQ(s.traces.size(), 2u);
  EXPECT_EQ(s.traces[0].packets, st.packets);
  EXPECT_EQ(s.traces[1].packets, st.packets - 1);
  EXPECT_EQ(s.engine.totalPackets(), s.packets);

  Replay missing(policy, {});
  EXPECT_FALSE(missing.runFiles({dir.file("good.pcap"), dir.file("nope.pcap")}));
  ASSERT_TRUE(missing.finish(&err));
  ASSERT_TRUE(missing.summary().error);
  EXPECT_EQ(missing.summary().error->file, dir.file("nope.pcap"));
  EXPECT_EQ(missing.summary().packets, st.packets);
}

// Traces of different link types replay as one stream, each packet read by its own link type
// (before: refused, "one replay, one link type"): the verdicts are those of the same packets
// framed as Ethernet, and the allowed/denied captures become pcapng holding both link types.
TEST(Replay, TracesWithDifferentLinkTypesReplayTogether) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  TempDir dir;
  std::string err;
  GenOptions a = mixed(1, 40), b = mixed(2, 40);
  a.start_ns = kT0;
  b.start_ns = kT0 + 30 * kSec;
  ASSERT_EQ(writeTrace(a, dir.file("eth-a.pcap"), nullptr).message(), "");
  ASSERT_EQ(writeTrace(b, dir.file("eth-b.pcap"), nullptr).message(), "");
  b.link = LinkType::kRawIp;
  ASSERT_EQ(writeTrace(b, dir.file("raw-b.pcap"), nullptr).message(), "");

  auto run = [&](const std::string& second, ReplayOptions o, std::vector<Reason>* reasons) {
    Replay r(policy, o);
    r.setObserver([&](uint64_t, uint64_t, const dataplane::Verdict& v,
                      const dataplane::ParsedPacket&) { reasons->push_back(v.reason); });
    EXPECT_TRUE(r.openOutputs(&err)) << err;
    EXPECT_TRUE(r.runFiles({dir.file("eth-a.pcap"), second}))
        << (r.summary().error ? r.summary().error->str() : "");
    std::string ferr;
    EXPECT_TRUE(r.finish(&ferr)) << ferr;
    return r.summary();
  };
  std::vector<Reason> want, got;
  run(dir.file("eth-b.pcap"), {}, &want);
  ReplayOptions o;
  o.allowed_path = dir.file("allowed.pcap");
  o.denied_path = dir.file("denied.pcap");
  const ReplaySummary s = run(dir.file("raw-b.pcap"), o, &got);
  ASSERT_GT(want.size(), 100u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(s.packets_by_reason[static_cast<size_t>(Reason::kDenyMalformed)],
            static_cast<uint64_t>(std::count(want.begin(), want.end(), Reason::kDenyMalformed)));
  ASSERT_EQ(s.traces.size(), 2u);
  EXPECT_EQ(s.traces[0].dlt, DLT_EN10MB);
  EXPECT_EQ(s.traces[1].dlt, DLT_RAW);
  // Both captures hold packets of both link types: pcapng, one interface per link type.
  uint64_t written = 0;
  for (const std::string& path : {o.allowed_path, o.denied_path}) {
    TraceError terr;
    auto reader = TraceReader::open(path, &terr);
    ASSERT_TRUE(reader) << terr.str();
    EXPECT_EQ(reader->format(), TraceFormat::kPcapNg);
    TracePacket p;
    std::set<int> dlts;
    while (reader->next(&p) == TraceReader::Status::kPacket) {
      dlts.insert(p.dlt);
      ++written;
    }
    EXPECT_EQ(reader->next(&p), TraceReader::Status::kEnd) << reader->error().str();
    EXPECT_EQ(dlts, (std::set<int>{DLT_EN10MB, DLT_RAW})) << path;
  }
  EXPECT_EQ(written, got.size());
}

// `eth` (an Ethernet frame without VLAN tags) re-framed for `link`; frames that are not IP stay
// Ethernet (a raw or loopback link carries only IP).
Frame reframed(const Frame& eth, LinkType link) {
  const uint16_t type = static_cast<uint16_t>(eth.bytes[12] << 8 | eth.bytes[13]);
  const bool ip = type == dataplane::kEtherTypeIpv4 || type == dataplane::kEtherTypeIpv6;
  if (link == LinkType::kEthernet ||
      (!ip && link != LinkType::kLinuxSll && link != LinkType::kLinuxSll2))
    return eth;
  const std::vector<uint8_t> l3(eth.bytes.begin() + 14, eth.bytes.end());
  Frame f{eth.ts_ns, {}, link};
  f.bytes = link == LinkType::kRawIp ? l3 : dataplane::addLinkHeader(l3, type, {.link = link});
  return f;
}

struct Judged {
  std::vector<Reason> reasons;
  std::vector<uint16_t> flags;
  ReplaySummary summary;
};

Judged replayPaths(const rules::CompiledPolicyPtr& policy, const std::vector<std::string>& paths) {
  Judged j;
  Replay r(policy, {});
  r.setObserver(
      [&](uint64_t, uint64_t, const dataplane::Verdict& v, const dataplane::ParsedPacket&) {
        j.reasons.push_back(v.reason);
        j.flags.push_back(v.flags);
      });
  EXPECT_TRUE(r.runFiles(paths)) << (r.summary().error ? r.summary().error->str() : "");
  std::string err;
  EXPECT_TRUE(r.finish(&err)) << err;
  j.summary = r.summary();
  return j;
}

// A pcapng file whose interfaces have different link types (Ethernet, Linux cooked v1 and v2, raw
// IP, BSD loopback) replays with each packet read by its own interface's link type: the same
// verdicts as the same packets all framed as Ethernet, and as the packets of each link type in a
// file of its own (libpcap refused such a file before: "damaged").
TEST(Replay, PcapngWithInterfacesOfDifferentLinkTypes) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  TempDir dir;
  const LinkType links[] = {LinkType::kEthernet,  LinkType::kLinuxSll, LinkType::kRawIp,
                            LinkType::kLinuxSll2, LinkType::kNull,     LinkType::kLoop};
  const uint16_t linktypes[] = {1, 113, 101, 276, 0, 108};
  constexpr size_t kLinks = std::size(links);
  const std::vector<Frame> eth = generated(mixed(5, 120));
  ASSERT_GT(eth.size(), 1000u);
  auto builder = [&] {
    testing::PcapngBuilder b;
    b.section();
    for (uint16_t lt : linktypes)
      b.interface(lt, 0, 9);
    return b;
  };
  auto idOf = [&](LinkType l) {
    return static_cast<uint32_t>(std::find(std::begin(links), std::end(links), l) - links);
  };

  // Interleaved: packet i on interface i % 6.
  {
    auto w_opened = PcapWriter::open(dir.file("eth.pcap"), DLT_EN10MB, 262144, true);
    ASSERT_TRUE(w_opened) << w_opened.message();
    auto w = std::move(*w_opened);
    testing::PcapngBuilder b = builder();
    for (size_t i = 0; i < eth.size(); ++i) {
      const Frame f = reframed(eth[i], links[i % kLinks]);
      b.packet(idOf(f.link), f.ts_ns, f.bytes);
      w->write(eth[i].ts_ns, eth[i].bytes.data(), static_cast<uint32_t>(eth[i].bytes.size()),
               static_cast<uint32_t>(eth[i].bytes.size()));
    }
    ASSERT_EQ(w->close().message(), "");
    testing::writeBytes(dir.file("mixed.pcapng"), b.bytes());
  }
  const Judged want = replayPaths(policy, {dir.file("eth.pcap")});
  const Judged got = replayPaths(policy, {dir.file("mixed.pcapng")});
  EXPECT_EQ(got.reasons, want.reasons);
  EXPECT_EQ(got.flags, want.flags);
  EXPECT_EQ(got.summary.packets, eth.size());
  ASSERT_EQ(got.summary.traces.size(), 1u);
  EXPECT_EQ(got.summary.traces[0].dlts,
            (std::vector<int>{DLT_EN10MB, DLT_LINUX_SLL, DLT_RAW, 276, 0, 108}));
  const std::string text = formatSummaryText(got.summary, *policy, nullptr);
  EXPECT_NE(text.find("EN10MB (Ethernet, DLT 1) + LINUX_SLL"), std::string::npos) << text;

  // By link type: the packets of each third of the trace on one interface, in one pcapng file
  // and in six classic files replayed one after the other.
  {
    testing::PcapngBuilder b = builder();
    std::vector<std::unique_ptr<PcapWriter>> files;
    for (size_t k = 0; k < kLinks; ++k) {
      auto opened = PcapWriter::open(dir.file("part" + std::to_string(k) + ".pcap"),
                                     dltFromLinkType(links[k]), 262144, true);
      ASSERT_TRUE(opened) << opened.message();
      files.push_back(std::move(*opened));
    }
    for (size_t i = 0; i < eth.size(); ++i) {
      const size_t k = i * kLinks / eth.size();
      const Frame f = reframed(eth[i], links[k]);
      ASSERT_EQ(f.link, links[k]);  // the generator makes IP packets only
      b.packet(static_cast<uint32_t>(k), f.ts_ns, f.bytes);
      files[k]->write(f.ts_ns, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
                      static_cast<uint32_t>(f.bytes.size()));
    }
    for (auto& w : files)
      ASSERT_EQ(w->close().message(), "");
    testing::writeBytes(dir.file("by-link.pcapng"), b.bytes());
  }
  const Judged one = replayPaths(policy, {dir.file("by-link.pcapng")});
  std::vector<std::string> parts;
  for (size_t k = 0; k < kLinks; ++k)
    parts.push_back(dir.file("part" + std::to_string(k) + ".pcap"));
  const Judged separate = replayPaths(policy, parts);
  EXPECT_EQ(one.reasons, separate.reasons);
  EXPECT_EQ(one.flags, separate.flags);
  EXPECT_EQ(one.reasons, want.reasons);
}

std::vector<nlohmann::json> jsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    out.push_back(nlohmann::json::parse(line));  // throws (fails the test) on a bad line
  }
  return out;
}

std::vector<std::vector<uint8_t>> pcapFrames(const std::string& path, int* dlt) {
  std::vector<std::vector<uint8_t>> out;
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  EXPECT_NE(p, nullptr) << errbuf;
  if (p == nullptr) return out;
  *dlt = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1)
    out.emplace_back(d, d + h->caplen);
  pcap_close(p);
  return out;
}

TEST(Replay, EveryOutputReadsBack) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  TempDir dir;
  std::string err;
  ASSERT_EQ(writeTrace(mixed(9, 300), dir.file("in.pcap"), nullptr).message(), "");
  int in_dlt = 0;
  auto input = pcapFrames(dir.file("in.pcap"), &in_dlt);
  ASSERT_GT(input.size(), 1000u);

  for (ConnFormat fmt : {ConnFormat::kJsonl, ConnFormat::kTsv}) {
    ReplayOptions o;
    o.verdicts_path = dir.file("v.jsonl");
    o.allowed_path = dir.file("allowed.pcap");
    o.denied_path = dir.file("denied.pcap");
    o.connections_path = dir.file(fmt == ConnFormat::kTsv ? "conn.log" : "conn.jsonl");
    o.connections_format = fmt;
    o.stateless = true;
    Replay r(policy, o);
    ASSERT_TRUE(r.openOutputs(&err)) << err;
    ASSERT_TRUE(r.runFiles({dir.file("in.pcap")}));
    ASSERT_TRUE(r.finish(&err)) << err;
    const auto& s = r.summary();

    // Verdicts: one parsable object per packet, in order, with the documented fields.
    auto verdicts = jsonLines(o.verdicts_path);
    ASSERT_EQ(verdicts.size(), input.size());
    uint64_t allowed = 0;
    for (size_t i = 0; i < verdicts.size(); ++i) {
      const auto& v = verdicts[i];
      ASSERT_EQ(v["index"], i + 1);
      for (const char* k : {"ts", "proto", "src", "dst", "direction", "verdict", "reason", "rule",
                            "conn", "stateless"}) {
        ASSERT_TRUE(v.contains(k)) << k << " missing in " << v.dump();
      }
      if (v["proto"] == "tcp") {
        ASSERT_TRUE(v.contains("sport") && v.contains("dport") && v.contains("tcp_before") &&
                    v.contains("tcp_after"))
            << v.dump();
      }
      if (v["proto"] == "icmp" || v["proto"] == "icmpv6") {
        ASSERT_TRUE(v.contains("icmp_type") && v.contains("icmp_code")) << v.dump();
      }
      ASSERT_TRUE(dataplane::parseReason(v["reason"].get<std::string>()));
      ASSERT_EQ(v["verdict"] == "allow",
                dataplane::reasonAllows(*dataplane::parseReason(v["reason"].get<std::string>())));
      allowed += v["verdict"] == "allow";
    }

    // The allowed and denied pcaps hold the input's packets, byte for byte, in order.
    int dlt_a = 0, dlt_d = 0;
    auto a = pcapFrames(o.allowed_path, &dlt_a);
    auto d = pcapFrames(o.denied_path, &dlt_d);
    EXPECT_EQ(dlt_a, in_dlt);
    EXPECT_EQ(dlt_d, in_dlt);
    ASSERT_EQ(a.size(), allowed);
    ASSERT_EQ(a.size() + d.size(), input.size());
    size_t ia = 0, id = 0;
    for (size_t i = 0; i < input.size(); ++i) {
      const auto& got = verdicts[i]["verdict"] == "allow" ? a[ia++] : d[id++];
      ASSERT_EQ(got, input[i]) << "packet " << i + 1;
    }

    // Connections: every IP packet of a flow is counted in exactly one record.
    uint64_t counted = 0, ip_packets = 0;
    std::set<std::string> uids;
    if (fmt == ConnFormat::kJsonl) {
      auto conns = jsonLines(o.connections_path);
      ASSERT_EQ(conns.size(), s.connection_records);
      for (const auto& c : conns) {
        for (const char* k :
             {"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
              "orig_bytes", "resp_bytes", "conn_state", "history", "orig_pkts", "orig_ip_bytes",
              "resp_pkts", "resp_ip_bytes", "end", "opened_by", "denied_pkts"}) {
          ASSERT_TRUE(c.contains(k)) << k << " missing in " << c.dump();
        }
        counted += c["orig_pkts"].get<uint64_t>() + c["resp_pkts"].get<uint64_t>() +
                   c["icmp_errors"].get<uint64_t>();
        uids.insert(c["uid"]);
      }
      EXPECT_EQ(uids.size(), conns.size());
    } else {
      std::ifstream in(o.connections_path);
      std::string line;
      std::vector<std::string> fields;
      size_t rows = 0;
      while (std::getline(in, line)) {
        if (line.rfind("#fields\t", 0) == 0) {
          std::stringstream ss(line.substr(8));
          for (std::string f; std::getline(ss, f, '\t');)
            fields.push_back(f);
          continue;
        }
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> cells;
        std::stringstream ss(line);
        for (std::string c; std::getline(ss, c, '\t');)
          cells.push_back(c);
        ASSERT_EQ(cells.size(), fields.size()) << line;
        auto col = [&](const char* name) {
          return cells[static_cast<size_t>(std::find(fields.begin(), fields.end(), name) -
                                           fields.begin())];
        };
        counted += std::stoull(col("orig_pkts")) + std::stoull(col("resp_pkts")) +
                   std::stoull(col("icmp_errors"));
        uids.insert(col("uid"));
        ++rows;
      }
      ASSERT_FALSE(fields.empty());
      EXPECT_EQ(rows, s.connection_records);
      EXPECT_EQ(uids.size(), rows);
    }
    for (const auto& v : verdicts) {
      bool ip = v["proto"] != "arp" && v["proto"] != "non-ip";
      bool control = v.contains("flags") && v["flags"].dump().find("control") != std::string::npos;
      if (ip && !control && v["reason"] != "deny-malformed") ++ip_packets;
    }
    EXPECT_EQ(counted, ip_packets);

    if (::access("/usr/bin/tshark", X_OK) == 0) {
      for (const auto* path : {&o.allowed_path, &o.denied_path}) {
        const auto tshark = statewall::testing::runCommand(
            {"/usr/bin/tshark", "-r", *path, "-T", "fields", "-e", "frame.number"});
        ASSERT_EQ(tshark.exit_code, 0) << tshark.err;
        const size_t n =
            static_cast<size_t>(std::count(tshark.out.begin(), tshark.out.end(), '\n'));
        EXPECT_EQ(n, path == &o.allowed_path ? a.size() : d.size());
      }
    }
  }
}

// Connections are numbered 1, 2, ... in order of first packet in every output a person reads
// (--verdicts' conn, --connections' conn_id, the stateless comparison's words, describe()); the
// engine's own id is kept only as JSON's engine_id.
TEST(Replay, ConnectionsAreNumberedInOrderEverywhere) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  auto udp = [](const char* src, uint16_t sport, const char* dst, uint16_t dport) {
    dataplane::UdpSpec u;
    u.src = dataplane::ipAddr(src);
    u.dst = dataplane::ipAddr(dst);
    u.sport = sport;
    u.dport = dport;
    u.payload_len = 20;
    return dataplane::buildUdp(u);
  };
  std::vector<Frame> frames = {{kT0, udp("198.51.100.7", 5000, "10.0.1.10", 53)},
                               {kT0 + kSec, udp("198.51.100.8", 5001, "10.0.1.10", 53)},
                               {kT0 + 2 * kSec, udp("10.0.1.10", 53, "198.51.100.8", 5001)},
                               {kT0 + 3 * kSec, udp("10.0.1.10", 53, "198.51.100.7", 5000)}};
  TempDir dir;
  ReplayOptions o;
  o.verdicts_path = dir.file("v.jsonl");
  o.connections_path = dir.file("c.jsonl");
  o.stateless = true;
  Replay r(policy, o);
  std::string err;
  ASSERT_TRUE(r.openOutputs(&err)) << err;
  std::vector<std::string> described;
  r.setObserver([&](uint64_t, uint64_t, const dataplane::Verdict& v,
                    const dataplane::ParsedPacket&) { described.push_back(r.describe(v)); });
  r.runFrames(frames);
  ASSERT_TRUE(r.finish(&err)) << err;
  auto v = jsonLines(o.verdicts_path);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0]["conn"], 1);
  EXPECT_EQ(v[1]["conn"], 2);
  EXPECT_EQ(v[2]["conn"], 2);
  EXPECT_EQ(v[3]["conn"], 1);
  EXPECT_EQ(v[0]["engine_id"], v[3]["engine_id"]);
  EXPECT_GT(v[0]["engine_id"].get<uint64_t>(), 0u);
  EXPECT_EQ(described[2],
            "allow-tracked (connection #2, opened by srv inbound[1] \"udp 53 from "
            "0.0.0.0/0\")");
  auto c = jsonLines(o.connections_path);
  ASSERT_EQ(c.size(), 2u);
  std::set<uint64_t> ids;
  for (const auto& rec : c) {
    ids.insert(rec["conn_id"].get<uint64_t>());
    EXPECT_TRUE(rec.contains("engine_id"));
  }
  EXPECT_EQ(ids, (std::set<uint64_t>{1, 2}));
  const std::string text = formatSummaryText(r.summary(), *policy, nullptr);
  EXPECT_NE(text.find("part of tracked connection #2"), std::string::npos) << text;
  EXPECT_EQ(text.find(std::to_string(v[0]["engine_id"].get<uint64_t>())), std::string::npos)
      << text;
}

TEST(Replay, ExpectationsAreObserved) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  std::string err;
  auto e = Expectations::parse("e.yaml", R"(
- connection: tcp * -> 10.0.1.10:443
  verdict: allow
- flow: tcp 10.0.1.10:443 -> *
  reason: allow-tracked
- flow: tcp * -> 10.0.1.10:22
  verdict: deny
  reason: deny-sg
- packet: 1
  reason: allow-rule
- flow: tcp * -> 10.0.1.10:22
  verdict: allow
)");
  ASSERT_TRUE(e) << e.message();
  GenOptions o;
  o.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7 -> 10.0.1.10:443"));
  o.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7 -> 10.0.1.10:22 at=1"));
  ReplayOptions opt;
  opt.expectations = &*e;
  Replay r(policy, opt);
  r.runFrames(generated(o));
  ASSERT_TRUE(r.finish(&err));
  auto res = e->results();
  ASSERT_EQ(res.size(), 5u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(res[i].passed) << i << ": " << res[i].outcome;
  EXPECT_FALSE(res[4].passed);
  EXPECT_NE(res[4].outcome.find("deny-sg (no inbound rule of srv-1 (groups srv) allows it)"),
            std::string::npos)
      << res[4].outcome;
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// A trace that another program cuts short while the replay reads it (between two bursts, from the
// observer): the replay stops with an error at the offset where the file now ends, and the
// summary holds every packet before it (issue 14: the mapped reader died of SIGBUS).
TEST(Replay, TraceThatShrinksDuringTheRunStopsWithTheSummarySoFar) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  TempDir dir;
  std::string err;
  const std::string path = dir.file("t.pcap");
  ASSERT_EQ(writeTrace(mixed(5, 400), path, nullptr).message(), "");
  const uint64_t size = testing::readBytes(path).size();
  const uint64_t cut = size / 2 + 3;
  uint64_t whole = 0;  // records that end at or before the cut
  {
    TraceError terr;
    auto reader = TraceReader::open(path, &terr);
    ASSERT_TRUE(reader);
    TracePacket p;
    while (reader->next(&p) == TraceReader::Status::kPacket && reader->offset() <= cut)
      ++whole;
  }
  ASSERT_GT(whole, 60u);
  ReplayOptions o;
  o.burst = 1;  // the observer then runs between bursts
  Replay r(policy, o);
  bool truncated = false;
  r.setObserver(
      [&](uint64_t index, uint64_t, const dataplane::Verdict&, const dataplane::ParsedPacket&) {
        if (index == 50 && !truncated) {
          truncated = ::truncate(path.c_str(), static_cast<off_t>(cut)) == 0;
        }
      });
  EXPECT_FALSE(r.runFiles({path}));
  ASSERT_TRUE(truncated);
  ASSERT_TRUE(r.finish(&err)) << err;
  const auto& s = r.summary();
  ASSERT_TRUE(s.error);
  EXPECT_EQ(s.error->file, path);
  EXPECT_EQ(s.error->offset, cut) << s.error->str();
  EXPECT_NE(s.error->message.find("shrank"), std::string::npos) << s.error->str();
  EXPECT_EQ(s.packets, whole);
  EXPECT_EQ(s.engine.totalPackets(), whole);
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// Names that are not valid UTF-8: the loaders reject them (tests/rules/limits_test.cpp), but a
// policy built through the library need not come from a loader. Every line of --verdicts and
// --connections, and the --json summary, is still valid JSON (issue 14: the summary aborted on
// nlohmann's exception and the lines were not JSON).
TEST(Replay, InvalidUtf8InPolicyNamesStillGivesValidJson) {
  rules::LoadResult loaded = rules::loadPolicyTexts(
      {{"test.yaml",
        "version: 1\ngroups:\n  wb:\n    description: d\n    inbound:\n"
        "      - {proto: tcp, ports: 443, from: 0.0.0.0/0, description: xy}\n"
        "interfaces:\n  i: {addresses: [10.0.1.10], groups: [wb]}\n"}});
  ASSERT_TRUE(loaded.ok());
  rules::Policy& model = *loaded.policy;
  model.groups[0].name =
      "w\xff"
      "b";
  model.groups[0].description = "d\xff";
  model.groups[0].inbound[0].description = "x\xfey";
  model.interfaces[0].name = "i\xff";
  model.interfaces[0].groups[0] =
      "w\xff"
      "b";
  rules::CompileResult compiled = rules::compile(model);
  ASSERT_TRUE(compiled.policy) << (compiled.diagnostics.empty() ? ""
                                                                : compiled.diagnostics[0].str());
  const rules::CompiledPolicyPtr policy = compiled.policy;
  TempDir dir;
  GenOptions o;
  std::string err;
  o.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7 -> 10.0.1.10:443 data=2"));
  o.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7 -> 10.0.1.10:22"));
  ReplayOptions opt;
  opt.verdicts_path = dir.file("v.jsonl");
  opt.connections_path = dir.file("c.jsonl");
  Replay r(policy, opt);
  ASSERT_TRUE(r.openOutputs(&err)) << err;
  r.runFrames(generated(o));
  ASSERT_TRUE(r.finish(&err)) << err;
  bool named = false;
  for (const std::string& f : {opt.verdicts_path, opt.connections_path}) {
    std::ifstream in(f);
    size_t lines = 0;
    for (std::string line; std::getline(in, line); ++lines) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << f << ": " << line;
      named = named || line.find("w\\ufffdb") != std::string::npos ||
              j.dump().find(
                  "w\xef\xbf\xbd"
                  "b") != std::string::npos;
    }
    EXPECT_GT(lines, 0u) << f;
  }
  EXPECT_TRUE(named) << "the group's name is written, its bad byte replaced";
  const std::string summary = formatSummaryJson(r.summary(), r.policy(), nullptr);
  EXPECT_FALSE(nlohmann::json::parse(summary, nullptr, false).is_discarded()) << summary;
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// Estimated top-denied counts are labelled as such, with the most they may overstate (issue 14:
// they were shown as exact).
TEST(Replay, ApproximateTopDeniedCountsAreLabelled) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  ReplaySummary s;
  s.packets = 600;
  s.packets_by_reason[static_cast<size_t>(Reason::kDenySg)] = 600;
  DeniedFlow d;
  d.key.proto = 6;
  d.key.src = dataplane::ipAddr("203.0.113.9");
  d.key.dst = dataplane::ipAddr("10.0.1.10");
  d.packets = 500;
  d.bytes = 30000;
  d.first_index = 1;
  s.top_denied.push_back(d);
  s.denied_flows = 70000;
  const std::string exact = formatSummaryText(s, *policy, nullptr);
  EXPECT_NE(exact.find("\n      500  30,000"), std::string::npos) << exact;
  EXPECT_EQ(exact.find("approximate"), std::string::npos) << exact;
  s.top_denied_approximate = true;
  s.top_denied_max_error = 7;
  const std::string approx = formatSummaryText(s, *policy, nullptr);
  EXPECT_NE(approx.find("~500"), std::string::npos) << approx;
  EXPECT_NE(approx.find("approximate"), std::string::npos) << approx;
  EXPECT_NE(approx.find("up to 7"), std::string::npos) << approx;
  const auto j = nlohmann::json::parse(formatSummaryJson(s, *policy, nullptr));
  EXPECT_EQ(j["top_denied"]["approximate"], true);
  EXPECT_EQ(j["top_denied"]["max_overcount"], 7);
}

// "Top denied flows" names ICMP messages as people know them ("echo request"), not by type and
// code numbers (issue 16: it printed "type 8 code 0"); the JSON keeps the numbers.
TEST(Replay, TopDeniedIcmpFlowsAreNamed) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  ReplaySummary s;
  s.packets = 3;
  s.packets_by_reason[static_cast<size_t>(Reason::kDenySg)] = 3;
  auto flow = [](uint8_t proto, const char* src, const char* dst, uint16_t type, uint16_t code) {
    DeniedFlow d;
    d.key.proto = proto;
    d.key.src = dataplane::ipAddr(src);
    d.key.dst = dataplane::ipAddr(dst);
    d.key.sport = type;
    d.key.dport = code;
    d.packets = 1;
    d.bytes = 84;
    d.first_index = 1;
    return d;
  };
  s.top_denied.push_back(flow(1, "198.51.100.7", "10.0.1.10", 8, 0));
  s.top_denied.push_back(flow(58, "2001:db8::7", "2001:db8::10", 128, 0));
  s.top_denied.push_back(flow(1, "198.51.100.7", "10.0.1.10", 42, 1));
  s.denied_flows = 3;
  const std::string text = formatSummaryText(s, *policy, nullptr);
  EXPECT_NE(text.find("icmp 198.51.100.7 -> 10.0.1.10 echo request "), std::string::npos) << text;
  EXPECT_NE(text.find("icmpv6 2001:db8::7 -> 2001:db8::10 echo request "), std::string::npos)
      << text;
  EXPECT_EQ(text.find("type 8 code 0"), std::string::npos) << text;
  // No common name: the numbers.
  EXPECT_NE(text.find("icmp 198.51.100.7 -> 10.0.1.10 type 42 code 1"), std::string::npos) << text;
  const auto j = nlohmann::json::parse(formatSummaryJson(s, *policy, nullptr));
  EXPECT_EQ(j["top_denied"]["flows"][0]["icmp_type"], 8);
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// Timestamps that go backwards and packets cut short by the snaplen are counted and named in the
// summary (issue 14: neither was said; snaplen-cut packets silently became deny-malformed).
TEST(Replay, OutOfOrderAndSnaplenCutPacketsAreCounted) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  TempDir dir;
  dataplane::TcpSpec t;
  t.src = dataplane::ipAddr("198.51.100.7");
  t.dst = dataplane::ipAddr("10.0.1.10");
  t.dport = 443;
  t.flags = dataplane::kSyn;
  t.payload_len = 200;
  const auto full = dataplane::buildTcp(t);
  auto bytes = testing::pcapHeader(1);
  auto record = [&](uint32_t sec, size_t caplen) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(caplen));
    testing::pcapRecord(bytes, sec, 0, cut, static_cast<uint32_t>(full.size()));
  };
  record(10, full.size());
  record(12, 96);  // headers whole, payload cut
  record(11, 96);  // older than the one before
  record(13, 30);  // cut inside the IP header
  record(9, full.size());
  const std::string path = dir.file("t.pcap");
  testing::writeBytes(path, bytes);
  Replay r(policy, {});
  ASSERT_TRUE(r.runFiles({path}));
  std::string err;
  ASSERT_TRUE(r.finish(&err)) << err;
  const auto& s = r.summary();
  EXPECT_EQ(s.ts_backwards, 2u);
  EXPECT_EQ(s.ts_backwards_first, 3u);
  EXPECT_EQ(s.snaplen_cut, 3u);
  EXPECT_GE(s.snaplen_cut_malformed, 1u);
  const std::string text = formatSummaryText(s, *policy, nullptr);
  EXPECT_NE(text.find("warning: 2 packets are older than the packet before them (first: #3)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("warning: 3 packets were cut short by the capture's snaplen"),
            std::string::npos)
      << text;
  const auto j = nlohmann::json::parse(formatSummaryJson(s, *policy, nullptr));
  EXPECT_EQ(j["out_of_order"]["packets"], 2);
  EXPECT_EQ(j["snaplen_cut"]["packets"], 3);
}

// --verdicts names each packet's layer-2.5 headers, outermost first, and leaves the key out for a
// plain frame (so that the lines of plain traces are as before).
TEST(Replay, VerdictsNameTheEncapsulation) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  TempDir dir;
  using dataplane::Shim;
  dataplane::TcpSpec syn;
  syn.src = dataplane::ipAddr("198.51.100.7");
  syn.dst = dataplane::ipAddr("10.0.1.10");
  syn.dport = 443;
  syn.flags = dataplane::kSyn;
  dataplane::FrameOptions wrapped;
  wrapped.vlans = {{.vid = 100}};
  wrapped.shims = {{.kind = Shim::Kind::kMpls, .value = 16},
                   {.kind = Shim::Kind::kMpls, .value = 17}};
  dataplane::FrameOptions pppoe;
  pppoe.shims = {{.kind = Shim::Kind::kPppoe, .value = 7}};
  std::vector<Frame> frames = {
      Frame{kT0, dataplane::buildTcp(syn, wrapped)},
      Frame{kT0 + kSec, dataplane::buildTcp(syn)},
      Frame{kT0 + 2 * kSec, dataplane::buildTcp(syn, pppoe)},
  };
  ReplayOptions o;
  o.verdicts_path = dir.file("v.jsonl");
  Replay r(policy, o);
  std::string err;
  ASSERT_TRUE(r.openOutputs(&err)) << err;
  r.runFrames(frames);
  ASSERT_TRUE(r.finish(&err)) << err;
  const auto v = jsonLines(o.verdicts_path);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0]["encap"], nlohmann::json({"vlan:100", "mpls:16", "mpls:17"})) << v[0].dump();
  EXPECT_EQ(v[0]["dport"], 443) << v[0].dump();
  EXPECT_FALSE(v[1].contains("encap")) << v[1].dump();
  EXPECT_EQ(v[2]["encap"], nlohmann::json({"pppoe:7"})) << v[2].dump();
}

// With decapsulation, a TCP connection inside VXLAN is judged by its inner packets; --verdicts
// names the tunnel and --connections lists the tunnel (the UDP 4789 flow between the VTEPs) as a
// record of its own, whose uid the inner connection names in tunnel_parents (as Zeek's conn.log
// does). Without decapsulation the VXLAN flow is an ordinary UDP flow and nothing names a tunnel.
TEST(Replay, ConnectionsNameTheirTunnels) {
  auto policy = compilePolicy(kServerPolicy);
  ASSERT_TRUE(policy);
  TempDir dir;
  const auto client = dataplane::ipAddr("198.51.100.7");
  const auto server = dataplane::ipAddr("10.0.1.10");
  const auto vtep_a = dataplane::ipAddr("192.0.2.1");
  const auto vtep_b = dataplane::ipAddr("192.0.2.2");
  auto vxlan = [&](bool from_client) {
    dataplane::TunnelSpec t;
    t.kind = dataplane::EncapHeader::Kind::kVxlan;
    t.value = 42;
    t.outer_src = from_client ? vtep_a : vtep_b;
    t.outer_dst = from_client ? vtep_b : vtep_a;
    t.sport = from_client ? 49152 : 4789;
    t.dport = from_client ? 4789 : 49152;
    dataplane::FrameOptions f;
    f.tunnels = {t};
    return f;
  };
  auto tcp = [&](bool from_client, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t len) {
    dataplane::TcpSpec t;
    t.src = from_client ? client : server;
    t.dst = from_client ? server : client;
    t.sport = from_client ? 40000 : 443;
    t.dport = from_client ? 443 : 40000;
    t.flags = flags;
    t.seq = seq;
    t.ack = ack;
    t.payload_len = len;
    return dataplane::buildTcp(t, vxlan(from_client));
  };
  using dataplane::kAck;
  using dataplane::kFin;
  using dataplane::kSyn;
  const std::vector<Frame> frames = {
      Frame{kT0, tcp(true, kSyn, 100, 0, 0)},
      Frame{kT0 + 1000, tcp(false, kSyn | kAck, 500, 101, 0)},
      Frame{kT0 + 2000, tcp(true, kAck, 101, 501, 0)},
      Frame{kT0 + 3000, tcp(true, kAck, 101, 501, 20)},
      Frame{kT0 + 4000, tcp(false, kAck | kFin, 501, 121, 0)},
      Frame{kT0 + 5000, tcp(true, kAck | kFin, 121, 502, 0)},
      Frame{kT0 + 6000, tcp(false, kAck, 502, 122, 0)},
  };

  for (bool decap : {true, false}) {
    SCOPED_TRACE(decap ? "--decap" : "no decapsulation");
    ReplayOptions o;
    o.verdicts_path = dir.file("v.jsonl");
    o.connections_path = dir.file("conn.jsonl");
    o.parse.decap = decap;
    Replay r(policy, o);
    std::string err;
    ASSERT_TRUE(r.openOutputs(&err)) << err;
    r.runFrames(frames);
    ASSERT_TRUE(r.finish(&err)) << err;

    const auto v = jsonLines(o.verdicts_path);
    ASSERT_EQ(v.size(), frames.size());
    const auto conns = jsonLines(o.connections_path);
    if (!decap) {
      EXPECT_FALSE(v[0].contains("encap")) << v[0].dump();
      EXPECT_EQ(v[0]["proto"], "udp") << v[0].dump();
      ASSERT_EQ(conns.size(), 1u);
      EXPECT_EQ(conns[0]["id.resp_p"], 4789) << conns[0].dump();
      EXPECT_FALSE(conns[0].contains("kind")) << conns[0].dump();
      EXPECT_FALSE(conns[0].contains("tunnel_parents")) << conns[0].dump();
      continue;
    }
    for (const auto& line : v) {
      EXPECT_EQ(line["encap"], nlohmann::json({"vxlan:vni=42"})) << line.dump();
      EXPECT_EQ(line["proto"], "tcp") << line.dump();
    }
    EXPECT_EQ(v[0]["reason"], "allow-rule") << v[0].dump();
    EXPECT_EQ(v[1]["reason"], "allow-tracked") << v[1].dump();

    ASSERT_EQ(conns.size(), 2u);
    const auto& tunnel = conns[0]["kind"] == "tunnel" ? conns[0] : conns[1];
    const auto& inner = conns[0]["kind"] == "tunnel" ? conns[1] : conns[0];
    EXPECT_EQ(tunnel["kind"], "tunnel") << tunnel.dump();
    EXPECT_EQ(tunnel["tunnel_type"], "vxlan");
    EXPECT_EQ(tunnel["proto"], "udp");
    EXPECT_EQ(tunnel["id.orig_h"], "192.0.2.1");
    EXPECT_EQ(tunnel["id.orig_p"], 49152);
    EXPECT_EQ(tunnel["id.resp_h"], "192.0.2.2");
    EXPECT_EQ(tunnel["id.resp_p"], 4789);
    EXPECT_EQ(tunnel["orig_pkts"], 4);
    EXPECT_EQ(tunnel["resp_pkts"], 3);
    EXPECT_GT(tunnel["orig_ip_bytes"].get<uint64_t>(), inner["orig_ip_bytes"].get<uint64_t>());
    EXPECT_FALSE(tunnel.contains("tunnel_parents")) << tunnel.dump();
    EXPECT_EQ(tunnel["first_reason"], "allow-rule");  // the verdict on its first frame's inside
    EXPECT_EQ(tunnel["denied_pkts"], 0);

    EXPECT_EQ(inner["proto"], "tcp") << inner.dump();
    EXPECT_EQ(inner["id.orig_h"], "198.51.100.7");
    EXPECT_EQ(inner["id.resp_p"], 443);
    EXPECT_EQ(inner["conn_state"], "SF");
    EXPECT_EQ(inner["orig_pkts"], 4);
    EXPECT_EQ(inner["resp_pkts"], 3);
    EXPECT_FALSE(inner.contains("kind")) << inner.dump();
    EXPECT_EQ(inner["tunnel_parents"], nlohmann::json({tunnel["uid"]})) << inner.dump();
  }

  // Zeek's TSV form: with decapsulation, three more columns.
  ReplayOptions o;
  o.connections_path = dir.file("conn.log");
  o.connections_format = ConnFormat::kTsv;
  o.parse.decap = true;
  Replay r(policy, o);
  std::string err;
  ASSERT_TRUE(r.openOutputs(&err)) << err;
  r.runFrames(frames);
  ASSERT_TRUE(r.finish(&err)) << err;
  std::ifstream in(o.connections_path);
  std::string line, fields;
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    if (line.rfind("#fields", 0) == 0) fields = line;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');)
      cells.push_back(c);
    rows.push_back(cells);
  }
  EXPECT_NE(fields.find("\ticmp_errors\tkind\ttunnel_type\ttunnel_parents"), std::string::npos)
      << fields;
  ASSERT_EQ(rows.size(), 2u);
  const auto& trow = rows[0][rows[0].size() - 3] == "tunnel" ? rows[0] : rows[1];
  const auto& crow = rows[0][rows[0].size() - 3] == "tunnel" ? rows[1] : rows[0];
  ASSERT_EQ(trow.size(), 26u);
  EXPECT_EQ(trow[24], "vxlan");
  EXPECT_EQ(trow[25], "(empty)");
  EXPECT_EQ(crow[23], "conn");
  EXPECT_EQ(crow[24], "-");
  EXPECT_EQ(crow[25], trow[1]);  // the tunnel's uid
}

// --flow-log across a policy change: the records of the packets before it are those of the old
// policy, written at the change; those after it name the new policy's interfaces and actions.
TEST(ReplayFlowLog, PolicyChangeStartsRecordsUnderTheNewPolicy) {
  TempDir dir;
  std::string yaml = testing::readText(std::string(STATEWALL_EXAMPLES_DIR) + "/three-tier.yaml");
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"  web-1: {addresses", "  web-9: {addresses"},
        {"ports: 443, from: [0.0.0.0/0", "ports: 8443, from: [0.0.0.0/0"}}) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  }
  rules::CompiledPolicyPtr after = compilePolicy(yaml);
  ASSERT_NE(after, nullptr);
  ReplayOptions o;
  o.flow_log_path = dir.file("r.jsonl");
  o.flow_log_jsonl = true;
  Replay r(examplePolicy(), o);
  std::string err;
  ASSERT_TRUE(r.openOutputs(&err)) << err;
  dataplane::TcpSpec syn;
  syn.src = dataplane::ipAddr("198.51.100.7");
  syn.dst = dataplane::ipAddr("10.0.1.10");
  syn.sport = 40001;
  syn.dport = 443;
  syn.flags = dataplane::kSyn;
  r.runFrames({Frame{kT0, dataplane::buildTcp(syn)}});
  r.publish(after);
  syn.sport = 40002;
  r.runFrames({Frame{kT0 + kSec, dataplane::buildTcp(syn)}});
  ASSERT_TRUE(r.finish(&err)) << err;
  EXPECT_EQ(r.summary().flow_log_records, 2u);
  std::istringstream in(testing::readText(dir.file("r.jsonl")));
  std::vector<nlohmann::json> recs;
  for (std::string line; std::getline(in, line);)
    recs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["interface-id"], "web-1") << recs[0].dump();
  EXPECT_EQ(recs[0]["action"], "ACCEPT") << recs[0].dump();
  EXPECT_EQ(recs[0]["srcport"], 40001) << recs[0].dump();
  EXPECT_EQ(recs[1]["interface-id"], "web-9") << recs[1].dump();
  EXPECT_EQ(recs[1]["action"], "REJECT") << recs[1].dump();
  EXPECT_EQ(recs[1]["srcport"], 40002) << recs[1].dump();
}

}  // namespace
}  // namespace statewall::sim
