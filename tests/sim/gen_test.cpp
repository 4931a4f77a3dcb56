// The trace generator: determinism, flow specs, and that every scenario yields well-formed packets.
#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "policy_util.hpp"
#include "sim_test_util.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/pcap_io.hpp"

namespace statewall::sim {
namespace {

using dataplane::LinkType;
using dataplane::ParsedPacket;
using testing::TempDir;

GenOptions mixOptions(uint64_t seed) {
  GenOptions o;
  o.seed = seed;
  o.flows = 300;
  o.duration_s = 5;
  o.mix.assign(kScenarioCount, 1.0);  // every scenario
  o.scan_ports = 20;
  o.flood_packets = 50;
  return o;
}

std::vector<GenPacket> generateAll(const GenOptions& o) {
  TraceGenerator g(o);
  std::vector<GenPacket> out;
  GenPacket p;
  while (g.next(&p))
    out.push_back(p);
  return out;
}

FlowPlan plan(const std::string& spec) {
  auto p = parseFlowSpec(spec);
  EXPECT_TRUE(p) << p.message();
  return p ? *p : FlowPlan{};
}

TEST(Gen, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir dir;
  GenStats a, b, c;
  ASSERT_EQ(writeTrace(mixOptions(7), dir.file("a.pcap"), &a).message(), "");
  ASSERT_EQ(writeTrace(mixOptions(7), dir.file("b.pcap"), &b).message(), "");
  ASSERT_EQ(writeTrace(mixOptions(8), dir.file("c.pcap"), &c).message(), "");
  auto ba = testing::readBytes(dir.file("a.pcap"));
  EXPECT_GT(a.packets, 1000u);
  EXPECT_EQ(a.flows, 300u);
  EXPECT_EQ(ba, testing::readBytes(dir.file("b.pcap")));
  EXPECT_NE(ba, testing::readBytes(dir.file("c.pcap")));
}

TEST(Gen, EveryScenarioParsesCleanlyInTimeOrder) {
  for (LinkType link :
       {LinkType::kEthernet, LinkType::kRawIp, LinkType::kLinuxSll, LinkType::kLinuxSll2}) {
    GenOptions o = mixOptions(3);
    o.link = link;
    if (link == LinkType::kEthernet) o.vlan = 42;
    auto pkts = generateAll(o);
    ASSERT_GT(pkts.size(), 1000u);
    uint64_t prev = 0;
    std::set<uint8_t> protos;
    bool v4 = false, v6 = false;
    for (size_t i = 0; i < pkts.size(); ++i) {
      ParsedPacket pp;
      ASSERT_TRUE(dataplane::parsePacket(pkts[i].frame.data(),
                                         static_cast<uint32_t>(pkts[i].frame.size()), link, &pp))
          << "packet " << i << ": " << (pp.malformed_why ? pp.malformed_why : "");
      EXPECT_GE(pkts[i].ts_ns, prev) << i;
      prev = pkts[i].ts_ns;
      protos.insert(pp.proto);
      (pp.family == rules::Family::kV4 ? v4 : v6) = true;
      if (link == LinkType::kEthernet) {
        EXPECT_EQ(pp.vlan_count, 1);
      }
    }
    EXPECT_TRUE(protos.count(6) && protos.count(17) && (protos.count(1) || protos.count(58)));
    EXPECT_TRUE(v4 && v6);
  }
}

// Follows one explicit TCP flow and checks its sequence numbers make sense end to end.
TEST(Gen, TcpFlowIsAConsistentConversation) {
  GenOptions o;
  o.explicit_flows.push_back(
      plan("tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=3 req=3000 resp=5000 retrans=1"));
  auto pkts = generateAll(o);
  std::vector<ParsedPacket> pp(pkts.size());
  for (size_t i = 0; i < pkts.size(); ++i) {
    ASSERT_TRUE(dataplane::parsePacket(pkts[i].frame.data(),
                                       static_cast<uint32_t>(pkts[i].frame.size()),
                                       LinkType::kEthernet, &pp[i]));
  }
  ASSERT_GE(pp.size(), 3u);
  EXPECT_EQ(pp[0].tcp_flags, dataplane::kSyn);
  EXPECT_EQ(pp[1].tcp_flags, dataplane::kSyn | dataplane::kAck);
  EXPECT_EQ(pp[1].ack, pp[0].seq + 1);
  EXPECT_EQ(pp[2].tcp_flags, dataplane::kAck);
  // Every byte each side sent is acknowledged by the end; sequence numbers advance exactly.
  uint64_t c_bytes = 0, s_bytes = 0;
  int fins = 0, retransmissions = 0;
  std::set<uint32_t> s_seqs;
  for (const auto& p : pp) {
    bool from_client = p.sport == 50000;
    if (from_client) {
      c_bytes += p.l4_payload_len;
    } else if (p.l4_payload_len > 0) {
      if (!s_seqs.insert(p.seq).second) {
        ++retransmissions;
      } else {
        s_bytes += p.l4_payload_len;
      }
    }
    if (p.tcp_flags & dataplane::kFin) ++fins;
  }
  EXPECT_EQ(c_bytes, 3u * 3000);
  EXPECT_EQ(s_bytes, 3u * 5000);
  EXPECT_EQ(retransmissions, 1);
  EXPECT_EQ(fins, 2);
  const auto& last = pp.back();
  EXPECT_EQ(last.sport, 50000);
  EXPECT_EQ(last.tcp_flags, dataplane::kAck);
  EXPECT_EQ(last.seq, pp[0].seq + 1 + 3 * 3000 + 1);
  EXPECT_EQ(last.ack, pp[1].seq + 1 + 3 * 5000 + 1);
}

TEST(Gen, ExplicitFlowKinds) {
  struct Case {
    std::string spec;
    size_t packets;
  } cases[] = {
      {"tcp 198.51.100.7 -> 10.0.1.10:22 end=refused", 2},
      {"tcp 198.51.100.7 -> 10.0.1.10:22 end=noanswer", 3},
      {"tcp 198.51.100.7 -> 10.0.1.10:22 data=0 end=rst", 4},
      {"tcp 198.51.100.7 -> 10.0.1.10:22 data=0 end=open", 3},
      {"tcp 198.51.100.7 -> 10.0.1.10:22 data=0 end=half", 5},
      {"tcp 198.51.100.7 -> 10.0.1.10:22 error=ttl error-from=192.0.2.1", 2},
      {"udp 198.51.100.7:5353 -> 10.0.1.10:53", 2},
      {"udp 198.51.100.7 -> 10.0.1.10:53 count=5", 10},
      {"udp 198.51.100.7 -> 10.0.1.10:53 count=5 reply=no", 5},
      {"udp 198.51.100.7 -> 10.0.1.10:9999 error=unreach", 2},
      {"icmp 198.51.100.7 -> 10.0.1.10 count=3", 6},
      {"icmp 2001:db8::7 -> 2001:db8:1::10 count=2 reply=no", 2},
      {"scan 192.0.2.66 -> 10.0.1.10 ports=20-29", 10},
      {"scan 192.0.2.66 -> 10.0.1.10 ports=20-29 reply=yes", 20},
      {"flood 100.64.0.0/10 -> 10.0.1.10:443 count=77", 77},
      {"tcp [2001:db8::7]:40000 -> [2001:db8:1::10]:443 data=1 req=10 resp=10", 9},
  };
  for (const auto& c : cases) {
    GenOptions o;
    o.explicit_flows.push_back(plan(c.spec));
    auto pkts = generateAll(o);
    EXPECT_EQ(pkts.size(), c.packets) << c.spec;
    for (const auto& p : pkts) {
      ParsedPacket pp;
      EXPECT_TRUE(dataplane::parsePacket(p.frame.data(), static_cast<uint32_t>(p.frame.size()),
                                         LinkType::kEthernet, &pp))
          << c.spec;
    }
  }
}

TEST(Gen, IcmpErrorQuotesTheFirstPacket) {
  GenOptions o;
  o.explicit_flows.push_back(plan("udp 198.51.100.7:5353 -> 10.0.1.10:9999 error=unreach"));
  auto pkts = generateAll(o);
  ASSERT_EQ(pkts.size(), 2u);
  ParsedPacket pp;
  ASSERT_TRUE(dataplane::parsePacket(
      pkts[1].frame.data(), static_cast<uint32_t>(pkts[1].frame.size()), LinkType::kEthernet, &pp));
  EXPECT_TRUE(pp.icmp_is_error);
  EXPECT_EQ(pp.icmp_type, 3);
  EXPECT_EQ(pp.icmp_code, 3);
  ASSERT_TRUE(pp.quoted.present && pp.quoted.has_l4);
  EXPECT_EQ(pp.quoted.sport, 5353);
  EXPECT_EQ(pp.quoted.dport, 9999);
  EXPECT_EQ(pp.quoted.src.str(), "198.51.100.7");
}

// error-to=resp: the error goes to the responder, from the originator's side, about the
// responder's packet; the flow goes on around it (the reply is still sent).
TEST(Gen, IcmpErrorCanBeAimedAtTheResponder) {
  for (const std::string spec : {"udp 10.0.2.10:5000 -> 8.8.8.8:53 error=ptb error-to=resp",
                                 "tcp 10.0.2.10:5000 -> 8.8.8.8:443 error=ptb error-to=resp"}) {
    SCOPED_TRACE(spec);
    GenOptions o;
    o.explicit_flows.push_back(plan(spec));
    auto pkts = generateAll(o);
    size_t errors = 0;
    uint64_t last_ts = 0;
    for (const GenPacket& p : pkts) {
      EXPECT_GE(p.ts_ns, last_ts);
      last_ts = p.ts_ns;
      ParsedPacket pp;
      ASSERT_TRUE(dataplane::parsePacket(p.frame.data(), static_cast<uint32_t>(p.frame.size()),
                                         LinkType::kEthernet, &pp));
      if (!pp.icmp_is_error) continue;
      ++errors;
      EXPECT_EQ(pp.icmp_type, 3);
      EXPECT_EQ(pp.icmp_code, 4);  // fragmentation needed
      EXPECT_EQ(pp.src.str(), "10.0.2.10");
      EXPECT_EQ(pp.dst.str(), "8.8.8.8");
      ASSERT_TRUE(pp.quoted.present && pp.quoted.has_l4);
      EXPECT_EQ(pp.quoted.src.str(), "8.8.8.8");  // the responder's packet
      EXPECT_EQ(pp.quoted.sport, spec[0] == 'u' ? 53 : 443);
      EXPECT_EQ(pp.quoted.dport, 5000);
    }
    EXPECT_EQ(errors, 1u);
    EXPECT_GT(pkts.size(), 2u);
  }
  EXPECT_FALSE(parseFlowSpec("udp 10.0.2.10 -> 8.8.8.8:53 error-to=resp"));
  EXPECT_FALSE(parseFlowSpec("udp 10.0.2.10 -> 8.8.8.8:53 error=ptb error-to=resp reply=no"));
  EXPECT_FALSE(parseFlowSpec("udp 10.0.2.10 -> 8.8.8.8:53 error=ptb error-to=both"));
}

// --stop-on-deny: a flow whose SYN the policy denies stops there; an allowed flow is untouched.
TEST(Gen, StopOnDenyStopsAFlowAfterItsDeniedPacket) {
  auto policy = testing::compilePolicy(R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)");
  ASSERT_TRUE(policy);
  GenOptions o;
  o.explicit_flows.push_back(plan("tcp 198.51.100.7 -> 10.0.1.10:22 data=3"));
  o.explicit_flows.push_back(plan("tcp 198.51.100.8 -> 10.0.1.10:443 data=3"));
  auto count = [](const std::vector<GenPacket>& pkts, uint16_t port) {
    size_t n = 0;
    for (const GenPacket& p : pkts) {
      ParsedPacket pp;
      if (dataplane::parsePacket(p.frame.data(), static_cast<uint32_t>(p.frame.size()),
                                 LinkType::kEthernet, &pp) &&
          (pp.dport == port || pp.sport == port)) {
        ++n;
      }
    }
    return n;
  };
  const auto all = generateAll(o);
  EXPECT_GT(count(all, 22), 5u);

  TempDir tmp;
  o.stop_on_deny = policy;
  GenStats st;
  ASSERT_EQ(writeTrace(o, tmp.file("t.pcap"), &st).message(), "");
  EXPECT_EQ(st.flows_stopped, 1u);
  std::vector<GenPacket> stopped;
  TraceError terr;
  auto r = TraceReader::open(tmp.file("t.pcap"), &terr);
  ASSERT_TRUE(r) << terr.str();
  TracePacket pk;
  while (r->next(&pk) == TraceReader::Status::kPacket)
    stopped.push_back(GenPacket{pk.ts_ns, std::vector<uint8_t>(pk.data, pk.data + pk.caplen), 0});
  EXPECT_EQ(count(stopped, 22), 1u);  // the denied SYN, nothing after it
  EXPECT_EQ(count(stopped, 443), count(all, 443));
}

TEST(Gen, StartTimesAndGaps) {
  GenOptions o;
  o.explicit_flows.push_back(plan("udp 198.51.100.7:1000 -> 10.0.1.10:53 at=10 count=2 gap=100"));
  o.explicit_flows.push_back(plan("icmp 198.51.100.8 -> 10.0.1.10 at=2.5"));
  auto pkts = generateAll(o);
  ASSERT_EQ(pkts.size(), 6u);
  const uint64_t t0 = o.start_ns;
  EXPECT_EQ(pkts[0].ts_ns, t0 + 2500000000ull);  // the ICMP flow starts first
  EXPECT_EQ(pkts[2].ts_ns, t0 + 10000000000ull);
  EXPECT_GE(pkts[4].ts_ns - pkts[2].ts_ns, 100000000000ull);  // the gap
}

TEST(Gen, BadSpecs) {
  const char* bad[] = {
      "tcp 1.2.3.4 -> 5.6.7.8",            // no destination port
      "tcp 1.2.3.4:1 5.6.7.8:2",           // no arrow
      "tcp 1.2.3.4:1 -> 2001:db8::1:2",    // families differ (and ambiguous)
      "tcp 1.2.3.4:1 -> [2001:db8::1]:2",  // families differ
      "tcp 1.2.3.4:1 -> 5.6.7.8:99999",    // port out of range
      "tcp 1.2.3.4:1 -> 5.6.7.8:2 end=maybe",
      "tcp 1.2.3.4:1 -> 5.6.7.8:2 colour=red",
      "icmp 1.2.3.4:1 -> 5.6.7.8",
      "gre 1.2.3.4 -> 5.6.7.8",
      "flood 1.2.3.4.5/8 -> 5.6.7.8:1",
      "scan 1.2.3.4 -> 5.6.7.8 ports=10-5",
      "udp 1.2.3.4 -> 5.6.7.8:53 at=-1",
  };
  for (const char* s : bad) {
    auto p = parseFlowSpec(s);
    EXPECT_FALSE(p) << s;
    EXPECT_NE(p.message().find(s), std::string::npos) << p.message();
  }
  auto bogus = parseMix("tcp=1,bogus=2");
  EXPECT_FALSE(bogus);
  EXPECT_NE(bogus.message().find("unknown scenario"), std::string::npos);
  EXPECT_FALSE(parseMix("tcp=0"));
  auto m = parseMix("tcp=3,udp=1");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)[static_cast<size_t>(Scenario::kTcp)], 3.0);
}

TEST(Gen, MixWeightsAreFollowed) {
  GenOptions o;
  o.flows = 2000;
  o.mix = *parseMix("tcp=1,udp=1");
  o.ipv6_share = 0;
  auto pkts = generateAll(o);
  std::map<uint8_t, std::set<uint16_t>> flows_by_proto;  // proto -> client ports
  for (const auto& p : pkts) {
    ParsedPacket pp;
    ASSERT_TRUE(dataplane::parsePacket(p.frame.data(), static_cast<uint32_t>(p.frame.size()),
                                       LinkType::kEthernet, &pp));
    EXPECT_EQ(pp.family, rules::Family::kV4);
    flows_by_proto[pp.proto].insert(
        pp.dport == 443 || pp.dport == 80 || pp.dport == 53 || pp.dport == 123 ? pp.sport
                                                                               : pp.dport);
  }
  EXPECT_EQ(flows_by_proto.size(), 2u);
  // Roughly half each (ports may collide a little).
  EXPECT_GT(flows_by_proto[6].size(), 800u);
  EXPECT_GT(flows_by_proto[17].size(), 800u);
}

}  // namespace
}  // namespace statewall::sim
