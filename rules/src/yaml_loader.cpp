// The project's YAML policy format (docs/design.md "The YAML policy format") via yaml-cpp.
// yaml-cpp throws; every exception stops at loadYaml() and becomes a diagnostic.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loader_internal.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::rules::internal {
namespace {

constexpr std::string_view kPortsExpected = "expected a port number, FROM-TO or all";
constexpr std::string_view kPeerExpected =
    "expected a CIDR, a list of CIDRs, sg:GROUP or pl:PREFIX_LIST";

// "'text'", "a list", "a mapping" or "nothing": what the file had where something else was due.
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + shorten(n.Scalar(), 40) + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return std::string(s);
}

// One `key: value` entry of a mapping.
struct Field {
  YAML::Node key;
  YAML::Node value;
};

// The entries of a mapping, looked up by key.
class Fields {
 public:
  void add(std::string name, Field f) { entries_.emplace_back(std::move(name), std::move(f)); }
  const Field* get(std::string_view name) const {
    for (const auto& [k, f] : entries_)
      if (k == name) return &f;
    return nullptr;
  }

 private:
  std::vector<std::pair<std::string, Field>> entries_;
};

class YamlLoader {
 public:
  YamlLoader(const std::string& file, Fragment& out, Diagnostics& diags)
      : file_(file), out_(out), diags_(diags) {}

  void load(const YAML::Node& root);

 private:
  SourceLoc at(const YAML::Mark& m) const {
    if (m.is_null()) return SourceLoc{file_, 0, 0, {}};
    return SourceLoc{file_, m.line + 1, m.column + 1, {}};
  }
  SourceLoc at(const YAML::Node& n) const { return at(n.Mark()); }
  // A missing or empty value has no useful mark of its own: point at its key.
  SourceLoc at(const Field& f) const {
    if (f.value.IsNull() || f.value.Mark().is_null()) return at(f.key);
    return at(f.value);
  }
  void error(const SourceLoc& loc, std::string msg) { addError(diags_, loc, std::move(msg)); }

  std::optional<Fields> mapFields(const YAML::Node& n, const SourceLoc& loc,
                                  std::initializer_list<std::string_view> allowed,
                                  std::string_view what);
  std::optional<std::string> scalar(const Field& f, std::string_view expected);
  std::optional<std::vector<std::pair<std::string, SourceLoc>>> scalarList(
      const Field& f, std::string_view expected);
  // Calls fn(name, field) for each entry of a `NAME: {...}` section, in file order.
  template <typename Fn>
  void forEachNamed(const Field& section, std::string_view what, Fn fn);

  void loadTimeouts(const Field& f);
  void loadVpcCidrs(const Field& f);
  void loadPrefixList(const std::string& name, const Field& f);
  void loadGroup(const std::string& name, const Field& f);
  std::vector<SgRule> loadSgRules(const Field& f, Direction dir, std::string_view group);
  std::optional<SgRule> loadSgRule(const YAML::Node& n, Direction dir);
  bool loadMatch(const Fields& fields, const YAML::Node& rule, Match& m);
  std::optional<Peer> parsePeer(const std::string& text, const SourceLoc& loc);
  void loadAcl(const std::string& name, const Field& f);
  std::vector<AclEntry> loadAclEntries(const Field& f, Direction dir);
  void loadSubnet(const std::string& name, const Field& f);
  void loadInterface(const std::string& name, const Field& f);
  void loadInterfaceTimeouts(const Field& f, const std::string& iface, InterfaceTimeouts& out);

  const std::string& file_;
  Fragment& out_;
  Diagnostics& diags_;
};

