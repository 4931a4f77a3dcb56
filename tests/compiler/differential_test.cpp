// Randomized differential test: the compiled classifier, ACL matcher and evaluate() against a
// straightforward scan over the Policy written from docs/design.md, on thousands of random
// policies.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "compiler/policy_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"

namespace statewall::rules {
namespace {

// ---- the reference: a linear scan over the Policy ----

class Reference {
 public:
  explicit Reference(const Policy& p) : p_(p) {
    RuleId next = 0;
    for (const SecurityGroup& g : p.groups) {
      base_[g.name] = {next, static_cast<RuleId>(next + g.inbound.size())};
      next += static_cast<RuleId>(g.inbound.size() + g.outbound.size());
    }
    for (const Interface& i : p.interfaces)
      for (const std::string& g : i.groups)
        group_addrs_[g].insert(group_addrs_[g].end(), i.addresses.begin(), i.addresses.end());
  }

  static bool matchMatches(const Match& m, const FlowSpec& f) {
    if (m.proto == kProtoAll) return true;
    if (m.proto != f.proto) return false;
    if (protoHasPorts(m.proto)) return m.port_lo <= f.dport && f.dport <= m.port_hi;
    if (protoIsIcmp(m.proto)) {
      if (m.icmp_type == kAny) return true;
      return m.icmp_type == f.icmp_type && (m.icmp_code == kAny || m.icmp_code == f.icmp_code);
    }
    return true;
  }

  std::vector<Cidr> peerCidrs(const Peer& peer) const {
    switch (peer.kind) {
      case PeerKind::kCidr:
        return {peer.cidr};
      case PeerKind::kPrefixList:
        for (const PrefixList& pl : p_.prefix_lists)
          if (pl.name == peer.name) return pl.cidrs;
        return {};
      case PeerKind::kGroup: {
        std::vector<Cidr> out;
        auto it = group_addrs_.find(peer.name);
        if (it != group_addrs_.end())
          for (const IpAddr& a : it->second)
            out.push_back(Cidr::host(a));
        return out;
      }
    }
    return {};
  }

  bool ruleMatches(const SgRule& r, const FlowSpec& f) const {
    if (!matchMatches(r.match, f)) return false;
    for (const Peer& peer : r.peers)
      for (const Cidr& c : peerCidrs(peer))
        if (c.contains(f.remote)) return true;
    return false;
  }

  bool ruleHasAllPeer(const SgRule& r, Family fam) const {
    for (const Peer& peer : r.peers)
      for (const Cidr& c : peerCidrs(peer))
        if (c.family() == fam && c.prefix == 0) return true;
    return false;
  }

  const SecurityGroup& group(const std::string& name) const {
    for (const SecurityGroup& g : p_.groups)
      if (g.name == name) return g;
    static SecurityGroup none;
    ADD_FAILURE() << "no group " << name;
    return none;
  }

  SgVerdict classify(size_t iface, Direction d, const FlowSpec& f) const {
    SgVerdict v;
    const Interface& itf = p_.interfaces[iface];
    bool any_all_peer = false;
    for (const std::string& gname : itf.groups) {
      const SecurityGroup& g = group(gname);
      const auto& list = d == Direction::kInbound ? g.inbound : g.outbound;
      for (size_t k = 0; k < list.size(); ++k) {
        if (!ruleMatches(list[k], f)) continue;
        if (v.rule == kNoRule)
          v.rule = base_.at(gname)[static_cast<size_t>(d)] + static_cast<RuleId>(k);
        if (ruleHasAllPeer(list[k], f.remote.family)) any_all_peer = true;
      }
    }
    if (v.rule == kNoRule || !any_all_peer || !protoHasPorts(f.proto)) return v;
    const Direction rev = d == Direction::kInbound ? Direction::kOutbound : Direction::kInbound;
    for (const std::string& gname : itf.groups) {
      const SecurityGroup& g = group(gname);
      for (const SgRule& r : rev == Direction::kInbound ? g.inbound : g.outbound) {
        const bool all_ports =
            r.match.proto == kProtoAll || (r.match.proto == f.proto && r.match.allPorts());
        if (all_ports && ruleHasAllPeer(r, f.remote.family)) v.untracked = true;
      }
    }
    return v;
  }

