// The checks of `statewall lint`, on the exact sets of lint_sets.cpp.
#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>

#include "statewall/rules/lint.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::rules {
namespace {

constexpr LintCheck kChecks[] = {
    {"SW001", "admin-port-open", LintSeverity::kError,
     "inbound rule opens an administration port (SSH 22, RDP 3389) to the internet"},
    {"SW002", "database-port-open", LintSeverity::kError,
     "inbound rule opens a database port (3306, 5432, 1433, 6379, 9200, 27017) to the internet"},
    {"SW003", "all-ports-open", LintSeverity::kError,
     "inbound rule opens all ports or all protocols to the internet"},
    {"SW010", "redundant-rule", LintSeverity::kWarning,
     "security-group rule whose packets other rules of its own group already allow"},
    {"SW011", "redundant-rule-other-group", LintSeverity::kWarning,
     "security-group rule whose packets rules of other groups allow on every interface that "
     "carries it"},
    {"SW020", "acl-entry-shadowed", LintSeverity::kWarning,
     "network-ACL entry that never matches: earlier entries take all of its packets"},
    {"SW021", "acl-deny-after-allow", LintSeverity::kError,
     "network-ACL deny entry that never takes effect: an earlier allow takes its packets"},
    {"SW030", "stateless-reply-dropped", LintSeverity::kWarning,
     "flow a security group allows whose replies the subnet's network ACL drops"},
    {"SW040", "group-unattached", LintSeverity::kInfo, "security group attached to no interface"},
    {"SW041", "peer-matches-nothing", LintSeverity::kWarning,
     "rule peer that matches no address (a group with no members, an empty prefix list)"},
    {"SW042", "interface-no-inbound", LintSeverity::kInfo,
     "interface whose groups allow nothing inbound"},
    {"SW043", "untracked-flows", LintSeverity::kInfo,
     "rule that allows everything in one direction and so makes flows from 0.0.0.0/0 or ::/0 "
     "untracked in the other"},
};

const LintCheck& check(std::string_view code) {
  for (const LintCheck& c : kChecks)
    if (c.code == code) return c;
  return kChecks[0];  // unreachable: every caller passes a code of the table
}

struct SensitivePort {
  uint16_t port;
  bool tcp;
  bool udp;
  const char* service;
  bool admin;  // SW001; otherwise a database port (SW002)
};

constexpr SensitivePort kSensitivePorts[] = {
    {22, true, false, "SSH", true},
    {3389, true, true, "RDP", true},
    {3306, true, false, "MySQL", false},
    {5432, true, false, "PostgreSQL", false},
    {1433, true, false, "SQL Server", false},
    {6379, true, false, "Redis", false},
    {9200, true, false, "Elasticsearch", false},
    {27017, true, false, "MongoDB", false},
};

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

std::string joinNames(const std::vector<std::string>& v, size_t max = 4) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i)
    s += (i ? ", " : "") + v[i];
  if (v.size() > max) s += " and " + std::to_string(v.size() - max) + " more";
  return s;
}

std::string endpoint(const IpAddr& a, int proto, uint16_t port) {
  if (!protoHasPorts(proto)) return a.str();
  return endpointText(a, port);
}

// "tcp 198.51.100.7:49152 -> 10.0.1.10:443", "icmp 198.51.100.7 -> 10.0.1.10 type 8 code 0"
std::string flowText(int proto, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                     uint16_t dport_or_key) {
  std::string s = protoName(proto) + " " + endpoint(src, proto, sport) + " -> " +
                  endpoint(dst, proto, dport_or_key);
  if (protoIsIcmp(proto))
    s += " type " + std::to_string(dport_or_key >> 8) + " code " +
         std::to_string(dport_or_key & 0xFF);
  return s;
}

const IpAddr kExampleAddrs[] = {*IpAddr::parse("198.51.100.7"), *IpAddr::parse("203.0.113.7"),
                                *IpAddr::parse("192.0.2.7"), *IpAddr::parse("2001:db8:ffff::7"),
                                *IpAddr::parse("2001:db8::7")};
constexpr uint16_t kExampleKeys[] = {443, 80, 22, 8080, 53, 123};
constexpr uint16_t kUdpExampleKeys[] = {53, 123, 443};
constexpr int kMainProtos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6};

// Rules as boxes in (protocol and key) x (remote address) of one family, in a bounding-volume
// tree: the rules that may share a packet with a given rule are found without looking at the
// others, so the redundancy check is near-linear in rules rather than quadratic. A box bounds
// the rule's packets (never less), so a rule left out shares no packet.
class RuleIndex {
 public:
  struct Box {
    uint32_t key_lo = 0, key_hi = 0;  // protocol << 16 | key
    IpAddr addr_lo, addr_hi;          // one family per index
    bool meets(const Box& o) const {
      return key_lo <= o.key_hi && o.key_lo <= key_hi && addr_lo <= o.addr_hi &&
             o.addr_lo <= addr_hi;
    }
  };

  void add(RuleId r, const Box& b) { items_.push_back({b, r}); }
  // Call once, after the last add().
  void build() {
    nodes_.clear();
    if (!items_.empty()) buildNode(0, items_.size(), 0);
  }
  // Appends the rules whose box meets `b`.
  void query(const Box& b, std::vector<RuleId>& out) const {
    if (!nodes_.empty()) queryNode(0, b, out);
  }

 private:
  struct Item {
    Box box;
    RuleId rule;
  };
  struct Node {
    Box box;  // bounds every item below
    size_t begin, end;
    size_t left = 0, right = 0;  // children (0: a leaf)
  };
  static constexpr size_t kLeaf = 8;