std::optional<Fields> YamlLoader::mapFields(const YAML::Node& n, const SourceLoc& loc,
                                            std::initializer_list<std::string_view> allowed,
                                            std::string_view what) {
  Fields fields;
  if (n.IsNull()) return fields;
  if (!n.IsMap()) {
    error(loc, "expected " + std::string(what) + " as a mapping, found " + describe(n));
    return std::nullopt;
  }
  std::string expected;
  for (auto a : allowed) {
    if (!expected.empty()) expected += ", ";
    expected += a;
  }
  std::vector<std::pair<std::string, SourceLoc>> seen;
  for (const auto& kv : n) {
    const YAML::Node& key = kv.first;
    if (!key.IsScalar()) {
      error(at(key), "expected a plain key in " + std::string(what) + ", found " + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    bool known = false;
    for (auto a : allowed)
      known = known || a == name;
    if (!known) {
      std::string msg =
          "unknown key '" + name + "' in " + std::string(what) + "; expected one of: " + expected;
      if (name == "SecurityGroups" || name == "NetworkAcls" || name == "NetworkInterfaces" ||
          name == "Subnets" || name == "PrefixLists" || name == "Vpcs") {
        msg += " (AWS CLI output is read as JSON: use --output json)";
      }
      error(at(key), std::move(msg));
      continue;
    }
    bool repeated = false;
    for (const auto& [k, l] : seen) {
      if (k == name) {
        error(at(key), "key '" + name + "' is repeated in " + std::string(what) + " (first at " +
                           l.str() + ")");
        repeated = true;
        break;
      }
    }
    if (repeated) continue;
    seen.emplace_back(name, at(key));
    fields.add(name, Field{key, kv.second});
  }
  return fields;
}

std::optional<std::string> YamlLoader::scalar(const Field& f, std::string_view expected) {
  if (!f.value.IsScalar()) {
    error(at(f),
          "'" + f.key.Scalar() + "': " + std::string(expected) + ", found " + describe(f.value));
    return std::nullopt;
  }
  return f.value.Scalar();
}

std::optional<std::vector<std::pair<std::string, SourceLoc>>> YamlLoader::scalarList(
    const Field& f, std::string_view expected) {
  std::vector<std::pair<std::string, SourceLoc>> items;
  if (f.value.IsScalar()) {
    items.emplace_back(f.value.Scalar(), at(f.value));
    return items;
  }
  if (!f.value.IsSequence()) {
    error(at(f),
          "'" + f.key.Scalar() + "': " + std::string(expected) + ", found " + describe(f.value));
    return std::nullopt;
  }
  bool ok = true;
  for (const auto& item : f.value) {
    if (!item.IsScalar()) {
      error(at(item.Mark().is_null() ? f.value : item),
            "'" + f.key.Scalar() + "' list item: " + std::string(expected) + ", found " +
                describe(item));
      ok = false;
      continue;
    }
    items.emplace_back(item.Scalar(), at(item));
  }
  if (!ok) return std::nullopt;
  return items;
}

template <typename Fn>
void YamlLoader::forEachNamed(const Field& section, std::string_view what, Fn fn) {
  const YAML::Node& n = section.value;
  if (n.IsNull()) return;
  if (!n.IsMap()) {
    error(at(section), "'" + section.key.Scalar() + "': expected a mapping of NAME: " +
                           std::string(what) + ", found " + describe(n));
    return;
  }
  std::unordered_map<std::string, SourceLoc> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      error(at(kv.first),
            "expected a name in '" + section.key.Scalar() + "', found " + describe(kv.first));
      continue;
    }
    std::string name = kv.first.Scalar();
    auto [it, fresh] = seen.emplace(name, at(kv.first));
    if (!fresh) {
      error(at(kv.first), "'" + name + "' is defined twice in '" + section.key.Scalar() +
                              "' (first at " + it->second.str() + ")");
      continue;
    }
    fn(name, Field{kv.first, kv.second});
  }
}