  // (rule number, allow); rule number 0 = '*'. nullopt-like -1 when the subnet has no ACL.
  std::pair<int, bool> acl(const std::string& acl_name, Direction d, const FlowSpec& f) const {
    for (const NetworkAcl& a : p_.acls) {
      if (a.name != acl_name) continue;
      std::vector<AclEntry> entries = d == Direction::kInbound ? a.inbound : a.outbound;
      std::sort(entries.begin(), entries.end(),
                [](const AclEntry& x, const AclEntry& y) { return x.rule_number < y.rule_number; });
      for (const AclEntry& e : entries)
        if (matchMatches(e.match, f) && e.cidr.contains(f.remote)) return {e.rule_number, e.allow};
      return {0, false};
    }
    return {-1, true};
  }

  long ifaceOf(const IpAddr& a) const {
    for (size_t i = 0; i < p_.interfaces.size(); ++i)
      for (const IpAddr& x : p_.interfaces[i].addresses)
        if (x == a) return static_cast<long>(i);
    return -1;
  }

  const Subnet* subnetOf(size_t iface) const {
    const Subnet* best = nullptr;
    int best_prefix = -1;
    for (const IpAddr& a : p_.interfaces[iface].addresses) {
      for (const Subnet& s : p_.subnets)
        for (const Cidr& c : s.cidrs)
          if (c.contains(a) && c.prefix > best_prefix) best = &s, best_prefix = c.prefix;
      if (best) return best;
    }
    return nullptr;
  }

  static bool inSubnet(const Subnet* s, const IpAddr& a) {
    for (const Cidr& c : s->cidrs)
      if (c.contains(a)) return true;
    return false;
  }

  // The docs/design.md "Direction" decision as a list of (kind, dir, allowed) in order.
  struct RefEval {
    bool unprotected = false;
    bool allowed = false;
    std::vector<std::tuple<CheckKind, Direction, bool>> checks;
  };
  RefEval evaluate(const Flow5& f) const {
    RefEval r;
    const long s = ifaceOf(f.src);
    const long d = ifaceOf(f.dst);
    if (s < 0 && d < 0) {
      r.unprotected = true;
      r.allowed = p_.unprotected_allow;
      return r;
    }
    if (s >= 0) {
      const FlowSpec spec{f.proto, f.dst, f.dport, f.icmp_type, f.icmp_code};
      r.checks.emplace_back(CheckKind::kSg, Direction::kOutbound,
                            classify(static_cast<size_t>(s), Direction::kOutbound, spec).allowed());
      const Subnet* sn = subnetOf(static_cast<size_t>(s));
      if (sn && !sn->acl.empty() && !inSubnet(sn, f.dst))
        r.checks.emplace_back(CheckKind::kAcl, Direction::kOutbound,
                              acl(sn->acl, Direction::kOutbound, spec).second);
    }
    if (d >= 0) {
      const FlowSpec spec{f.proto, f.src, f.dport, f.icmp_type, f.icmp_code};
      const Subnet* sn = subnetOf(static_cast<size_t>(d));
      if (sn && !sn->acl.empty() && !inSubnet(sn, f.src))
        r.checks.emplace_back(CheckKind::kAcl, Direction::kInbound,
                              acl(sn->acl, Direction::kInbound, spec).second);
      r.checks.emplace_back(CheckKind::kSg, Direction::kInbound,
                            classify(static_cast<size_t>(d), Direction::kInbound, spec).allowed());
    }
    r.allowed = true;
    for (auto& c : r.checks)
      r.allowed = r.allowed && std::get<2>(c);
    return r;
  }

 private:
  const Policy& p_;
  std::map<std::string, std::array<RuleId, 2>> base_;
  std::map<std::string, std::vector<IpAddr>> group_addrs_;
};

// ---- random policies ----

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  bool chance(int percent) { return pick(100) < percent; }
  template <typename T>
  T one(const std::vector<T>& v) {
    return v[static_cast<size_t>(pick(static_cast<int>(v.size())))];
  }