  size_t buildNode(size_t begin, size_t end, int depth) {
    Box box = items_[begin].box;
    for (size_t i = begin + 1; i < end; ++i) {
      const Box& x = items_[i].box;
      box.key_lo = std::min(box.key_lo, x.key_lo);
      box.key_hi = std::max(box.key_hi, x.key_hi);
      box.addr_lo = std::min(box.addr_lo, x.addr_lo);
      box.addr_hi = std::max(box.addr_hi, x.addr_hi);
    }
    const size_t id = nodes_.size();
    nodes_.push_back(Node{box, begin, end});
    if (end - begin <= kLeaf) return id;
    // Split at the median of the boxes' lower corners, keys and addresses in turn.
    const size_t mid = begin + (end - begin) / 2;
    auto first = items_.begin() + static_cast<long>(begin);
    auto last = items_.begin() + static_cast<long>(end);
    auto nth = items_.begin() + static_cast<long>(mid);
    if (depth % 2 == 0) {
      std::nth_element(first, nth, last,
                       [](const Item& a, const Item& b) { return a.box.key_lo < b.box.key_lo; });
    } else {
      std::nth_element(first, nth, last,
                       [](const Item& a, const Item& b) { return a.box.addr_lo < b.box.addr_lo; });
    }
    const size_t l = buildNode(begin, mid, depth + 1);
    const size_t r = buildNode(mid, end, depth + 1);
    nodes_[id].left = l;
    nodes_[id].right = r;
    return id;
  }

  void queryNode(size_t id, const Box& b, std::vector<RuleId>& out) const {
    const Node& n = nodes_[id];
    if (!n.box.meets(b)) return;
    if (n.left == 0) {
      for (size_t i = n.begin; i < n.end; ++i)
        if (items_[i].box.meets(b)) out.push_back(items_[i].rule);
      return;
    }
    queryNode(n.left, b, out);
    queryNode(n.right, b, out);
  }

  std::vector<Item> items_;
  std::vector<Node> nodes_;
};

class Linter {
 public:
  Linter(const CompiledPolicy& p, const LintOptions& o) : p_(p), sets_(p), opt_(o) {}

  std::vector<LintFinding> run() {
    collectContexts();
    checkExposure();
    checkRedundancy();
    checkAcls();
    checkStatelessReplies();
    checkUnattached();
    checkEmptyPeers();
    checkNoInbound();
    checkUntracked();
    sortFindings();
    return std::move(out_);
  }

 private:
  LintFinding& add(std::string_view code, const SourceLoc& loc, std::string subject,
                   std::string message, std::string fix) {
    const LintCheck& c = check(code);
    LintFinding f;
    f.code = std::string(c.code);
    f.name = std::string(c.name);
    f.severity = c.severity;
    f.loc = loc;
    f.subject = std::move(subject);
    f.message = std::move(message);
    f.fix = std::move(fix);
    out_.push_back(std::move(f));
    return out_.back();
  }

  const Policy& src() const { return p_.source(); }
  static Direction reverse(Direction d) {
    return d == Direction::kInbound ? Direction::kOutbound : Direction::kInbound;
  }

  // The interfaces carrying each group, and the distinct group lists ("contexts") a group's
  // rules are unioned with.
  void collectContexts() {
    ifaces_of_group_.assign(src().groups.size(), {});
    for (size_t i = 0; i < p_.ifaceCount(); ++i) {
      const InterfaceInfo& itf = p_.iface(static_cast<IfaceId>(i));
      for (uint16_t g : itf.groups)
        if (ifaces_of_group_[g].empty() || ifaces_of_group_[g].back() != i)
          ifaces_of_group_[g].push_back(static_cast<IfaceId>(i));
      if (group_sets_seen_.insert(itf.groups).second) group_sets_.push_back(itf.groups);
    }
  }

  std::vector<std::string> ifaceNames(const std::vector<IfaceId>& ids) const {
    std::vector<std::string> v;
    for (IfaceId i : ids)
      v.push_back(p_.iface(i).name);
    return v;
  }

  AddrSet outside(SubnetId s, Family f) const {
    return AddrSet::universe(f).subtract(sets_.subnetAddresses(s, f));
  }

  // ---- SW001, SW002, SW003 ----

  // Interfaces carrying group g on which (a part of) `pkts`, coming from outside the interface's
  // subnet, passes the subnet's inbound ACL.
  std::vector<IfaceId> reachableOn(uint16_t g, const PacketSet& pkts) const {
    std::vector<IfaceId> out;
    for (IfaceId i : ifaces_of_group_[g]) {
      const SubnetId sn = p_.subnetOfIface(i);
      if (!p_.hasAcl(sn)) {
        out.push_back(i);
        continue;
      }
      const PacketSet from_outside =
          pkts.withAddresses(outside(sn, Family::kV4), outside(sn, Family::kV6));
      if (from_outside.intersects(sets_.aclAllowed(p_.subnet(sn).acl, Direction::kInbound)))
        out.push_back(i);
    }
    return out;
  }

