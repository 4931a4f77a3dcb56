// diffPolicies(): rule-level differences between two compiled policies.
#include "statewall/rules/policy_diff.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "statewall/rules/lint.hpp"

namespace statewall::rules {
namespace {

std::string joinWords(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : sep) + x;
  return s;
}

// "+a +b -c" for two sets of words.
std::string setDelta(const std::set<std::string>& before, const std::set<std::string>& after) {
  std::vector<std::string> parts;
  for (const auto& x : after)
    if (!before.count(x)) parts.push_back("+" + x);
  for (const auto& x : before)
    if (!after.count(x)) parts.push_back("-" + x);
  return joinWords(parts, " ");
}

// Indexes of the pairs (by position in `pairs`, sorted by the old index) that keep their
// relative order: a longest increasing subsequence of the new indexes. The others moved.
std::vector<bool> inOrder(const std::vector<std::pair<size_t, size_t>>& pairs) {
  const size_t n = pairs.size();
  std::vector<size_t> len(n, 1), prev(n, n);
  size_t best = n;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < i; ++j)
      if (pairs[j].second < pairs[i].second && len[j] + 1 > len[i])
        len[i] = len[j] + 1, prev[i] = j;
    if (best == n || len[i] > len[best]) best = i;
  }
  std::vector<bool> keep(n, false);
  for (size_t i = best; i < n; i = prev[i])
    keep[i] = true;
  return keep;
}

class Differ {
 public:
  Differ(const CompiledPolicy& a, const CompiledPolicy& b) : a_(a), b_(b), sa_(a), sb_(b) {}

  PolicyDiff run() {
    diffSettings();
    diffPrefixLists();
    diffGroups();
    diffAcls();
    diffSubnets();
    diffInterfaces();
    subnetEffects();
    interfaceEffects();
    return std::move(out_);
  }

 private:
  const Policy& pa() const { return a_.source(); }
  const Policy& pb() const { return b_.source(); }

  PolicyChange& add(ChangeKind kind, ObjectKind object, std::string name, std::string scope) {
    PolicyChange c;
    c.kind = kind;
    c.object = object;
    c.name = std::move(name);
    c.scope = std::move(scope);
    out_.changes.push_back(std::move(c));
    return out_.changes.back();
  }