void YamlLoader::load(const YAML::Node& root) {
  SourceLoc start{file_, 1, 1, {}};
  if (root.IsNull()) {
    error(start, "empty policy: expected a mapping with keys such as version, groups, interfaces");
    return;
  }
  auto top = mapFields(root, at(root),
                       {"version", "timeouts", "unprotected", "strict", "exempt", "vpc_cidrs",
                        "prefix_lists", "groups", "network_acls", "subnets", "interfaces"},
                       "the policy");
  if (!top) return;

  if (const Field* f = top->get("version")) {
    if (auto v = scalar(*f, "expected 1"); v && *v != "1") {
      error(at(*f), "unsupported version '" + *v + "': expected 1");
    }
  }
  if (const Field* f = top->get("timeouts")) loadTimeouts(*f);
  if (const Field* f = top->get("unprotected")) {
    out_.unprotected_at = at(f->key);
    if (auto v = scalar(*f, "expected allow or deny")) {
      if (*v == "allow" || *v == "deny") {
        out_.policy.unprotected_allow = *v == "allow";
      } else {
        error(at(*f), "bad unprotected '" + *v + "': expected allow or deny");
      }
    }
  }
  if (const Field* f = top->get("strict")) {
    out_.strict_at = at(f->key);
    if (auto v = scalar(*f, "expected true or false")) {
      if (*v == "true" || *v == "false") {
        out_.policy.strict = *v == "true";
      } else {
        error(at(*f), "bad strict '" + *v + "': expected true or false");
      }
    }
  }
  if (const Field* f = top->get("exempt")) {
    out_.exempt_at = at(f->key);
    if (auto v = scalar(*f, "expected true or false")) {
      if (*v == "true" || *v == "false") {
        out_.policy.exempt = *v == "true";
      } else {
        error(at(*f), "bad exempt '" + *v + "': expected true or false");
      }
    }
  }
  if (const Field* f = top->get("vpc_cidrs")) loadVpcCidrs(*f);
  if (const Field* f = top->get("prefix_lists")) {
    forEachNamed(*f, "[CIDR, ...]",
                 [&](const std::string& name, const Field& e) { loadPrefixList(name, e); });
  }
  if (const Field* f = top->get("groups")) {
    forEachNamed(*f, "{description, inbound, outbound}",
                 [&](const std::string& name, const Field& e) { loadGroup(name, e); });
  }
  if (const Field* f = top->get("network_acls")) {
    forEachNamed(*f, "{inbound, outbound}",
                 [&](const std::string& name, const Field& e) { loadAcl(name, e); });
  }
  if (const Field* f = top->get("subnets")) {
    forEachNamed(*f, "{cidr, acl}",
                 [&](const std::string& name, const Field& e) { loadSubnet(name, e); });
  }
  if (const Field* f = top->get("interfaces")) {
    forEachNamed(*f, "{addresses, groups}",
                 [&](const std::string& name, const Field& e) { loadInterface(name, e); });
  }
}

