// The JSON printed by `aws ec2 describe-security-groups`, `describe-network-acls`,
// `describe-network-interfaces`, `describe-subnets` and `describe-vpcs` (the VPC CIDRs, whose
// base + 2 is the Amazon DNS address), plus a prefix-list document (loader.hpp),
// via nlohmann-json. Fields this model does not use (OwnerId, VpcId, ...) are ignored, as the
// AWS CLI adds fields over time; the fields we use are checked for type and range.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "json_input.hpp"
#include "loader_internal.hpp"

namespace statewall::rules::internal {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 6> kTopKeys = {
    "SecurityGroups", "NetworkAcls", "NetworkInterfaces", "Subnets", "PrefixLists", "Vpcs"};

std::string describe(const json& v) {
  return describeJson(v);
}

std::string indexPath(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
std::string keyPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

class AwsLoader {
 public:
  AwsLoader(const std::string& file, Fragment& out, Diagnostics& diags)
      : file_(file), out_(out), diags_(diags) {}

  void load(const json& doc);

 private:
  SourceLoc at(const std::string& path) const { return SourceLoc{file_, 0, 0, path}; }
  void error(const std::string& path, std::string msg) {
    addError(diags_, at(path), std::move(msg));
  }
  void error(const SourceLoc& loc, std::string msg) { addError(diags_, loc, std::move(msg)); }

  // A member, or nullptr when it is absent or null (reported when `required`).
  const json* member(const json& obj, std::string_view key, const std::string& path, bool required,
                     std::string_view expected);
  std::optional<std::string> string(const json& obj, std::string_view key, const std::string& path,
                                    bool required, std::string_view expected);
  std::optional<long long> integer(const json& obj, std::string_view key, const std::string& path,
                                   bool required, std::string_view expected);
  // The elements of an array member; empty when absent. Reports a non-array.
  const json* array(const json& obj, std::string_view key, const std::string& path,
                    bool required = false);
  std::optional<int> protocol(const json& obj, std::string_view key, const std::string& path);
  std::string nameTag(const json& obj, std::string_view key) const;

  void loadGroup(const json& g, const std::string& path);
  std::optional<SgRule> loadPermission(const json& p, const std::string& path,
                                       std::vector<std::pair<size_t, IdRefKind>>& refs);
  void loadAcl(const json& a, const std::string& path);
  std::optional<AclEntry> loadAclEntry(const json& e, const std::string& path, bool& egress);
  void loadInterface(const json& n, const std::string& path);
  void loadSubnet(const json& s, const std::string& path);
  void loadPrefixList(const json& p, const std::string& path);
  void loadVpc(const json& v, const std::string& path);
  void addVpcCidr(const json& obj, std::string_view key, const std::string& path, bool v6);

  const std::string& file_;
  Fragment& out_;
  Diagnostics& diags_;
};

const json* AwsLoader::member(const json& obj, std::string_view key, const std::string& path,
                              bool required, std::string_view expected) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required)
      error(keyPath(path, key), "missing " + std::string(key) + ": " + std::string(expected));
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> AwsLoader::string(const json& obj, std::string_view key,
                                             const std::string& path, bool required,
                                             std::string_view expected) {
  const json* v = member(obj, key, path, required, expected);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    error(keyPath(path, key), std::string(expected) + ", found " + describe(*v));
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<long long> AwsLoader::integer(const json& obj, std::string_view key,
                                            const std::string& path, bool required,
                                            std::string_view expected) {
  const json* v = member(obj, key, path, required, expected);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    return static_cast<long long>(
        std::min<uint64_t>(v->get<uint64_t>(), std::numeric_limits<long long>::max()));
  }
  if (v->is_number_integer()) return v->get<long long>();
  error(keyPath(path, key), std::string(expected) + ", found " + describe(*v));
  return std::nullopt;
}

const json* AwsLoader::array(const json& obj, std::string_view key, const std::string& path,
                             bool required) {
  const json* v = member(obj, key, path, required, "expected an array");
  if (!v) return nullptr;
  if (!v->is_array()) {
    error(keyPath(path, key), "expected an array, found " + describe(*v));
    return nullptr;
  }
  return v;
}

std::optional<int> AwsLoader::protocol(const json& obj, std::string_view key,
                                       const std::string& path) {
  const json* v = member(obj, key, path, true, kProtocolExpected);
  if (!v) return std::nullopt;
  std::optional<int> p;
  std::string found;  // how the bad value is shown
  if (v->is_string()) {
    p = parseProtocol(v->get_ref<const std::string&>());
    found = " '" + v->get<std::string>() + "'";
  } else if (v->is_number_integer()) {
    long long n = v->is_number_unsigned()
                      ? static_cast<long long>(std::min<uint64_t>(v->get<uint64_t>(), 256))
                      : v->get<long long>();
    if (n == -1) p = kProtoAll;
    if (n >= 0 && n <= 255) p = static_cast<int>(n);
    found = " " + v->dump();
  }
  if (!p) {
    error(keyPath(path, key), "bad " + std::string(key) + found + ": " +
                                  std::string(kProtocolExpected) +
                                  (found.empty() ? ", found " + describe(*v) : ""));
  }
  return p;
}

// The value of the tag whose Key is "Name", or "" (tags are free-form; malformed ones are skipped).
std::string AwsLoader::nameTag(const json& obj, std::string_view key) const {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return {};
  for (const auto& tag : *it) {
    if (!tag.is_object()) continue;
    auto k = tag.find("Key");
    auto v = tag.find("Value");
    if (k != tag.end() && v != tag.end() && k->is_string() && v->is_string() &&
        k->get_ref<const std::string&>() == "Name" && !v->get_ref<const std::string&>().empty()) {
      return v->get<std::string>();
    }
  }
  return {};
}

void AwsLoader::load(const json& doc) {
  for (auto key : kTopKeys) {
    const json* arr = array(doc, key, "");
    if (!arr) continue;
    std::string base(key);
    for (size_t i = 0; i < arr->size(); ++i) {
      const json& item = (*arr)[i];
      std::string path = indexPath(base, i);
      if (!item.is_object()) {
        error(path, "expected an object, found " + describe(item));
        continue;
      }
      if (key == "SecurityGroups") loadGroup(item, path);
      if (key == "NetworkAcls") loadAcl(item, path);
      if (key == "NetworkInterfaces") loadInterface(item, path);
      if (key == "Subnets") loadSubnet(item, path);
      if (key == "PrefixLists") loadPrefixList(item, path);
      if (key == "Vpcs") loadVpc(item, path);
    }
  }
}

void AwsLoader::loadGroup(const json& g, const std::string& path) {
  SecurityGroup group;
  group.loc = at(path);
  auto id = string(g, "GroupId", path, true, "expected a group id such as sg-0123456789abcdef0");
  auto name = string(g, "GroupName", path, false, "expected a group name");
  if (auto d = string(g, "Description", path, false, "expected a text")) group.description = *d;
  group.id = id.value_or("");
  group.name = nameTag(g, "Tags");
  if (group.name.empty()) group.name = name.value_or(group.id);

  const size_t owner = out_.policy.groups.size();
  for (auto [key, dir] :
       {std::pair{std::string_view("IpPermissions"), Direction::kInbound},
        std::pair{std::string_view("IpPermissionsEgress"), Direction::kOutbound}}) {
    const json* perms = array(g, key, path);
    if (!perms) continue;
    auto& rules = dir == Direction::kInbound ? group.inbound : group.outbound;
    for (size_t i = 0; i < perms->size(); ++i) {
      std::string ppath = indexPath(keyPath(path, key), i);
      std::vector<std::pair<size_t, IdRefKind>> refs;
      auto rule = loadPermission((*perms)[i], ppath, refs);
      if (!rule) continue;
      for (auto [peer, kind] : refs) {
        out_.id_refs.push_back(IdRef{kind, owner, dir, rules.size(), peer});
      }
      rules.push_back(std::move(*rule));
    }
  }
  out_.policy.groups.push_back(std::move(group));
}

std::optional<SgRule> AwsLoader::loadPermission(const json& p, const std::string& path,
                                                std::vector<std::pair<size_t, IdRefKind>>& refs) {
  if (!p.is_object()) {
    error(path, "expected an object, found " + describe(p));
    return std::nullopt;
  }
  SgRule r;
  r.loc = at(path);
  auto proto = protocol(p, "IpProtocol", path);
  if (!proto) return std::nullopt;
  r.match.proto = *proto;
  bool ok = true;
  if (protoHasPorts(*proto)) {
    constexpr std::string_view kExpected = "expected a port number 0..65535";
    auto lo = integer(p, "FromPort", path, true, kExpected);
    auto hi = integer(p, "ToPort", path, true, kExpected);
    ok = lo && hi &&
         checkPortRange(*lo, *hi, at(keyPath(path, "FromPort")), at(keyPath(path, "ToPort")),
                        diags_, r.match);
  } else if (protoIsIcmp(*proto)) {
    // For ICMP, FromPort is the type and ToPort the code; -1 means any.
    constexpr std::string_view kExpected = "expected an ICMP type or code 0..255, or -1 (any)";
    auto type = integer(p, "FromPort", path, false, kExpected);
    auto code = integer(p, "ToPort", path, false, kExpected);
    ok = checkIcmp(type.value_or(kAny), code.value_or(kAny), at(keyPath(path, "FromPort")),
                   at(keyPath(path, "ToPort")), diags_, r.match);
  }

  std::vector<std::string> descriptions;
  struct PeerSource {
    std::string_view list;
    std::string_view field;
    PeerKind kind;
    std::string_view expected;
  };
  static constexpr PeerSource kSources[] = {
      {"IpRanges", "CidrIp", PeerKind::kCidr, "expected an IPv4 CIDR such as 10.0.0.0/16"},
      {"Ipv6Ranges", "CidrIpv6", PeerKind::kCidr, "expected an IPv6 CIDR such as 2001:db8::/32"},
      {"UserIdGroupPairs", "GroupId", PeerKind::kGroup,
       "expected a group id such as sg-0123456789abcdef0"},
      {"PrefixListIds", "PrefixListId", PeerKind::kPrefixList,
       "expected a prefix-list id such as pl-0123456789abcdef0"}};
  for (const auto& src : kSources) {
    const json* list = array(p, src.list, path);
    if (!list) continue;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& item = (*list)[i];
      std::string ipath = indexPath(keyPath(path, src.list), i);
      if (!item.is_object()) {
        error(ipath, "expected an object, found " + describe(item));
        ok = false;
        continue;
      }
      auto value = string(item, src.field, ipath, true, src.expected);
      if (!value) {
        ok = false;
        continue;
      }
      if (auto d = string(item, "Description", ipath, false, "expected a text"); d && !d->empty()) {
        if (std::find(descriptions.begin(), descriptions.end(), *d) == descriptions.end()) {
          descriptions.push_back(*d);
        }
      }
      Peer peer;
      peer.kind = src.kind;
      peer.loc = at(keyPath(ipath, src.field));
      if (src.kind == PeerKind::kCidr) {
        auto c = checkCidr(*value, peer.loc, diags_);
        if (!c) {
          ok = false;
          continue;
        }
        if ((src.list == "IpRanges") != c->addr.isV4()) {
          error(peer.loc,
                "'" + *value + "' in " + std::string(src.list) + ": " + std::string(src.expected));
          ok = false;
          continue;
        }
        peer.cidr = *c;
      } else {
        peer.name = *value;
        refs.emplace_back(r.peers.size(), src.kind == PeerKind::kGroup
                                              ? IdRefKind::kGroupPeer
                                              : IdRefKind::kPrefixListPeer);
      }
      r.peers.push_back(std::move(peer));
    }
  }
  if (!ok) return std::nullopt;
  if (r.peers.empty()) {
    error(path,
          "permission has no IpRanges, Ipv6Ranges, UserIdGroupPairs or PrefixListIds: "
          "expected at least one peer");
    return std::nullopt;
  }
  for (const auto& d : descriptions) {
    if (!r.description.empty()) r.description += "; ";
    r.description += d;
  }
  return r;
}

