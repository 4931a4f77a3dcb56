// The report's data model (sim/report.hpp) and the page's escaping, checked against independent
// runs of the replay: per-connection packet counts, verdict counts, the stateless comparison,
// TCP transition counts, the connection-table model with idle expiries, the sampling limits, and
// hostile names from the policy.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy_util.hpp"
#include "sim_test_util.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/replay.hpp"
#include "statewall/sim/report.hpp"

namespace statewall::sim {
namespace {

using testing::compilePolicy;
using testing::examplePolicy;

using dataplane::Reason;
using dataplane::TcpState;
using testing::TempDir;

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1700000000ull * kSec;

const std::string kExamples = STATEWALL_EXAMPLES_DIR;

ReportData exampleReport(const ReportOptions& o = {}) {
  ReportData d;
  std::string err;
  EXPECT_TRUE(buildReport(examplePolicy(), {kExamples + "/three-tier.pcap"}, o, &d, &err)) << err;
  return d;
}

size_t idx(Reason r) {
  return static_cast<size_t>(r);
}

// Per-packet verdicts of an independent replay of the example trace.
struct Observed {
  uint64_t index;
  dataplane::Verdict v;
  dataplane::ParsedPacket p;
  std::string text;  // Replay::describe(v)
};
std::vector<Observed> observeExample(ReplaySummary* summary = nullptr,
                                     const std::string& conn_log = "") {
  ReplayOptions ro;
  ro.connections_path = conn_log;
  Replay r(examplePolicy(), ro);
  std::vector<Observed> out;
  r.setObserver(
      [&](uint64_t index, uint64_t, const dataplane::Verdict& v, const dataplane::ParsedPacket& p) {
        out.push_back({index, v, p, r.describe(v)});
      });
  std::string err;
  EXPECT_TRUE(r.openOutputs(&err)) << err;
  EXPECT_TRUE(r.runFiles({kExamples + "/three-tier.pcap"}));
  EXPECT_TRUE(r.finish(&err)) << err;
  if (summary != nullptr) *summary = r.summary();
  return out;
}

TEST(ReportModel, EveryPacketIsCountedOnceAndLaddersHoldEveryPacket) {
  ReportData d = exampleReport();
  ASSERT_GT(d.summary.packets, 100u);
  ASSERT_GT(d.connections.size(), 10u);
  EXPECT_EQ(d.connections.size(), d.connections_total);

  std::array<uint64_t, dataplane::kReasonCount> by_reason{};
  uint64_t packets = d.unattributed_packets;
  for (const ReportConnection& c : d.connections) {
    uint64_t sum = 0;
    for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
      sum += c.by_reason[r];
      by_reason[r] += c.by_reason[r];
    }
    EXPECT_EQ(sum, c.packets);
    EXPECT_EQ(c.allowed() + c.denied(), c.packets);
    packets += c.packets;
    // The example's connections are short: each ladder holds every packet of its connection,
    // and its arrows have the connection's verdicts.
    ASSERT_TRUE(c.has_ladder);
    ASSERT_EQ(c.arrows.size(), c.packets) << c.rec.uid();
    std::array<uint64_t, dataplane::kReasonCount> arrows{};
    for (const LadderArrow& a : c.arrows)
      ++arrows[idx(a.reason)];
    EXPECT_EQ(arrows, c.by_reason) << c.rec.uid();
    // Arrows are in packet order.
    for (size_t i = 1; i < c.arrows.size(); ++i)
      EXPECT_LT(c.arrows[i - 1].index, c.arrows[i].index);
  }
  EXPECT_EQ(packets, d.summary.packets);
  for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
    EXPECT_LE(by_reason[r], d.summary.packets_by_reason[r]) << dataplane::kReasonCodes[r];
  }
}