  IpAddr v4() {
    return IpAddr::v4((10u << 24) | (static_cast<uint32_t>(pick(3)) << 16) |
                      (static_cast<uint32_t>(pick(3)) << 8) |
                      static_cast<uint32_t>(one<int>({0, 1, 2, 7, 8, 127, 128, 254, 255})));
  }
  IpAddr v6() {
    return IpAddr::v6(0x20010db800000000ull | static_cast<uint64_t>(pick(3)),
                      static_cast<uint64_t>(one<int>({0, 1, 2, 255, 256})));
  }
  IpAddr addr() {
    if (chance(8))
      return chance(50) ? IpAddr::v4(static_cast<uint32_t>(rng_())) : IpAddr::v6(rng_(), rng_());
    return chance(70) ? v4() : v6();
  }
  Cidr cidr() {
    const IpAddr a = chance(65) ? v4() : v6();
    const int prefix = a.isV4() ? one<int>({0, 1, 8, 14, 16, 22, 24, 30, 31, 32, 32})
                                : one<int>({0, 1, 32, 48, 62, 64, 120, 127, 128, 128});
    return Cidr{maskAddr(a, static_cast<unsigned>(prefix)), static_cast<uint8_t>(prefix)};
  }
  uint16_t port() {
    return static_cast<uint16_t>(
        one<int>({0, 1, 21, 22, 23, 80, 443, 1023, 1024, 5000, 65534, 65535}));
  }
  int icmpType() { return one<int>({kAny, 0, 3, 8, 128, 255}); }
  int icmpCode() { return one<int>({kAny, 0, 4, 255}); }
  uint8_t proto() {
    return static_cast<uint8_t>(
        one<int>({kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, 47, 50, 0}));
  }

  Match match() {
    Match m;
    m.proto = chance(15) ? kProtoAll : proto();
    if (protoHasPorts(m.proto) || chance(10)) {  // sometimes junk ports on a portless protocol
      uint16_t a = port(), b = port();
      if (chance(30)) b = a;
      m.port_lo = std::min(a, b);
      m.port_hi = std::max(a, b);
      if (chance(15)) m.port_lo = 0, m.port_hi = 65535;
    }
    if (protoIsIcmp(m.proto)) {
      m.icmp_type = icmpType();
      m.icmp_code = m.icmp_type == kAny ? kAny : icmpCode();
    }
    return m;
  }