void AwsLoader::loadAcl(const json& a, const std::string& path) {
  NetworkAcl acl;
  acl.loc = at(path);
  auto id =
      string(a, "NetworkAclId", path, true, "expected an ACL id such as acl-0123456789abcdef0");
  acl.id = id.value_or("");
  acl.name = nameTag(a, "Tags");
  if (acl.name.empty()) acl.name = acl.id;
  const size_t index = out_.policy.acls.size();

  if (const json* assocs = array(a, "Associations", path)) {
    for (size_t i = 0; i < assocs->size(); ++i) {
      std::string apath = indexPath(keyPath(path, "Associations"), i);
      const json& assoc = (*assocs)[i];
      if (!assoc.is_object()) {
        error(apath, "expected an object, found " + describe(assoc));
        continue;
      }
      if (auto subnet = string(assoc, "SubnetId", apath, true,
                               "expected a subnet id such as subnet-0123456789abcdef0")) {
        out_.acl_associations.push_back(
            AclAssociation{index, *subnet, at(keyPath(apath, "SubnetId"))});
      }
    }
  }
  if (const json* entries = array(a, "Entries", path)) {
    for (size_t i = 0; i < entries->size(); ++i) {
      bool egress = false;
      auto e = loadAclEntry((*entries)[i], indexPath(keyPath(path, "Entries"), i), egress);
      if (e) (egress ? acl.outbound : acl.inbound).push_back(std::move(*e));
    }
  }
  out_.policy.acls.push_back(std::move(acl));
}