TEST(ReportModel, TrackedConnectionsMatchTheEnginesConnectionIds) {
  ReportData d = exampleReport();
  // Independently: group the packets of an independent replay by the engine's connection id.
  std::map<uint64_t, std::map<Reason, uint64_t>> expected;
  std::map<uint64_t, std::vector<uint64_t>> indexes;
  std::map<uint64_t, std::string> texts;  // by packet index
  for (const Observed& o : observeExample()) {
    texts[o.index] = o.text;
    if (o.v.conn_id == 0) continue;
    ++expected[o.v.conn_id][o.v.reason];
    indexes[o.v.conn_id].push_back(o.index);
  }
  ASSERT_GT(expected.size(), 5u);
  size_t seen = 0;
  for (const ReportConnection& c : d.connections) {
    if (c.rec.conn_id == 0) continue;
    ++seen;
    auto it = expected.find(c.rec.conn_id);
    ASSERT_NE(it, expected.end()) << c.rec.conn_id;
    for (size_t r = 0; r < dataplane::kReasonCount; ++r) {
      auto e = it->second.find(static_cast<Reason>(r));
      EXPECT_EQ(c.by_reason[r], e == it->second.end() ? 0 : e->second)
          << "conn " << c.rec.conn_id << " " << dataplane::kReasonCodes[r];
    }
    std::vector<uint64_t> got;
    for (const LadderArrow& a : c.arrows)
      got.push_back(a.index);
    EXPECT_EQ(got, indexes[c.rec.conn_id]);
  }
  EXPECT_EQ(seen, expected.size());
  // Every arrow carries the replay's own description of its verdict.
  size_t described = 0;
  for (const ReportConnection& c : d.connections) {
    for (const LadderArrow& a : c.arrows) {
      ASSERT_LT(a.text, d.texts.size());
      EXPECT_EQ(d.texts[a.text], texts[a.index]) << "packet " << a.index;
      ++described;
    }
  }
  EXPECT_GT(described, 100u);
  EXPECT_LT(d.texts.size(), described);  // shared, not one per packet
}

// One short id everywhere a person reads it: connections are numbered 1, 2, ... in order of
// first packet (as explain numbers them), and no text on the page holds the engine's id.
TEST(ReportModel, ConnectionsAreNumberedInOrderAndTextsNeverShowEngineIds) {
  ReportData d = exampleReport();
  uint64_t want = 0;
  for (const ReportConnection& c : d.connections) {
    if (c.rec.conn_id == 0) {
      EXPECT_EQ(c.rec.conn_number, 0u);
      continue;
    }
    EXPECT_EQ(c.rec.conn_number, ++want) << c.rec.uid();
  }
  ASSERT_GT(want, 5u);
  bool tracked_text = false;
  for (const std::string& t : d.texts) {
    for (const ReportConnection& c : d.connections) {
      if (c.rec.conn_id != 0) {
        EXPECT_EQ(t.find(std::to_string(c.rec.conn_id)), std::string::npos) << t;
      }
    }
    tracked_text = tracked_text || t.find("(connection #") != std::string::npos;
  }
  EXPECT_TRUE(tracked_text);
  for (const ExpiryEvent& e : d.expiries)
    EXPECT_GT(e.conn_number, 0u);
}

TEST(ReportModel, ConnStatesAgreeWithTheReplaysConnectionLog) {
  TempDir tmp;
  ReplaySummary s;
  observeExample(&s, tmp.file("conn.jsonl"));
  ReportData d = exampleReport();
  auto sorted = [](std::vector<std::pair<std::string, uint64_t>> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(d.conn_states), sorted(s.conn_states));
  EXPECT_EQ(d.connections_total, s.connection_records);
  EXPECT_EQ(d.conn_ends, s.conn_ends);
}

TEST(ReportModel, StatelessComparisonPerPacketMatchesTheReplay) {
  ReportData d = exampleReport();
  ASSERT_TRUE(d.summary.stateless);
  EXPECT_EQ(d.stateless_to_deny, d.summary.changed_to_deny);
  EXPECT_EQ(d.stateless_to_allow, d.summary.changed_to_allow);
  EXPECT_EQ(d.stateless_by_reason, d.summary.stateless_by_reason);
  // The example has tracked replies that a stateless filter would drop (db has no outbound rule).
  EXPECT_GT(d.stateless_to_deny, 0u);
  uint64_t per_conn = 0, per_arrow = 0;
  for (const ReportConnection& c : d.connections) {
    per_conn += c.stateless_changed;
    for (const LadderArrow& a : c.arrows) {
      if (!a.stateless_differs) continue;
      ++per_arrow;
      EXPECT_NE(dataplane::reasonAllows(a.stateless), dataplane::reasonAllows(a.reason));
    }
  }
  EXPECT_EQ(per_conn, d.stateless_to_deny + d.stateless_to_allow);
  EXPECT_EQ(per_arrow, per_conn);
}