  void checkExposure() {
    for (RuleId r = 0; r < p_.ruleCount(); ++r) {
      const RuleInfo& info = p_.rule(r);
      if (info.dir != Direction::kInbound) continue;
      const SgRule& rule = sets_.sgRule(r);
      const PacketSet& set = sets_.rule(r);
      std::vector<std::string> open_from;
      AddrSet v4, v6;
      for (const Peer& peer : rule.peers) {
        AddrSet a4, a6;
        sets_.peerAddresses(peer, &a4, &a6);
        v4 = v4.unite(a4);
        v6 = v6.unite(a6);
      }
      const bool all4 = v4 == AddrSet::universe(Family::kV4);
      const bool all6 = v6 == AddrSet::universe(Family::kV6);
      if (!all4 && !all6) continue;
      if (all4) open_from.push_back("0.0.0.0/0");
      if (all6) open_from.push_back("::/0");
      const PacketSet internet = set.withAddresses(all4 ? v4 : AddrSet{}, all6 ? v6 : AddrSet{});
      const Match& m = rule.match;
      const std::string from = joinNames(open_from);

      auto report = [&](std::string_view code, const PacketSet& exposed, const std::string& what) {
        std::string message = "allows " + what + " from " + from + " (anyone on the internet)";
        LintFinding* f = nullptr;
        const uint16_t g = info.group;
        if (ifaces_of_group_[g].empty()) {
          message += "; group " + info.group_name + " is attached to no interface yet";
          f = &add(code, info.loc, ruleLabel(p_, r), message, "");
        } else {
          const std::vector<IfaceId> reach = reachableOn(g, exposed);
          if (reach.empty()) {
            message += "; today the subnets' network ACLs drop it before it reaches " +
                       joinNames(ifaceNames(ifaces_of_group_[g])) +
                       ", but the group alone does not protect them";
            f = &add(code, info.loc, ruleLabel(p_, r), message, "");
            f->severity = LintSeverity::kWarning;
          } else {
            message += ": it reaches " + joinNames(ifaceNames(reach));
            f = &add(code, info.loc, ruleLabel(p_, r), message, "");
          }
        }
        f->fix =
            "limit the source to the addresses that need it (a prefix list such as pl:office, "
            "or the group of a bastion host), or remove the rule";
      };

      const bool all_ports =
          m.proto == kProtoAll || (protoHasPorts(m.proto) && m.port_lo <= 1 && m.port_hi == 65535);
      if (all_ports) {
        const std::string what = m.proto == kProtoAll ? std::string("every protocol and port")
                                                      : "every " + protoName(m.proto) + " port";
        report("SW003", internet, what);
        continue;
      }
      if (!protoHasPorts(m.proto)) continue;
      for (bool admin : {true, false}) {
        std::vector<std::pair<uint16_t, std::string>> ports;
        PacketSet exposed;
        for (const SensitivePort& sp : kSensitivePorts) {
          if (sp.admin != admin) continue;
          if (!((m.proto == kProtoTcp && sp.tcp) || (m.proto == kProtoUdp && sp.udp))) continue;
          if (sp.port < m.port_lo || sp.port > m.port_hi) continue;
          ports.emplace_back(sp.port, std::to_string(sp.port) + " (" + sp.service + ")");
          exposed = exposed.unite(internet.intersect(
              PacketSet::box(m.proto, sp.port, sp.port, AddrSet::universe(Family::kV4),
                             AddrSet::universe(Family::kV6))));
        }
        if (ports.empty()) continue;
        std::sort(ports.begin(), ports.end());
        std::vector<std::string> names;
        for (auto& pr : ports)
          names.push_back(std::move(pr.second));
        report(
            admin ? "SW001" : "SW002", exposed,
            protoName(m.proto) + (names.size() == 1 ? " port " : " ports ") + joinNames(names, 8));
      }
    }
  }

  // ---- SW010, SW011 ----

  // Can rules a and b share a packet? A cheap filter before the exact set operations.
  bool mayOverlap(RuleId a, RuleId b) const {
    const Match& x = sets_.sgRule(a).match;
    const Match& y = sets_.sgRule(b).match;
    if (x.proto != kProtoAll && y.proto != kProtoAll && x.proto != y.proto) return false;
    if (x.proto == y.proto && protoHasPorts(x.proto))
      return x.port_lo <= y.port_hi && y.port_lo <= x.port_hi;
    return true;
  }

  // Does rule r allow all addresses of `fam` on all ports of `slot` (tcp or udp) with a /0 peer:
  // what makes flows of the other direction untracked (the compiler's allowsEverything)?
  bool allowsEverything(RuleId r, int slot, Family fam) const {
    const Match& m = sets_.sgRule(r).match;
    if (!(m.proto == kProtoAll || (m.proto == slot && m.allPorts()))) return false;
    return !sets_.ruleAllPeer(r).addresses(slot, fam).empty();
  }

  // The group lists whose union a rule of group g takes part in.
  const std::vector<std::vector<uint16_t>>& contextsOf(uint16_t g) {
    if (contexts_of_group_.empty()) {
      contexts_of_group_.resize(src().groups.size());
      for (const auto& set : group_sets_) {
        for (size_t k = 0; k < set.size(); ++k) {
          auto& c = contexts_of_group_[set[k]];
          // A group listed twice in one interface still takes part in that list once.
          if (std::find(set.begin(), set.begin() + static_cast<long>(k), set[k]) ==
              set.begin() + static_cast<long>(k))
            c.push_back(set);
        }
      }
      for (size_t gi = 0; gi < contexts_of_group_.size(); ++gi)
        if (contexts_of_group_[gi].empty())
          contexts_of_group_[gi].push_back({static_cast<uint16_t>(gi)});
    }
    return contexts_of_group_[g];
  }