std::optional<AclEntry> AwsLoader::loadAclEntry(const json& e, const std::string& path,
                                                bool& egress) {
  if (!e.is_object()) {
    error(path, "expected an object, found " + describe(e));
    return std::nullopt;
  }
  AclEntry entry;
  entry.loc = at(path);
  bool ok = true;

  const json* eg = member(e, "Egress", path, true, "expected true or false");
  if (eg && !eg->is_boolean()) {
    error(keyPath(path, "Egress"), "expected true or false, found " + describe(*eg));
    ok = false;
  } else if (eg) {
    egress = eg->get<bool>();
  } else {
    ok = false;
  }
  bool allow = false;
  if (auto action = string(e, "RuleAction", path, true, "expected allow or deny")) {
    if (*action == "allow" || *action == "deny") {
      allow = *action == "allow";
    } else {
      error(keyPath(path, "RuleAction"),
            "bad RuleAction '" + *action + "': expected allow or deny");
      ok = false;
    }
  } else {
    ok = false;
  }
  entry.allow = allow;
  auto proto = protocol(e, "Protocol", path);
  if (!proto) ok = false;

  // AWS prints its implicit final rule "*" as number 32767 (IPv4) and 32768 (IPv6).
  const json* num = member(e, "RuleNumber", path, true, "expected a rule number 1..32766");
  std::string default_number;  // set for AWS's own final entry
  if (num && num->is_string() && num->get_ref<const std::string&>() == "*") {
    default_number = "*";
  } else if (num) {
    auto n = integer(e, "RuleNumber", path, true, "expected a rule number 1..32766");
    if (!n) return std::nullopt;
    if (*n == 32767 || *n == 32768) default_number = std::to_string(*n);
    // Out-of-range numbers are reported by validatePolicy().
    entry.rule_number = static_cast<int>(std::clamp<long long>(*n, -1, 99999));
  } else {
    ok = false;
  }
  if (!default_number.empty()) {
    if (ok && !allow && *proto == kProtoAll) return std::nullopt;  // the implicit deny
    if (ok) {
      error(keyPath(path, "RuleNumber"),
            "rule " + default_number +
                " is AWS's default '*' entry: expected RuleAction deny and Protocol -1");
    }
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  entry.match.proto = *proto;

  if (protoHasPorts(*proto)) {
    const json* range =
        member(e, "PortRange", path, true,
               "expected {\"From\": PORT, \"To\": PORT} for protocol " + std::to_string(*proto));
    if (!range) return std::nullopt;
    std::string rpath = keyPath(path, "PortRange");
    if (!range->is_object()) {
      error(rpath, "expected {\"From\": PORT, \"To\": PORT}, found " + describe(*range));
      return std::nullopt;
    }
    constexpr std::string_view kExpected = "expected a port number 0..65535";
    auto lo = integer(*range, "From", rpath, true, kExpected);
    auto hi = integer(*range, "To", rpath, true, kExpected);
    if (!lo || !hi ||
        !checkPortRange(*lo, *hi, at(keyPath(rpath, "From")), at(keyPath(rpath, "To")), diags_,
                        entry.match)) {
      return std::nullopt;
    }
  } else if (protoIsIcmp(*proto)) {
    long long type = kAny, code = kAny;
    std::string ipath = keyPath(path, "IcmpTypeCode");
    if (const json* tc = member(e, "IcmpTypeCode", path, false, "")) {
      if (!tc->is_object()) {
        error(ipath, "expected {\"Type\": T, \"Code\": C}, found " + describe(*tc));
        return std::nullopt;
      }
      constexpr std::string_view kExpected = "expected an ICMP type or code 0..255, or -1 (any)";
      auto t = integer(*tc, "Type", ipath, false, kExpected);
      auto c = integer(*tc, "Code", ipath, false, kExpected);
      if ((tc->contains("Type") && !t) || (tc->contains("Code") && !c)) return std::nullopt;
      type = t.value_or(kAny);
      code = c.value_or(kAny);
    }
    if (!checkIcmp(type, code, at(keyPath(ipath, "Type")), at(keyPath(ipath, "Code")), diags_,
                   entry.match)) {
      return std::nullopt;
    }
  }

  auto v4 = string(e, "CidrBlock", path, false, "expected an IPv4 CIDR such as 10.0.0.0/16");
  auto v6 = string(e, "Ipv6CidrBlock", path, false, "expected an IPv6 CIDR such as 2001:db8::/32");
  if (v4.has_value() == v6.has_value()) {
    error(path,
          std::string(v4 ? "both CidrBlock and Ipv6CidrBlock" : "no CidrBlock or Ipv6CidrBlock") +
              ": expected exactly one of them");
    return std::nullopt;
  }
  std::string cpath = keyPath(path, v4 ? "CidrBlock" : "Ipv6CidrBlock");
  auto cidr = checkCidr(v4 ? *v4 : *v6, at(cpath), diags_);
  if (!cidr) return std::nullopt;
  if (cidr->addr.isV4() != v4.has_value()) {
    error(cpath, "'" + (v4 ? *v4 : *v6) + "': expected an " + (v4 ? "IPv4" : "IPv6") + " CIDR");
    return std::nullopt;
  }
  entry.cidr = *cidr;
  return entry;
}

void AwsLoader::loadInterface(const json& n, const std::string& path) {
  Interface iface;
  iface.loc = at(path);
  auto id = string(n, "NetworkInterfaceId", path, true,
                   "expected an interface id such as eni-0123456789abcdef0");
  iface.id = id.value_or("");
  iface.name = nameTag(n, "TagSet");
  if (iface.name.empty()) iface.name = iface.id;
  const size_t index = out_.policy.interfaces.size();

  auto addAddress = [&](const std::string& text, const std::string& apath, Family family) {
    auto a = IpAddr::parse(text);
    const char* expected = family == Family::kV4 ? "an IPv4 address" : "an IPv6 address";
    if (!a || a->family != family) {
      error(apath, "bad address '" + text + "': expected " + expected);
      return;
    }
    // The primary address is printed both as PrivateIpAddress and in PrivateIpAddresses.
    if (std::find(iface.addresses.begin(), iface.addresses.end(), *a) == iface.addresses.end()) {
      iface.addresses.push_back(*a);
    }
  };
  if (auto primary = string(n, "PrivateIpAddress", path, false, "expected an IPv4 address")) {
    addAddress(*primary, keyPath(path, "PrivateIpAddress"), Family::kV4);
  }
  struct AddrSource {
    std::string_view list;
    std::string_view field;
    Family family;
  };
  for (auto src : {AddrSource{"PrivateIpAddresses", "PrivateIpAddress", Family::kV4},
                   AddrSource{"Ipv6Addresses", "Ipv6Address", Family::kV6}}) {
    const json* list = array(n, src.list, path);
    if (!list) continue;
    for (size_t i = 0; i < list->size(); ++i) {
      std::string ipath = indexPath(keyPath(path, src.list), i);
      const json& item = (*list)[i];
      if (!item.is_object()) {
        error(ipath, "expected an object, found " + describe(item));
        continue;
      }
      if (auto a = string(item, src.field, ipath, true, "expected an address")) {
        addAddress(*a, keyPath(ipath, src.field), src.family);
      }
    }
  }
  if (const json* groups = array(n, "Groups", path)) {
    for (size_t i = 0; i < groups->size(); ++i) {
      std::string gpath = indexPath(keyPath(path, "Groups"), i);
      const json& item = (*groups)[i];
      if (!item.is_object()) {
        error(gpath, "expected an object, found " + describe(item));
        continue;
      }
      if (auto gid = string(item, "GroupId", gpath, true,
                            "expected a group id such as sg-0123456789abcdef0")) {
        out_.id_refs.push_back(
            IdRef{IdRefKind::kInterfaceGroup, index, Direction::kInbound, 0, iface.groups.size()});
        iface.groups.push_back(*gid);
      }
    }
  }
  // Per-ENI idle timeouts, in AWS's ranges (an ENI without the object keeps the policy's).
  if (const json* ct = member(n, "ConnectionTrackingConfiguration", path, false, "")) {
    const std::string cpath = keyPath(path, "ConnectionTrackingConfiguration");
    if (!ct->is_object()) {
      error(cpath, "expected an object, found " + describe(*ct));
    } else {
      InterfaceTimeouts t;
      t.loc = at(cpath);
      const std::pair<std::string_view, uint32_t*> keys[] = {
          {"TcpEstablishedTimeout", &t.tcp_established},
          {"UdpStreamTimeout", &t.udp_stream},
          {"UdpTimeout", &t.udp}};
      bool ok = true;
      for (const auto& [key, slot] : keys) {
        auto v = integer(*ct, key, cpath, false, "expected a number of seconds");
        if (!v) continue;
        if (*v < 1 || *v > 0xffffffffLL) {
          error(keyPath(cpath, key), "expected a number of seconds, found " + std::to_string(*v));
          ok = false;
          continue;
        }
        *slot = static_cast<uint32_t>(*v);
        // The values before this one were valid: a message is about this key.
        if (std::string msg = t.validate(); !msg.empty()) {
          error(keyPath(cpath, key), std::string(key) + ": " + msg);
          *slot = 0;
          ok = false;
        }
      }
      if (ok) iface.timeouts = t;
    }
  }
  if (auto subnet = string(n, "SubnetId", path, false, "expected a subnet id")) {
    out_.interface_subnets.push_back(
        InterfaceSubnet{index, *subnet, at(keyPath(path, "SubnetId"))});
  }
  out_.policy.interfaces.push_back(std::move(iface));
}

void AwsLoader::loadSubnet(const json& s, const std::string& path) {
  Subnet subnet;
  subnet.loc = at(path);
  auto id =
      string(s, "SubnetId", path, true, "expected a subnet id such as subnet-0123456789abcdef0");
  subnet.id = id.value_or("");
  subnet.name = nameTag(s, "Tags");
  if (subnet.name.empty()) subnet.name = subnet.id;
  if (auto c = string(s, "CidrBlock", path, false, "expected an IPv4 CIDR such as 10.0.1.0/24")) {
    if (auto cidr = checkCidr(*c, at(keyPath(path, "CidrBlock")), diags_, "subnet CIDR")) {
      if (cidr->addr.isV4()) {
        subnet.cidrs.push_back(*cidr);
      } else {
        error(keyPath(path, "CidrBlock"), "'" + *c + "' in CidrBlock: expected an IPv4 CIDR");
      }
    }
  }
  if (const json* list = array(s, "Ipv6CidrBlockAssociationSet", path)) {
    for (size_t i = 0; i < list->size(); ++i) {
      std::string ipath = indexPath(keyPath(path, "Ipv6CidrBlockAssociationSet"), i);
      const json& item = (*list)[i];
      if (!item.is_object()) {
        error(ipath, "expected an object, found " + describe(item));
        continue;
      }
      // Blocks being or already disassociated no longer belong to the subnet.
      auto state = item.find("Ipv6CidrBlockState");
      if (state != item.end() && state->is_object()) {
        auto st = state->find("State");
        if (st != state->end() && st->is_string() && *st != "associated" && *st != "associating") {
          continue;
        }
      }
      if (auto c = string(item, "Ipv6CidrBlock", ipath, true,
                          "expected an IPv6 CIDR such as 2001:db8:1::/64")) {
        if (auto cidr = checkCidr(*c, at(keyPath(ipath, "Ipv6CidrBlock")), diags_, "subnet CIDR")) {
          if (!cidr->addr.isV4()) {
            subnet.cidrs.push_back(*cidr);
          } else {
            error(keyPath(ipath, "Ipv6CidrBlock"),
                  "'" + *c + "' in Ipv6CidrBlock: expected an IPv6 CIDR");
          }
        }
      }
    }
  }
  out_.policy.subnets.push_back(std::move(subnet));
}

void AwsLoader::loadPrefixList(const json& p, const std::string& path) {
  PrefixList pl;
  pl.loc = at(path);
  auto id = string(p, "PrefixListId", path, true,
                   "expected a prefix-list id such as pl-0123456789abcdef0");
  pl.id = id.value_or("");
  auto name = string(p, "PrefixListName", path, false, "expected a name");
  pl.name = name && !name->empty() ? *name : nameTag(p, "Tags");
  if (pl.name.empty()) pl.name = pl.id;
  const json* entries = member(p, "Entries", path, true,
                               "expected [{\"Cidr\": ...}] (describe-managed-prefix-lists does not "
                               "print entries; add those of get-managed-prefix-list-entries)");
  if (entries && !entries->is_array()) {
    error(keyPath(path, "Entries"), "expected an array, found " + describe(*entries));
  } else if (entries) {
    for (size_t i = 0; i < entries->size(); ++i) {
      std::string epath = indexPath(keyPath(path, "Entries"), i);
      const json& item = (*entries)[i];
      if (!item.is_object()) {
        error(epath, "expected an object, found " + describe(item));
        continue;
      }
      if (auto c = string(item, "Cidr", epath, true, "expected a CIDR such as 203.0.113.0/24")) {
        if (auto cidr = checkCidr(*c, at(keyPath(epath, "Cidr")), diags_))
          pl.cidrs.push_back(*cidr);
      }
    }
  }
  out_.policy.prefix_lists.push_back(std::move(pl));
}

// One CIDR of a VPC (CidrBlock or Ipv6CidrBlock of obj), checked for its family and size.
void AwsLoader::addVpcCidr(const json& obj, std::string_view key, const std::string& path,
                           bool v6) {
  auto text = string(obj, key, path, false,
                     v6 ? "expected an IPv6 CIDR such as 2001:db8::/56"
                        : "expected an IPv4 CIDR such as 10.0.0.0/16");
  if (!text) return;
  const std::string cpath = keyPath(path, key);
  auto cidr = checkCidr(*text, at(cpath), diags_, "VPC CIDR");
  if (!cidr) return;
  if (cidr->addr.isV4() == v6) {
    error(cpath, "'" + *text + "' in " + std::string(key) + ": expected an " +
                     (v6 ? "IPv6" : "IPv4") + " CIDR");
    return;
  }
  if (!checkVpcCidr(*cidr, at(cpath), diags_)) return;
  auto& list = out_.policy.vpc_cidrs;
  if (std::find(list.begin(), list.end(), *cidr) == list.end()) list.push_back(*cidr);
}

// describe-vpcs: the primary CidrBlock and the associated blocks of CidrBlockAssociationSet and
// Ipv6CidrBlockAssociationSet (blocks being or already disassociated are skipped).
void AwsLoader::loadVpc(const json& v, const std::string& path) {
  addVpcCidr(v, "CidrBlock", path, false);
  for (auto [set, key, state_key, v6] :
       {std::tuple{std::string_view("CidrBlockAssociationSet"), std::string_view("CidrBlock"),
                   std::string_view("CidrBlockState"), false},
        std::tuple{std::string_view("Ipv6CidrBlockAssociationSet"),
                   std::string_view("Ipv6CidrBlock"), std::string_view("Ipv6CidrBlockState"),
                   true}}) {
    const json* list = array(v, set, path);
    if (!list) continue;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string ipath = indexPath(keyPath(path, set), i);
      const json& item = (*list)[i];
      if (!item.is_object()) {
        error(ipath, "expected an object, found " + describe(item));
        continue;
      }
      auto state = item.find(state_key);
      if (state != item.end() && state->is_object()) {
        auto st = state->find("State");
        if (st != state->end() && st->is_string() && *st != "associated" && *st != "associating") {
          continue;
        }
      }
      addVpcCidr(item, key, ipath, v6);
    }
  }
}

}  // namespace