TEST(ReportModel, EngineCountersAndRuleHits) {
  ReportData d = exampleReport();
  EXPECT_EQ(d.connections_created, d.summary.engine.connections_created);
  EXPECT_EQ(d.summary.rule_hits.size(), d.policy->ruleCount());
  // Every SG rule row and ACL row of the page carries its hit count.
  const std::string page = renderReportHtml(d);
  for (rules::RuleId r = 0; r < d.policy->ruleCount(); ++r) {
    std::string row = "data-rule=\"" + std::to_string(r) + "\" data-hits=\"" +
                      std::to_string(d.summary.rule_hits[r]) + "\"";
    EXPECT_NE(page.find(row), std::string::npos) << row;
  }
  size_t never = 0;
  for (uint64_t h : d.summary.rule_hits)
    never += h == 0;
  for (uint64_t h : d.summary.acl_hits)
    never += h == 0;
  size_t marked = 0;
  for (size_t p = page.find("<tr class=\"never\""); p != std::string::npos;
       p = page.find("<tr class=\"never\"", p + 1))
    ++marked;
  EXPECT_EQ(marked, never);
  EXPECT_GT(never, 0u);  // e.g. the IPv6 HTTP rule: the example has no IPv6 HTTP
}

// A TCP handshake, data, close: the transitions the machine takes, counted.
TEST(ReportModel, TcpTransitionsAreCounted) {
  auto policy = compilePolicy(R"(version: 1
groups:
  srv:
    inbound:
      - {proto: tcp, ports: 443, from: 198.51.100.0/24}
    outbound: []
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)");
  ASSERT_TRUE(policy);
  GenOptions o;
  std::string err;
  o.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7:40000 -> 10.0.1.10:443 data=2"));
  TraceGenerator g(o);
  std::vector<Frame> frames;
  GenPacket p;
  while (g.next(&p))
    frames.push_back(Frame{p.ts_ns, p.frame});
  ASSERT_GT(frames.size(), 8u);

  ReportBuilder b(policy, {});
  Replay r(policy, {});
  b.attach(r);
  r.runFrames(frames);
  ASSERT_TRUE(r.finish(&err)) << err;
  ReportData d = b.finish(r.summary());
  auto moves = [&](TcpState a, TcpState z) {
    return d.tcp_moves[static_cast<size_t>(a)][static_cast<size_t>(z)];
  };
  EXPECT_EQ(moves(TcpState::kNone, TcpState::kSynSent), 1u);
  EXPECT_EQ(moves(TcpState::kSynSent, TcpState::kSynRecv), 1u);
  EXPECT_EQ(moves(TcpState::kSynRecv, TcpState::kEstablished), 1u);
  EXPECT_EQ(moves(TcpState::kEstablished, TcpState::kFinWait), 1u);
  uint64_t total = 0;
  for (const auto& row : d.tcp_moves)
    for (uint64_t n : row)
      total += n;
  EXPECT_EQ(total, frames.size());  // every packet of the one connection moved (or kept) it
  ASSERT_EQ(d.connections.size(), 1u);
  EXPECT_EQ(d.connections[0].rec.connState(), "SF");
  EXPECT_EQ(d.connections[0].arrows.size(), frames.size());
  // The first arrow is the SYN from the left lane, the second the SYN-ACK from the right.
  EXPECT_TRUE(d.connections[0].arrows[0].from_orig);
  EXPECT_EQ(d.connections[0].arrows[0].tcp_flags, dataplane::kSyn);
  EXPECT_FALSE(d.connections[0].arrows[1].from_orig);
  EXPECT_EQ(rules::tcpFlagLetters(d.connections[0].arrows[1].tcp_flags), "SA");
  EXPECT_EQ(d.connections[0].arrows[1].tcp_after, TcpState::kSynRecv);
}