  // The bounding box of rule r's packets with remote addresses of family f; nullopt when it has
  // none. From the same sources as PolicySets::peerAddresses(), without copying member sets.
  std::optional<RuleIndex::Box> boxOf(RuleId r, Family f) const {
    const SgRule& rule = sets_.sgRule(r);
    std::optional<RuleIndex::Box> box;
    auto extend = [&](const IpAddr& first, const IpAddr& last) {
      if (!box) {
        box = RuleIndex::Box{0, 0, first, last};
      } else {
        box->addr_lo = std::min(box->addr_lo, first);
        box->addr_hi = std::max(box->addr_hi, last);
      }
    };
    auto extendCidr = [&](const Cidr& c) {
      if (c.family() != f) return;
      const AddrSet one = AddrSet::of(c);
      extend(one.ranges().front().first, one.ranges().back().last);
    };
    for (const Peer& peer : rule.peers) {
      if (peer.kind == PeerKind::kCidr) {
        extendCidr(peer.cidr);
      } else if (peer.kind == PeerKind::kPrefixList) {
        const long pl = sets_.prefixListIndex(peer.name);
        if (pl >= 0)
          for (const Cidr& c : src().prefix_lists[static_cast<size_t>(pl)].cidrs)
            extendCidr(c);
      } else {
        const long g = sets_.groupIndex(peer.name);
        if (g < 0) continue;
        const AddrSet& m = sets_.groupMembers(static_cast<uint16_t>(g), f);
        if (!m.empty()) extend(m.ranges().front().first, m.ranges().back().last);
      }
    }
    if (!box) return box;
    const Match& m = rule.match;
    const uint32_t p = static_cast<uint32_t>(m.proto) << 16;
    if (m.proto == kProtoAll) {
      box->key_lo = 0, box->key_hi = 0xFFFFFF;
    } else if (protoHasPorts(m.proto)) {
      box->key_lo = p | m.port_lo, box->key_hi = p | m.port_hi;
    } else {
      box->key_lo = p, box->key_hi = p | 0xFFFF;
    }
    return box;
  }

  // One index per (group, direction, family), built on first use.
  const RuleIndex& indexOf(uint16_t g, Direction d, int fam) {
    if (indexes_.empty()) {
      boxes_.resize(p_.ruleCount());
      for (RuleId r = 0; r < p_.ruleCount(); ++r)
        for (int f = 0; f < 2; ++f)
          boxes_[r][static_cast<size_t>(f)] = boxOf(r, f == 0 ? Family::kV4 : Family::kV6);
      indexes_.resize(src().groups.size() * 4);
      for (size_t gi = 0; gi < src().groups.size(); ++gi) {
        for (Direction dd : {Direction::kInbound, Direction::kOutbound}) {
          for (int f = 0; f < 2; ++f) {
            RuleIndex& ix = indexes_[gi * 4 + static_cast<size_t>(dd) * 2 + static_cast<size_t>(f)];
            for (RuleId r : sets_.groupRules(static_cast<uint16_t>(gi), dd))
              if (const auto& b = boxes_[r][static_cast<size_t>(f)]) ix.add(r, *b);
            ix.build();
          }
        }
      }
    }
    return indexes_[g * 4 + static_cast<size_t>(d) * 2 + static_cast<size_t>(fam)];
  }

