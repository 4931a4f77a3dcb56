// explain's near-miss search (statewall/sim/explain.hpp NearMissSearch): the rules and ACL
// entries of the check that denied a packet which miss it by one field, in words.
#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "explain_words.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/explain.hpp"

namespace statewall::sim {

using rules::CompiledPolicy;
using rules::Direction;
using rules::Flow5;
using rules::IpAddr;
using rules::RuleId;

std::string_view missFieldName(MissField f) {
  switch (f) {
    case MissField::kProtocol:
      return "protocol";
    case MissField::kPort:
      return "port";
    case MissField::kIcmpType:
      return "icmp-type";
    case MissField::kIcmpCode:
      return "icmp-code";
    case MissField::kPeer:
      return "peer";
    case MissField::kOrder:
      return "order";
  }
  return "?";
}

namespace {

Direction reverseOf(Direction d) {
  return d == Direction::kInbound ? Direction::kOutbound : Direction::kInbound;
}

// "port 443", "ports 1024-65535", "all ports"
std::string portsStr(const rules::Match& m) {
  if (m.allPorts()) return "all ports";
  if (m.port_lo == m.port_hi) return fmt::format("port {}", m.port_lo);
  return fmt::format("ports {}-{}", m.port_lo, m.port_hi);
}

// What a rule's match allows, in words: "tcp port 22", "all traffic", "icmp type 8", "protocol 47".
std::string matchWords(const rules::Match& m) {
  if (m.proto == rules::kProtoAll) return "all traffic";
  std::string p = rules::protoName(m.proto);
  if (rules::protoHasPorts(m.proto)) return p + " " + portsStr(m);
  if (rules::protoIsIcmp(m.proto)) {
    if (m.icmp_type == rules::kAny) return p + " (any type)";
    if (m.icmp_code == rules::kAny) return fmt::format("{} type {}", p, m.icmp_type);
    return fmt::format("{} type {} code {}", p, m.icmp_type, m.icmp_code);
  }
  return fmt::format("protocol {}", p);
}

// How many of the match's fields fail for the packet f, and the last one that does.
int mismatches(const rules::Match& m, const Flow5& f, bool peer_ok, MissField* which) {
  int n = 0;
  auto miss = [&](MissField w) {
    ++n;
    *which = w;
  };
  if (m.proto != rules::kProtoAll && m.proto != f.proto) miss(MissField::kProtocol);
  if (rules::protoHasPorts(m.proto) && !m.allPorts()) {
    if (!rules::protoHasPorts(f.proto) || f.dport < m.port_lo || f.dport > m.port_hi) {
      miss(MissField::kPort);
    }
  }
  if (rules::protoIsIcmp(m.proto)) {
    const bool icmp = rules::protoIsIcmp(f.proto);
    if (m.icmp_type != rules::kAny && (!icmp || f.icmp_type != m.icmp_type)) {
      miss(MissField::kIcmpType);
    }
    if (m.icmp_code != rules::kAny && (!icmp || f.icmp_code != m.icmp_code)) {
      miss(MissField::kIcmpCode);
    }
  }
  if (!peer_ok) miss(MissField::kPeer);
  return n;
}

}  // namespace

struct NearMissSearch::Index {
  const CompiledPolicy& cp;
  std::vector<std::string> peer_words;                                   // per RuleId
  std::vector<std::array<std::vector<RuleId>, 2>> group_rules;           // per group and direction
  std::vector<std::array<std::vector<rules::AclEntryId>, 2>> acl_order;  // per ACL, direction