  template <typename T>
  static const T* byName(const std::vector<T>& v, const std::string& name) {
    for (const T& x : v)
      if (x.name == name) return &x;
    return nullptr;
  }
  template <typename T>
  static long indexByName(const std::vector<T>& v, const std::string& name) {
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i].name == name) return static_cast<long>(i);
    return -1;
  }

  // ---- settings ----

  void diffSettings() {
    auto setting = [&](const std::string& name, const std::string& before,
                       const std::string& after) {
      if (before == after) return;
      PolicyChange& c = add(ChangeKind::kChanged, ObjectKind::kSetting, name, "setting " + name);
      c.before = before;
      c.after = after;
      c.detail = before + " -> " + after;
    };
    setting("unprotected", pa().unprotected_allow ? "allow" : "deny",
            pb().unprotected_allow ? "allow" : "deny");
    setting("strict", pa().strict ? "true" : "false", pb().strict ? "true" : "false");
    setting("exempt", pa().exempt ? "true" : "false", pb().exempt ? "true" : "false");
    auto cidrs = [](const std::vector<Cidr>& list) {
      std::string s = "[";
      for (size_t i = 0; i < list.size(); ++i)
        s += (i ? ", " : "") + list[i].str();
      return s + "]";
    };
    setting("vpc_cidrs", cidrs(pa().vpc_cidrs), cidrs(pb().vpc_cidrs));
    setting("timeouts.profile", pa().timeouts.profile == TimeoutProfile::kAws ? "aws" : "linux",
            pb().timeouts.profile == TimeoutProfile::kAws ? "aws" : "linux");
    for (size_t k = 0; k < kTimeoutKeyCount; ++k) {
      const auto key = static_cast<TimeoutKey>(k);
      setting("timeouts." + std::string(timeoutKeyName(key)),
              std::to_string(pa().timeouts.get(key)) + " s",
              std::to_string(pb().timeouts.get(key)) + " s");
    }
  }

  // ---- prefix lists ----

  static std::set<std::string> cidrWords(const std::vector<Cidr>& v) {
    std::set<std::string> s;
    for (const Cidr& c : v)
      s.insert(c.str());
    return s;
  }

  void diffPrefixLists() {
    for (const PrefixList& x : pa().prefix_lists) {
      const PrefixList* y = byName(pb().prefix_lists, x.name);
      if (!y) {
        PolicyChange& c =
            add(ChangeKind::kRemoved, ObjectKind::kPrefixList, x.name, "prefix list " + x.name);
        const auto before = cidrWords(x.cidrs);
        c.before = joinWords({before.begin(), before.end()});
        c.old_loc = x.loc;
        continue;
      }
      const auto before = cidrWords(x.cidrs), after = cidrWords(y->cidrs);
      if (before == after) continue;
      PolicyChange& c =
          add(ChangeKind::kChanged, ObjectKind::kPrefixList, x.name, "prefix list " + x.name);
      c.before = joinWords({before.begin(), before.end()});
      c.after = joinWords({after.begin(), after.end()});
      c.detail = setDelta(before, after);
      c.old_loc = x.loc;
      c.new_loc = y->loc;
    }
    for (const PrefixList& y : pb().prefix_lists) {
      if (byName(pa().prefix_lists, y.name)) continue;
      const auto after = cidrWords(y.cidrs);
      PolicyChange& c =
          add(ChangeKind::kAdded, ObjectKind::kPrefixList, y.name, "prefix list " + y.name);
      c.after = joinWords({after.begin(), after.end()});
      c.new_loc = y.loc;
    }
  }

  // ---- groups and rules ----

  // A peer as both policies can compare it: references by name (AWS files use ids).
  static std::string peerKey(const PolicySets& s, const Peer& p) {
    switch (p.kind) {
      case PeerKind::kCidr:
        return p.cidr.str();
      case PeerKind::kGroup: {
        const long g = s.groupIndex(p.name);
        return "sg:" + (g < 0 ? p.name : s.policy().source().groups[static_cast<size_t>(g)].name);
      }
      case PeerKind::kPrefixList: {
        const long pl = s.prefixListIndex(p.name);
        return "pl:" +
               (pl < 0 ? p.name : s.policy().source().prefix_lists[static_cast<size_t>(pl)].name);
      }
    }
    return {};
  }

  static std::set<std::string> peerSet(const PolicySets& s, const SgRule& r) {
    std::set<std::string> out;
    for (const Peer& p : r.peers)
      out.insert(peerKey(s, p));
    return out;
  }

  static std::string ruleText(const PolicySets& s, const SgRule& r, Direction d) {
    std::vector<std::string> peers;
    for (const Peer& p : r.peers)
      peers.push_back(peerKey(s, p));
    return r.match.str() + (d == Direction::kInbound ? " from " : " to ") + joinWords(peers);
  }

  std::string ruleLabelOf(const PolicySets& s, RuleId r) const {
    const RuleInfo& info = s.policy().rule(r);
    return "[" + std::to_string(info.index) + "] " + ruleText(s, s.sgRule(r), info.dir);
  }

  static std::string groupScope(const std::string& g, Direction d) {
    return "group " + g + " " + std::string(directionName(d));
  }

  void ruleChange(ChangeKind kind, const std::string& group, Direction d, RuleId ra, RuleId rb,
                  std::string detail) {
    PolicyChange& c = add(kind, ObjectKind::kRule, group, groupScope(group, d));
    if (ra != kNoRule) {
      c.before = ruleLabelOf(sa_, ra);
      c.old_loc = a_.rule(ra).loc;
      c.old_rule = ra;
    }
    if (rb != kNoRule) {
      c.after = ruleLabelOf(sb_, rb);
      c.new_loc = b_.rule(rb).loc;
      c.new_rule = rb;
    }
    c.detail = std::move(detail);
  }

  void diffRules(const std::string& group, uint16_t ga, uint16_t gb, Direction d) {
    const std::vector<RuleId> ra = sa_.groupRules(ga, d), rb = sb_.groupRules(gb, d);
    std::vector<long> pair_a(ra.size(), -1), pair_b(rb.size(), -1);
    auto match = [&](auto same) {
      for (size_t i = 0; i < ra.size(); ++i) {
        if (pair_a[i] >= 0) continue;
        for (size_t j = 0; j < rb.size(); ++j) {
          if (pair_b[j] >= 0 || !same(sa_.sgRule(ra[i]), sb_.sgRule(rb[j]))) continue;
          pair_a[i] = static_cast<long>(j);
          pair_b[j] = static_cast<long>(i);
          break;
        }
      }
    };
    // 1. Same content: unchanged (maybe moved, maybe a new description).
    match([&](const SgRule& x, const SgRule& y) {
      return x.match == y.match && peerSet(sa_, x) == peerSet(sb_, y);
    });
    std::vector<std::pair<size_t, size_t>> exact;
    for (size_t i = 0; i < ra.size(); ++i)
      if (pair_a[i] >= 0) exact.emplace_back(i, static_cast<size_t>(pair_a[i]));
    const std::vector<bool> kept = inOrder(exact);
    for (size_t k = 0; k < exact.size(); ++k) {
      const auto [i, j] = exact[k];
      const SgRule& x = sa_.sgRule(ra[i]);
      const SgRule& y = sb_.sgRule(rb[j]);
      if (x.description != y.description)
        ruleChange(ChangeKind::kChanged, group, d, ra[i], rb[j],
                   "description \"" + x.description + "\" -> \"" + y.description + "\"");
      if (!kept[k])
        ruleChange(ChangeKind::kMoved, group, d, ra[i], rb[j],
                   "moved from [" + std::to_string(i) + "] to [" + std::to_string(j) + "]");
    }
    // 2. Same match, other peers; 3. same peers, other match; 4. same description.
    match([&](const SgRule& x, const SgRule& y) { return x.match == y.match; });
    match([&](const SgRule& x, const SgRule& y) { return peerSet(sa_, x) == peerSet(sb_, y); });
    match([&](const SgRule& x, const SgRule& y) {
      return !x.description.empty() && x.description == y.description;
    });
    std::set<size_t> exact_old;
    for (const auto& [i, j] : exact)
      exact_old.insert(i);
    for (size_t i = 0; i < ra.size(); ++i) {
      if (pair_a[i] < 0) {
        ruleChange(ChangeKind::kRemoved, group, d, ra[i], kNoRule, "");
        continue;
      }
      if (exact_old.count(i)) continue;
      const size_t j = static_cast<size_t>(pair_a[i]);
      const SgRule& x = sa_.sgRule(ra[i]);
      const SgRule& y = sb_.sgRule(rb[j]);
      std::vector<std::string> what;
      if (!(x.match == y.match)) what.push_back(x.match.str() + " -> " + y.match.str());
      const auto px = peerSet(sa_, x), py = peerSet(sb_, y);
      if (px != py) what.push_back("peers " + setDelta(px, py));
      if (x.description != y.description)
        what.push_back("description \"" + x.description + "\" -> \"" + y.description + "\"");
      ruleChange(ChangeKind::kChanged, group, d, ra[i], rb[j], joinWords(what, "; "));
    }
    for (size_t j = 0; j < rb.size(); ++j)
      if (pair_b[j] < 0) ruleChange(ChangeKind::kAdded, group, d, kNoRule, rb[j], "");
  }

  void groupEffect(const std::string& group, long ga, long gb, Direction d, bool changed) {
    PacketSet before, after;
    if (ga >= 0)
      for (RuleId r : sa_.groupRules(static_cast<uint16_t>(ga), d))
        before = before.unite(sa_.rule(r));
    if (gb >= 0)
      for (RuleId r : sb_.groupRules(static_cast<uint16_t>(gb), d))
        after = after.unite(sb_.rule(r));
    effect(groupScope(group, d), before, after, changed);
  }

  void effect(const std::string& scope, const PacketSet& before, const PacketSet& after,
              bool changed) {
    const PacketSet gained = after.subtract(before), lost = before.subtract(after);
    if (!changed && gained.empty() && lost.empty()) return;
    ScopeEffect e;
    e.scope = scope;
    e.same = gained.empty() && lost.empty();
    e.narrower = !lost.empty();
    e.wider = !gained.empty();
    e.gained = gained.str();
    e.lost = lost.str();
    out_.effects.push_back(std::move(e));
  }

  bool scopeChanged(size_t from, const std::string& scope) const {
    for (size_t k = from; k < out_.changes.size(); ++k)
      if (out_.changes[k].scope == scope) return true;
    return false;
  }

  void diffGroups() {
    for (size_t ga = 0; ga < pa().groups.size(); ++ga) {
      const SecurityGroup& g = pa().groups[ga];
      const long gb = indexByName(pb().groups, g.name);
      if (gb < 0) {
        PolicyChange& c = add(ChangeKind::kRemoved, ObjectKind::kGroup, g.name, "group " + g.name);
        c.before = std::to_string(g.inbound.size()) + " inbound, " +
                   std::to_string(g.outbound.size()) + " outbound rules";
        c.old_loc = g.loc;
        for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
          for (RuleId r : sa_.groupRules(static_cast<uint16_t>(ga), d))
            ruleChange(ChangeKind::kRemoved, g.name, d, r, kNoRule, "the group was removed");
          groupEffect(g.name, static_cast<long>(ga), -1, d, true);
        }
        continue;
      }
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const size_t from = out_.changes.size();
        diffRules(g.name, static_cast<uint16_t>(ga), static_cast<uint16_t>(gb), d);
        groupEffect(g.name, static_cast<long>(ga), gb, d,
                    scopeChanged(from, groupScope(g.name, d)));
      }
    }
    for (size_t gb = 0; gb < pb().groups.size(); ++gb) {
      const SecurityGroup& g = pb().groups[gb];
      if (indexByName(pa().groups, g.name) >= 0) continue;
      PolicyChange& c = add(ChangeKind::kAdded, ObjectKind::kGroup, g.name, "group " + g.name);
      c.after = std::to_string(g.inbound.size()) + " inbound, " +
                std::to_string(g.outbound.size()) + " outbound rules";
      c.new_loc = g.loc;
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        for (RuleId r : sb_.groupRules(static_cast<uint16_t>(gb), d))
          ruleChange(ChangeKind::kAdded, g.name, d, kNoRule, r, "the group is new");
        groupEffect(g.name, -1, static_cast<long>(gb), d, true);
      }
    }
  }

  // ---- network ACLs ----

  static const AclEntry* sourceEntry(const CompiledPolicy& p, AclEntryId e) {
    const AclEntryInfo& info = p.aclEntry(e);
    const NetworkAcl& acl = p.source().acls[info.acl];
    for (const AclEntry& x : info.dir == Direction::kInbound ? acl.inbound : acl.outbound)
      if (x.rule_number == info.rule_number) return &x;
    return nullptr;
  }

  static bool sameContent(const AclEntry& x, const AclEntry& y) {
    return x.allow == y.allow && x.match == y.match && x.cidr == y.cidr;
  }

  static std::string aclScope(const std::string& acl, Direction d) {
    return "network ACL " + acl + " " + std::string(directionName(d));
  }

  void entryChange(ChangeKind kind, const std::string& acl, Direction d, AclEntryId ea,
                   AclEntryId eb, std::string detail) {
    PolicyChange& c = add(kind, ObjectKind::kAclEntry, acl, aclScope(acl, d));
    if (ea != kNoAclEntry) {
      c.before = a_.aclEntry(ea).text;
      c.old_loc = a_.aclEntry(ea).loc;
      c.old_entry = ea;
    }
    if (eb != kNoAclEntry) {
      c.after = b_.aclEntry(eb).text;
      c.new_loc = b_.aclEntry(eb).loc;
      c.new_entry = eb;
    }
    c.detail = std::move(detail);
  }

  static std::vector<AclEntryId> numbered(const PolicySets& s, AclId a, Direction d) {
    std::vector<AclEntryId> v;
    for (AclEntryId e : s.aclEntries(a, d))
      if (s.policy().aclEntry(e).rule_number != 0) v.push_back(e);
    return v;
  }

  void diffEntries(const std::string& acl, AclId aa, AclId ab, Direction d) {
    const std::vector<AclEntryId> ea = numbered(sa_, aa, d), eb = numbered(sb_, ab, d);
    std::vector<long> pair_a(ea.size(), -1), pair_b(eb.size(), -1);
    auto match = [&](auto same) {
      for (size_t i = 0; i < ea.size(); ++i) {
        if (pair_a[i] >= 0) continue;
        for (size_t j = 0; j < eb.size(); ++j) {
          if (pair_b[j] >= 0) continue;
          const AclEntry* x = sourceEntry(a_, ea[i]);
          const AclEntry* y = sourceEntry(b_, eb[j]);
          if (!x || !y || !same(*x, *y)) continue;
          pair_a[i] = static_cast<long>(j);
          pair_b[j] = static_cast<long>(i);
          break;
        }
      }
    };
    match([](const AclEntry& x, const AclEntry& y) {
      return x.rule_number == y.rule_number && sameContent(x, y);
    });
    std::set<size_t> unchanged;
    for (size_t i = 0; i < ea.size(); ++i)
      if (pair_a[i] >= 0) unchanged.insert(i);
    match([](const AclEntry& x, const AclEntry& y) { return sameContent(x, y); });
    std::set<size_t> renumbered;
    for (size_t i = 0; i < ea.size(); ++i)
      if (pair_a[i] >= 0 && !unchanged.count(i)) renumbered.insert(i);
    match([](const AclEntry& x, const AclEntry& y) { return x.rule_number == y.rule_number; });
    for (size_t i = 0; i < ea.size(); ++i) {
      if (unchanged.count(i)) continue;
      if (pair_a[i] < 0) {
        entryChange(ChangeKind::kRemoved, acl, d, ea[i], kNoAclEntry, "");
        continue;
      }
      const size_t j = static_cast<size_t>(pair_a[i]);
      const AclEntry& x = *sourceEntry(a_, ea[i]);
      const AclEntry& y = *sourceEntry(b_, eb[j]);
      if (renumbered.count(i)) {
        entryChange(
            ChangeKind::kMoved, acl, d, ea[i], eb[j],
            "renumbered " + std::to_string(x.rule_number) + " -> " + std::to_string(y.rule_number));
        continue;
      }
      std::vector<std::string> what;
      if (x.allow != y.allow)
        what.push_back(std::string(x.allow ? "allow" : "deny") + " -> " +
                       (y.allow ? "allow" : "deny"));
      if (!(x.match == y.match)) what.push_back(x.match.str() + " -> " + y.match.str());
      if (!(x.cidr == y.cidr)) what.push_back(x.cidr.str() + " -> " + y.cidr.str());
      entryChange(ChangeKind::kChanged, acl, d, ea[i], eb[j], joinWords(what, "; "));
    }
    for (size_t j = 0; j < eb.size(); ++j)
      if (pair_b[j] < 0) entryChange(ChangeKind::kAdded, acl, d, kNoAclEntry, eb[j], "");
  }

  void diffAcls() {
    for (AclId aa = 0; aa < a_.aclCount(); ++aa) {
      const std::string& name = a_.acl(aa).name;
      long ab = -1;
      for (AclId k = 0; k < b_.aclCount(); ++k)
        if (b_.acl(k).name == name) ab = k;
      if (ab < 0) {
        PolicyChange& c = add(ChangeKind::kRemoved, ObjectKind::kAcl, name, "network ACL " + name);
        c.old_loc = a_.acl(aa).loc;
        for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
          for (AclEntryId e : numbered(sa_, aa, d))
            entryChange(ChangeKind::kRemoved, name, d, e, kNoAclEntry, "the ACL was removed");
          effect(aclScope(name, d), sa_.aclAllowed(aa, d), PacketSet{}, true);
        }
        continue;
      }
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const size_t from = out_.changes.size();
        diffEntries(name, aa, static_cast<AclId>(ab), d);
        effect(aclScope(name, d), sa_.aclAllowed(aa, d), sb_.aclAllowed(static_cast<AclId>(ab), d),
               scopeChanged(from, aclScope(name, d)));
      }
    }
    for (AclId ab = 0; ab < b_.aclCount(); ++ab) {
      const std::string& name = b_.acl(ab).name;
      bool found = false;
      for (AclId k = 0; k < a_.aclCount(); ++k)
        found = found || a_.acl(k).name == name;
      if (found) continue;
      PolicyChange& c = add(ChangeKind::kAdded, ObjectKind::kAcl, name, "network ACL " + name);
      c.new_loc = b_.acl(ab).loc;
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        for (AclEntryId e : numbered(sb_, ab, d))
          entryChange(ChangeKind::kAdded, name, d, kNoAclEntry, e, "the ACL is new");
        effect(aclScope(name, d), PacketSet{}, sb_.aclAllowed(ab, d), true);
      }
    }
  }

  // ---- subnets and interfaces ----

  void diffSubnets() {
    for (const Subnet& x : pa().subnets) {
      const Subnet* y = byName(pb().subnets, x.name);
      const auto before = cidrWords(x.cidrs);
      const std::string text_a = joinWords({before.begin(), before.end()}) +
                                 (x.acl.empty() ? "" : ", acl " + aclName(a_, x.acl));
      if (!y) {
        PolicyChange& c =
            add(ChangeKind::kRemoved, ObjectKind::kSubnet, x.name, "subnet " + x.name);
        c.before = text_a;
        c.old_loc = x.loc;
        continue;
      }
      const auto after = cidrWords(y->cidrs);
      const std::string acl_a = x.acl.empty() ? "none" : aclName(a_, x.acl);
      const std::string acl_b = y->acl.empty() ? "none" : aclName(b_, y->acl);
      std::vector<std::string> what;
      if (before != after) what.push_back("cidrs " + setDelta(before, after));
      if (acl_a != acl_b) what.push_back("acl " + acl_a + " -> " + acl_b);
      if (what.empty()) continue;
      PolicyChange& c = add(ChangeKind::kChanged, ObjectKind::kSubnet, x.name, "subnet " + x.name);
      c.before = text_a;
      c.after = joinWords({after.begin(), after.end()}) +
                (y->acl.empty() ? "" : ", acl " + aclName(b_, y->acl));
      c.detail = joinWords(what, "; ");
      c.old_loc = x.loc;
      c.new_loc = y->loc;
    }
    for (const Subnet& y : pb().subnets) {
      if (byName(pa().subnets, y.name)) continue;
      const auto after = cidrWords(y.cidrs);
      PolicyChange& c = add(ChangeKind::kAdded, ObjectKind::kSubnet, y.name, "subnet " + y.name);
      c.after = joinWords({after.begin(), after.end()}) +
                (y.acl.empty() ? "" : ", acl " + aclName(b_, y.acl));
      c.new_loc = y.loc;
    }
  }

  // What a subnet's ACL lets through in direction d (everything without an ACL).
  static PacketSet subnetAllowed(const PolicySets& s, SubnetId sn, Direction d) {
    const CompiledPolicy& p = s.policy();
    return p.hasAcl(sn) ? s.aclAllowed(p.subnet(sn).acl, d) : PacketSet::everything();
  }

  void subnetEffects() {
    for (SubnetId x = 0; x < a_.subnetCount(); ++x) {
      for (SubnetId y = 0; y < b_.subnetCount(); ++y) {
        if (a_.subnet(x).name != b_.subnet(y).name) continue;
        for (Direction d : {Direction::kInbound, Direction::kOutbound})
          effect("subnet " + a_.subnet(x).name + " " + std::string(directionName(d)),
                 subnetAllowed(sa_, x, d), subnetAllowed(sb_, y, d), false);
      }
    }
  }

  void interfaceEffects() {
    for (IfaceId x = 0; x < a_.ifaceCount(); ++x) {
      for (IfaceId y = 0; y < b_.ifaceCount(); ++y) {
        if (a_.iface(x).name != b_.iface(y).name) continue;
        for (Direction d : {Direction::kInbound, Direction::kOutbound})
          effect("interface " + a_.iface(x).name + " " + std::string(directionName(d)),
                 sa_.ifaceAllowed(x, d), sb_.ifaceAllowed(y, d), false);
      }
    }
  }

  static std::string aclName(const CompiledPolicy& p, const std::string& ref) {
    for (const NetworkAcl& a : p.source().acls)
      if (a.name == ref || (!a.id.empty() && a.id == ref)) return a.name;
    return ref;
  }

  static std::string ifaceText(const CompiledPolicy& p, IfaceId i) {
    const InterfaceInfo& itf = p.iface(i);
    std::vector<std::string> addrs;
    for (const IpAddr& a : itf.addresses)
      addrs.push_back(a.str());
    return joinWords(addrs) + "; groups " +
           (itf.group_names.empty() ? std::string("none") : joinWords(itf.group_names)) +
           "; subnet " +
           (itf.subnet == kNoSubnet ? std::string("none") : p.subnet(itf.subnet).name);
  }

  void diffInterfaces() {
    auto find = [](const CompiledPolicy& p, const std::string& name) -> long {
      for (IfaceId i = 0; i < p.ifaceCount(); ++i)
        if (p.iface(i).name == name) return i;
      return -1;
    };
    for (IfaceId ia = 0; ia < a_.ifaceCount(); ++ia) {
      const InterfaceInfo& x = a_.iface(ia);
      const long ib = find(b_, x.name);
      if (ib < 0) {
        PolicyChange& c =
            add(ChangeKind::kRemoved, ObjectKind::kInterface, x.name, "interface " + x.name);
        c.before = ifaceText(a_, ia);
        c.old_loc = x.loc;
        continue;
      }
      const InterfaceInfo& y = b_.iface(static_cast<IfaceId>(ib));
      std::set<std::string> aa, ab;
      for (const IpAddr& a : x.addresses)
        aa.insert(a.str());
      for (const IpAddr& a : y.addresses)
        ab.insert(a.str());
      const std::string sn_a = x.subnet == kNoSubnet ? "none" : a_.subnet(x.subnet).name;
      const std::string sn_b = y.subnet == kNoSubnet ? "none" : b_.subnet(y.subnet).name;
      std::vector<std::string> what;
      if (aa != ab) what.push_back("addresses " + setDelta(aa, ab));
      if (x.group_names != y.group_names) {
        const std::set<std::string> ga(x.group_names.begin(), x.group_names.end());
        const std::set<std::string> gb(y.group_names.begin(), y.group_names.end());
        what.push_back(ga == gb ? "group order " + joinWords(x.group_names) + " -> " +
                                      joinWords(y.group_names)
                                : "groups " + setDelta(ga, gb));
      }
      if (sn_a != sn_b) what.push_back("subnet " + sn_a + " -> " + sn_b);
      if (what.empty()) continue;
      PolicyChange& c =
          add(ChangeKind::kChanged, ObjectKind::kInterface, x.name, "interface " + x.name);
      c.before = ifaceText(a_, ia);
      c.after = ifaceText(b_, static_cast<IfaceId>(ib));
      c.detail = joinWords(what, "; ");
      c.old_loc = x.loc;
      c.new_loc = y.loc;
    }
    for (IfaceId ib = 0; ib < b_.ifaceCount(); ++ib) {
      const InterfaceInfo& y = b_.iface(ib);
      if (find(a_, y.name) >= 0) continue;
      PolicyChange& c =
          add(ChangeKind::kAdded, ObjectKind::kInterface, y.name, "interface " + y.name);
      c.after = ifaceText(b_, ib);
      c.new_loc = y.loc;
    }
  }

  const CompiledPolicy& a_;
  const CompiledPolicy& b_;
  PolicySets sa_;
  PolicySets sb_;
  PolicyDiff out_;
};

}  // namespace