  // The rules of `groups` (of r's group only when `own_group_only`) in r's direction that may
  // share a packet with r, r itself left out, in RuleId order. Every rule that shares one is in.
  std::vector<RuleId> candidates(RuleId r, const std::vector<uint16_t>& groups,
                                 bool own_group_only) {
    const RuleInfo& info = p_.rule(r);
    std::vector<RuleId> out;
    for (uint16_t g : groups) {
      if (own_group_only && g != info.group) continue;
      if (opt_.exhaustive_pairs) {
        const auto all = sets_.groupRules(g, info.dir);
        out.insert(out.end(), all.begin(), all.end());
        continue;
      }
      for (int f = 0; f < 2; ++f) {
        const RuleIndex& ix = indexOf(g, info.dir, f);
        if (const auto& b = boxes_[r][static_cast<size_t>(f)]) ix.query(*b, out);
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    out.erase(std::remove(out.begin(), out.end(), r), out.end());
    return out;
  }

  // Is rule r covered, in the context `groups`, by the rules not in `removed`? Exact also for
  // tracking: its /0-peer part and its allow-everything role must be kept by another rule.
  // Only the candidates() can cover any of it; a rule that shares no packet with r changes
  // nothing (and one that allows everything r needs shares r's /0 packets).
  bool coveredIn(RuleId r, const std::vector<uint16_t>& groups, bool own_group_only,
                 const std::vector<bool>& removed) {
    PacketSet rest = sets_.rule(r);
    PacketSet rest_all = sets_.ruleAllPeer(r).intersect(
        PacketSet::box(kProtoTcp, 0, 65535, AddrSet::universe(Family::kV4),
                       AddrSet::universe(Family::kV6))
            .unite(PacketSet::box(kProtoUdp, 0, 65535, AddrSet::universe(Family::kV4),
                                  AddrSet::universe(Family::kV6))));
    bool need_every[2][2] = {};
    bool have_every[2][2] = {};
    int missing = 0;  // needed and not had
    for (int s = 0; s < 2; ++s)
      for (int f = 0; f < 2; ++f) {
        need_every[s][f] =
            allowsEverything(r, s == 0 ? kProtoTcp : kProtoUdp, f == 0 ? Family::kV4 : Family::kV6);
        missing += need_every[s][f] ? 1 : 0;
      }
    for (RuleId o : candidates(r, groups, own_group_only)) {
      if (removed[o] || !mayOverlap(r, o)) continue;
      if (!rest.empty()) rest = rest.subtract(sets_.rule(o));
      if (!rest_all.empty()) rest_all = rest_all.subtract(sets_.ruleAllPeer(o));
      for (int s = 0; s < 2; ++s)
        for (int f = 0; f < 2; ++f)
          if (need_every[s][f] && !have_every[s][f] &&
              allowsEverything(o, s == 0 ? kProtoTcp : kProtoUdp,
                               f == 0 ? Family::kV4 : Family::kV6)) {
            have_every[s][f] = true;
            --missing;
          }
      if (rest.empty() && rest_all.empty() && missing == 0) return true;  // nothing can undo it
    }
    return rest.empty() && rest_all.empty() && missing == 0;
  }

  static bool hasGroupPeer(const SgRule& r) {
    for (const Peer& p : r.peers)
      if (p.kind == PeerKind::kGroup) return true;
    return false;
  }

  void checkRedundancy() {
    std::vector<bool> removed(p_.ruleCount(), false);
    std::vector<std::pair<RuleId, bool>> found;  // (rule, covered by its own group)
    // Last rule first: of two equal rules the later one is reported.
    for (RuleId r = static_cast<RuleId>(p_.ruleCount()); r-- > 0;) {
      if (sets_.rule(r).empty()) continue;  // SW041 reports rules that match nothing
      const auto& contexts = contextsOf(p_.rule(r).group);
      bool own = true, covered = true;
      for (const auto& ctx : contexts) {
        if (coveredIn(r, ctx, true, removed)) continue;
        own = false;
        if (!coveredIn(r, ctx, false, removed)) {
          covered = false;
          break;
        }
      }
      if (!covered) continue;
      removed[r] = true;
      found.emplace_back(r, own);
    }
    for (const auto& [r, own] : found) {
      const RuleInfo& info = p_.rule(r);
      // Name the kept rules that share packets with it.
      std::vector<RuleId> cover;
      bool single = false;
      bool group_peers = hasGroupPeer(sets_.sgRule(r));
      for (const auto& ctx : contextsOf(info.group)) {
        for (RuleId o : candidates(r, ctx, own)) {
          if (removed[o] || !sets_.rule(o).intersects(sets_.rule(r))) continue;
          cover.push_back(o);
          if (sets_.rule(o).contains(sets_.rule(r))) single = true;
        }
      }
      std::sort(cover.begin(), cover.end());
      cover.erase(std::unique(cover.begin(), cover.end()), cover.end());
      std::vector<std::string> labels;
      for (RuleId o : cover) {
        labels.push_back(ruleLabel(p_, o));
        group_peers = group_peers || hasGroupPeer(sets_.sgRule(o));
      }
      std::string message;
      if (own) {
        message = "every packet it allows is already allowed by " +
                  std::string(single && cover.size() == 1 ? "" : "the union of ") +
                  joinNames(labels, 8) + ", so it never decides a verdict";
      } else {
        message = "on every interface that carries " + info.group_name + " (" +
                  (ifaces_of_group_[info.group].empty()
                       ? std::string("none")
                       : joinNames(ifaceNames(ifaces_of_group_[info.group]))) +
                  "), the rules of the interface's groups already allow every packet it allows: " +
                  joinNames(labels, 8);
      }
      if (group_peers) message += " (with the current members of the groups referenced)";
      LintFinding& f =
          add(own ? "SW010" : "SW011", info.loc, ruleLabel(p_, r), message,
              own ? "remove the rule, or narrow the covering rule if this one states the intent"
                  : "remove the rule if the other groups are meant to stay on these "
                    "interfaces; otherwise keep it and expect this note");
      for (RuleId o : cover)
        f.related.push_back({ruleLabel(p_, o), p_.rule(o).loc});
    }
  }

  // ---- SW020, SW021 ----

  void checkAcls() {
    for (AclId a = 0; a < p_.aclCount(); ++a) {
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const std::vector<AclEntryId> entries = sets_.aclEntries(a, d);
        PacketSet taken;
        for (size_t k = 0; k < entries.size(); ++k) {
          const AclEntryId e = entries[k];
          const AclEntryInfo& info = p_.aclEntry(e);
          if (info.rule_number == 0) break;  // '*'
          const PacketSet& set = sets_.aclEntry(e);
          if (!set.empty() && taken.contains(set)) reportShadowed(entries, k);
          taken = taken.unite(set);
        }
      }
    }
  }

  void reportShadowed(const std::vector<AclEntryId>& entries, size_t k) {
    const AclEntryId e = entries[k];
    const AclEntryInfo& info = p_.aclEntry(e);
    PacketSet rest = sets_.aclEntry(e);
    std::vector<AclEntryId> deciders;
    bool allow_decides = false;
    for (size_t j = 0; j < k && !rest.empty(); ++j) {
      const PacketSet& s = sets_.aclEntry(entries[j]);
      if (!rest.intersects(s)) continue;
      deciders.push_back(entries[j]);
      allow_decides = allow_decides || p_.aclEntry(entries[j]).allow;
      rest = rest.subtract(s);
    }
    if (deciders.empty()) return;  // cannot happen: the entry is non-empty and covered
    std::vector<std::string> labels;
    for (AclEntryId x : deciders)
      labels.push_back(aclEntryLabel(p_, x));
    const int first = p_.aclEntry(deciders.front()).rule_number;
    if (!info.allow && allow_decides) {
      LintFinding& f =
          add("SW021", info.loc, aclEntryLabel(p_, e),
              "this deny never takes effect: every packet it names is decided first by " +
                  joinNames(labels, 8) + " (lowest rule number first), so the traffic passes",
              "give the deny a rule number below " + std::to_string(first) +
                  " so that it is evaluated first, or remove it");
      for (AclEntryId x : deciders)
        f.related.push_back({aclEntryLabel(p_, x), p_.aclEntry(x).loc});
      return;
    }
    LintFinding& f = add("SW020", info.loc, aclEntryLabel(p_, e),
                         "this entry never matches: " + joinNames(labels, 8) + " decide" +
                             (deciders.size() == 1 ? "s" : "") + " every packet it names first" +
                             (info.allow && !allow_decides ? " (and deny them)" : ""),
                         "remove it, or give it a rule number below " + std::to_string(first) +
                             " if it should take precedence");
    for (AclEntryId x : deciders)
      f.related.push_back({aclEntryLabel(p_, x), p_.aclEntry(x).loc});
  }

  // ---- SW030 ----

  // The entry of ACL a, direction d, that decides the single packet (proto, key, addr).
  AclEntryId decidingEntry(AclId a, Direction d, int proto, uint16_t key,
                           const IpAddr& addr) const {
    const PacketSet point =
        PacketSet::box(proto, key, key, addr.isV4() ? AddrSet::of(Cidr::host(addr)) : AddrSet{},
                       addr.isV4() ? AddrSet{} : AddrSet::of(Cidr::host(addr)));
    for (AclEntryId e : sets_.aclEntries(a, d))
      if (sets_.aclEntry(e).contains(point)) return e;
    return kNoAclEntry;
  }

  static std::optional<IpAddr> addressOf(const InterfaceInfo& itf, Family f) {
    for (const IpAddr& a : itf.addresses)
      if (a.family == f) return a;
    return std::nullopt;
  }

  void checkStatelessReplies() {
    std::set<std::pair<RuleId, SubnetId>> seen;
    for (IfaceId i = 0; i < p_.ifaceCount(); ++i) {
      const SubnetId sn = p_.subnetOfIface(i);
      if (!p_.hasAcl(sn)) continue;
      for (uint16_t g : p_.iface(i).groups)
        for (Direction d : {Direction::kInbound, Direction::kOutbound})
          for (RuleId r : sets_.groupRules(g, d))
            if (seen.insert({r, sn}).second) checkReplies(r, i, sn);
    }
  }

  // The packets no entry of ACL a, direction d, names except a catch-all deny (all protocols
  // from 0.0.0.0/0 or ::/0) or the '*': dropped because nothing allows them, rather than by a
  // deny meant for them. Replies dropped by a deliberate deny (a blocked network) are not a trap.
  const PacketSet& fallThrough(AclId a, Direction d) {
    const size_t key = a * 2 + static_cast<size_t>(d);
    auto it = fall_through_.find(key);
    if (it != fall_through_.end()) return it->second;
    PacketSet named;
    for (AclEntryId e : sets_.aclEntries(a, d)) {
      const AclEntryInfo& info = p_.aclEntry(e);
      if (info.rule_number == 0) continue;
      if (!info.allow && isCatchAll(a, d, info.rule_number)) continue;
      named = named.unite(sets_.aclEntry(e));
    }
    return fall_through_.emplace(key, PacketSet::everything().subtract(named)).first->second;
  }

  bool isCatchAll(AclId a, Direction d, int rule_number) const {
    const NetworkAcl& acl = src().acls[a];
    for (const AclEntry& x : d == Direction::kInbound ? acl.inbound : acl.outbound)
      if (x.rule_number == rule_number) return x.match.proto == kProtoAll && x.cidr.prefix == 0;
    return false;
  }

  struct ReplyProblem {
    int proto = 0;
    AddrSet bad4, bad6;
    std::string example;
  };

  void checkReplies(RuleId r, IfaceId i, SubnetId sn) {
    const InterfaceInfo& itf = p_.iface(i);
    const AclId acl = p_.subnet(sn).acl;
    const RuleInfo& info = p_.rule(r);
    const Direction req_dir = info.dir;
    const Direction rep_dir = reverse(info.dir);
    const auto own4 = addressOf(itf, Family::kV4);
    const auto own6 = addressOf(itf, Family::kV6);
    const PacketSet req = sets_.rule(r)
                              .withAddresses(own4 ? outside(sn, Family::kV4) : AddrSet{},
                                             own6 ? outside(sn, Family::kV6) : AddrSet{})
                              .intersect(sets_.aclAllowed(acl, req_dir));
    if (req.empty()) return;
    const PacketSet& rep_ok = sets_.aclAllowed(acl, rep_dir);
    const int rule_proto = sets_.sgRule(r).match.proto;
    std::vector<int> protos;
    if (rule_proto == kProtoAll) {
      protos.assign(std::begin(kMainProtos), std::end(kMainProtos));
    } else {
      protos.push_back(rule_proto);
    }
    const AddrSet u4 = AddrSet::universe(Family::kV4), u6 = AddrSet::universe(Family::kV6);
    std::vector<ReplyProblem> problems;
    for (int proto : protos) {
      // The request keys that have replies, and the reply keys to check.
      uint16_t req_lo = 0, req_hi = 65535, rep_lo = 0, rep_hi = 65535;
      bool v4 = true, v6 = true;
      if (protoHasPorts(proto)) {
        rep_lo = opt_.ephemeral_lo;
        rep_hi = opt_.ephemeral_hi;
      } else if (proto == kProtoIcmp) {
        req_lo = icmpKey(8, 0), req_hi = icmpKey(8, 255);  // echo request -> echo reply
        rep_lo = rep_hi = icmpKey(0, 0);
        v6 = false;
      } else if (proto == kProtoIcmpV6) {
        req_lo = icmpKey(128, 0), req_hi = icmpKey(128, 255);
        rep_lo = rep_hi = icmpKey(129, 0);
        v4 = false;
      }
      const PacketSet dropped = PacketSet::box(proto, rep_lo, rep_hi, u4, u6)
                                    .subtract(rep_ok)
                                    .intersect(fallThrough(acl, rep_dir));
      ReplyProblem pr;
      pr.proto = proto;
      if (v4 && own4)
        pr.bad4 = req.addresses(proto, Family::kV4, req_lo, req_hi)
                      .intersect(dropped.addresses(proto, Family::kV4));
      if (v6 && own6)
        pr.bad6 = req.addresses(proto, Family::kV6, req_lo, req_hi)
                      .intersect(dropped.addresses(proto, Family::kV6));
      if (pr.bad4.empty() && pr.bad6.empty()) continue;

      // An example: a request the rule and the ACL allow, and its reply that the ACL drops.
      const auto pt = req.intersect(PacketSet::box(proto, req_lo, req_hi, pr.bad4, pr.bad6))
                          .sample(std::span<const int>(&proto, 1),
                                  proto == kProtoUdp ? std::span<const uint16_t>(kUdpExampleKeys)
                                                     : std::span<const uint16_t>(kExampleKeys),
                                  kExampleAddrs);
      if (pt) {
        const IpAddr peer = pt->addr;
        const IpAddr own = peer.isV4() ? *own4 : *own6;
        uint16_t rep_key = rep_lo;
        const auto drop_keys = dropped.keys(proto, peer);
        if (!drop_keys.empty()) {
          rep_key = drop_keys.front().first;
          for (const auto& [lo, hi] : drop_keys)
            if (lo <= 49152 && 49152 <= hi && protoHasPorts(proto)) rep_key = 49152;
        }
        const AclEntryId by = decidingEntry(acl, rep_dir, proto, rep_key, peer);
        std::string request, reply;
        if (req_dir == Direction::kInbound) {
          request = flowText(proto, peer, rep_key, own, pt->key);
          reply = protoIsIcmp(proto) ? flowText(proto, own, 0, peer, rep_key)
                                     : flowText(proto, own, pt->key, peer, rep_key);
        } else {
          request = flowText(proto, own, rep_key, peer, pt->key);
          reply = protoIsIcmp(proto) ? flowText(proto, peer, 0, own, rep_key)
                                     : flowText(proto, peer, pt->key, own, rep_key);
        }
        pr.example = request + " is allowed, but its reply " + reply + " is dropped by " +
                     (by == kNoAclEntry ? p_.acl(acl).name : aclEntryLabel(p_, by));
      }
      problems.push_back(std::move(pr));
    }
    if (problems.empty()) return;

    std::string message = "on " + itf.name + " (subnet " + p_.subnet(sn).name + ", network ACL " +
                          p_.acl(acl).name + "), ";
    std::vector<std::string> parts, proto_names;
    for (const ReplyProblem& pr : problems) {
      const std::string dir_word = rep_dir == Direction::kInbound ? "from " : "to ";
      std::string where = pr.bad4.empty() ? "" : dir_word + pr.bad4.str(3);
      if (!pr.bad6.empty()) where += (where.empty() ? "" : ", and ") + dir_word + pr.bad6.str(3);
      const std::string what = pr.proto == kProtoIcmp     ? "icmp echo"
                               : pr.proto == kProtoIcmpV6 ? "icmpv6 echo"
                                                          : protoName(pr.proto);
      parts.push_back(what + " replies " + where);
      proto_names.push_back(what);
    }
    message += "the ACL is stateless and drops " + joinNames(parts, 8) + " (" +
               std::string(directionName(rep_dir)) + ")";
    if (!problems.front().example.empty()) message += "; e.g. " + problems.front().example;
    const bool ports = std::any_of(problems.begin(), problems.end(),
                                   [](const ReplyProblem& pr) { return protoHasPorts(pr.proto); });
    std::string fix = "add an " + std::string(directionName(rep_dir)) + " entry to " +
                      p_.acl(acl).name + " allowing " + joinNames(proto_names, 8) +
                      (rep_dir == Direction::kInbound ? " from" : " to") + " those addresses";
    if (ports)
      fix += " on ports " + std::to_string(opt_.ephemeral_lo) + "-" +
             std::to_string(opt_.ephemeral_hi) + " (where replies arrive)";
    fix += ", or narrow the rule";
    add("SW030", info.loc, ruleLabel(p_, r), message, fix);
  }

  // ---- SW040, SW041, SW042 ----

  void checkUnattached() {
    for (size_t g = 0; g < src().groups.size(); ++g) {
      if (!ifaces_of_group_[g].empty()) continue;
      const SecurityGroup& sg = src().groups[g];
      add("SW040", sg.loc, "group " + sg.name,
          "group " + sg.name + " is attached to no interface: its rules apply to nothing, and " +
              "rules that reference it (sg:" + sg.name + ") match no address",
          "attach it to the interfaces it is meant for, or delete it");
    }
  }

  void checkEmptyPeers() {
    for (RuleId r = 0; r < p_.ruleCount(); ++r) {
      const SgRule& rule = sets_.sgRule(r);
      const RuleInfo& info = p_.rule(r);
      const bool nothing = sets_.rule(r).empty();
      for (const Peer& peer : rule.peers) {
        AddrSet v4, v6;
        sets_.peerAddresses(peer, &v4, &v6);
        if (!v4.empty() || !v6.empty() || peer.kind == PeerKind::kCidr) continue;
        const std::string why = peer.kind == PeerKind::kGroup
                                    ? "group " + peer.name + " is attached to no interface"
                                    : "prefix list " + peer.name + " has no entries";
        add("SW041", peer.loc.file.empty() ? info.loc : peer.loc, ruleLabel(p_, r),
            "peer " + peer.str() + " matches no address: " + why +
                (nothing ? "; the rule allows nothing" : ""),
            peer.kind == PeerKind::kGroup
                ? "attach " + peer.name + " to the interfaces meant, or remove the reference"
                : "fill the prefix list, or remove the reference");
      }
    }
  }

  void checkNoInbound() {
    for (IfaceId i = 0; i < p_.ifaceCount(); ++i) {
      if (!sets_.ifaceAllowed(i, Direction::kInbound).empty()) continue;
      const InterfaceInfo& itf = p_.iface(i);
      const std::string groups = itf.group_names.empty()
                                     ? std::string("it has no security groups")
                                     : "no inbound rule of its groups (" +
                                           joinNames(itf.group_names, 16) + ") matches any packet";
      add("SW042", itf.loc, "interface " + itf.name,
          groups + ": nothing can open a connection to " + itf.name +
              "; only replies to connections it opens reach it",
          "add the inbound rules it needs (or ignore this if it only makes outbound connections)");
    }
  }

  // ---- SW043 ----

  void checkUntracked() {
    struct Acc {
      std::vector<RuleId> untracked;
      std::vector<IfaceId> ifaces;
      std::unordered_set<RuleId> untracked_seen;  // untracked, for lookups in O(1)
    };
    std::map<RuleId, Acc> by_rule;  // the allow-everything rule -> what it makes untracked
    for (IfaceId i = 0; i < p_.ifaceCount(); ++i) {
      const InterfaceInfo& itf = p_.iface(i);
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const Direction rev = reverse(d);
        for (int slot : {kProtoTcp, kProtoUdp}) {
          for (Family fam : {Family::kV4, Family::kV6}) {
            std::vector<RuleId> every, untracked;
            for (uint16_t g : itf.groups) {
              for (RuleId r : sets_.groupRules(g, rev))
                if (allowsEverything(r, slot, fam)) every.push_back(r);
              for (RuleId r : sets_.groupRules(g, d))
                if (!sets_.ruleAllPeer(r).addresses(slot, fam).empty()) untracked.push_back(r);
            }
            if (every.empty() || untracked.empty()) continue;
            for (RuleId e : every) {
              Acc& acc = by_rule[e];
              for (RuleId u : untracked)
                if (acc.untracked_seen.insert(u).second) acc.untracked.push_back(u);
              if (acc.ifaces.empty() || acc.ifaces.back() != i) acc.ifaces.push_back(i);
            }
          }
        }
      }
    }
    for (auto& [e, acc] : by_rule) {
      const RuleInfo& info = p_.rule(e);
      std::sort(acc.untracked.begin(), acc.untracked.end());
      std::vector<std::string> labels;
      for (RuleId u : acc.untracked)
        labels.push_back(ruleLabel(p_, u));
      const std::string other = std::string(directionName(reverse(info.dir)));
      LintFinding& f = add(
          "SW043", info.loc, ruleLabel(p_, e),
          "it allows every " + std::string(directionName(info.dir)) +
              " packet, so the TCP and UDP flows that " + other +
              " rules admit from 0.0.0.0/0 or ::/0 are untracked on " +
              joinNames(ifaceNames(acc.ifaces)) + " (" + joinNames(labels, 4) +
              "): their replies pass by this rule rather than by connection tracking, and "
              "removing or narrowing it cuts those flows at once instead of letting them finish",
          "nothing to do if that is intended; otherwise narrow this rule to the addresses and "
          "ports needed, so that those flows are tracked");
      for (RuleId u : acc.untracked)
        f.related.push_back({ruleLabel(p_, u), p_.rule(u).loc});
    }
  }