  Policy policy() {
    Policy p;
    p.unprotected_allow = chance(50);
    const int n_pl = pick(3);
    for (int i = 0; i < n_pl; ++i) {
      PrefixList pl;
      pl.name = "pl" + std::to_string(i);
      const int n = pick(4);
      for (int k = 0; k < n; ++k)
        pl.cidrs.push_back(cidr());
      p.prefix_lists.push_back(pl);
    }
    const int n_groups = 1 + pick(6);
    for (int g = 0; g < n_groups; ++g) {
      SecurityGroup sg;
      sg.name = "g" + std::to_string(g);
      for (auto* list : {&sg.inbound, &sg.outbound}) {
        const int n = pick(7);
        for (int k = 0; k < n; ++k) {
          SgRule r;
          r.match = match();
          const int n_peers = 1 + pick(3);
          for (int q = 0; q < n_peers; ++q) {
            Peer peer;
            const int kind = pick(100);
            if (kind < 15) {
              peer.kind = PeerKind::kGroup;
              peer.name = "g" + std::to_string(pick(n_groups));
            } else if (kind < 25 && n_pl > 0) {
              peer.kind = PeerKind::kPrefixList;
              peer.name = "pl" + std::to_string(pick(n_pl));
            } else {
              peer.cidr = cidr();
            }
            r.peers.push_back(peer);
          }
          list->push_back(r);
        }
      }
      p.groups.push_back(sg);
    }
    const int n_acls = pick(3);
    for (int a = 0; a < n_acls; ++a) {
      NetworkAcl acl;
      acl.name = "acl" + std::to_string(a);
      for (auto* list : {&acl.inbound, &acl.outbound}) {
        std::set<int> used;
        const int n = pick(8);
        for (int k = 0; k < n; ++k) {
          int num = 1 + pick(300);
          if (!used.insert(num).second) continue;
          AclEntry e;
          e.rule_number = num;
          e.allow = chance(60);
          e.match = match();
          e.cidr = cidr();
          list->push_back(e);
        }
      }
      p.acls.push_back(acl);
    }
    // Subnets: 10.0.X.0/24 and 2001:db8:0:X::/64, some nested in a wider one.
    for (int s = 0; s < 3; ++s) {
      if (chance(30)) continue;
      Subnet sn;
      sn.name = "s" + std::to_string(s);
      sn.cidrs.push_back(Cidr{IpAddr::v4((10u << 24) | (static_cast<uint32_t>(s) << 8)), 24});
      if (chance(50))
        sn.cidrs.push_back(
            Cidr{IpAddr::v6(0x20010db800000000ull | static_cast<uint64_t>(s), 0), 64});
      if (n_acls > 0 && chance(70)) sn.acl = "acl" + std::to_string(pick(n_acls));
      p.subnets.push_back(sn);
    }
    if (chance(30)) {
      Subnet wide;
      wide.name = "wide";
      wide.cidrs.push_back(Cidr{IpAddr::v4(10u << 24), 8});
      if (n_acls > 0) wide.acl = "acl0";
      p.subnets.push_back(wide);
    }
    std::set<IpAddr> used;
    const int n_ifaces = 1 + pick(8);
    for (int i = 0; i < n_ifaces; ++i) {
      Interface itf;
      itf.name = "eni" + std::to_string(i);
      const int n_addrs = 1 + pick(2);
      for (int k = 0; k < n_addrs; ++k) {
        IpAddr a = chance(70) ? v4() : v6();
        if (used.insert(a).second) itf.addresses.push_back(a);
      }
      std::vector<int> gs;
      for (int g = 0; g < n_groups; ++g)
        gs.push_back(g);
      std::shuffle(gs.begin(), gs.end(), rng_);
      const int n_g = pick(std::min(n_groups, 4) + 1);
      for (int k = 0; k < n_g; ++k)
        itf.groups.push_back("g" + std::to_string(gs[static_cast<size_t>(k)]));
      p.interfaces.push_back(itf);
    }
    return p;
  }

  FlowSpec flow(const Policy& p) {
    FlowSpec f;
    f.proto = chance(5) ? static_cast<uint8_t>(pick(256)) : proto();
    if (chance(50)) {
      const Interface& itf =
          p.interfaces[static_cast<size_t>(pick(static_cast<int>(p.interfaces.size())))];
      f.remote = itf.addresses.empty() ? addr() : one(itf.addresses);
    } else {
      f.remote = addr();
    }
    f.dport = chance(80) ? static_cast<uint16_t>(port() + one<int>({-1, 0, 0, 0, 1}))
                         : static_cast<uint16_t>(rng_());
    f.icmp_type = static_cast<uint8_t>(chance(80) ? one<int>({0, 3, 8, 128, 255, 1}) : pick(256));
    f.icmp_code = static_cast<uint8_t>(chance(80) ? one<int>({0, 4, 255, 1}) : pick(256));
    return f;
  }

