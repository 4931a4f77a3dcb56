// Classifier micro benchmarks: a generated policy of 1,000 security-group rules over 50 groups
// and 200 interfaces (plus two network ACLs), queried with random flows.
//
//   BM_Classify        one CompiledPolicy::classify() per item: the first-packet SG decision
//                      of one side (interface, direction, protocol, remote address, port/ICMP)
//   BM_AclCheck        one network-ACL first-match lookup per item
//   BM_EvaluateFirstPacket  the whole first-packet decision of docs/design.md "Direction":
//                      two address lookups, both sides' groups and the subnet ACLs
//   BM_Compile         compiling the policy (control-plane cost, once per policy change)
//
// Figures and the command line are in bench/README.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {
namespace {

constexpr int kGroups = 50;
constexpr int kRulesPerGroup = 20;  // 14 inbound + 6 outbound: 1,000 rules in all
constexpr int kInboundPerGroup = 14;
constexpr int kInterfaces = 200;
constexpr size_t kFlows = 1 << 16;  // distinct queries cycled through by each benchmark

class PolicyGen {
 public:
  explicit PolicyGen(uint64_t seed) : rng_(seed) {}

  uint32_t pick(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }

  // Interface addresses: 10.<subnet>.<host>.<n>, one in four also with an IPv6 address.
  static IpAddr ifaceV4(int i) {
    return IpAddr::v4((10u << 24) | (static_cast<uint32_t>(i % 4) << 16) |
                      (static_cast<uint32_t>(i / 4) << 8) | 10u);
  }
  static IpAddr ifaceV6(int i) {
    return IpAddr::v6(0x20010db800000000ull | static_cast<uint64_t>(i % 4),
                      static_cast<uint64_t>(i) + 10);
  }

  IpAddr randomV4() {
    // Mostly inside the address ranges the rules talk about, some anywhere.
    if (pick(4) == 0) return IpAddr::v4(static_cast<uint32_t>(rng_()));
    const uint32_t nets[] = {10u << 24, (172u << 24) | (16u << 16), (192u << 24) | (168u << 16),
                             (203u << 24) | (113u << 8), (198u << 24) | (51u << 16) | (100u << 8)};
    return IpAddr::v4(nets[pick(5)] | (static_cast<uint32_t>(rng_()) & 0x0003FFFFu));
  }

  Cidr randomCidr() {
    if (pick(10) == 0) {
      const uint8_t prefix = static_cast<uint8_t>(pick(3) == 0 ? 0 : 32 + pick(97));
      const IpAddr a = IpAddr::v6(0x20010db800000000ull | pick(8), rng_());
      return Cidr{maskAddr(a, prefix), prefix};
    }
    const uint8_t prefixes[] = {0, 8, 12, 16, 20, 24, 24, 26, 28, 32, 32};
    const uint8_t prefix = prefixes[pick(sizeof prefixes)];
    return Cidr{maskAddr(randomV4(), prefix), prefix};
  }

  Match randomMatch() {
    Match m;
    const uint32_t r = pick(100);
    if (r < 55) {
      m.proto = kProtoTcp;
    } else if (r < 80) {
      m.proto = kProtoUdp;
    } else if (r < 88) {
      m.proto = kProtoIcmp;
      m.icmp_type = pick(2) ? 8 : static_cast<int>(pick(16));
      m.icmp_code = pick(2) ? kAny : static_cast<int>(pick(4));
    } else if (r < 92) {
      m.proto = kProtoIcmpV6;
      m.icmp_type = pick(2) ? kAny : 128;
    } else if (r < 97) {
      m.proto = kProtoAll;
    } else {
      m.proto = 47;
    }
    if (protoHasPorts(m.proto)) {
      const uint16_t common[] = {22, 25, 53, 80, 443, 3306, 5432, 6379, 8080, 8443, 9090, 11211};
      if (pick(3) == 0) {
        m.port_lo = static_cast<uint16_t>(pick(60000));
        m.port_hi = static_cast<uint16_t>(m.port_lo + pick(5000));
      } else {
        m.port_lo = m.port_hi = common[pick(sizeof common / sizeof common[0])];
      }
    }
    return m;
  }