  void sortFindings() {
    const auto& files = src().files;
    auto fileIndex = [&](const std::string& f) {
      auto it = std::find(files.begin(), files.end(), f);
      return static_cast<size_t>(it - files.begin());
    };
    std::stable_sort(out_.begin(), out_.end(), [&](const LintFinding& a, const LintFinding& b) {
      const size_t fa = fileIndex(a.loc.file), fb = fileIndex(b.loc.file);
      if (fa != fb) return fa < fb;
      if (a.loc.file != b.loc.file) return a.loc.file < b.loc.file;
      if (a.loc.line != b.loc.line) return a.loc.line < b.loc.line;
      if (a.loc.col != b.loc.col) return a.loc.col < b.loc.col;
      if (a.loc.json_path != b.loc.json_path) return jsonPathLess(a.loc.json_path, b.loc.json_path);
      return a.code < b.code;
    });
  }

  // JSON paths compare with their indexes as numbers: "X[2]" before "X[10]".
  static bool jsonPathLess(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
      if (std::isdigit(static_cast<unsigned char>(a[i])) &&
          std::isdigit(static_cast<unsigned char>(b[j]))) {
        size_t i2 = i, j2 = j;
        while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2])))
          ++i2;
        while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2])))
          ++j2;
        const std::string na = a.substr(i, i2 - i), nb = b.substr(j, j2 - j);
        if (na.size() != nb.size()) return na.size() < nb.size();
        if (na != nb) return na < nb;
        i = i2;
        j = j2;
        continue;
      }
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
    return a.size() - i < b.size() - j;
  }

  const CompiledPolicy& p_;
  PolicySets sets_;
  LintOptions opt_;
  std::vector<std::vector<IfaceId>> ifaces_of_group_;
  std::vector<std::vector<uint16_t>> group_sets_;  // distinct, in interface order
  std::set<std::vector<uint16_t>> group_sets_seen_;
  std::vector<std::vector<std::vector<uint16_t>>> contexts_of_group_;  // contextsOf()
  std::vector<std::array<std::optional<RuleIndex::Box>, 2>> boxes_;    // per rule, v4 and v6
  std::vector<RuleIndex> indexes_;            // per (group, direction, family): indexOf()
  std::map<size_t, PacketSet> fall_through_;  // per (ACL, direction)
  std::vector<LintFinding> out_;
};

}  // namespace

std::string_view lintSeverityName(LintSeverity s) {
  switch (s) {
    case LintSeverity::kInfo:
      return "info";
    case LintSeverity::kWarning:
      return "warning";
    case LintSeverity::kError:
      return "error";
  }
  return "error";
}

std::optional<LintSeverity> parseLintSeverity(std::string_view s) {
  if (s == "info") return LintSeverity::kInfo;
  if (s == "warning") return LintSeverity::kWarning;
  if (s == "error") return LintSeverity::kError;
  return std::nullopt;
}

std::span<const LintCheck> lintChecks() {
  return kChecks;
}

std::string ruleLabel(const CompiledPolicy& policy, RuleId r) {
  const RuleInfo& info = policy.rule(r);
  return rules::ruleLabel(info) + " " + quoted(info.text);
}

std::string aclEntryLabel(const CompiledPolicy& policy, AclEntryId e) {
  const AclEntryInfo& info = policy.aclEntry(e);
  return info.acl_name + " " + std::string(directionName(info.dir)) + " " + quoted(info.text);
}

std::vector<LintFinding> lintPolicy(const CompiledPolicy& policy, const LintOptions& options) {
  return Linter(policy, options).run();
}

}  // namespace statewall::rules