  // The rules' peers, expanded, and their sources come from the compiler's metadata
  // (CompiledPolicy::rulePeers, rulePeerExpansion, sourceRule, sourceAclEntry).
  explicit Index(const CompiledPolicy& p) : cp(p) {
    auto listed = [](const std::vector<std::string>& items) {
      std::string s;
      for (size_t k = 0; k < items.size() && k < 4; ++k)
        s += (k ? ", " : "") + items[k];
      if (items.size() > 4) s += fmt::format(" and {} more", items.size() - 4);
      return s.empty() ? std::string("no addresses") : s;
    };
    group_rules.resize(p.source().groups.size());
    for (RuleId r = 0; r < p.ruleCount(); ++r) {
      const rules::RuleInfo& ri = p.rule(r);
      group_rules[ri.group][static_cast<size_t>(ri.dir)].push_back(r);
      const rules::SgRule& rule = p.sourceRule(r);
      std::string words;
      for (size_t k = 0; k < rule.peers.size(); ++k) {
        const rules::Peer& peer = rule.peers[k];
        words += words.empty() ? "" : ", ";
        if (peer.kind == rules::PeerKind::kCidr) {
          words += peer.cidr.str();
          continue;
        }
        std::vector<std::string> items;
        for (const rules::Cidr& x : p.rulePeerExpansion(r, k))
          items.push_back(peer.kind == rules::PeerKind::kGroup ? x.addr.str() : x.str());
        words += fmt::format("{} ({})", peer.str(), listed(items));
      }
      peer_words.push_back(words);
    }
    acl_order.resize(p.aclCount());
    for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e) {
      const rules::AclEntryInfo& ai = p.aclEntry(e);
      if (ai.acl < p.aclCount()) acl_order[ai.acl][static_cast<size_t>(ai.dir)].push_back(e);
    }
    for (auto& dirs : acl_order) {
      for (auto& list : dirs) {
        std::stable_sort(list.begin(), list.end(), [&](rules::AclEntryId a, rules::AclEntryId b) {
          const int na = p.aclEntry(a).rule_number, nb = p.aclEntry(b).rule_number;
          return (na == 0 ? 1 << 30 : na) < (nb == 0 ? 1 << 30 : nb);
        });
      }
    }
  }

  bool peerMatches(RuleId r, const IpAddr& a) const {
    for (const rules::Cidr& c : cp.rulePeers(r, a.family))
      if (c.contains(a)) return true;
    return false;
  }

  std::string ruleLabel(RuleId r) const { return rules::ruleLabelLong(cp.rule(r)); }
  std::string aclLabel(rules::AclEntryId e) const {
    return rules::aclEntryLabelLong(cp.aclEntry(e));
  }

  // The sentence for a near miss of `label` whose match is m, in direction d.
  NearMiss describe(const std::string& label, const rules::Match& m, const std::string& peers,
                    Direction d, const Flow5& f, MissField field) const {
    NearMiss n;
    n.field = field;
    const bool in = d == Direction::kInbound;
    const IpAddr& remote = in ? f.src : f.dst;
    switch (field) {
      case MissField::kPeer:
        n.wanted = peers;
        n.got = remote.str();
        n.text =
            fmt::format("{}: {} is allowed only {} {}; this packet {} {}.", label, matchWords(m),
                        in ? "from" : "to", peers, in ? "came from" : "goes to", remote.str());
        break;
      case MissField::kPort:
        n.wanted = portsStr(m);
        n.got = rules::protoHasPorts(f.proto) ? fmt::format("port {}", f.dport)
                                              : rules::protoName(f.proto);
        n.text = fmt::format("{}: it allows {} {} only; this packet goes to {}.", label,
                             rules::protoName(m.proto), portsStr(m), n.got);
        break;
      case MissField::kProtocol:
        n.wanted = rules::protoName(m.proto);
        n.got = rules::protoName(f.proto);
        n.text = fmt::format("{}: it allows {} only; this packet is {}.", label, matchWords(m),
                             detail::packetWords(f));
        break;
      case MissField::kIcmpType:
        n.wanted = fmt::format("type {}", m.icmp_type);
        n.got = fmt::format("type {}", f.icmp_type);
        n.text = fmt::format("{}: it allows {} only; this packet is {} type {}.", label,
                             matchWords(m), rules::protoName(f.proto), f.icmp_type);
        break;
      case MissField::kIcmpCode:
        n.wanted = fmt::format("code {}", m.icmp_code);
        n.got = fmt::format("code {}", f.icmp_code);
        n.text = fmt::format("{}: it allows {} only; this packet has code {}.", label,
                             matchWords(m), f.icmp_code);
        break;
      case MissField::kOrder:
        break;
    }
    return n;
  }
};

NearMissSearch::NearMissSearch(const CompiledPolicy& policy)
    : ix_(std::make_unique<Index>(policy)) {}
NearMissSearch::~NearMissSearch() = default;