  Policy make() {
    Policy p;
    PrefixList office;
    office.name = "office";
    office.cidrs = {Cidr{IpAddr::v4((203u << 24) | (113u << 8)), 24},
                    Cidr{IpAddr::v6(0x20010db801000000ull, 0), 48}};
    p.prefix_lists.push_back(office);
    for (int g = 0; g < kGroups; ++g) {
      SecurityGroup sg;
      sg.name = "sg" + std::to_string(g);
      for (int k = 0; k < kRulesPerGroup; ++k) {
        SgRule r;
        r.match = randomMatch();
        const uint32_t n_peers = 1 + pick(3);
        for (uint32_t q = 0; q < n_peers; ++q) {
          Peer peer;
          const uint32_t kind = pick(100);
          if (kind < 20) {
            peer.kind = PeerKind::kGroup;
            peer.name = "sg" + std::to_string(pick(kGroups));
          } else if (kind < 25) {
            peer.kind = PeerKind::kPrefixList;
            peer.name = "office";
          } else {
            peer.cidr = randomCidr();
          }
          r.peers.push_back(peer);
        }
        (k < kInboundPerGroup ? sg.inbound : sg.outbound).push_back(r);
      }
      p.groups.push_back(sg);
    }
    NetworkAcl acl;
    acl.name = "acl";
    for (int n = 1; n <= 40; ++n) {
      AclEntry e;
      e.rule_number = n * 10;
      e.allow = pick(4) != 0;
      e.match = randomMatch();
      e.cidr = randomCidr();
      (n % 2 ? acl.inbound : acl.outbound).push_back(e);
    }
    p.acls.push_back(acl);
    for (uint32_t s = 0; s < 4; ++s) {
      Subnet sn;
      sn.name = "subnet" + std::to_string(s);
      sn.cidrs = {Cidr{IpAddr::v4((10u << 24) | (s << 16)), 16},
                  Cidr{IpAddr::v6(0x20010db800000000ull | s, 0), 64}};
      if (s % 2 == 0) sn.acl = "acl";
      p.subnets.push_back(sn);
    }
    for (int i = 0; i < kInterfaces; ++i) {
      Interface itf;
      itf.name = "eni" + std::to_string(i);
      itf.addresses.push_back(ifaceV4(i));
      if (i % 4 == 0) itf.addresses.push_back(ifaceV6(i));
      const uint32_t n_groups = 1 + pick(5);
      for (uint32_t k = 0; k < n_groups; ++k) {
        std::string g = "sg" + std::to_string(pick(kGroups));
        bool dup = false;
        for (const auto& x : itf.groups)
          dup = dup || x == g;
        if (!dup) itf.groups.push_back(g);
      }
      p.interfaces.push_back(itf);
    }
    return p;
  }

  // A random remote for a query: often another interface (group references), else an address
  // near the rules' CIDRs, sometimes IPv6.
  IpAddr randomRemote() {
    const uint32_t r = pick(100);
    if (r < 30) return ifaceV4(static_cast<int>(pick(kInterfaces)));
    if (r < 40) return ifaceV6(static_cast<int>(pick(kInterfaces / 4)) * 4);
    if (r < 45) return IpAddr::v6(0x20010db800000000ull | pick(8), rng_());
    return randomV4();
  }

  FlowSpec randomFlow() {
    const Match m = randomMatch();  // the same protocol/port mix as the rules, so some hit
    FlowSpec f;
    f.proto = static_cast<uint8_t>(m.proto == kProtoAll ? kProtoTcp : m.proto);
    f.remote = randomRemote();
    f.dport = pick(2) ? m.port_lo : static_cast<uint16_t>(rng_());
    f.icmp_type = static_cast<uint8_t>(m.icmp_type == kAny ? pick(256) : m.icmp_type);
    f.icmp_code = static_cast<uint8_t>(m.icmp_code == kAny ? 0 : m.icmp_code);
    if (f.remote.isV4() && f.proto == kProtoIcmpV6) f.proto = kProtoIcmp;
    if (!f.remote.isV4() && f.proto == kProtoIcmp) f.proto = kProtoIcmpV6;
    return f;
  }

 private:
  std::mt19937_64 rng_;
};

struct Fixture {
  Policy policy;
  CompiledPolicyPtr compiled;
  struct Query {
    IfaceId iface;
    Direction dir;
    FlowSpec spec;
  };
  std::vector<Query> queries;
  std::vector<Flow5> flows;

