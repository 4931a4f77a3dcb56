// Checks shared by the YAML and AWS JSON loaders, and the whole-policy validation.
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "loader_internal.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace internal {

// Messages may quote input (a parser's "last read" bytes, an escape character) cut inside a
// character: every diagnostic is kept UTF-8 here, where they are all made, so that every output
// (--json included) can print it.
namespace {
std::string utf8Message(std::string message) {
  if (validUtf8Prefix(message) == message.size()) return message;
  return replaceInvalidUtf8(message);
}
}  // namespace

void addError(Diagnostics& diags, const SourceLoc& loc, std::string message) {
  diags.push_back(Diagnostic{Severity::kError, loc, utf8Message(std::move(message))});
}

void addWarning(Diagnostics& diags, const SourceLoc& loc, std::string message) {
  diags.push_back(Diagnostic{Severity::kWarning, loc, utf8Message(std::move(message))});
}

std::optional<long long> parseInteger(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  // 18 digits cannot overflow a long long.
  if (text.empty() || text.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return negative ? -v : v;
}

std::optional<Cidr> checkCidr(std::string_view text, const SourceLoc& loc, Diagnostics& diags,
                              std::string_view what) {
  bool host_bits = false;
  auto c = Cidr::parse(text, &host_bits);
  if (!c) {
    addError(diags, loc,
             "bad " + std::string(what) + " '" + std::string(text) +
                 "': expected an IPv4 or IPv6 prefix such as 10.0.0.0/16 or 2001:db8::/32");
    return std::nullopt;
  }
  if (host_bits) {
    addWarning(diags, loc,
               std::string(what) + " " + std::string(text) + " has host bits set; using " +
                   c->str() + " as AWS does");
  }
  return c;
}

bool checkVpcCidr(const Cidr& c, const SourceLoc& loc, Diagnostics& diags) {
  if (c.prefix + 2u <= c.maxPrefix()) return true;
  addError(diags, loc,
           "VPC CIDR " + c.str() + " is too small to hold its base + 2 (the Amazon DNS address): " +
               (c.addr.isV4() ? "expected a prefix of /30 or shorter (AWS: /16 to /28)"
                              : "expected a prefix of /126 or shorter (AWS: /44 to /60)"));
  return false;
}

bool checkPortRange(long long lo, long long hi, const SourceLoc& lo_loc, const SourceLoc& hi_loc,
                    Diagnostics& diags, Match& out) {
  bool ok = true;
  if (lo < 0 || lo > 65535) {
    addError(diags, lo_loc, "port " + std::to_string(lo) + " is out of range: expected 0..65535");
    ok = false;
  }
  // A single port ("70000") is both ends of its range: report it once.
  if ((hi < 0 || hi > 65535) && (hi != lo || hi_loc.str() != lo_loc.str())) {
    addError(diags, hi_loc, "port " + std::to_string(hi) + " is out of range: expected 0..65535");
    ok = false;
  }
  if (ok && lo > hi) {
    addError(diags, lo_loc,
             "port range " + std::to_string(lo) + "-" + std::to_string(hi) +
                 " is reversed: the first port is greater than the last");
    ok = false;
  }
  if (ok) {
    out.port_lo = static_cast<uint16_t>(lo);
    out.port_hi = static_cast<uint16_t>(hi);
  }
  return ok;
}

bool checkIcmp(long long type, long long code, const SourceLoc& type_loc, const SourceLoc& code_loc,
               Diagnostics& diags, Match& out) {
  bool ok = true;
  if (type < -1 || type > 255) {
    addError(diags, type_loc,
             "ICMP type " + std::to_string(type) + " is out of range: expected -1 (any) or 0..255");
    ok = false;
  }
  if (code < -1 || code > 255) {
    addError(diags, code_loc,
             "ICMP code " + std::to_string(code) + " is out of range: expected -1 (any) or 0..255");
    ok = false;
  }
  if (ok && type == kAny && code != kAny) {
    addError(
        diags, code_loc,
        "ICMP code " + std::to_string(code) + " without a type: give a type, or use code -1 (any)");
    ok = false;
  }
  if (ok) {
    out.icmp_type = static_cast<int>(type);
    out.icmp_code = static_cast<int>(code);
  }
  return ok;
}

std::string shorten(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t cut = max > 3 ? max - 3 : 0;
  // Never split a UTF-8 sequence: back up to the start of the character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace internal

namespace {

using internal::addError;
using internal::addWarning;

bool fromAws(const SourceLoc& loc) {
  return !loc.json_path.empty();
}

// Reports a second object with the same name (or id) in one namespace.
template <typename T>
void checkUnique(const std::vector<T>& items, std::string_view kind, std::string_view id_field,
                 Diagnostics& diags) {
  std::unordered_map<std::string, const T*> by_name;
  std::unordered_map<std::string, const T*> by_id;
  for (const auto& item : items) {
    if (item.name.empty()) {
      addError(diags, item.loc, "empty " + std::string(kind) + " name: expected a non-empty name");
      continue;
    }
    auto [it, fresh] = by_name.emplace(item.name, &item);
    if (!fresh) {
      std::string msg = "duplicate " + std::string(kind) + " name '" + item.name +
                        "' (first defined at " + it->second->loc.str() + ")";
      if (fromAws(item.loc) && kind == "security group") {
        msg +=
            "; GroupNames are unique only within a VPC: describe one VPC at a time "
            "(--filters Name=vpc-id,Values=vpc-...)";
      }
      addError(diags, item.loc, std::move(msg));
    }
    if (!item.id.empty()) {
      auto [jt, fresh_id] = by_id.emplace(item.id, &item);
      if (!fresh_id) {
        addError(diags, item.loc,
                 "duplicate " + std::string(id_field) + " " + item.id + " (first defined at " +
                     jt->second->loc.str() + ")");
      }
    }
  }
}

template <typename T>
std::unordered_set<std::string> namesOf(const std::vector<T>& items) {
  std::unordered_set<std::string> names;
  for (const auto& item : items)
    names.insert(item.name);
  return names;
}

void checkPeers(const SecurityGroup& g, Direction dir, const std::vector<SgRule>& rules,
                const std::unordered_set<std::string>& groups,
                const std::unordered_set<std::string>& prefix_lists, Diagnostics& diags) {
  for (const auto& rule : rules) {
    for (const auto& peer : rule.peers) {
      if (peer.kind == PeerKind::kGroup && !groups.count(peer.name)) {
        std::string msg = "unknown security group '" + peer.name + "' in " +
                          std::string(directionName(dir)) + " rule of group '" + g.name + "'";
        msg += fromAws(peer.loc) ? ": no group in the loaded files has this GroupId (load the "
                                   "describe-security-groups output that contains it)"
                                 : ": expected sg:NAME naming a group under 'groups'";
        addError(diags, peer.loc, std::move(msg));
      } else if (peer.kind == PeerKind::kPrefixList && !prefix_lists.count(peer.name)) {
        std::string msg = "unknown prefix list '" + peer.name + "' in " +
                          std::string(directionName(dir)) + " rule of group '" + g.name + "'";
        msg += fromAws(peer.loc)
                   ? ": no loaded document defines this PrefixListId; add one shaped "
                     "{\"PrefixLists\":[{\"PrefixListId\":\"" +
                         peer.name + "\",\"PrefixListName\":...,\"Entries\":[{\"Cidr\":...}]}]}"
                   : ": expected pl:NAME naming a list under 'prefix_lists'";
        addError(diags, peer.loc, std::move(msg));
      }
    }
  }
}

void checkAclDirection(NetworkAcl& acl, Direction dir, std::vector<AclEntry>& entries,
                       Diagnostics& diags) {
  std::map<int, const AclEntry*> seen;
  for (const auto& e : entries) {
    if (e.rule_number < 1 || e.rule_number > 32766) {
      addError(diags, e.loc,
               "network ACL rule number " + std::to_string(e.rule_number) +
                   " is out of range: expected 1..32766");
      continue;
    }
    auto [it, fresh] = seen.emplace(e.rule_number, &e);
    if (!fresh) {
      addError(diags, e.loc,
               "network ACL rule number " + std::to_string(e.rule_number) + " is repeated in " +
                   std::string(directionName(dir)) + " entries of '" + acl.name + "' (first at " +
                   it->second->loc.str() + "): expected unique numbers");
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const AclEntry& a, const AclEntry& b) {
    return a.rule_number < b.rule_number;
  });
}

}  // namespace

bool validatePolicy(Policy& p, Diagnostics& diags) {
  Diagnostics found;
  SourceLoc policy_loc{p.files.empty() ? std::string("policy") : p.files.front(), 0, 0, {}};

  if (std::string t = p.timeouts.validate(); !t.empty()) {
    addError(found, policy_loc, "timeouts: " + t);
  }

  checkUnique(p.prefix_lists, "prefix list", "PrefixListId", found);
  checkUnique(p.groups, "security group", "GroupId", found);
  checkUnique(p.acls, "network ACL", "NetworkAclId", found);
  checkUnique(p.subnets, "subnet", "SubnetId", found);
  checkUnique(p.interfaces, "interface", "NetworkInterfaceId", found);

  auto group_names = namesOf(p.groups);
  auto prefix_list_names = namesOf(p.prefix_lists);
  auto acl_names = namesOf(p.acls);

  for (const auto& g : p.groups) {
    checkPeers(g, Direction::kInbound, g.inbound, group_names, prefix_list_names, found);
    checkPeers(g, Direction::kOutbound, g.outbound, group_names, prefix_list_names, found);
  }

  std::unordered_map<IpAddr, const Interface*, IpAddrHash> owner;
  for (const auto& iface : p.interfaces) {
    if (iface.addresses.empty()) {
      addError(found, iface.loc,
               "interface '" + iface.name + "' has no addresses: expected at least one");
    }
    for (const auto& a : iface.addresses) {
      auto [it, fresh] = owner.emplace(a, &iface);
      if (fresh) continue;
      if (it->second == &iface) {
        addError(found, iface.loc,
                 "address " + a.str() + " is listed twice on interface '" + iface.name + "'");
      } else {
        addError(found, iface.loc,
                 "address " + a.str() + " is on two interfaces: '" + it->second->name + "' (" +
                     it->second->loc.str() + ") and '" + iface.name +
                     "'; expected each address on one interface");
      }
    }
    if (iface.groups.size() > kMaxGroupsPerInterface) {
      addError(found, iface.loc,
               "interface '" + iface.name + "' has " + std::to_string(iface.groups.size()) +
                   " security groups: expected at most " + std::to_string(kMaxGroupsPerInterface));
    }
    if (iface.groups.empty()) {
      addWarning(found, iface.loc,
                 "interface '" + iface.name +
                     "' has no security groups: all traffic to and from it is denied");
    }
    std::unordered_set<std::string> listed;
    for (const auto& gname : iface.groups) {
      if (!group_names.count(gname)) {
        std::string msg =
            "interface '" + iface.name + "' refers to unknown security group '" + gname + "'";
        msg += fromAws(iface.loc) ? ": no group in the loaded files has this GroupId"
                                  : ": expected a name under 'groups'";
        addError(found, iface.loc, std::move(msg));
      } else if (!listed.insert(gname).second) {
        addWarning(found, iface.loc,
                   "interface '" + iface.name + "' lists security group '" + gname + "' twice");
      }
    }
  }

  std::unordered_set<std::string> attached_acls;
  for (size_t i = 0; i < p.subnets.size(); ++i) {
    const auto& s = p.subnets[i];
    if (s.cidrs.empty()) {
      addError(found, s.loc, "subnet '" + s.name + "' has no CIDR: expected at least one");
    }
    if (!s.acl.empty()) {
      if (!acl_names.count(s.acl)) {
        addError(found, s.loc,
                 "subnet '" + s.name + "' refers to unknown network ACL '" + s.acl +
                     "': expected a name under 'network_acls'");
      }
      attached_acls.insert(s.acl);
    }
    // An interface belongs to the subnet that holds its address, so subnets must not overlap.
    for (size_t j = 0; j <= i; ++j) {
      const auto& t = p.subnets[j];
      for (size_t a = 0; a < s.cidrs.size(); ++a) {
        for (size_t b = 0; b < (i == j ? a : t.cidrs.size()); ++b) {
          const Cidr& x = s.cidrs[a];
          const Cidr& y = t.cidrs[b];
          if (x.family() != y.family() || !(x.contains(y) || y.contains(x))) continue;
          std::string msg = "subnet '" + s.name + "' CIDR " + x.str() + " overlaps " + y.str() +
                            " of subnet '" + t.name + "'";
          if (i != j) msg += " (" + t.loc.str() + ")";
          msg += ": expected disjoint subnets";
          if (fromAws(s.loc)) msg += " (describe one VPC at a time)";
          addError(found, s.loc, std::move(msg));
        }
      }
    }
  }

  for (auto& acl : p.acls) {
    checkAclDirection(acl, Direction::kInbound, acl.inbound, found);
    checkAclDirection(acl, Direction::kOutbound, acl.outbound, found);
    // AWS ACLs name their subnets themselves; loader.cpp reports associations it cannot make.
    if (!fromAws(acl.loc) && !acl.name.empty() && !attached_acls.count(acl.name)) {
      addWarning(found, acl.loc,
                 "network ACL '" + acl.name + "' is attached to no subnet: it has no effect");
    }
  }

  bool ok = !hasErrors(found);
  diags.insert(diags.end(), std::make_move_iterator(found.begin()),
               std::make_move_iterator(found.end()));
  return ok;
}

}  // namespace statewall::rules