bool tryLoadAwsJson(const std::string& file, const std::string& text, Fragment& out,
                    Diagnostics& diags) {
  // Skip a UTF-8 byte-order mark, which some editors and shells write (nlohmann skips it too).
  const bool bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0;
  size_t first = text.find_first_not_of(" \t\r\n", bom ? 3 : 0);
  if (first == std::string::npos || text[first] != '{') return false;
  bool looks_aws = false;
  for (auto key : kTopKeys) {
    looks_aws = looks_aws || text.find("\"" + std::string(key) + "\"") != std::string::npos;
  }
  bool json_name = file.size() >= 5 && file.compare(file.size() - 5, 5, ".json") == 0;

  std::optional<Diagnostic> parse_error;
  std::optional<json> parsed = parseJsonText(file, text, parse_error);
  if (!parsed) {
    // A YAML flow mapping also starts with '{'; only claim texts that were meant as JSON.
    if (!looks_aws && !json_name) return false;
    diags.push_back(std::move(*parse_error));
    return true;
  }
  const json& doc = *parsed;
  if (!doc.is_object()) return false;
  bool has_key = false;
  for (auto key : kTopKeys)
    has_key = has_key || doc.contains(key);
  if (!has_key) return false;  // e.g. a YAML policy written in JSON syntax

  try {
    AwsLoader(file, out, diags).load(doc);
  } catch (const std::exception& e) {
    addError(diags, SourceLoc{file, 0, 0, {}}, std::string("cannot read AWS JSON: ") + e.what());
  }
  return true;
}

}  // namespace statewall::rules::internal