  Fixture() {
    PolicyGen gen(20240501);
    policy = gen.make();
    CompileResult r = compile(policy);
    if (!r.policy) {
      for (const auto& d : r.diagnostics)
        std::fprintf(stderr, "%s\n", d.str().c_str());
      std::abort();
    }
    compiled = r.policy;
    queries.reserve(kFlows);
    flows.reserve(kFlows);
    for (size_t i = 0; i < kFlows; ++i) {
      Query q;
      q.iface = static_cast<IfaceId>(gen.pick(kInterfaces));
      q.dir = gen.pick(2) ? Direction::kInbound : Direction::kOutbound;
      q.spec = gen.randomFlow();
      queries.push_back(q);
      // Whole flows: half from outside to an interface, a quarter the other way, a quarter
      // between two interfaces.
      Flow5 f;
      const FlowSpec s = gen.randomFlow();
      f.proto = s.proto;
      f.sport = static_cast<uint16_t>(1024 + gen.pick(60000));
      f.dport = s.dport;
      f.icmp_type = s.icmp_type;
      f.icmp_code = s.icmp_code;
      const IpAddr inside =
          s.remote.isV4() ? PolicyGen::ifaceV4(static_cast<int>(gen.pick(kInterfaces)))
                          : PolicyGen::ifaceV6(static_cast<int>(gen.pick(kInterfaces / 4)) * 4);
      const uint32_t kind = gen.pick(4);
      f.src = kind < 2 ? s.remote : inside;
      f.dst = kind < 2 ? inside : s.remote;
      flows.push_back(f);
    }
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void reportPolicy(benchmark::State& state, const CompiledPolicy& cp) {
  const CompiledPolicy::Stats s = cp.stats();
  state.counters["rules"] = static_cast<double>(cp.ruleCount());
  state.counters["ifaces"] = static_cast<double>(cp.ifaceCount());
  state.counters["group_sets"] = static_cast<double>(s.group_sets);
  state.counters["matchers"] = static_cast<double>(s.matchers);
  state.counters["intervals"] = static_cast<double>(s.port_intervals);
  state.counters["addr_tables"] = static_cast<double>(s.addr_tables);
  state.counters["addr_ranges"] = static_cast<double>(s.addr_ranges);
}

void BM_Classify(benchmark::State& state) {
  const Fixture& fx = fixture();
  const CompiledPolicy& cp = *fx.compiled;
  size_t i = 0;
  uint64_t allowed = 0;
  for (auto _ : state) {
    const auto& q = fx.queries[i];
    const SgVerdict v = cp.classify(q.iface, q.dir, q.spec);
    allowed += v.allowed();
    benchmark::DoNotOptimize(v);
    i = (i + 1) & (kFlows - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allowed_pct"] =
      100.0 * static_cast<double>(allowed) / static_cast<double>(state.iterations());
  reportPolicy(state, cp);
}
BENCHMARK(BM_Classify);

void BM_AclCheck(benchmark::State& state) {
  const Fixture& fx = fixture();
  const CompiledPolicy& cp = *fx.compiled;
  size_t i = 0;
  for (auto _ : state) {
    const auto& q = fx.queries[i];
    const AclVerdict v = cp.aclCheck(0, q.dir, q.spec);
    benchmark::DoNotOptimize(v);
    i = (i + 1) & (kFlows - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AclCheck);

void BM_EvaluateFirstPacket(benchmark::State& state) {
  const Fixture& fx = fixture();
  const CompiledPolicy& cp = *fx.compiled;
  size_t i = 0;
  uint64_t allowed = 0;
  Evaluation e;
  for (auto _ : state) {
    evaluate(cp, fx.flows[i], EvalMode::kFull, &e);
    allowed += e.allowed;
    benchmark::DoNotOptimize(e);
    i = (i + 1) & (kFlows - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allowed_pct"] =
      100.0 * static_cast<double>(allowed) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EvaluateFirstPacket);

void BM_Compile(benchmark::State& state) {
  const Fixture& fx = fixture();
  for (auto _ : state) {
    CompileResult r = compile(fx.policy);
    benchmark::DoNotOptimize(r.policy.get());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_Compile)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace statewall::rules

BENCHMARK_MAIN();