// A UDP entry that sits idle longer than its timeout leaves the table at its deadline.
TEST(ReportModel, IdleExpiryShrinksTheTable) {
  auto policy = compilePolicy(R"(version: 1
timeouts: {profile: aws, udp: 30}
groups:
  srv:
    inbound:
      - {proto: udp, ports: 53, from: 0.0.0.0/0}
    outbound: []
interfaces:
  srv-1: {addresses: [10.0.1.10], groups: [srv]}
)");
  ASSERT_TRUE(policy);
  using dataplane::buildUdp;
  using dataplane::ipAddr;
  auto q1 = buildUdp({.src = ipAddr("198.51.100.7"), .dst = ipAddr("10.0.1.10"), .sport = 5000});
  auto a1 = buildUdp(
      {.src = ipAddr("10.0.1.10"), .dst = ipAddr("198.51.100.7"), .sport = 53, .dport = 5000});
  auto q2 = buildUdp({.src = ipAddr("198.51.100.8"), .dst = ipAddr("10.0.1.10"), .sport = 6000});
  std::vector<Frame> frames = {{kT0, q1},
                               {kT0 + kSec, a1},
                               {kT0 + 10 * kSec, q2},
                               // q1's answer after its entry expired (t0 + 1 s + 30 s).
                               {kT0 + 45 * kSec, a1}};
  ReportBuilder b(policy, {});
  Replay r(policy, {});
  b.attach(r);
  r.runFrames(frames);
  std::string err;
  ASSERT_TRUE(r.finish(&err)) << err;
  ReportData d = b.finish(r.summary());
  EXPECT_EQ(d.connections_created, 2u);
  EXPECT_EQ(d.table_peak, 2u);
  ASSERT_EQ(d.expiries_total, 2u);
  ASSERT_EQ(d.expiries.size(), 2u);
  EXPECT_EQ(d.expiries[0].ts_ns, kT0 + 31 * kSec);  // refreshed by the answer at t0 + 1 s
  EXPECT_EQ(d.expiries[0].key, rules::TimeoutKey::kUdp);
  EXPECT_EQ(d.expiries[1].ts_ns, kT0 + 40 * kSec);
  EXPECT_EQ(d.table_final, 0u);
  std::vector<uint64_t> sizes;
  for (const TablePoint& p : d.table)
    sizes.push_back(p.size);
  EXPECT_EQ(sizes, (std::vector<uint64_t>{1, 2, 1, 0}));
  // The late answer is denied and starts a record of its own.
  EXPECT_EQ(r.summary().packets_by_reason[idx(Reason::kDenySg)], 1u);
  ASSERT_EQ(d.connections.size(), 3u);
  EXPECT_EQ(d.connections[0].rec.end, ConnEnd::kTimedOut);
  EXPECT_EQ(d.connections[0].packets, 2u);
  EXPECT_EQ(d.connections[2].denied(), 1u);
}

// The table model against the engine itself: after every packet, sweep the engine's whole table
// at that packet's time (so that every expired entry is gone) and compare the sizes.
TEST(ReportModel, TableModelMatchesTheEngineSweptAfterEveryPacket) {
  auto policy = examplePolicy();
  ASSERT_TRUE(policy);
  GenOptions o;
  o.seed = 3;
  o.flows = 300;
  o.duration_s = 240;  // longer than the UDP, ICMP, SYN_SENT and TIME_WAIT timeouts
  o.mix.assign(kScenarioCount, 1.0);
  o.scan_ports = 20;
  o.flood_packets = 50;
  o.idle_gap_s = 100;
  o.servers = {dataplane::ipAddr("10.0.1.10"), dataplane::ipAddr("10.0.2.10"),
               dataplane::ipAddr("10.0.3.10"), dataplane::ipAddr("2001:db8:1::10")};
  TraceGenerator g(o);
  GenPacket p;
  dataplane::EngineConfig cfg;
  cfg.table_capacity = 4096;
  cfg.sweep_buckets_per_burst = 0;  // only the sweeps below
  dataplane::Engine engine(cfg, policy);
  auto worker = engine.makeWorker();
  ReportBuilder b(policy, {});
  uint64_t index = 0, clock = 0, max_size = 0, swept = 0;
  while (g.next(&p)) {
    clock = std::max(clock, p.ts_ns);
    dataplane::PacketRef ref{p.frame.data(), static_cast<uint32_t>(p.frame.size())};
    dataplane::Verdict v;
    dataplane::ParsedPacket parsed;
    engine.process(*worker, &ref, 1, clock, &v, &parsed);
    swept += engine.sweep(*worker, clock, engine.capacity());
    b.observe(++index, p.ts_ns, v, parsed);
    ASSERT_EQ(b.tableSize(), engine.connectionCount()) << "after packet " << index;
    max_size = std::max<uint64_t>(max_size, b.tableSize());
  }
  ReplaySummary s;
  s.first_ts_ns = o.start_ns;
  s.last_ts_ns = clock;
  ReportData d = b.finish(s);
  EXPECT_GT(index, 2000u);
  EXPECT_GT(max_size, 20u);
  EXPECT_EQ(d.table_peak, max_size);
  EXPECT_EQ(d.expiries_total, swept);  // every expiry the engine swept, the model saw
  EXPECT_GT(d.expiries_total, 50u);
}