std::vector<NearMiss> NearMissSearch::securityGroups(rules::IfaceId iface, Direction d,
                                                     const Flow5& f) const {
  std::vector<NearMiss> out;
  if (iface >= ix_->cp.ifaceCount()) return out;
  const IpAddr& remote = d == Direction::kInbound ? f.src : f.dst;
  for (uint16_t g : ix_->cp.iface(iface).groups) {
    for (RuleId r : ix_->group_rules[g][static_cast<size_t>(d)]) {
      MissField which = MissField::kPeer;
      const rules::Match& m = ix_->cp.sourceRule(r).match;
      if (mismatches(m, f, ix_->peerMatches(r, remote), &which) != 1) continue;
      NearMiss n = ix_->describe(ix_->ruleLabel(r), m, ix_->peer_words[r], d, f, which);
      n.rule = r;
      out.push_back(std::move(n));
    }
  }
  return out;
}

std::vector<NearMiss> NearMissSearch::acl(rules::SubnetId s, Direction d, const Flow5& f,
                                          rules::AclEntryId decided_by) const {
  std::vector<NearMiss> out;
  const CompiledPolicy& cp = ix_->cp;
  if (s >= cp.subnetCount() || cp.subnet(s).acl == rules::kNoAcl) return out;
  const rules::AclId a = cp.subnet(s).acl;
  const IpAddr& remote = d == Direction::kInbound ? f.src : f.dst;
  const int decided_number =
      decided_by < cp.aclEntryCount() ? cp.aclEntry(decided_by).rule_number : 0;
  std::vector<NearMiss> shadowed;
  for (rules::AclEntryId e : ix_->acl_order[a][static_cast<size_t>(d)]) {
    const rules::AclEntry* x = cp.sourceAclEntry(e);
    if (x == nullptr || !x->allow) continue;
    const bool before = decided_number == 0 || x->rule_number < decided_number;
    MissField which = MissField::kPeer;
    const bool peer_ok = x->cidr.family() == remote.family && x->cidr.contains(remote);
    const int n = mismatches(x->match, f, peer_ok, &which);
    if (n == 1 && before) {
      NearMiss miss = ix_->describe(ix_->aclLabel(e), x->match, x->cidr.str(), d, f, which);
      miss.acl = true;
      miss.entry = e;
      out.push_back(std::move(miss));
    } else if (n == 0 && !before && decided_number != 0) {
      NearMiss miss;
      miss.acl = true;
      miss.entry = e;
      miss.field = MissField::kOrder;
      miss.wanted = fmt::format("a number below {}", decided_number);
      miss.got = std::to_string(x->rule_number);
      miss.text = fmt::format(
          "{} would allow it, but rule {} denies it first: the lowest number that matches wins.",
          ix_->aclLabel(e), decided_number);
      shadowed.push_back(std::move(miss));
    }
  }
  out.insert(out.end(), std::make_move_iterator(shadowed.begin()),
             std::make_move_iterator(shadowed.end()));
  return out;
}

std::pair<RuleId, RuleId> NearMissSearch::untrackedPair(rules::IfaceId iface, Direction d,
                                                        const Flow5& request) const {
  RuleId r1 = rules::kNoRule, r2 = rules::kNoRule;
  if (iface >= ix_->cp.ifaceCount()) return {r1, r2};
  for (uint16_t g : ix_->cp.iface(iface).groups) {
    for (RuleId r : ix_->group_rules[g][static_cast<size_t>(d)]) {
      MissField which = MissField::kPeer;
      if (r1 == rules::kNoRule && ix_->cp.rulePeerIsAll(r, request.src.family) &&
          mismatches(ix_->cp.sourceRule(r).match, request, true, &which) == 0) {
        r1 = r;
      }
    }
    for (RuleId r : ix_->group_rules[g][static_cast<size_t>(reverseOf(d))]) {
      const rules::Match& m = ix_->cp.sourceRule(r).match;
      const bool all_ports =
          m.proto == rules::kProtoAll || (m.proto == request.proto && m.allPorts());
      if (r2 == rules::kNoRule && all_ports && ix_->cp.rulePeerIsAll(r, request.src.family)) r2 = r;
    }
  }
  return {r1, r2};
}

}  // namespace statewall::sim