 private:
  std::mt19937_64 rng_;
};

TEST(Differential, ClassifierAclAndEvaluateMatchTheReferenceScan) {
  constexpr int kPolicies = 2000;
  constexpr int kFlows = 150;
  size_t allowed = 0, denied = 0, untracked = 0, acl_allowed = 0, acl_denied = 0;
  for (int n = 0; n < kPolicies; ++n) {
    const uint64_t seed = 0x5eed0000ull + static_cast<uint64_t>(n);
    Gen gen(seed);
    const Policy p = gen.policy();
    CompileResult cr = compile(p);
    ASSERT_TRUE(cr.policy) << "seed " << seed << ": "
                           << (cr.diagnostics.empty() ? "" : cr.diagnostics[0].str());
    const CompiledPolicy& cp = *cr.policy;
    const Reference ref(p);
    for (size_t i = 0; i < p.interfaces.size(); ++i)
      for (const IpAddr& a : p.interfaces[i].addresses)
        ASSERT_EQ(cp.interfaceOf(a), i);

    for (int k = 0; k < kFlows; ++k) {
      const FlowSpec f = gen.flow(p);
      for (size_t i = 0; i < p.interfaces.size(); ++i) {
        for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
          const SgVerdict got = cp.classify(static_cast<IfaceId>(i), d, f);
          const SgVerdict want = ref.classify(i, d, f);
          ASSERT_EQ(got.rule, want.rule)
              << "seed " << seed << " iface " << i << " " << directionName(d) << " proto "
              << int{f.proto} << " remote " << f.remote.str() << " dport " << f.dport << " icmp "
              << int{f.icmp_type} << "/" << int{f.icmp_code};
          ASSERT_EQ(got.untracked, want.untracked)
              << "seed " << seed << " iface " << i << " rule " << got.rule;
          (got.allowed() ? allowed : denied)++;
          untracked += got.untracked;
        }
      }
      for (size_t s = 0; s < p.subnets.size(); ++s) {
        for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
          const AclVerdict got = cp.aclCheck(static_cast<SubnetId>(s), d, f);
          const auto [num, allow] = ref.acl(p.subnets[s].acl, d, f);
          if (num < 0) {
            ASSERT_EQ(got.acl, kNoAcl);
            ASSERT_TRUE(got.allow);
            continue;
          }
          ASSERT_EQ(got.rule_number, num) << "seed " << seed << " subnet " << s << " remote "
                                          << f.remote.str() << " proto " << int{f.proto};
          ASSERT_EQ(got.allow, allow);
          ASSERT_EQ(cp.aclEntry(got.entry).rule_number, num);
          (allow ? acl_allowed : acl_denied)++;
        }
      }
      // evaluate(): a flow between two random addresses (often protected ones).
      Flow5 f5;
      f5.proto = f.proto;
      f5.src = gen.flow(p).remote;
      f5.dst = f.remote;
      f5.sport = gen.port();
      f5.dport = f.dport;
      f5.icmp_type = f.icmp_type;
      f5.icmp_code = f.icmp_code;
      Evaluation ev;
      evaluate(cp, f5, EvalMode::kFull, &ev);
      const auto want = ref.evaluate(f5);
      ASSERT_EQ(ev.unprotected, want.unprotected) << "seed " << seed;
      ASSERT_EQ(ev.allowed, want.allowed)
          << "seed " << seed << " " << f5.src.str() << " -> " << f5.dst.str();
      ASSERT_EQ(ev.n_checks, want.checks.size()) << "seed " << seed;
      int first_deny = -1;
      for (size_t c = 0; c < want.checks.size(); ++c) {
        ASSERT_EQ(ev.checks[c].kind, std::get<0>(want.checks[c]))
            << "seed " << seed << " check " << c;
        ASSERT_EQ(ev.checks[c].dir, std::get<1>(want.checks[c]))
            << "seed " << seed << " check " << c;
        ASSERT_EQ(ev.checks[c].allowed, std::get<2>(want.checks[c]))
            << "seed " << seed << " check " << c;
        if (!std::get<2>(want.checks[c]) && first_deny < 0) first_deny = static_cast<int>(c);
      }
      ASSERT_EQ(ev.first_deny, first_deny);
    }
  }
  // The generator must exercise both outcomes of every decision, or the test proves little.
  EXPECT_GT(allowed, 10000u);
  EXPECT_GT(denied, 10000u);
  EXPECT_GT(untracked, 100u);
  EXPECT_GT(acl_allowed, 1000u);
  EXPECT_GT(acl_denied, 1000u);
  std::printf("sg allowed %zu denied %zu untracked %zu; acl allowed %zu denied %zu\n", allowed,
              denied, untracked, acl_allowed, acl_denied);
}

}  // namespace
}  // namespace statewall::rules