void YamlLoader::loadTimeouts(const Field& f) {
  out_.timeouts_at = at(f.key);
  // The keys of TimeoutKey, in order (timeoutKeyName()).
  auto fields = mapFields(f.value, at(f),
                          {"profile", "tcp_syn_sent", "tcp_syn_recv", "tcp_established",
                           "tcp_fin_wait", "tcp_close_wait", "tcp_last_ack", "tcp_time_wait",
                           "tcp_close", "udp", "udp_stream", "icmp", "other"},
                          "timeouts");
  if (!fields) return;
  TimeoutProfile profile = TimeoutProfile::kAws;
  bool ok = true;
  if (const Field* p = fields->get("profile")) {
    if (auto v = scalar(*p, "expected aws or linux")) {
      if (*v == "linux") {
        profile = TimeoutProfile::kLinux;
      } else if (*v != "aws") {
        error(at(*p), "bad timeout profile '" + *v + "': expected aws or linux");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  Timeouts t = Timeouts::defaults(profile);
  std::vector<std::pair<TimeoutKey, SourceLoc>> given;
  for (size_t i = 0; i < kTimeoutKeyCount; ++i) {
    auto key = static_cast<TimeoutKey>(i);
    const Field* v = fields->get(timeoutKeyName(key));
    if (!v) continue;
    auto text = scalar(*v, "expected a number of seconds");
    if (!text) {
      ok = false;
      continue;
    }
    auto n = parseInteger(*text);
    if (!n || *n < 1 || *n > 0xffffffffLL) {
      error(at(*v), "bad timeout '" + *text + "' for " + std::string(timeoutKeyName(key)) +
                        ": expected a number of seconds, at least 1");
      ok = false;
      continue;
    }
    t.seconds[i] = static_cast<uint32_t>(*n);
    given.emplace_back(key, at(*v));
  }
  if (!ok) return;
  if (std::string msg = t.validate(); !msg.empty()) {
    // validate() names the offending key first; point at it when the file gave it.
    SourceLoc loc = at(f);
    for (const auto& [key, l] : given) {
      auto name = timeoutKeyName(key);
      if (msg.compare(0, name.size(), name) == 0 && msg.size() > name.size() &&
          msg[name.size()] == ' ') {
        loc = l;
      }
    }
    error(loc, "timeouts: " + msg);
    return;
  }
  out_.policy.timeouts = t;
}

void YamlLoader::loadVpcCidrs(const Field& f) {
  if (f.value.IsNull()) return;
  auto items = scalarList(f, "expected a CIDR or a list of CIDRs");
  if (!items) return;
  for (const auto& [text, loc] : *items) {
    if (auto c = checkCidr(text, loc, diags_, "VPC CIDR")) {
      if (checkVpcCidr(*c, loc, diags_)) out_.policy.vpc_cidrs.push_back(*c);
    }
  }
}

void YamlLoader::loadPrefixList(const std::string& name, const Field& f) {
  PrefixList pl;
  pl.name = name;
  pl.loc = at(f.key);
  if (!f.value.IsNull()) {
    if (auto items = scalarList(f, "expected a CIDR or a list of CIDRs")) {
      for (const auto& [text, loc] : *items) {
        if (auto c = checkCidr(text, loc, diags_)) pl.cidrs.push_back(*c);
      }
    }
  }
  out_.policy.prefix_lists.push_back(std::move(pl));
}

void YamlLoader::loadGroup(const std::string& name, const Field& f) {
  SecurityGroup g;
  g.name = name;
  g.loc = at(f.key);
  auto fields =
      mapFields(f.value, at(f), {"description", "inbound", "outbound"}, "group '" + name + "'");
  if (fields) {
    if (const Field* d = fields->get("description")) {
      if (auto v = scalar(*d, "expected a text")) g.description = *v;
    }
    if (const Field* r = fields->get("inbound")) {
      g.inbound = loadSgRules(*r, Direction::kInbound, name);
    }
    if (const Field* r = fields->get("outbound")) {
      g.outbound = loadSgRules(*r, Direction::kOutbound, name);
    } else {
      // A new group allows all outbound traffic (docs/design.md). AWS's own default egress rule has
      // 0.0.0.0/0, plus ::/0 only in a VPC with IPv6; we always add both so that an IPv6 address
      // gets the same default as an IPv4 one. Write `outbound:` to say otherwise.
      SgRule all;
      all.match = Match{};
      all.description = "default: allow all outbound";
      all.loc = g.loc;
      all.peers.push_back(Peer{PeerKind::kCidr, *Cidr::parse("0.0.0.0/0"), {}, g.loc});
      all.peers.push_back(Peer{PeerKind::kCidr, *Cidr::parse("::/0"), {}, g.loc});
      g.outbound.push_back(std::move(all));
    }
  }
  out_.policy.groups.push_back(std::move(g));
}

std::vector<SgRule> YamlLoader::loadSgRules(const Field& f, Direction dir, std::string_view group) {
  std::vector<SgRule> rules;
  if (f.value.IsNull()) return rules;
  if (!f.value.IsSequence()) {
    error(at(f), "'" + std::string(directionName(dir)) + "' of group '" + std::string(group) +
                     "': expected a list of rules, found " + describe(f.value));
    return rules;
  }
  for (const auto& item : f.value) {
    if (auto r = loadSgRule(item, dir)) rules.push_back(std::move(*r));
  }
  return rules;
}

std::optional<Peer> YamlLoader::parsePeer(const std::string& raw, const SourceLoc& loc) {
  std::string text = trim(raw);
  Peer p;
  p.loc = loc;
  for (auto [prefix, kind] : {std::pair{std::string_view("sg:"), PeerKind::kGroup},
                              std::pair{std::string_view("pl:"), PeerKind::kPrefixList}}) {
    if (text.compare(0, prefix.size(), prefix) != 0) continue;
    p.kind = kind;
    p.name = trim(std::string_view(text).substr(prefix.size()));
    if (p.name.empty()) {
      error(loc, "'" + text + "' names no " +
                     (kind == PeerKind::kGroup ? "group: expected sg:GROUP"
                                               : "prefix list: expected pl:PREFIX_LIST"));
      return std::nullopt;
    }
    return p;
  }
  auto c = checkCidr(text, loc, diags_);
  if (!c) return std::nullopt;
  p.cidr = *c;
  return p;
}

bool YamlLoader::loadMatch(const Fields& fields, const YAML::Node& rule, Match& m) {
  const Field* proto = fields.get("proto");
  if (!proto) {
    error(at(rule), "missing key 'proto': " + std::string(kProtocolExpected));
    return false;
  }
  auto text = scalar(*proto, kProtocolExpected);
  if (!text) return false;
  auto p = parseProtocol(*text);
  if (!p) {
    error(at(*proto), "bad proto '" + *text + "': " + std::string(kProtocolExpected));
    return false;
  }
  m = Match{};
  m.proto = *p;
  bool ok = true;

  const Field* ports = fields.get("ports");
  if (ports) {
    auto v = scalar(*ports, kPortsExpected);
    if (!v) {
      ok = false;
    } else if (trim(*v) == "all") {
      // 0-65535, the Match default.
    } else if (!protoHasPorts(m.proto)) {
      error(at(*ports), "ports " + *v + " given for proto " + protoName(m.proto) +
                            ": only tcp and udp have ports" +
                            (protoIsIcmp(m.proto) ? " (use icmp: {type, code})" : ""));
      ok = false;
    } else {
      // "443" or "1024-65535" (a leading '-' is a sign, not a range).
      std::string s = trim(*v);
      size_t dash = s.find('-', 1);
      std::optional<long long> lo, hi;
      if (dash == std::string::npos) {
        lo = hi = parseInteger(s);
      } else {
        lo = parseInteger(trim(std::string_view(s).substr(0, dash)));
        hi = parseInteger(trim(std::string_view(s).substr(dash + 1)));
      }
      if (!lo || !hi) {
        error(at(*ports), "bad ports '" + *v + "': " + std::string(kPortsExpected));
        ok = false;
      } else if (!checkPortRange(*lo, *hi, at(*ports), at(*ports), diags_, m)) {
        ok = false;
      }
    }
  } else if (protoHasPorts(m.proto)) {
    error(at(*proto), "missing key 'ports' for proto " + protoName(m.proto) + ": " +
                          std::string(kPortsExpected));
    ok = false;
  }

  if (const Field* icmp = fields.get("icmp")) {
    if (!protoIsIcmp(m.proto)) {
      error(at(icmp->key), "'icmp' given for proto " + protoName(m.proto) +
                               ": only icmp and icmpv6 have a type and code");
      return false;
    }
    auto tc = mapFields(icmp->value, at(*icmp), {"type", "code"}, "icmp");
    if (!tc) return false;
    long long vals[2] = {kAny, kAny};
    SourceLoc locs[2] = {at(*icmp), at(*icmp)};
    const char* names[2] = {"type", "code"};
    for (int i = 0; i < 2; ++i) {
      const Field* x = tc->get(names[i]);
      if (!x) continue;
      locs[i] = at(*x);
      auto v = scalar(*x, "expected a number 0..255 or -1 (any)");
      if (!v) return false;
      auto n = parseInteger(trim(*v));
      if (!n) {
        error(at(*x), "bad ICMP " + std::string(names[i]) + " '" + *v +
                          "': expected a number 0..255 or -1 (any)");
        return false;
      }
      vals[i] = *n;
    }
    if (!checkIcmp(vals[0], vals[1], locs[0], locs[1], diags_, m)) ok = false;
  }
  return ok;
}

std::optional<SgRule> YamlLoader::loadSgRule(const YAML::Node& n, Direction dir) {
  std::string what = std::string(directionName(dir)) + " rule";
  auto fields = mapFields(n, at(n), {"proto", "ports", "icmp", "from", "to", "description"}, what);
  if (!fields) return std::nullopt;
  if (n.IsNull()) {
    error(at(n), "empty " + what + ": expected {proto, ports, " +
                     (dir == Direction::kInbound ? "from" : "to") + "}");
    return std::nullopt;
  }
  SgRule r;
  r.loc = at(n);
  bool ok = loadMatch(*fields, n, r.match);
  if (const Field* d = fields->get("description")) {
    if (auto v = scalar(*d, "expected a text")) r.description = *v;
  }
  const char* peer_key = dir == Direction::kInbound ? "from" : "to";
  const char* wrong_key = dir == Direction::kInbound ? "to" : "from";
  if (const Field* w = fields->get(wrong_key)) {
    error(at(w->key), "'" + std::string(wrong_key) + "' in an " + what + ": " +
                          std::string(directionName(dir)) + " rules take '" + peer_key + "'");
    return std::nullopt;
  }
  const Field* peers = fields->get(peer_key);
  if (!peers) {
    error(at(n), "missing key '" + std::string(peer_key) + "': " + std::string(kPeerExpected));
    return std::nullopt;
  }
  auto items = scalarList(*peers, kPeerExpected);
  if (!items) return std::nullopt;
  if (items->empty()) {
    error(at(*peers), "'" + std::string(peer_key) + "' is empty: " + std::string(kPeerExpected));
    return std::nullopt;
  }
  for (const auto& [text, loc] : *items) {
    auto p = parsePeer(text, loc);
    if (p) {
      r.peers.push_back(std::move(*p));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return r;
}

void YamlLoader::loadAcl(const std::string& name, const Field& f) {
  NetworkAcl acl;
  acl.name = name;
  acl.loc = at(f.key);
  if (auto fields =
          mapFields(f.value, at(f), {"inbound", "outbound"}, "network ACL '" + name + "'")) {
    if (const Field* r = fields->get("inbound")) {
      acl.inbound = loadAclEntries(*r, Direction::kInbound);
    }
    if (const Field* r = fields->get("outbound")) {
      acl.outbound = loadAclEntries(*r, Direction::kOutbound);
    }
  }
  out_.policy.acls.push_back(std::move(acl));
}

std::vector<AclEntry> YamlLoader::loadAclEntries(const Field& f, Direction dir) {
  std::vector<AclEntry> entries;
  if (f.value.IsNull()) return entries;
  if (!f.value.IsSequence()) {
    error(at(f),
          "'" + f.key.Scalar() + "': expected a list of ACL entries, found " + describe(f.value));
    return entries;
  }
  const std::string what = std::string(directionName(dir)) + " ACL entry";
  const char* cidr_key = dir == Direction::kInbound ? "from" : "to";
  const char* wrong_key = dir == Direction::kInbound ? "to" : "from";
  for (const auto& n : f.value) {
    auto fields =
        mapFields(n, at(n), {"rule", "action", "proto", "ports", "icmp", "from", "to"}, what);
    if (!fields) continue;
    if (n.IsNull()) {
      error(at(n), "empty " + what + ": expected {rule, action, proto, " + cidr_key + "}");
      continue;
    }
    AclEntry e;
    e.loc = at(n);
    bool ok = true;
    if (const Field* r = fields->get("rule")) {
      auto v = scalar(*r, "expected a rule number 1..32766");
      auto num = v ? parseInteger(trim(*v)) : std::nullopt;
      if (v && !num) error(at(*r), "bad rule number '" + *v + "': expected a number 1..32766");
      if (!num) {
        ok = false;
      } else if (*num < 1 || *num > 32766) {
        error(at(*r), "network ACL rule number " + std::to_string(*num) +
                          " is out of range: expected 1..32766");
        ok = false;
      } else {
        e.rule_number = static_cast<int>(*num);
      }
    } else {
      error(at(n), "missing key 'rule': expected a rule number 1..32766");
      ok = false;
    }
    if (const Field* a = fields->get("action")) {
      if (auto v = scalar(*a, "expected allow or deny")) {
        if (*v == "allow" || *v == "deny") {
          e.allow = *v == "allow";
        } else {
          error(at(*a), "bad action '" + *v + "': expected allow or deny");
          ok = false;
        }
      } else {
        ok = false;
      }
    } else {
      error(at(n), "missing key 'action': expected allow or deny");
      ok = false;
    }
    if (!loadMatch(*fields, n, e.match)) ok = false;
    if (const Field* w = fields->get(wrong_key)) {
      error(at(w->key), "'" + std::string(wrong_key) + "' in an " + what + ": " +
                            std::string(directionName(dir)) + " entries take '" + cidr_key + "'");
      ok = false;
    } else if (const Field* c = fields->get(cidr_key)) {
      if (auto v = scalar(*c, "expected one CIDR (a network ACL entry has exactly one)")) {
        std::string text = trim(*v);
        if (text.compare(0, 3, "sg:") == 0 || text.compare(0, 3, "pl:") == 0) {
          error(at(*c), "'" + text +
                            "' in a network ACL entry: expected one CIDR (ACLs match "
                            "addresses, not groups or prefix lists)");
          ok = false;
        } else if (auto cidr = checkCidr(text, at(*c), diags_)) {
          e.cidr = *cidr;
        } else {
          ok = false;
        }
      } else {
        ok = false;
      }
    } else {
      error(at(n), "missing key '" + std::string(cidr_key) + "': expected one CIDR");
      ok = false;
    }
    if (ok) entries.push_back(std::move(e));
  }
  return entries;
}

void YamlLoader::loadSubnet(const std::string& name, const Field& f) {
  Subnet s;
  s.name = name;
  s.loc = at(f.key);
  auto fields = mapFields(f.value, at(f), {"cidr", "acl"}, "subnet '" + name + "'");
  if (fields) {
    if (const Field* c = fields->get("cidr")) {
      if (auto items = scalarList(*c, "expected a CIDR or a list of CIDRs")) {
        for (const auto& [text, loc] : *items) {
          if (auto cidr = checkCidr(trim(text), loc, diags_, "subnet CIDR")) {
            s.cidrs.push_back(*cidr);
          }
        }
      }
    } else {
      error(at(f.key), "subnet '" + name + "' has no 'cidr': expected a CIDR or a list of CIDRs");
    }
    if (const Field* a = fields->get("acl")) {
      if (auto v = scalar(*a, "expected the name of a network ACL")) s.acl = trim(*v);
    }
  }
  out_.policy.subnets.push_back(std::move(s));
}

void YamlLoader::loadInterface(const std::string& name, const Field& f) {
  Interface iface;
  iface.name = name;
  iface.loc = at(f.key);
  auto fields =
      mapFields(f.value, at(f), {"addresses", "groups", "timeouts"}, "interface '" + name + "'");
  if (fields) {
    if (const Field* a = fields->get("addresses")) {
      if (auto items = scalarList(*a, "expected an address or a list of addresses")) {
        for (const auto& [raw, loc] : *items) {
          std::string text = trim(raw);
          if (auto addr = IpAddr::parse(text)) {
            iface.addresses.push_back(*addr);
          } else {
            error(loc, "bad address '" + text +
                           "': expected an IPv4 or IPv6 address without a prefix length");
          }
        }
      }
    }  // no addresses at all: validatePolicy() reports it
    if (const Field* g = fields->get("groups")) {
      if (!g->value.IsNull()) {
        if (auto items = scalarList(*g, "expected a group name or a list of group names")) {
          for (const auto& [text, loc] : *items)
            iface.groups.push_back(trim(text));
        }
      }
    }
    if (const Field* t = fields->get("timeouts")) loadInterfaceTimeouts(*t, name, iface.timeouts);
  }
  out_.policy.interfaces.push_back(std::move(iface));
}

// An interface's `timeouts`: the three AWS sets per ENI, in AWS's ranges.
void YamlLoader::loadInterfaceTimeouts(const Field& f, const std::string& iface,
                                       InterfaceTimeouts& out) {
  const std::string what = "timeouts of interface '" + iface + "'";
  auto fields = mapFields(f.value, at(f), {"tcp_established", "udp_stream", "udp"}, what);
  if (!fields) return;
  InterfaceTimeouts t;
  t.loc = at(f.key);
  const std::pair<std::string_view, uint32_t*> keys[] = {
      {"tcp_established", &t.tcp_established}, {"udp_stream", &t.udp_stream}, {"udp", &t.udp}};
  for (const auto& [key, slot] : keys) {
    const Field* v = fields->get(key);
    if (!v) continue;
    auto text = scalar(*v, "expected a number of seconds");
    if (!text) return;
    auto n = parseInteger(*text);
    if (!n || *n < 1 || *n > 0xffffffffLL) {
      error(at(*v), "bad timeout '" + *text + "' for " + std::string(key) + " of interface '" +
                        iface + "': expected a number of seconds");
      return;
    }
    *slot = static_cast<uint32_t>(*n);
    if (std::string msg = t.validate(); !msg.empty()) {
      error(at(*v), what + ": " + msg);
      return;
    }
  }
  out = t;
}

// A limit of loader.hpp exceeded, or a scalar that is not UTF-8, found by PolicyBounds.
struct BoundsError {
  YAML::Mark mark;
  std::string message;
};

// Records where each document starts, and bounds what the documents expand to before any node
// is built: the nodes they would give with every alias replaced by the node it names
// (kMaxYamlNodes), their nesting (kMaxYamlDepth), and every scalar is UTF-8 (an escape such as
// "\uD800" can make a bad one from good text). Sizes of anchored nodes are kept, so an alias
// costs O(1) here however much it expands to. Throws BoundsError at the first node, alias or
// scalar over a limit.
class PolicyBounds : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      throw BoundsError{mark,
                        "this alias refers to a node that contains it: expected an alias "
                        "of a node that is complete (a YAML cycle never ends)"};
    }
    add(mark, it->second.nodes, it->second.depth);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    if (size_t ok = validUtf8Prefix(value); ok != value.size()) {
      throw BoundsError{mark, "a text that is not UTF-8 (byte " + std::to_string(ok) +
                                  " of the value, from an escape such as \\uD800): "
                                  "expected UTF-8 text"};
    }
    leaf(mark, anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

  std::vector<YAML::Mark> marks;

 private:
  // An open mapping or list: the nodes in it so far (itself included), the depth below it.
  struct Open {
    YAML::anchor_t anchor;
    size_t nodes;
    int depth;
  };
  struct Size {
    size_t nodes;
    int depth;  // 0 for a scalar, 1 + the deepest child for a mapping or list
  };

  // `nodes` more nodes, `depth` levels deep, at the current position.
  void add(const YAML::Mark& mark, size_t nodes, int depth) {
    total_ += nodes;
    if (total_ > kMaxYamlNodes) {
      throw BoundsError{mark, "the document expands to more than " + std::to_string(kMaxYamlNodes) +
                                  " YAML nodes (each alias counted as the node it names): "
                                  "expected at most " +
                                  std::to_string(kMaxYamlNodes) + " (too many aliases?)"};
    }
    const int at = static_cast<int>(stack_.size()) + depth;
    if (at > kMaxYamlDepth) {
      throw BoundsError{mark, "mappings and lists nested more than " +
                                  std::to_string(kMaxYamlDepth) + " deep: expected at most " +
                                  std::to_string(kMaxYamlDepth) +
                                  " levels (the policy format needs 6)"};
    }
    if (!stack_.empty()) {
      stack_.back().nodes += nodes;
      stack_.back().depth = std::max(stack_.back().depth, depth + 1);
    }
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, 1, 0);
    if (anchor != 0) anchors_[anchor] = Size{1, 0};
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, 1, 1);
    stack_.push_back(Open{anchor, 1, 1});
  }
  void close() {
    if (stack_.empty()) return;
    const Open o = stack_.back();
    stack_.pop_back();
    // add() counted the node itself and depth 1 when it opened; now the rest of it.
    if (!stack_.empty()) {
      stack_.back().nodes += o.nodes - 1;
      stack_.back().depth = std::max(stack_.back().depth, o.depth + 1);
    }
    if (o.anchor != 0) anchors_[o.anchor] = Size{o.nodes, o.depth};
  }

  std::vector<Open> stack_;
  std::unordered_map<YAML::anchor_t, Size> anchors_;
  size_t total_ = 0;
};
constexpr size_t kMaxDocuments = 16;

}  // namespace

void loadYaml(const std::string& file, const std::string& text, Fragment& out, Diagnostics& diags) {
  try {
    // yaml-cpp 0.7's LoadAll() loops for ever, allocating, on a document that starts with a
    // stray token such as ',' (fixed upstream in yaml-cpp PR #1319). Count the documents with
    // a bounded pass of parser events instead, then build the one document with Load().
    std::istringstream in(text);
    YAML::Parser parser(in);
    PolicyBounds starts;
    while (starts.marks.size() < kMaxDocuments && parser.HandleNextDocument(starts)) {
      if (starts.marks.size() >= 2 &&
          starts.marks.back().pos == starts.marks[starts.marks.size() - 2].pos) {
        const YAML::Mark& m = starts.marks.back();
        std::string found = m.pos >= 0 && static_cast<size_t>(m.pos) < text.size()
                                ? "'" + std::string(1, text[static_cast<size_t>(m.pos)]) + "'"
                                : "end of input";
        addError(diags, SourceLoc{file, m.line + 1, m.column + 1, {}},
                 "YAML syntax error: unexpected " + found + " at the start of a document");
        return;
      }
    }
    if (starts.marks.size() > 1) {
      const YAML::Mark& m = starts.marks[1];
      addError(diags, SourceLoc{file, m.line + 1, m.column + 1, {}},
               "expected one YAML document, found " +
                   (starts.marks.size() >= kMaxDocuments ? "many"
                                                         : std::to_string(starts.marks.size())) +
                   "; give each document as its own file");
      return;
    }
    YamlLoader loader(file, out, diags);
    loader.load(starts.marks.empty() ? YAML::Node() : YAML::Load(text));
  } catch (const BoundsError& e) {
    addError(diags, SourceLoc{file, e.mark.line + 1, e.mark.column + 1, {}}, e.message);
  } catch (const YAML::DeepRecursion& e) {
    addError(diags, SourceLoc{file, e.mark.line + 1, e.mark.column + 1, {}},
             "YAML nested more than " + std::to_string(e.depth()) + " deep: expected at most " +
                 std::to_string(kMaxYamlDepth) + " levels");
  } catch (const YAML::Exception& e) {
    SourceLoc loc{file, 0, 0, {}};
    if (!e.mark.is_null()) loc = SourceLoc{file, e.mark.line + 1, e.mark.column + 1, {}};
    addError(diags, loc, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    addError(diags, SourceLoc{file, 0, 0, {}}, std::string("cannot read YAML: ") + e.what());
  }
}

}  // namespace statewall::rules::internal