TEST(ReportModel, LimitsBoundLaddersArrowsAndTheList) {
  ReportOptions o;
  o.ladder_connections = 3;
  o.ladder_arrows = 4;
  o.max_connections = 7;
  ReportData d = exampleReport(o);
  ReportData full = exampleReport();
  ASSERT_EQ(d.connections.size(), 7u);
  EXPECT_EQ(d.connections_total, full.connections_total);
  for (size_t i = 0; i < d.connections.size(); ++i) {
    const ReportConnection& c = d.connections[i];
    EXPECT_EQ(c.has_ladder, i < 3);
    EXPECT_EQ(c.arrows.size(), i < 3 ? std::min<uint64_t>(4, c.packets) : 0u);
    EXPECT_EQ(c.packets, full.connections[i].packets);  // counts are not sampled
  }
  EXPECT_EQ(d.conn_states, full.conn_states);
  const std::string page = renderReportHtml(d);
  EXPECT_NE(page.find("the first 7 of the trace's " + std::to_string(full.connections_total)),
            std::string::npos);
  EXPECT_NE(page.find("ladders for the first 3 connections, at most 4 packets each"),
            std::string::npos);
}

// The page loads nothing: no external resource of any kind, and every script and style inline.
TEST(ReportPage, SelfContained) {
  const std::string page = renderReportHtml(exampleReport());
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  // url() only for references inside the page (SVG markers: url(#id)).
  for (size_t p = page.find("url("); p != std::string::npos; p = page.find("url(", p + 1))
    EXPECT_EQ(page.compare(p, 5, "url(#"), 0) << page.substr(p, 40);
  for (const char* bad : {" src=", "<link", "@import", "<iframe", "<object", "<embed", "<img",
                          "fetch(", "XMLHttpRequest", "import("}) {
    EXPECT_EQ(page.find(bad), std::string::npos) << bad;
  }
  // The only URLs are the SVG namespace (an identifier, never fetched).
  std::string rest = page;
  for (const std::string ns : {"http://www.w3.org/2000/svg"}) {
    for (size_t p = rest.find(ns); p != std::string::npos; p = rest.find(ns))
      rest.erase(p, ns.size());
  }
  EXPECT_EQ(rest.find("http://"), std::string::npos);
  EXPECT_EQ(rest.find("https://"), std::string::npos);
  EXPECT_EQ(rest.find("//cdn"), std::string::npos);
  // A content security policy forbids loading anything anyway.
  EXPECT_NE(page.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(page.find("<script type=\"application/json\" id=\"report-data\">"), std::string::npos);
}

TEST(ReportEscape, ScriptJsonStringAndHtmlEscape) {
  EXPECT_EQ(htmlEscape("</script><img src=x onerror='a(\"1\")'>&"),
            "&lt;/script&gt;&lt;img src=x onerror=&#39;a(&quot;1&quot;)&#39;&gt;&amp;");
  EXPECT_EQ(scriptJsonString("</script>"), "\"\\u003c/script\\u003e\"");
  EXPECT_EQ(scriptJsonString("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(scriptJsonString("x\xe2\x80\xa8y"), "\"x\\u2028y\"");            // U+2028
  EXPECT_EQ(scriptJsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");             // valid UTF-8 kept
  EXPECT_EQ(scriptJsonString("bad\xff\xc3"), "\"bad\\ufffd\\ufffd\"");       // invalid bytes
  EXPECT_EQ(scriptJsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  // Every escape is valid JSON that decodes back (apart from the replaced bytes).
  EXPECT_EQ(nlohmann::json::parse(scriptJsonString("<&>'\"\t\x01"
                                                   "caf\xc3\xa9"))
                .get<std::string>(),
            "<&>'\"\t\x01"
            "caf\xc3\xa9");
}

// A policy whose names carry markup: the page shows them as text, never as markup, and the JSON
// blob cannot end its <script> element early.
TEST(ReportEscape, HostileNamesFromThePolicyAreEscaped) {
  const std::string evil = "</script><img src=x onerror=alert(1)>";
  const std::string yaml = R"(version: 1
groups:
  "g</script><img src=x onerror=alert(1)>":
    description: "</script><img src=x onerror=alert(1)>"
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0, description: "<b>&amp;</b>"}
    outbound: []
interfaces:
  "<svg onload=alert(2)>": {addresses: [10.0.1.10], groups: ["g</script><img src=x onerror=alert(1)>"]}
)";
  auto policy = compilePolicy(yaml);
  ASSERT_TRUE(policy);
  using dataplane::buildTcp;
  using dataplane::ipAddr;
  std::vector<Frame> frames = {{kT0, buildTcp({.src = ipAddr("198.51.100.7"),
                                               .dst = ipAddr("10.0.1.10"),
                                               .dport = 443,
                                               .flags = dataplane::kSyn})}};
  ReportBuilder b(policy, {});
  Replay r(policy, {});
  b.attach(r);
  r.runFrames(frames);
  std::string err;
  ASSERT_TRUE(r.finish(&err)) << err;
  ReportData d = b.finish(r.summary());
  d.options.title = "report <i>" + evil;
  const std::string page = renderReportHtml(d);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("<svg onload"), std::string::npos);
  EXPECT_EQ(page.find("<b>&amp;"), std::string::npos);
  EXPECT_EQ(page.find("<i>"), std::string::npos);
  EXPECT_NE(page.find("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  // Exactly the page's own two </script> end tags (the data blob and the code).
  size_t ends = 0;
  for (size_t p = page.find("</script"); p != std::string::npos; p = page.find("</script", p + 1))
    ++ends;
  EXPECT_EQ(ends, 2u);
  // The blob still parses and carries the name as data.
  const std::string open = "<script type=\"application/json\" id=\"report-data\">";
  size_t s = page.find(open);
  ASSERT_NE(s, std::string::npos);
  s += open.size();
  size_t e = page.find("</script>", s);
  auto blob = nlohmann::json::parse(page.substr(s, e - s));
  EXPECT_EQ(blob["rules"][0][0].get<std::string>(), "g" + evil + " inbound[0]");
  ASSERT_EQ(blob["conns"].size(), 1u);
  EXPECT_EQ(blob["conns"][0][18].get<int>(), 0);  // opened by rule 0
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// Records beyond the listed ones are counted when their connection is over and forgotten: the
// totals (records, conn_state, how they ended) and the listed records are those of a report that
// lists every record, on a trace with many connections that end and time out.
TEST(ReportModel, RecordsBeyondTheListedOnesAreCountedAlike) {
  TempDir dir;
  GenOptions g;
  g.seed = 11;
  g.flows = 500;
  g.duration_s = 300;
  g.mix.assign(kScenarioCount, 1.0);
  g.idle_gap_s = 200;
  std::string err;
  ASSERT_EQ(writeTrace(g, dir.file("t.pcap"), nullptr).message(), "");
  auto build = [&](size_t listed, size_t min_scan) {
    ReportOptions o;
    o.max_connections = listed;
    o.min_scan = min_scan;
    ReportData d;
    EXPECT_TRUE(buildReport(examplePolicy(), {dir.file("t.pcap")}, o, &d, &err)) << err;
    return d;
  };
  // `few` looks for ended records often (every 64 held).
  const ReportData all = build(1000000, ReportOptions{}.min_scan), few = build(50, 64);
  ASSERT_GT(all.connections_total, 300u);
  EXPECT_EQ(few.connections_total, all.connections_total);
  EXPECT_EQ(few.conn_states, all.conn_states);
  EXPECT_EQ(few.conn_ends, all.conn_ends);
  ASSERT_EQ(few.connections.size(), 50u);
  for (size_t i = 0; i < few.connections.size(); ++i) {
    const ConnRecord &a = all.connections[i].rec, &b = few.connections[i].rec;
    EXPECT_EQ(a.uid(), b.uid());
    EXPECT_EQ(a.end, b.end) << i;
    EXPECT_EQ(a.connState(), b.connState()) << i;
    EXPECT_EQ(a.orig.pkts + a.resp.pkts, b.orig.pkts + b.resp.pkts) << i;
  }
  EXPECT_GT(all.conn_ends[static_cast<size_t>(ConnEnd::kTimedOut)], 0u);
  EXPECT_GT(all.conn_ends[static_cast<size_t>(ConnEnd::kClosed)], 0u);
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// The report names the encapsulation each connection's first packet was judged inside (issue 16:
// nothing on the page said a connection came in VLAN tags or an MPLS stack); a plain one says
// nothing.
TEST(ReportModel, ConnectionsNameTheirEncapsulation) {
  TempDir dir;
  auto tcp = [](const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t flags,
                dataplane::FrameOptions fo) {
    dataplane::TcpSpec s;
    s.src = dataplane::ipAddr(src);
    s.dst = dataplane::ipAddr(dst);
    s.sport = sport;
    s.dport = dport;
    s.flags = flags;
    return dataplane::buildTcp(s, fo);
  };
  dataplane::FrameOptions tagged;
  tagged.vlans = {{.vid = 100}};
  tagged.shims = {{.kind = dataplane::Shim::Kind::kMpls, .value = 16}};
  std::string err;
  auto w_opened = PcapWriter::open(dir.file("t.pcap"), 1, 65535, true);
  ASSERT_TRUE(w_opened) << w_opened.message();
  auto w = std::move(*w_opened);
  const std::vector<dataplane::Bytes> frames = {
      tcp("198.51.100.7", 40000, "10.0.1.10", 443, dataplane::kSyn, tagged),
      tcp("10.0.1.10", 443, "198.51.100.7", 40000, dataplane::kSyn | dataplane::kAck, tagged),
      tcp("198.51.100.7", 40001, "10.0.1.10", 443, dataplane::kSyn, {})};
  uint64_t ts = 1700000000ull * 1000000000ull;
  for (const auto& f : frames) {
    w->write(ts, f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
    ts += 1000000;
  }
  ASSERT_EQ(w->close().message(), "");
  ReportData d;
  ASSERT_TRUE(buildReport(examplePolicy(), {dir.file("t.pcap")}, ReportOptions{}, &d, &err)) << err;
  ASSERT_EQ(d.connections.size(), 2u);
  EXPECT_EQ(d.connections[0].encap, "carried in vlan:100, mpls:16 (layer-2.5 headers, unwrapped)");
  EXPECT_EQ(d.connections[1].encap, "");
  const std::string page = renderReportHtml(d);
  EXPECT_NE(page.find("carried in vlan:100, mpls:16"), std::string::npos);

  // A connection inside a VXLAN tunnel, judged with --decap (ReportOptions::parse): the card names
  // the tunnel and its endpoints; without --decap the outer UDP flow is the connection.
  dataplane::FrameOptions tunneled;
  dataplane::TunnelSpec t;
  t.kind = dataplane::EncapHeader::Kind::kVxlan;
  t.value = 42;
  t.outer_src = dataplane::ipAddr("10.9.0.1");
  t.outer_dst = dataplane::ipAddr("10.9.0.2");
  tunneled.tunnels = {t};
  auto v_opened = PcapWriter::open(dir.file("v.pcap"), 1, 65535, true);
  ASSERT_TRUE(v_opened) << v_opened.message();
  w = std::move(*v_opened);
  const auto f = tcp("198.51.100.7", 40002, "10.0.1.10", 443, dataplane::kSyn, tunneled);
  w->write(ts, f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()));
  ASSERT_EQ(w->close().message(), "");
  ReportOptions decap;
  decap.parse.decap = true;
  ReportData inner, outer;
  ASSERT_TRUE(buildReport(examplePolicy(), {dir.file("v.pcap")}, decap, &inner, &err)) << err;
  ASSERT_EQ(inner.connections.size(), 1u);
  EXPECT_EQ(inner.connections[0].rec.proto, dataplane::kIpProtoTcp);
  EXPECT_EQ(inner.connections[0].encap,
            "judged inside vxlan:vni=42 between 10.9.0.1 and 10.9.0.2; the outer packet was not "
            "judged");
  ASSERT_TRUE(buildReport(examplePolicy(), {dir.file("v.pcap")}, ReportOptions{}, &outer, &err))
      << err;
  ASSERT_EQ(outer.connections.size(), 1u);
  EXPECT_EQ(outer.connections[0].rec.proto, dataplane::kIpProtoUdp);
  EXPECT_EQ(outer.connections[0].encap, "");
}

}  // namespace
}  // namespace statewall::sim
