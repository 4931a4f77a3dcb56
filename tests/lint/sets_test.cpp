// AddrSet and PacketSet: exact set algebra on hand-built cases (IPv4, IPv6, ports, ICMP type and
// code wildcards, protocol wildcards), a randomized comparison against point membership, and
// PolicySets against the compiled classifier and ACL matcher on random packets.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "compiler/policy_builder.hpp"
#include "statewall/rules/lint.hpp"

namespace statewall::rules {
namespace {

using testing::A;
using testing::C;

AddrSet Addrs(std::initializer_list<const char*> cidrs) {
  AddrSet s;
  for (const char* c : cidrs)
    s = s.unite(AddrSet::of(C(c)));
  return s;
}

std::string cidrs(const AddrSet& s) {
  std::string out;
  for (const Cidr& c : s.toCidrs())
    out += (out.empty() ? "" : " ") + c.str();
  return out;
}

// Does the set hold the single packet (proto, key, addr)?
bool has(const PacketSet& s, int proto, uint16_t key, const std::string& addr) {
  const IpAddr a = A(addr);
  const AddrSet one = AddrSet::of(Cidr::host(a));
  return s.contains(
      PacketSet::box(proto, key, key, a.isV4() ? one : AddrSet{}, a.isV4() ? AddrSet{} : one));
}

PacketSet rule(const Match& m, std::vector<std::string> peers) {
  std::vector<Cidr> c;
  for (const auto& p : peers)
    c.push_back(C(p));
  return PacketSet::of(m, c);
}

TEST(AddrSet, UnionMergesAdjacentAndNested) {
  EXPECT_EQ(cidrs(Addrs({"10.0.0.0/25", "10.0.0.128/25"})), "10.0.0.0/24");
  EXPECT_EQ(cidrs(Addrs({"10.0.0.0/8", "10.1.0.0/16"})), "10.0.0.0/8");
  EXPECT_EQ(cidrs(Addrs({"10.0.0.0/24", "10.0.2.0/24"})), "10.0.0.0/24 10.0.2.0/24");
  EXPECT_EQ(cidrs(Addrs({"0.0.0.0/1", "128.0.0.0/1"})), "0.0.0.0/0");
  EXPECT_EQ(Addrs({"0.0.0.0/1", "128.0.0.0/1"}), AddrSet::universe(Family::kV4));
}

TEST(AddrSet, SubtractAndIntersect) {
  const AddrSet all = AddrSet::universe(Family::kV4);
  const AddrSet hole = all.subtract(Addrs({"10.0.1.0/24"}));
  EXPECT_FALSE(hole.contains(A("10.0.1.7")));
  EXPECT_TRUE(hole.contains(A("10.0.0.255")));
  EXPECT_TRUE(hole.contains(A("10.0.2.0")));
  EXPECT_TRUE(hole.contains(A("255.255.255.255")));
  EXPECT_TRUE(hole.contains(A("0.0.0.0")));
  EXPECT_EQ(hole.unite(Addrs({"10.0.1.0/24"})), all);
  EXPECT_EQ(cidrs(hole.intersect(Addrs({"10.0.0.0/22"}))), "10.0.0.0/24 10.0.2.0/23");
  EXPECT_TRUE(all.subtract(all).empty());
  EXPECT_EQ(hole.str(), "0.0.0.0/0 except 10.0.1.0/24");
  EXPECT_TRUE(Addrs({"10.0.0.0/8"}).covers(Addrs({"10.20.0.0/16", "10.1.2.3/32"})));
  EXPECT_FALSE(Addrs({"10.0.0.0/8"}).covers(Addrs({"10.20.0.0/16", "11.0.0.0/32"})));
}

TEST(AddrSet, Ipv6EdgesOfTheSpace) {
  const AddrSet all = AddrSet::universe(Family::kV6);
  EXPECT_EQ(cidrs(all), "::/0");
  const AddrSet low = Addrs({"::/1"}), high = Addrs({"8000::/1"});
  EXPECT_EQ(low.unite(high), all);
  const AddrSet top = Addrs({"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"});
  const AddrSet rest = all.subtract(top);
  EXPECT_FALSE(rest.contains(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(rest.contains(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")));
  EXPECT_EQ(rest.toCidrs().size(), 128u);  // one block per bit
  EXPECT_EQ(rest.unite(top), all);
  const AddrSet sub = all.subtract(Addrs({"2001:db8:1::/64"}));
  EXPECT_EQ(sub.str(), "::/0 except 2001:db8:1::/64");
  EXPECT_TRUE(sub.contains(A("2001:db8:2::1")));
  EXPECT_FALSE(sub.contains(A("2001:db8:1::ffff")));
  EXPECT_FALSE(sub.contains(A("10.0.0.1")));  // another family is never in the set
}

TEST(PacketSet, PortRangesCoverExactly) {
  const PacketSet wide = rule(testing::tcp(1000, 2000), {"10.0.0.0/8"});
  const PacketSet a = rule(testing::tcp(1000, 1499), {"10.0.0.0/8"});
  const PacketSet b = rule(testing::tcp(1500, 2000), {"10.0.0.0/9", "10.128.0.0/9"});
  EXPECT_TRUE(a.unite(b).contains(wide));
  EXPECT_EQ(a.unite(b), wide);
  const PacketSet c = rule(testing::tcp(1500, 1999), {"10.0.0.0/8"});
  EXPECT_FALSE(a.unite(c).contains(wide));  // port 2000 is missing
  const PacketSet missing = wide.subtract(a.unite(c));
  EXPECT_TRUE(has(missing, kProtoTcp, 2000, "10.9.9.9"));
  EXPECT_FALSE(has(missing, kProtoTcp, 1999, "10.9.9.9"));
  EXPECT_FALSE(has(missing, kProtoUdp, 2000, "10.9.9.9"));
  EXPECT_EQ(missing.str(), "tcp 2000 from 10.0.0.0/8");
}

TEST(PacketSet, ProtocolWildcard) {
  const PacketSet all = rule(testing::all(), {"0.0.0.0/0"});
  EXPECT_TRUE(all.contains(rule(testing::tcp(0, 65535), {"10.0.0.0/8"})));
  EXPECT_TRUE(all.contains(rule(testing::protoNum(47), {"10.0.0.0/8"})));
  EXPECT_TRUE(all.contains(rule(testing::icmp(3, 4), {"192.0.2.0/24"})));
  EXPECT_FALSE(all.contains(rule(testing::tcp(22), {"::/0"})));  // the other family
  // tcp, udp, icmp, icmpv6 and proto 47 on every key do not make up "all": protocol 50 is left.
  PacketSet parts;
  for (int p : {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, 47})
    parts = parts.unite(rule(testing::protoNum(p), {"0.0.0.0/0"}));
  parts = parts.unite(rule(testing::tcp(0, 65535), {"0.0.0.0/0"}));
  EXPECT_FALSE(parts.contains(all));
  const PacketSet left = all.subtract(parts);
  EXPECT_TRUE(has(left, 50, 0, "1.2.3.4"));
  EXPECT_FALSE(has(left, 47, 0, "1.2.3.4"));
  EXPECT_FALSE(has(left, kProtoTcp, 80, "1.2.3.4"));
  // Every one of the 256 protocols does make up "all".
  PacketSet every;
  for (int p = 0; p < 256; ++p)
    every = every.unite(rule(testing::protoNum(p), {"0.0.0.0/0"}));
  EXPECT_EQ(every, all);
  EXPECT_TRUE(every.contains(all));
}

TEST(PacketSet, IcmpTypeAndCodeWildcards) {
  const PacketSet any = rule(testing::icmp(), {"0.0.0.0/0"});
  const PacketSet echo = rule(testing::icmp(8, kAny), {"0.0.0.0/0"});
  const PacketSet echo0 = rule(testing::icmp(8, 0), {"0.0.0.0/0"});
  EXPECT_TRUE(any.contains(echo));
  EXPECT_TRUE(echo.contains(echo0));
  EXPECT_FALSE(echo0.contains(echo));
  EXPECT_TRUE(has(echo, kProtoIcmp, icmpKey(8, 255), "1.1.1.1"));
  EXPECT_FALSE(has(echo, kProtoIcmp, icmpKey(9, 0), "1.1.1.1"));
  EXPECT_FALSE(has(echo, kProtoIcmpV6, icmpKey(8, 0), "1.1.1.1"));  // icmp is not icmpv6
  // Every code of type 3, one by one, makes up "type 3, any code".
  PacketSet codes;
  for (int c = 0; c < 256; ++c)
    codes = codes.unite(rule(testing::icmp(3, c), {"0.0.0.0/0"}));
  EXPECT_EQ(codes, rule(testing::icmp(3, kAny), {"0.0.0.0/0"}));
  // ICMPv6 with IPv6 peers.
  const PacketSet v6 = rule(testing::icmp6(128, kAny), {"2001:db8::/32"});
  EXPECT_TRUE(has(v6, kProtoIcmpV6, icmpKey(128, 0), "2001:db8::1"));
  EXPECT_FALSE(has(v6, kProtoIcmpV6, icmpKey(129, 0), "2001:db8::1"));
  EXPECT_FALSE(has(v6, kProtoIcmpV6, icmpKey(128, 0), "2001:db9::1"));
  EXPECT_TRUE(rule(testing::icmp6(), {"::/0"}).contains(v6));
}

TEST(PacketSet, QueriesAndSample) {
  const PacketSet s = rule(testing::tcp(22), {"10.0.0.0/8", "2001:db8::/32"})
                          .unite(rule(testing::udp(53), {"192.0.2.0/24"}));
  EXPECT_EQ(s.addresses(kProtoTcp, Family::kV4).str(), "10.0.0.0/8");
  EXPECT_EQ(s.addresses(kProtoTcp, Family::kV6).str(), "2001:db8::/32");
  EXPECT_TRUE(s.addresses(kProtoTcp, Family::kV4, 23, 65535).empty());
  EXPECT_EQ(s.protocols(), (std::vector<int>{kProtoTcp, kProtoUdp}));
  const auto k = s.keys(kProtoUdp, A("192.0.2.9"));
  ASSERT_EQ(k.size(), 1u);
  EXPECT_EQ(k[0], (std::pair<uint16_t, uint16_t>{53, 53}));
  const int prefer[] = {kProtoUdp};
  const auto pt = s.sample(prefer);
  ASSERT_TRUE(pt);
  EXPECT_EQ(pt->proto, kProtoUdp);
  EXPECT_EQ(pt->key, 53);
  EXPECT_TRUE(AddrSet::of(C("192.0.2.0/24")).contains(pt->addr));
  EXPECT_FALSE(PacketSet{}.sample());
  EXPECT_TRUE(PacketSet{}.empty());
  EXPECT_TRUE(s.withAddresses(AddrSet{}, Addrs({"2001:db8::/48"}))
                  .addresses(kProtoTcp, Family::kV4)
                  .empty());
}

// Random sets built from random rules, checked point by point against the rules themselves.
TEST(PacketSet, RandomOperationsMatchPointMembership) {
  std::mt19937 rng(12345);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* v4_cidrs[] = {"0.0.0.0/0",    "10.0.0.0/8",    "10.1.0.0/16", "10.1.2.0/24",
                            "192.0.2.0/24", "10.1.2.128/25", "10.1.2.3/32"};
  const char* v6_cidrs[] = {"::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::1/128"};
  struct R {
    Match m;
    std::vector<Cidr> peers;
  };
  auto randomMatch = [&]() {
    switch (pick(6)) {
      case 0:
        return testing::all();
      case 1: {
        int lo = pick(40), hi = lo + pick(40);
        return testing::tcp(lo, hi);
      }
      case 2: {
        int lo = pick(40);
        return testing::udp(lo, lo + pick(5));
      }
      case 3:
        return testing::icmp(pick(3) == 0 ? kAny : pick(10), pick(2) ? kAny : pick(4));
      case 4:
        return testing::icmp6(pick(3) == 0 ? kAny : 128 + pick(3), kAny);
      default:
        return testing::protoNum(47 + pick(2));
    }
  };
  auto randomRule = [&]() {
    R r;
    r.m = randomMatch();
    for (int k = 0, n = 1 + pick(2); k < n; ++k)
      r.peers.push_back(
          C(pick(2) ? v4_cidrs[pick(std::size(v4_cidrs))] : v6_cidrs[pick(std::size(v6_cidrs))]));
    return r;
  };
  auto inRule = [](const R& r, int proto, uint16_t key, const IpAddr& a) {
    uint16_t lo = 0, hi = 65535;
    const Match& m = r.m;
    if (m.proto != kProtoAll && m.proto != proto) return false;
    if (m.proto != kProtoAll && protoHasPorts(m.proto)) {
      lo = m.port_lo;
      hi = m.port_hi;
    } else if (m.proto != kProtoAll && protoIsIcmp(m.proto) && m.icmp_type != kAny) {
      lo = icmpKey(m.icmp_type, m.icmp_code == kAny ? 0 : m.icmp_code);
      hi = icmpKey(m.icmp_type, m.icmp_code == kAny ? 255 : m.icmp_code);
    }
    if (key < lo || key > hi) return false;
    for (const Cidr& c : r.peers)
      if (c.contains(a)) return true;
    return false;
  };
  const char* probe_addrs[] = {"10.1.2.3",      "10.1.2.4",     "10.1.2.200", "10.1.3.1",
                               "10.2.0.0",      "192.0.2.1",    "8.8.8.8",    "2001:db8:1::1",
                               "2001:db8:1::2", "2001:db8:2::", "2002::1"};
  for (int round = 0; round < 200; ++round) {
    std::vector<R> xs, ys;
    PacketSet x, y;
    for (int k = 0, n = 1 + pick(4); k < n; ++k) {
      xs.push_back(randomRule());
      x = x.unite(PacketSet::of(xs.back().m, xs.back().peers));
    }
    for (int k = 0, n = 1 + pick(4); k < n; ++k) {
      ys.push_back(randomRule());
      y = y.unite(PacketSet::of(ys.back().m, ys.back().peers));
    }
    const PacketSet u = x.unite(y), i = x.intersect(y), d = x.subtract(y);
    for (int proto : {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, 47, 48, 99}) {
      for (int probe = 0; probe < 30; ++probe) {
        const uint16_t key = protoIsIcmp(proto)
                                 ? icmpKey(pick(12) == 0 ? 128 + pick(3) : pick(10), pick(5))
                                 : static_cast<uint16_t>(pick(90));
        const std::string addr = probe_addrs[pick(std::size(probe_addrs))];
        const IpAddr a = A(addr);
        bool in_x = false, in_y = false;
        for (const R& r : xs)
          in_x = in_x || inRule(r, proto, key, a);
        for (const R& r : ys)
          in_y = in_y || inRule(r, proto, key, a);
        ASSERT_EQ(has(x, proto, key, addr), in_x)
            << x.str() << " / " << proto << " " << key << " " << addr;
        ASSERT_EQ(has(u, proto, key, addr), in_x || in_y);
        ASSERT_EQ(has(i, proto, key, addr), in_x && in_y);
        ASSERT_EQ(has(d, proto, key, addr), in_x && !in_y);
      }
    }
    // Laws that hold for any sets.
    ASSERT_EQ(d.unite(i), x);
    ASSERT_TRUE(u.contains(x));
    ASSERT_TRUE(d.intersect(y).empty());
    ASSERT_EQ(x.contains(y), y.subtract(x).empty());
  }
}

// PolicySets agrees with the compiled classifier and ACL matcher packet by packet.
TEST(PolicySets, AgreesWithTheCompiledPolicy) {
  using namespace testing;
  Policy p;
  PrefixList pl;
  pl.name = "office";
  pl.cidrs = {C("203.0.113.0/24"), C("2001:db8:100::/48")};
  p.prefix_lists.push_back(pl);
  p.groups.push_back(G("web",
                       {R(tcp(443), {"0.0.0.0/0", "::/0"}), R(tcp(22), {"pl:office"}),
                        R(icmp(8), {"0.0.0.0/0"}), R(icmp6(128, 0), {"::/0"})},
                       {R(all(), {"0.0.0.0/0", "::/0"})}));
  p.groups.push_back(G("app", {R(tcp(8000, 8099), {"sg:web"}), R(udp(53), {"10.0.0.0/8"})},
                       {R(tcp(5432), {"sg:db"})}));
  p.groups.push_back(G(
      "db", {R(tcp(5432), {"sg:app"}), R(all(), {"sg:db"}), R(protoNum(47), {"10.0.0.0/8"})}, {}));
  NetworkAcl acl;
  acl.name = "edge";
  acl.inbound = {E(90, false, all(), "192.0.2.0/24"),
                 E(100, true, tcp(443), "0.0.0.0/0"),
                 E(110, true, tcp(1024, 65535), "0.0.0.0/0"),
                 E(120, true, icmp(8, kAny), "0.0.0.0/0"),
                 E(130, true, icmp6(), "::/0"),
                 E(140, false, tcp(0, 100), "10.0.0.0/8"),
                 E(150, true, tcp(0, 200), "10.0.0.0/8")};
  acl.outbound = {E(100, true, all(), "0.0.0.0/0"), E(110, false, udp(0, 65535), "::/0")};
  p.acls.push_back(acl);
  p.subnets.push_back(S("pub", {"10.0.1.0/24", "2001:db8:1::/64"}, "edge"));
  p.subnets.push_back(S("priv", {"10.0.2.0/24"}));
  p.interfaces.push_back(I("web-1", {"10.0.1.10", "2001:db8:1::10"}, {"web"}));
  p.interfaces.push_back(I("app-1", {"10.0.2.10"}, {"app"}));
  p.interfaces.push_back(I("both", {"10.0.2.11"}, {"app", "db"}));
  p.interfaces.push_back(I("db-1", {"10.0.2.12"}, {"db"}));
  auto cp = compileOrFail(p);
  ASSERT_TRUE(cp);
  const PolicySets sets(*cp);

  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* remotes[] = {"10.0.1.10",      "10.0.2.10",       "10.0.2.11",      "10.0.2.12",
                           "10.9.9.9",       "192.0.2.5",       "203.0.113.9",    "8.8.8.8",
                           "2001:db8:1::10", "2001:db8:100::5", "2001:db8:200::5"};
  for (int n = 0; n < 20000; ++n) {
    const int protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, 47, 50};
    const int proto = protos[pick(6)];
    FlowSpec f;
    f.proto = static_cast<uint8_t>(proto);
    f.remote = A(remotes[pick(std::size(remotes))]);
    uint16_t key = 0;
    if (protoHasPorts(proto)) {
      const uint16_t ports[] = {0,    22,   53,   100,  101,  200,  201,  443,
                                1023, 1024, 5432, 8000, 8099, 8100, 65535};
      f.dport = ports[pick(std::size(ports))];
      key = f.dport;
    } else if (protoIsIcmp(proto)) {
      const uint8_t types[] = {0, 3, 8, 128, 129};
      f.icmp_type = types[pick(5)];
      f.icmp_code = static_cast<uint8_t>(pick(3));
      key = icmpKey(f.icmp_type, f.icmp_code);
    }
    const std::string remote = f.remote.str();
    for (IfaceId i = 0; i < cp->ifaceCount(); ++i) {
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const bool compiled = cp->classify(i, d, f).allowed();
        ASSERT_EQ(has(sets.ifaceAllowed(i, d), proto, key, remote), compiled)
            << cp->iface(i).name << " " << directionName(d) << " proto " << proto << " key " << key
            << " from " << remote;
      }
    }
    for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
      const AclVerdict v = cp->aclCheck(0, d, f);
      ASSERT_EQ(has(sets.aclAllowed(0, d), proto, key, remote), v.allow)
          << directionName(d) << " proto " << proto << " key " << key << " from " << remote;
      ASSERT_TRUE(has(sets.aclEntry(v.entry), proto, key, remote));
    }
  }
}

}  // namespace
}  // namespace statewall::rules