std::string_view changeKindName(ChangeKind k) {
  switch (k) {
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kRemoved:
      return "removed";
    case ChangeKind::kChanged:
      return "changed";
    case ChangeKind::kMoved:
      return "moved";
  }
  return "changed";
}

std::string_view objectKindName(ObjectKind k) {
  switch (k) {
    case ObjectKind::kSetting:
      return "setting";
    case ObjectKind::kPrefixList:
      return "prefix list";
    case ObjectKind::kGroup:
      return "group";
    case ObjectKind::kRule:
      return "rule";
    case ObjectKind::kAcl:
      return "network ACL";
    case ObjectKind::kAclEntry:
      return "ACL entry";
    case ObjectKind::kSubnet:
      return "subnet";
    case ObjectKind::kInterface:
      return "interface";
  }
  return "object";
}

std::string PolicyChange::str() const {
  const bool member = object == ObjectKind::kRule || object == ObjectKind::kAclEntry;
  std::string s = std::string(changeKindName(kind)) + " " +
                  (member ? std::string(objectKindName(object)) + " in " + scope : scope) + ": ";
  if (kind == ChangeKind::kAdded) {
    s += after;
  } else if (kind == ChangeKind::kRemoved) {
    s += before;
  } else {
    s += before + " -> " + after;
  }
  if (!detail.empty()) s += " (" + detail + ")";
  return s;
}

bool PolicyDiff::narrows() const {
  for (const ScopeEffect& e : effects)
    if (e.narrower && (e.scope.rfind("interface ", 0) == 0 || e.scope.rfind("subnet ", 0) == 0))
      return true;
  for (const PolicyChange& c : changes)
    if (c.object == ObjectKind::kInterface && c.kind == ChangeKind::kRemoved) return true;
  return false;
}

size_t PolicyDiff::count(ChangeKind k) const {
  return static_cast<size_t>(std::count_if(changes.begin(), changes.end(),
                                           [k](const PolicyChange& c) { return c.kind == k; }));
}

PolicyDiff diffPolicies(const CompiledPolicy& old_policy, const CompiledPolicy& new_policy) {
  return Differ(old_policy, new_policy).run();
}

}  // namespace statewall::rules
