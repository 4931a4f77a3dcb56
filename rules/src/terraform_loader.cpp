// The JSON of `terraform show -json`: a plan (`prior_state`, `planned_values`, `resource_changes`,
// `configuration`) or a state (`values`), read as a policy (Terraform's "JSON Output Format";
// the AWS provider's resource documentation for the attributes). The resources that make up the
// policy model of docs/design.md are read, in the root module and in every child module:
//   aws_security_group, aws_default_security_group (inline ingress/egress),
//   aws_security_group_rule, aws_vpc_security_group_ingress_rule / _egress_rule, aws_network_acl,
//   aws_default_network_acl (inline ingress/egress), aws_network_acl_rule,
//   aws_network_acl_association, aws_subnet, aws_network_interface,
//   aws_network_interface_sg_attachment, aws_instance (its primary interface),
//   aws_ec2_managed_prefix_list and aws_ec2_managed_prefix_list_entry, aws_vpc (its CIDRs: the
//   Amazon DNS address). Other resource types and data sources are ignored.
//
// A plan gives its planned values, or with the file name suffix `#prior` (plan.json#prior) its
// prior state. A value the plan does not know until apply (`after_unknown`) is taken from the
// configuration where it refers to a resource of the plan (`references`), with a warning naming
// the resource address, the attribute and what was assumed; otherwise what depends on it is left
// out, also with a warning.
//
// Objects are linked by AWS id where the value is known, else by resource address: a group's,
// subnet's, ACL's, interface's and prefix list's `id` in the model is its AWS id or its address.
// Rules of one group and direction with the same protocol and ports are one rule, their peers
// together (as describe-security-groups lists them), ordered by protocol and ports: Terraform's
// sets have no order, so this order does not depend on how a plan lists them.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "json_input.hpp"
#include "loader_internal.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::rules::internal {
namespace {

using nlohmann::json;

constexpr int kMaxModuleDepth = 64;     // nested child modules
constexpr int kMaxReferenceDepth = 16;  // module outputs and variables followed for a reference
constexpr size_t kMaxResolved = 4096;   // resources one unknown value may stand for
constexpr size_t kMaxResolveSteps = 100'000;  // expressions visited to resolve one value

std::string keyPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string indexPath(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

const json* member(const json* obj, std::string_view key) {
  if (!obj || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  return it == obj->end() || it->is_null() ? nullptr : &*it;
}

bool isTrue(const json* m) {
  return m && m->is_boolean() && m->get<bool>();
}
// The after_unknown mask below `m`: `true` covers everything under it.
const json* maskAt(const json* m, std::string_view key) {
  if (isTrue(m)) return m;
  return member(m, key);
}
const json* maskAt(const json* m, size_t i) {
  if (isTrue(m)) return m;
  return m && m->is_array() && i < m->size() ? &(*m)[i] : nullptr;
}
// Whether any part of the value under mask `m` is unknown (masks are shallow: a few levels).
bool anyUnknown(const json* m, int depth = 0) {
  if (!m || depth > 8) return false;
  if (m->is_boolean()) return m->get<bool>();
  if (m->is_array() || m->is_object()) {
    for (const auto& x : *m)
      if (anyUnknown(&x, depth + 1)) return true;
  }
  return false;
}

// One step of a module instance address: module.NAME[KEY].
struct ModuleStep {
  std::string name;
  std::string key;  // "[0]", "[\"a\"]" or ""
  friend bool operator==(const ModuleStep&, const ModuleStep&) = default;
};

// Reads an instance key ("[0]", "[\"a.b\"]") at `pos`; empty when there is none; nullopt if bad.
std::optional<std::string> readKey(std::string_view s, size_t& pos) {
  if (pos >= s.size() || s[pos] != '[') return std::string();
  size_t i = pos + 1;
  if (i < s.size() && s[i] == '"') {
    for (++i; i < s.size() && s[i] != '"'; ++i)
      if (s[i] == '\\') ++i;
    if (i >= s.size()) return std::nullopt;
    ++i;
  } else {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
  }
  if (i >= s.size() || s[i] != ']') return std::nullopt;
  std::string key(s.substr(pos, i + 1 - pos));
  pos = i + 1;
  return key;
}

// An identifier (Terraform names: letters, digits, '_' and '-').
std::string readName(std::string_view s, size_t& pos) {
  size_t start = pos;
  while (pos < s.size() &&
         (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '_' || s[pos] == '-'))
    ++pos;
  return std::string(s.substr(start, pos - start));
}

// "module.a[0].module.b" -> [{a, [0]}, {b, ""}]; nullopt when malformed.
std::optional<std::vector<ModuleStep>> parseModule(std::string_view s) {
  std::vector<ModuleStep> steps;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s.substr(pos, 7) != "module.") return std::nullopt;
    pos += 7;
    ModuleStep step;
    step.name = readName(s, pos);
    auto key = readKey(s, pos);
    if (step.name.empty() || !key) return std::nullopt;
    step.key = *key;
    steps.push_back(std::move(step));
    if (pos < s.size()) {
      if (s[pos] != '.') return std::nullopt;
      ++pos;
    }
  }
  return steps;
}

// The module instance's address ("module.a[0].module.b"; "" for the root).
std::string moduleKey(const std::vector<ModuleStep>& steps) {
  std::string s;
  for (const auto& st : steps)
    s += (s.empty() ? "module." : ".module.") + st.name + st.key;
  return s;
}

// A module of the configuration: its resources, calls and outputs.
struct ConfigModule {
  const json* module = nullptr;  // {resources, module_calls, outputs}
  const ConfigModule* parent = nullptr;
  std::string call;  // the name the parent calls it by
  std::string path;  // JSON path of `module`
  std::map<std::string, ConfigModule> calls;
  std::map<std::string, size_t> resources;  // managed TYPE.NAME -> index in module.resources
};

struct Resource {
  std::string address;  // absolute, e.g. module.web.aws_security_group.this[0]
  std::vector<ModuleStep> module;
  std::string type, name, key;    // key: "[0]", "[\"a\"]" or ""
  const json* values = nullptr;   // the resource's attribute values (an object)
  const json* unknown = nullptr;  // after_unknown of its planned change
  const json* config = nullptr;   // its configuration expressions
  std::string config_path;
  const ConfigModule* config_module = nullptr;
  std::string path;  // JSON path of the resource object
};

// What one node of a resource (the resource, or one inline block) reads its attributes from.
struct Node {
  const json* values = nullptr;   // known values (an object), or nullptr: from configuration only
  const json* unknown = nullptr;  // after_unknown mask
  const json* config = nullptr;   // configuration expressions (an object)
  std::string path;               // JSON path of `values` (or of `config`)
  std::string rel;                // the node's name within the resource: "", "ingress[0]"
};

struct Attr {
  const json* value = nullptr;  // known value; nullptr when absent, null or unknown
  bool unknown = false;         // some or all of it is unknown until apply
  const json* expr = nullptr;   // configuration expression, when there is one
  std::string path;             // JSON path
  std::string name;             // e.g. "ingress[0].from_port"
};

// What an attribute names, for resolving it through the configuration when it is unknown.
// kAddress (interface addresses) resolves to nothing.
enum class RefKind { kGroup, kPrefixList, kSubnet, kAcl, kInterface, kCidr4, kCidr6, kAddress };

struct PendingPeer {
  Peer peer;
  std::string description;
};
struct PendingRule {
  Match match;
  std::vector<PendingPeer> peers;
  SourceLoc loc;
};
using MatchKey = std::tuple<int, int, int, int, int>;
MatchKey matchKey(const Match& m) {
  return {m.proto, m.port_lo, m.port_hi, m.icmp_type, m.icmp_code};
}
struct PendingGroup {
  SecurityGroup group;
  std::vector<PendingRule> rules[2];       // inbound, outbound
  std::map<MatchKey, size_t> by_match[2];  // rule index by protocol and ports
};
struct PendingAcl {
  NetworkAcl acl;
  std::set<std::string> entries[2];  // inbound, outbound: AclEntry::str(), each once
  std::string vpc_id;
  bool is_default = false;
};
struct PendingSubnet {
  Subnet subnet;
  std::string vpc_id;
  bool associated = false;
};
struct PendingInterface {
  Interface iface;
  std::unordered_set<std::string> groups_seen;  // filled by the first attachment
  std::string subnet_key;
  SourceLoc subnet_loc;
};

class TerraformLoader {
 public:
  TerraformLoader(const std::string& file, Fragment& out, Diagnostics& diags)
      : file_(file), out_(out), diags_(diags) {}

  void load(const json& doc, std::optional<TerraformValues> selector);

 private:
  SourceLoc at(const std::string& path) const { return SourceLoc{file_, 0, 0, path}; }
  void error(const std::string& path, std::string msg) {
    addError(diags_, at(path), std::move(msg));
  }
  void warning(const std::string& path, std::string msg) {
    addWarning(diags_, at(path), std::move(msg));
  }

  void indexConfig(const json* module, const std::string& path, ConfigModule& into, int depth);
  void walkModule(const json& module, const std::string& path, const std::string& address,
                  const std::map<std::string, const json*>& unknowns, int depth);

  Node rootNode(const Resource& r) const {
    return Node{r.values, r.unknown, r.config, keyPath(r.path, "values"), ""};
  }
  Attr attr(const Node& n, std::string_view key) const;
  // Type checks with an error naming the resource; nullopt when absent, unknown or bad.
  std::optional<std::string> str(const Resource& r, const Attr& a, std::string_view expected);
  std::optional<long long> integer(const Resource& r, const Attr& a, std::string_view expected);
  std::optional<bool> boolean(const Resource& r, const Attr& a);
  std::optional<int> protocol(const Resource& r, const Attr& a);
  std::string tagName(const Resource& r) const;
  std::string keyOf(const Resource& r) const;
  std::string objectName(const Resource& r, const std::string& name_attr) const;

  // The resources an expression refers to, following module outputs and input variables.
  void resolve(const json* expr, const std::vector<ModuleStep>& scope, const ConfigModule* cm,
               int depth, std::vector<const Resource*>& out) const;
  // The values of an attribute that names objects (ids, or CIDRs for kCidr4/kCidr6): a string or
  // a list of strings. Unknown values are taken from the resources the configuration refers to;
  // `otherwise` says what is assumed when it refers to none.
  std::vector<std::pair<std::string, SourceLoc>> refs(const Resource& r, const Node& n,
                                                      std::string_view key, RefKind kind,
                                                      std::string_view otherwise);
  bool refMatches(const Resource& target, RefKind kind) const;
  void warnUnknown(const Resource& r, const Attr& a, std::string_view assumed);
  // True (with a warning "... `what` is left out") when one of `attrs` is unknown until apply.
  bool unknownLeavesOut(const Resource& r, std::initializer_list<const Attr*> attrs,
                        std::string_view what);
  // The CIDR peers of attribute `key` (IPv4 for kCidr4, IPv6 for kCidr6) added to `peers`.
  void cidrPeers(const Resource& r, const Node& n, std::string_view key, RefKind kind,
                 const std::string& description, std::string_view otherwise,
                 std::vector<PendingPeer>& peers);

  // The inline blocks of `key` (known, or from configuration when unknown).
  std::vector<Node> blocks(const Resource& r, std::string_view key);

  void loadGroup(const Resource& r);
  std::optional<Match> sgMatch(const Resource& r, const Node& n, std::string_view proto_key);
  void addRule(const Resource& r, size_t group, Direction dir, const Match& m,
               std::vector<PendingPeer> peers, const SourceLoc& loc);
  void sgPeers(const Resource& r, const Node& n, size_t group, std::vector<PendingPeer>& peers,
               bool inline_block);
  // The object of this plan that attribute `key` names (by id, or by the configuration's
  // reference when unknown), through `index`; nullopt, with a diagnostic, when it names none,
  // several, or one the plan does not define. `what` names its kind, `left_out` what is lost.
  std::optional<size_t> named(const Resource& r, const Node& n, std::string_view key, RefKind kind,
                              const std::unordered_map<std::string, size_t>& index,
                              std::string_view what, std::string_view left_out);
  void loadSgRule(const Resource& r);
  void loadVpcSgRule(const Resource& r, Direction dir);
  void loadAcl(const Resource& r);
  std::optional<AclEntry> aclEntry(const Resource& r, const Node& n, bool separate, bool& egress);
  void loadAclRule(const Resource& r);
  void loadAclAssociation(const Resource& r);
  void loadSubnet(const Resource& r);
  std::vector<std::pair<Cidr, SourceLoc>> blockCidrs(const Resource& r, std::string_view what,
                                                     std::string_view if_unknown);
  void loadInterface(const Resource& r, bool instance);
  void loadSgAttachment(const Resource& r);
  // The key of the default security group of the subnet's VPC (or the plan's only one).
  std::optional<std::string> defaultGroup(const std::string& subnet_key) const;
  void loadPrefixList(const Resource& r);
  void loadVpc(const Resource& r);
  void loadPrefixListEntry(const Resource& r);
  void addPrefixListCidr(size_t pl, const std::string& text, const SourceLoc& loc);
  void finish();

  const std::string& file_;
  Fragment& out_;
  Diagnostics& diags_;
  ConfigModule config_;
  std::vector<Resource> resources_;
  std::vector<std::vector<ModuleStep>> module_instances_;
  std::vector<PendingGroup> groups_;
  std::vector<const Resource*> default_groups_;  // aws_default_security_group resources
  std::vector<PendingAcl> acls_;
  std::vector<PendingSubnet> subnets_;
  std::vector<PendingInterface> ifaces_;
  std::vector<PrefixList> prefix_lists_;
  std::vector<std::unordered_set<std::string>> pl_seen_;  // CIDRs of each prefix list
  // "MODULE TYPE.NAME" -> the instances' indices in resources_.
  std::unordered_map<std::string, std::vector<size_t>> by_local_;
  mutable size_t resolve_budget_ = 0;  // what resolve() may still visit for the current value
  // Object key (AWS id or resource address) -> index, per kind.
  std::unordered_map<std::string, size_t> group_of_, acl_of_, subnet_of_, iface_of_, pl_of_;
};

void TerraformLoader::indexConfig(const json* module, const std::string& path, ConfigModule& into,
                                  int depth) {
  into.module = module;
  into.path = path;
  if (const json* res = member(module, "resources"); res && res->is_array()) {
    for (size_t k = 0; k < res->size(); ++k) {
      const json* type = member(&(*res)[k], "type");
      const json* name = member(&(*res)[k], "name");
      const json* mode = member(&(*res)[k], "mode");
      if (!type || !type->is_string() || !name || !name->is_string()) continue;
      if (mode && (!mode->is_string() || *mode != "managed")) continue;
      into.resources.emplace(type->get<std::string>() + "." + name->get<std::string>(), k);
    }
  }
  const json* calls = member(module, "module_calls");
  if (!calls || !calls->is_object() || depth >= kMaxModuleDepth) return;
  for (const auto& [name, call] : calls->items()) {
    ConfigModule& child = into.calls[name];
    child.parent = &into;
    child.call = name;
    indexConfig(member(&call, "module"),
                keyPath(keyPath(keyPath(path, "module_calls"), name), "module"), child, depth + 1);
  }
}

void TerraformLoader::walkModule(const json& module, const std::string& path,
                                 const std::string& address,
                                 const std::map<std::string, const json*>& unknowns, int depth) {
  if (!module.is_object()) {
    error(path, "expected a module object, found " + describeJson(module));
    return;
  }
  auto steps = parseModule(address);
  if (!steps) {
    error(keyPath(path, "address"), "bad module address '" + shorten(address, 80) +
                                        "': expected module.NAME[KEY].module.NAME...");
    return;
  }
  module_instances_.push_back(*steps);
  // The configuration of this module: the calls by name, instance keys left out.
  const ConfigModule* cm = &config_;
  for (const auto& st : *steps) {
    if (!cm) break;
    auto it = cm->calls.find(st.name);
    cm = it == cm->calls.end() ? nullptr : &it->second;
  }
  if (const json* list = member(&module, "resources")) {
    if (!list->is_array()) {
      error(keyPath(path, "resources"), "expected an array, found " + describeJson(*list));
    } else {
      for (size_t i = 0; i < list->size(); ++i) {
        const json& res = (*list)[i];
        const std::string rpath = indexPath(keyPath(path, "resources"), i);
        if (!res.is_object()) {
          error(rpath, "expected a resource object, found " + describeJson(res));
          continue;
        }
        const json* mode = member(&res, "mode");
        if (mode && mode->is_string() && *mode != "managed") continue;  // data sources
        const json* type = member(&res, "type");
        const json* name = member(&res, "name");
        const json* addr = member(&res, "address");
        if (!type || !type->is_string() || !name || !name->is_string() || !addr ||
            !addr->is_string()) {
          error(rpath, "expected a resource with string address, type and name");
          continue;
        }
        Resource r;
        r.type = type->get<std::string>();
        if (r.type.rfind("aws_", 0) != 0) continue;
        r.name = name->get<std::string>();
        r.address = addr->get<std::string>();
        r.module = *steps;
        r.path = rpath;
        // The instance key is what follows TYPE.NAME in the address.
        const std::string local = r.type + "." + r.name;
        if (auto p = r.address.rfind(local); p != std::string::npos) {
          size_t kpos = p + local.size();
          auto key = readKey(r.address, kpos);
          if (key && kpos == r.address.size()) r.key = *key;
        }
        r.values = member(&res, "values");
        if (r.values && !r.values->is_object()) {
          error(keyPath(rpath, "values"), r.address +
                                              ": expected an object of attribute values, found " +
                                              describeJson(*r.values));
          continue;
        }
        if (auto u = unknowns.find(r.address); u != unknowns.end()) r.unknown = u->second;
        if (cm) {
          if (auto it = cm->resources.find(local); it != cm->resources.end()) {
            r.config = member(&(*member(cm->module, "resources"))[it->second], "expressions");
            r.config_path =
                keyPath(indexPath(keyPath(cm->path, "resources"), it->second), "expressions");
          }
          r.config_module = cm;
        }
        by_local_[moduleKey(r.module) + " " + local].push_back(resources_.size());
        resources_.push_back(std::move(r));
      }
    }
  }
  if (const json* children = member(&module, "child_modules")) {
    if (!children->is_array()) {
      error(keyPath(path, "child_modules"), "expected an array, found " + describeJson(*children));
      return;
    }
    if (depth >= kMaxModuleDepth) {
      error(keyPath(path, "child_modules"),
            "modules nest more than " + std::to_string(kMaxModuleDepth) + " deep");
      return;
    }
    for (size_t i = 0; i < children->size(); ++i) {
      const json& c = (*children)[i];
      const std::string cpath = indexPath(keyPath(path, "child_modules"), i);
      const json* caddr = member(&c, "address");
      if (!caddr || !caddr->is_string()) {
        error(cpath, "expected a child module with a string address (module.NAME)");
        continue;
      }
      walkModule(c, cpath, caddr->get<std::string>(), unknowns, depth + 1);
    }
  }
}

Attr TerraformLoader::attr(const Node& n, std::string_view key) const {
  Attr a;
  a.name = n.rel.empty() ? std::string(key) : n.rel + "." + std::string(key);
  a.expr = member(n.config, key);
  if (n.values) {
    a.path = keyPath(n.path, key);
    a.value = member(n.values, key);
    const json* m = maskAt(n.unknown, key);
    a.unknown = anyUnknown(m);
  } else {
    // From configuration only: a constant is known, anything else is not.
    a.path = keyPath(n.path, key);
    if (const json* e = a.expr) {
      auto c = e->find("constant_value");
      if (e->is_object() && c != e->end()) {
        a.value = c->is_null() ? nullptr : &*c;
      } else {
        a.unknown = true;
      }
    }
  }
  return a;
}

std::optional<std::string> TerraformLoader::str(const Resource& r, const Attr& a,
                                                std::string_view expected) {
  if (!a.value) return std::nullopt;
  if (!a.value->is_string()) {
    error(a.path, r.address + ": " + a.name + ": " + std::string(expected) + ", found " +
                      describeJson(*a.value));
    return std::nullopt;
  }
  return a.value->get<std::string>();
}

std::optional<long long> TerraformLoader::integer(const Resource& r, const Attr& a,
                                                  std::string_view expected) {
  if (!a.value) return std::nullopt;
  if (a.value->is_number_integer()) {
    if (a.value->is_number_unsigned())
      return static_cast<long long>(std::min<uint64_t>(a.value->get<uint64_t>(), 1ull << 40));
    return a.value->get<long long>();
  }
  if (a.value->is_number_float()) {
    // Terraform numbers are arbitrary precision; 443.0 is 443.
    const double d = a.value->get<double>();
    if (d == static_cast<double>(static_cast<long long>(d)) && d > -1e12 && d < 1e12)
      return static_cast<long long>(d);
  }
  if (a.value->is_string()) {  // a constant written as "443" in the configuration
    if (auto v = parseInteger(a.value->get_ref<const std::string&>())) return v;
  }
  error(a.path, r.address + ": " + a.name + ": " + std::string(expected) + ", found " +
                    describeJson(*a.value));
  return std::nullopt;
}

std::optional<bool> TerraformLoader::boolean(const Resource& r, const Attr& a) {
  if (!a.value) return std::nullopt;
  if (a.value->is_boolean()) return a.value->get<bool>();
  if (a.value->is_string() && (*a.value == "true" || *a.value == "false"))
    return *a.value == "true";
  error(a.path,
        r.address + ": " + a.name + ": expected true or false, found " + describeJson(*a.value));
  return std::nullopt;
}

std::optional<int> TerraformLoader::protocol(const Resource& r, const Attr& a) {
  if (!a.value) return std::nullopt;
  std::optional<int> p;
  if (a.value->is_string()) {
    p = parseProtocol(a.value->get_ref<const std::string&>());
  } else if (a.value->is_number_integer()) {
    const long long n = a.value->is_number_unsigned() ? 256 : a.value->get<long long>();
    if (n == -1) p = kProtoAll;
    if (n >= 0 && n <= 255) p = static_cast<int>(n);
  }
  if (!p) {
    error(a.path, r.address + ": " + a.name + ": bad protocol " + describeJson(*a.value) + ": " +
                      std::string(kProtocolExpected));
  }
  return p;
}

void TerraformLoader::warnUnknown(const Resource& r, const Attr& a, std::string_view assumed) {
  warning(a.path, r.address + ": " + a.name + " is unknown until apply; " + std::string(assumed));
}

bool TerraformLoader::unknownLeavesOut(const Resource& r, std::initializer_list<const Attr*> attrs,
                                       std::string_view what) {
  for (const Attr* a : attrs) {
    if (!a->value && a->unknown) {
      warnUnknown(r, *a, std::string(what) + " is left out");
      return true;
    }
  }
  return false;
}

void TerraformLoader::cidrPeers(const Resource& r, const Node& n, std::string_view key,
                                RefKind kind, const std::string& description,
                                std::string_view otherwise, std::vector<PendingPeer>& peers) {
  const bool v4 = kind == RefKind::kCidr4;
  for (auto& [text, loc] : refs(r, n, key, kind, otherwise)) {
    auto c = checkCidr(text, loc, diags_);
    if (!c) continue;
    if (c->addr.isV4() != v4) {
      addError(diags_, loc,
               r.address + ": '" + text + "' in " + std::string(key) + ": expected an " +
                   (v4 ? "IPv4" : "IPv6") + " CIDR");
      continue;
    }
    Peer p;
    p.kind = PeerKind::kCidr;
    p.cidr = *c;
    p.loc = loc;
    peers.push_back(PendingPeer{std::move(p), description});
  }
}

// The Name tag (tags, else tags_all), or "".
std::string TerraformLoader::tagName(const Resource& r) const {
  for (const char* key : {"tags", "tags_all"}) {
    const json* tags = member(r.values, key);
    if (!tags || !tags->is_object()) continue;
    auto it = tags->find("Name");
    if (it != tags->end() && it->is_string() && !it->get_ref<const std::string&>().empty())
      return it->get<std::string>();
  }
  return {};
}

// The AWS id when the value is known, else the resource address. An instance stands for its
// primary interface.
std::string TerraformLoader::keyOf(const Resource& r) const {
  const char* key = r.type == "aws_instance" ? "primary_network_interface_id" : "id";
  const json* id = member(r.values, key);
  if (id && id->is_string() && !id->get_ref<const std::string&>().empty() &&
      !isTrue(maskAt(r.unknown, key)))
    return id->get<std::string>();
  return r.address;
}

// The Name tag, else the `name_attr` attribute, else the AWS id, else the address.
std::string TerraformLoader::objectName(const Resource& r, const std::string& name_attr) const {
  if (std::string t = tagName(r); !t.empty()) return t;
  if (!name_attr.empty()) {
    const json* n = member(r.values, name_attr);
    if (n && n->is_string() && !n->get_ref<const std::string&>().empty())
      return n->get<std::string>();
  }
  return keyOf(r);
}

bool TerraformLoader::refMatches(const Resource& t, RefKind kind) const {
  switch (kind) {
    case RefKind::kGroup:
      return t.type == "aws_security_group" || t.type == "aws_default_security_group";
    case RefKind::kPrefixList:
      return t.type == "aws_ec2_managed_prefix_list";
    case RefKind::kSubnet:
      return t.type == "aws_subnet";
    case RefKind::kAcl:
      return t.type == "aws_network_acl" || t.type == "aws_default_network_acl";
    case RefKind::kInterface:
      return t.type == "aws_network_interface" || t.type == "aws_instance";
    case RefKind::kCidr4:
    case RefKind::kCidr6:
      return t.type == "aws_subnet" || t.type == "aws_vpc";
    case RefKind::kAddress:
      return false;
  }
  return false;
}

void TerraformLoader::resolve(const json* expr, const std::vector<ModuleStep>& scope,
                              const ConfigModule* cm, int depth,
                              std::vector<const Resource*>& out) const {
  if (!expr || depth > kMaxReferenceDepth || resolve_budget_ == 0) return;
  --resolve_budget_;
  if (expr->is_array()) {  // a list of blocks
    for (const auto& e : *expr)
      resolve(&e, scope, cm, depth + 1, out);
    return;
  }
  if (!expr->is_object()) return;
  const json* refs = member(expr, "references");
  if (!refs) {  // a block: its attributes' expressions
    if (!expr->contains("constant_value"))
      for (const auto& [k, e] : expr->items())
        resolve(&e, scope, cm, depth + 1, out);
    return;
  }
  if (!refs->is_array()) return;
  // TYPE.NAME -> the instance keys referred to ("" = all instances).
  std::map<std::string, std::set<std::string>> resources;
  for (const auto& ref : *refs) {
    if (!ref.is_string()) continue;
    const std::string& s = ref.get_ref<const std::string&>();
    size_t pos = 0;
    const std::string first = readName(s, pos);
    if (pos >= s.size() || s[pos] != '.') continue;
    ++pos;
    if (first == "module") {  // module.NAME[KEY].OUTPUT
      const std::string call = readName(s, pos);
      auto key = readKey(s, pos);
      if (!key || pos >= s.size() || s[pos] != '.' || !cm) continue;
      ++pos;
      const std::string output = readName(s, pos);
      auto child = cm->calls.find(call);
      if (child == cm->calls.end()) continue;
      const json* outputs = member(child->second.module, "outputs");
      const json* oexpr = member(member(outputs, output), "expression");
      for (const auto& inst : module_instances_) {
        if (inst.size() != scope.size() + 1 ||
            !std::equal(scope.begin(), scope.end(), inst.begin()))
          continue;
        if (inst.back().name != call || (!key->empty() && inst.back().key != *key)) continue;
        resolve(oexpr, inst, &child->second, depth + 1, out);
      }
    } else if (first == "var") {  // an input variable: the parent's argument for it
      const std::string var = readName(s, pos);
      if (scope.empty() || !cm || !cm->parent) continue;
      const json* calls = member(cm->parent->module, "module_calls");
      const json* arg = member(member(member(calls, cm->call), "expressions"), var);
      std::vector<ModuleStep> parent(scope.begin(), scope.end() - 1);
      resolve(arg, parent, cm->parent, depth + 1, out);
    } else if (first == "data" || first == "local" || first == "each" || first == "count" ||
               first == "path" || first == "terraform" || first == "self") {
      continue;  // not a managed resource of the plan
    } else {
      const std::string name = readName(s, pos);
      auto key = readKey(s, pos);
      if (name.empty() || !key) continue;
      resources[first + "." + name].insert(*key);
    }
  }
  for (const auto& [local, keys] : resources) {
    // The most specific form: aws_x.y[0] when the references name it, else every instance.
    const bool keyed = keys.size() > 1 || !keys.count("");
    auto it = by_local_.find(moduleKey(scope) + " " + local);
    if (it == by_local_.end()) continue;
    for (size_t i : it->second) {
      const Resource& r = resources_[i];
      if (keyed && !keys.count(r.key)) continue;
      if (out.size() >= kMaxResolved) return;
      out.push_back(&r);
    }
  }
}

std::vector<std::pair<std::string, SourceLoc>> TerraformLoader::refs(const Resource& r,
                                                                     const Node& n,
                                                                     std::string_view key,
                                                                     RefKind kind,
                                                                     std::string_view otherwise) {
  std::vector<std::pair<std::string, SourceLoc>> out;
  const Attr a = attr(n, key);
  std::unordered_set<std::string> seen;
  auto add = [&](std::string v, const std::string& path) {
    if (v.empty() || !seen.insert(v).second) return;  // "": the provider's unset string
    out.emplace_back(std::move(v), at(path));
  };
  if (a.value) {
    if (a.value->is_string()) {
      add(a.value->get<std::string>(), a.path);
    } else if (a.value->is_array()) {
      for (size_t i = 0; i < a.value->size(); ++i) {
        const json& e = (*a.value)[i];
        if (e.is_null()) continue;  // unknown: an element the plan does not know
        if (!e.is_string()) {
          error(indexPath(a.path, i), r.address + ": " + a.name + "[" + std::to_string(i) +
                                          "]: expected a string, found " + describeJson(e));
          continue;
        }
        add(e.get<std::string>(), indexPath(a.path, i));
      }
    } else {
      error(a.path, r.address + ": " + a.name + ": expected a string or a list of strings, found " +
                        describeJson(*a.value));
    }
  }
  if (!a.unknown) return out;
  std::vector<const Resource*> found;
  resolve_budget_ = kMaxResolveSteps;
  if (r.config_module) resolve(a.expr, r.module, r.config_module, 0, found);
  std::string assumed;
  std::unordered_set<const Resource*> done;
  for (const Resource* t : found) {
    if (!refMatches(*t, kind) || !done.insert(t).second) continue;
    std::string v;
    if (kind == RefKind::kCidr4 || kind == RefKind::kCidr6) {
      const char* ckey = kind == RefKind::kCidr4 ? "cidr_block" : "ipv6_cidr_block";
      const json* c = member(t->values, ckey);
      if (!c || !c->is_string()) continue;
      v = c->get<std::string>();
      assumed += (assumed.empty() ? "" : ", ") + t->address + "'s " + ckey + " " + v;
    } else {
      v = keyOf(*t);
      assumed += (assumed.empty() ? "" : ", ") + t->address;
    }
    add(std::move(v), a.path);
  }
  if (assumed.empty()) {
    warnUnknown(r, a,
                "the configuration refers to nothing in this plan for it; assumed " +
                    std::string(otherwise));
  } else {
    warnUnknown(r, a, "assumed " + assumed + " (the configuration refers to it)");
  }
  return out;
}

// Equal constants of the configuration block and the planned block, for the keys both give.
bool sameBlock(const json& planned, const json& block) {
  static constexpr const char* kKeys[] = {"from_port", "to_port", "protocol", "rule_no", "action"};
  for (const char* k : kKeys) {
    const json* p = member(&planned, k);
    const json* e = member(&block, k);
    const json* c = e ? member(e, "constant_value") : nullptr;
    if (!p || !c) continue;
    if (std::string_view(k) == "protocol" && p->is_string() && c->is_string()) {
      if (parseProtocol(p->get_ref<const std::string&>()) !=
          parseProtocol(c->get_ref<const std::string&>()))
        return false;
    } else if (p->dump() != c->dump()) {
      if (p->is_number() && c->is_string() && c->get_ref<const std::string&>() == p->dump())
        continue;
      return false;
    }
  }
  return true;
}

std::vector<Node> TerraformLoader::blocks(const Resource& r, std::string_view key) {
  std::vector<Node> out;
  const Node root = rootNode(r);
  const Attr a = attr(root, key);
  const json* cblocks = a.expr && a.expr->is_array() ? a.expr : nullptr;
  if (a.value) {
    if (!a.value->is_array()) {
      error(a.path, r.address + ": " + a.name + ": expected a list of blocks, found " +
                        describeJson(*a.value));
      return out;
    }
    const json* mask = maskAt(r.unknown, key);
    for (size_t i = 0; i < a.value->size(); ++i) {
      const json& b = (*a.value)[i];
      const std::string bpath = indexPath(a.path, i);
      if (!b.is_object()) {
        error(bpath, r.address + ": " + a.name + "[" + std::to_string(i) +
                         "]: expected an object, found " + describeJson(b));
        continue;
      }
      // The configuration block it came from, for the references of its unknown values.
      const json* cfg = nullptr;
      if (cblocks && anyUnknown(maskAt(mask, i))) {
        for (const auto& c : *cblocks) {
          if (c.is_object() && sameBlock(b, c)) {
            cfg = &c;
            break;
          }
        }
      }
      out.push_back(Node{&b, maskAt(mask, i), cfg, bpath, a.name + "[" + std::to_string(i) + "]"});
    }
    return out;
  }
  if (!a.unknown) return out;
  if (!cblocks) {
    warnUnknown(r, a,
                "the configuration gives no " + std::string(key) +
                    " blocks for it; assumed none (Terraform manages no inline rules then)");
    return out;
  }
  warnUnknown(r, a,
              "assumed the configuration's " + std::to_string(cblocks->size()) + " " +
                  std::string(key) + " block(s)");
  for (size_t i = 0; i < cblocks->size(); ++i) {
    const json& c = (*cblocks)[i];
    if (!c.is_object()) continue;
    out.push_back(Node{nullptr, nullptr, &c, indexPath(keyPath(r.config_path, key), i),
                       a.name + "[" + std::to_string(i) + "]"});
  }
  return out;
}

// ---- security groups ----

void TerraformLoader::loadGroup(const Resource& r) {
  PendingGroup pg;
  SecurityGroup& g = pg.group;
  g.loc = at(r.path);
  g.id = keyOf(r);
  g.name = objectName(r, "name");
  if (auto d = str(r, attr(rootNode(r), "description"), "expected a text")) g.description = *d;
  const std::string key = g.id;
  if (group_of_.count(key)) {
    error(r.path, r.address + ": a second security group with id " + key);
    return;
  }
  if (r.type == "aws_default_security_group") default_groups_.push_back(&r);
  group_of_[key] = groups_.size();
  if (key != r.address) group_of_[r.address] = groups_.size();
  groups_.push_back(std::move(pg));
}

std::optional<Match> TerraformLoader::sgMatch(const Resource& r, const Node& n,
                                              std::string_view proto_key) {
  const Attr pa = attr(n, proto_key);
  if (!pa.value) {
    if (pa.unknown) {
      warnUnknown(r, pa, "the rule is left out");
    } else {
      error(pa.path, r.address + ": missing " + pa.name + ": " + std::string(kProtocolExpected));
    }
    return std::nullopt;
  }
  auto proto = protocol(r, pa);
  if (!proto) return std::nullopt;
  Match m;
  m.proto = *proto;
  const Attr from = attr(n, "from_port");
  const Attr to = attr(n, "to_port");
  if (protoHasPorts(*proto)) {
    if (unknownLeavesOut(r, {&from, &to}, "the rule")) return std::nullopt;
    constexpr std::string_view kExpected = "expected a port number 0..65535";
    auto lo = integer(r, from, kExpected);
    auto hi = integer(r, to, kExpected);
    if (!lo || !hi) {
      if (!from.value || !to.value)
        error(n.path, r.address + ": " + (n.rel.empty() ? "" : n.rel + ": ") +
                          "missing from_port or to_port: expected both for protocol " +
                          protoName(*proto));
      return std::nullopt;
    }
    if (!checkPortRange(*lo, *hi, at(from.path), at(to.path), diags_, m)) return std::nullopt;
  } else if (protoIsIcmp(*proto)) {
    // from_port is the ICMP type, to_port the code; -1 (or absent) means any.
    if (unknownLeavesOut(r, {&from, &to}, "the rule")) return std::nullopt;
    constexpr std::string_view kExpected = "expected an ICMP type or code 0..255, or -1 (any)";
    auto type = integer(r, from, kExpected);
    auto code = integer(r, to, kExpected);
    if ((from.value && !type) || (to.value && !code)) return std::nullopt;
    if (!checkIcmp(type.value_or(kAny), code.value_or(kAny), at(from.path), at(to.path), diags_, m))
      return std::nullopt;
  }
  return m;
}

void TerraformLoader::addRule(const Resource& r, size_t group, Direction dir, const Match& m,
                              std::vector<PendingPeer> peers, const SourceLoc& loc) {
  (void)r;
  if (peers.empty()) return;
  PendingGroup& g = groups_[group];
  auto& rules = g.rules[static_cast<size_t>(dir)];
  auto [it, fresh] = g.by_match[static_cast<size_t>(dir)].emplace(matchKey(m), rules.size());
  if (!fresh) {
    for (auto& p : peers)
      rules[it->second].peers.push_back(std::move(p));
    return;
  }
  rules.push_back(PendingRule{m, std::move(peers), loc});
}

// The peers of an inline block or an aws_security_group_rule: cidr_blocks, ipv6_cidr_blocks,
// prefix_list_ids, security_groups (inline) or source_security_group_id, and self.
void TerraformLoader::sgPeers(const Resource& r, const Node& n, size_t group,
                              std::vector<PendingPeer>& peers, bool inline_block) {
  std::string description;
  if (auto d = str(r, attr(n, "description"), "expected a text")) description = *d;
  cidrPeers(r, n, "cidr_blocks", RefKind::kCidr4, description, "no such peer", peers);
  cidrPeers(r, n, "ipv6_cidr_blocks", RefKind::kCidr6, description, "no such peer", peers);
  for (auto& [key, loc] : refs(r, n, inline_block ? "security_groups" : "source_security_group_id",
                               RefKind::kGroup, "no such peer")) {
    Peer p;
    p.kind = PeerKind::kGroup;
    p.name = key;
    p.loc = loc;
    peers.push_back(PendingPeer{std::move(p), description});
  }
  const Attr self = attr(n, "self");
  if (self.unknown && !self.value) warnUnknown(r, self, "assumed false");
  if (boolean(r, self).value_or(false)) {
    Peer p;
    p.kind = PeerKind::kGroup;
    p.name = groups_[group].group.id;
    p.loc = at(self.path);
    peers.push_back(PendingPeer{std::move(p), description});
  }
  for (auto& [key, loc] : refs(r, n, "prefix_list_ids", RefKind::kPrefixList, "no such peer")) {
    Peer p;
    p.kind = PeerKind::kPrefixList;
    p.name = key;
    p.loc = loc;
    peers.push_back(PendingPeer{std::move(p), description});
  }
}

// The group a separate rule belongs to (security_group_id), when this plan defines it.
std::optional<size_t> TerraformLoader::named(const Resource& r, const Node& n, std::string_view key,
                                             RefKind kind,
                                             const std::unordered_map<std::string, size_t>& index,
                                             std::string_view what, std::string_view left_out) {
  const std::string lost = std::string(left_out) + " is left out";
  auto ids = refs(r, n, key, kind, lost);
  const Attr a = attr(n, key);
  if (ids.empty()) {
    if (!a.unknown)
      error(a.path, r.address + ": missing " + std::string(key) + ": expected a " +
                        std::string(what) + " id");
    return std::nullopt;
  }
  if (ids.size() > 1) {
    warning(a.path, r.address + ": " + std::string(key) + " refers to more than one " +
                        std::string(what) + "; " + lost);
    return std::nullopt;
  }
  auto it = index.find(ids[0].first);
  if (it == index.end()) {
    warning(a.path, r.address + ": " + std::string(what) + " " + ids[0].first +
                        " is not in this plan; " + lost + " (load it with the plan)");
    return std::nullopt;
  }
  return it->second;
}

void TerraformLoader::loadSgRule(const Resource& r) {
  const Node n = rootNode(r);
  const Attr type = attr(n, "type");
  auto t = str(r, type, "expected ingress or egress");
  if (!t) {
    if (type.unknown)
      warnUnknown(r, type, "the rule is left out");
    else if (!type.value)
      error(type.path, r.address + ": missing type: expected ingress or egress");
    return;
  }
  if (*t != "ingress" && *t != "egress") {
    error(type.path,
          r.address + ": bad type '" + shorten(*t, 40) + "': expected ingress or egress");
    return;
  }
  auto group =
      named(r, n, "security_group_id", RefKind::kGroup, group_of_, "security group", "the rule");
  if (!group) return;
  auto m = sgMatch(r, n, "protocol");
  if (!m) return;
  std::vector<PendingPeer> peers;
  sgPeers(r, n, *group, peers, false);
  if (peers.empty()) {
    warning(n.path, r.address +
                        ": the rule has no peer (cidr_blocks, ipv6_cidr_blocks, "
                        "prefix_list_ids, source_security_group_id or self); it allows nothing");
    return;
  }
  addRule(r, *group, *t == "ingress" ? Direction::kInbound : Direction::kOutbound, *m,
          std::move(peers), at(r.path));
}

void TerraformLoader::loadVpcSgRule(const Resource& r, Direction dir) {
  const Node n = rootNode(r);
  auto group =
      named(r, n, "security_group_id", RefKind::kGroup, group_of_, "security group", "the rule");
  if (!group) return;
  auto m = sgMatch(r, n, "ip_protocol");
  if (!m) return;
  std::string description;
  if (auto d = str(r, attr(n, "description"), "expected a text")) description = *d;
  std::vector<PendingPeer> peers;
  for (auto [key, kind] : {std::pair{std::string_view("cidr_ipv4"), RefKind::kCidr4},
                           std::pair{std::string_view("cidr_ipv6"), RefKind::kCidr6}})
    cidrPeers(r, n, key, kind, description, "no such peer: the rule is left out", peers);
  for (auto [key, kind] :
       {std::pair{std::string_view("referenced_security_group_id"), PeerKind::kGroup},
        std::pair{std::string_view("prefix_list_id"), PeerKind::kPrefixList}}) {
    for (auto& [id, loc] :
         refs(r, n, key, kind == PeerKind::kGroup ? RefKind::kGroup : RefKind::kPrefixList,
              "no such peer: the rule is left out")) {
      Peer p;
      p.kind = kind;
      p.name = id;
      p.loc = loc;
      peers.push_back(PendingPeer{std::move(p), description});
    }
  }
  if (peers.empty()) return;  // reported above, or an error
  if (peers.size() > 1) {
    error(n.path, r.address +
                      ": more than one of cidr_ipv4, cidr_ipv6, prefix_list_id and "
                      "referenced_security_group_id: expected exactly one");
    return;
  }
  addRule(r, *group, dir, *m, std::move(peers), at(r.path));
}

// ---- network ACLs ----

void TerraformLoader::loadAcl(const Resource& r) {
  PendingAcl pa;
  pa.is_default = r.type == "aws_default_network_acl";
  NetworkAcl& acl = pa.acl;
  acl.loc = at(r.path);
  acl.id = keyOf(r);
  acl.name = objectName(r, "");
  if (auto v = member(r.values, "vpc_id"); v && v->is_string()) pa.vpc_id = v->get<std::string>();
  if (acl_of_.count(acl.id)) {
    error(r.path, r.address + ": a second network ACL with id " + acl.id);
    return;
  }
  const size_t index = acls_.size();
  acl_of_[acl.id] = index;
  if (acl.id != r.address) acl_of_[r.address] = index;
  for (auto [key, egress] : {std::pair{std::string_view("ingress"), false},
                             std::pair{std::string_view("egress"), true}}) {
    for (const Node& b : blocks(r, key)) {
      bool eg = egress;
      if (auto e = aclEntry(r, b, false, eg)) {
        const Direction dir = egress ? Direction::kOutbound : Direction::kInbound;
        pa.entries[static_cast<size_t>(dir)].insert(e->str(dir));
        (egress ? acl.outbound : acl.inbound).push_back(std::move(*e));
      }
    }
  }
  for (auto& [subnet, loc] : refs(r, rootNode(r), "subnet_ids", RefKind::kSubnet,
                                  "the ACL is associated with no subnet")) {
    out_.acl_associations.push_back(AclAssociation{index, subnet, loc});
  }
  acls_.push_back(std::move(pa));
}

// An inline block (rule_no, action) or an aws_network_acl_rule (rule_number, rule_action, egress).
std::optional<AclEntry> TerraformLoader::aclEntry(const Resource& r, const Node& n, bool separate,
                                                  bool& egress) {
  AclEntry e;
  e.loc = at(n.path);
  auto known = [&](const Attr& a, bool required, std::string_view expected) {
    if (a.value) return true;
    if (a.unknown) {
      warnUnknown(r, a, "the entry is left out");
    } else if (required) {
      error(a.path, r.address + ": missing " + a.name + ": " + std::string(expected));
    }
    return false;
  };
  if (separate) {
    const Attr eg = attr(n, "egress");
    if (eg.unknown && !eg.value) {
      warnUnknown(r, eg, "the entry is left out");
      return std::nullopt;
    }
    auto b = boolean(r, eg);
    if (eg.value && !b) return std::nullopt;
    egress = b.value_or(false);  // the provider's default
  }
  const Attr num = attr(n, separate ? "rule_number" : "rule_no");
  if (!known(num, true, "expected a rule number 1..32766")) return std::nullopt;
  auto number = integer(r, num, "expected a rule number 1..32766");
  if (!number) return std::nullopt;
  // Out-of-range numbers are reported by validatePolicy().
  e.rule_number = static_cast<int>(std::clamp<long long>(*number, -1, 99999));
  const Attr act = attr(n, separate ? "rule_action" : "action");
  if (!known(act, true, "expected allow or deny")) return std::nullopt;
  auto action = str(r, act, "expected allow or deny");
  if (!action) return std::nullopt;
  if (*action != "allow" && *action != "deny") {
    error(act.path, r.address + ": bad " + act.name + " '" + shorten(*action, 40) +
                        "': expected allow or deny");
    return std::nullopt;
  }
  e.allow = *action == "allow";
  const Attr pa = attr(n, "protocol");
  if (!known(pa, true, kProtocolExpected)) return std::nullopt;
  auto proto = protocol(r, pa);
  if (!proto) return std::nullopt;
  e.match.proto = *proto;
  if (protoHasPorts(*proto)) {
    const Attr from = attr(n, "from_port"), to = attr(n, "to_port");
    constexpr std::string_view kExpected = "expected a port number 0..65535";
    if (!known(from, true, kExpected) || !known(to, true, kExpected)) return std::nullopt;
    auto lo = integer(r, from, kExpected);
    auto hi = integer(r, to, kExpected);
    if (!lo || !hi || !checkPortRange(*lo, *hi, at(from.path), at(to.path), diags_, e.match))
      return std::nullopt;
  } else if (protoIsIcmp(*proto)) {
    const Attr type = attr(n, "icmp_type"), code = attr(n, "icmp_code");
    constexpr std::string_view kExpected = "expected an ICMP type or code 0..255, or -1 (any)";
    if (unknownLeavesOut(r, {&type, &code}, "the entry")) return std::nullopt;
    auto t = integer(r, type, kExpected);
    auto c = integer(r, code, kExpected);
    if ((type.value && !t) || (code.value && !c)) return std::nullopt;
    // The provider's default for both is 0 (echo reply); -1 is any.
    if (!checkIcmp(t.value_or(0), c.value_or(0), at(type.path), at(code.path), diags_, e.match))
      return std::nullopt;
  }
  const Attr a4 = attr(n, "cidr_block"), a6 = attr(n, "ipv6_cidr_block");
  if (unknownLeavesOut(r, {&a4, &a6}, "the entry")) return std::nullopt;
  auto v4 = str(r, a4, "expected an IPv4 CIDR such as 10.0.0.0/16");
  auto v6 = str(r, a6, "expected an IPv6 CIDR such as 2001:db8::/32");
  if (v4 && v4->empty()) v4.reset();  // the provider writes "" for the one not given
  if (v6 && v6->empty()) v6.reset();
  if (v4.has_value() == v6.has_value()) {
    error(n.path,
          r.address + ": " + (n.rel.empty() ? "" : n.rel + ": ") +
              (v4 ? "both cidr_block and ipv6_cidr_block" : "no cidr_block or ipv6_cidr_block") +
              ": expected exactly one of them");
    return std::nullopt;
  }
  const std::string& cpath = v4 ? a4.path : a6.path;
  auto cidr = checkCidr(v4 ? *v4 : *v6, at(cpath), diags_);
  if (!cidr) return std::nullopt;
  if (cidr->addr.isV4() != v4.has_value()) {
    error(cpath, r.address + ": '" + (v4 ? *v4 : *v6) + "': expected an " + (v4 ? "IPv4" : "IPv6") +
                     " CIDR");
    return std::nullopt;
  }
  e.cidr = *cidr;
  return e;
}

void TerraformLoader::loadAclRule(const Resource& r) {
  const Node n = rootNode(r);
  auto acl = named(r, n, "network_acl_id", RefKind::kAcl, acl_of_, "network ACL", "the entry");
  if (!acl) return;
  bool egress = false;
  auto e = aclEntry(r, n, true, egress);
  if (!e) return;
  e->loc = at(r.path);
  PendingAcl& pa = acls_[*acl];
  // A state lists the ACL's separate entries among its inline ones too: the same entry once.
  const Direction dir = egress ? Direction::kOutbound : Direction::kInbound;
  if (!pa.entries[static_cast<size_t>(dir)].insert(e->str(dir)).second) return;
  (egress ? pa.acl.outbound : pa.acl.inbound).push_back(std::move(*e));
}

void TerraformLoader::loadAclAssociation(const Resource& r) {
  const Node n = rootNode(r);
  auto acl =
      named(r, n, "network_acl_id", RefKind::kAcl, acl_of_, "network ACL", "the association");
  auto subnets = refs(r, n, "subnet_id", RefKind::kSubnet, "the association is left out");
  if (!acl || subnets.empty()) return;
  out_.acl_associations.push_back(AclAssociation{*acl, subnets[0].first, subnets[0].second});
}

// ---- subnets, interfaces, prefix lists ----

// The CIDRs of `cidr_block` (IPv4) and `ipv6_cidr_block` (aws_subnet, aws_vpc); "" is none.
std::vector<std::pair<Cidr, SourceLoc>> TerraformLoader::blockCidrs(const Resource& r,
                                                                    std::string_view what,
                                                                    std::string_view if_unknown) {
  std::vector<std::pair<Cidr, SourceLoc>> out;
  const Node n = rootNode(r);
  for (auto [key, v4] : {std::pair{std::string_view("cidr_block"), true},
                         std::pair{std::string_view("ipv6_cidr_block"), false}}) {
    const Attr a = attr(n, key);
    if (!a.value && a.unknown) {
      warnUnknown(r, a, if_unknown);
      continue;
    }
    auto text = str(r, a, "expected a CIDR");
    if (!text || text->empty()) continue;
    auto c = checkCidr(*text, at(a.path), diags_, what);
    if (!c) continue;
    if (c->addr.isV4() != v4) {
      error(a.path, r.address + ": '" + *text + "' in " + std::string(key) + ": expected an " +
                        (v4 ? "IPv4" : "IPv6") + " CIDR");
      continue;
    }
    out.emplace_back(*c, at(a.path));
  }
  return out;
}

void TerraformLoader::loadSubnet(const Resource& r) {
  PendingSubnet ps;
  Subnet& s = ps.subnet;
  s.loc = at(r.path);
  s.id = keyOf(r);
  s.name = objectName(r, "");
  if (auto v = member(r.values, "vpc_id"); v && v->is_string()) ps.vpc_id = v->get<std::string>();
  for (const auto& [c, loc] : blockCidrs(r, "subnet CIDR", "the subnet is loaded without it"))
    s.cidrs.push_back(c);
  if (s.cidrs.empty()) {
    warning(r.path, r.address + ": the subnet has no known CIDR; it is left out");
    return;
  }
  if (subnet_of_.count(s.id)) {
    error(r.path, r.address + ": a second subnet with id " + s.id);
    return;
  }
  subnet_of_[s.id] = subnets_.size();
  if (s.id != r.address) subnet_of_[r.address] = subnets_.size();
  subnets_.push_back(std::move(ps));
}

void TerraformLoader::loadInterface(const Resource& r, bool instance) {
  const Node n = rootNode(r);
  if (instance) {
    // An instance launched with an aws_network_interface at device 0: that resource is its
    // primary interface.
    for (const Node& b : blocks(r, "network_interface")) {
      auto idx = integer(r, attr(b, "device_index"), "expected a device index");
      if (idx && *idx == 0) return;
    }
  }
  PendingInterface pi;
  Interface& i = pi.iface;
  i.loc = at(r.path);
  i.id = keyOf(r);
  i.name = objectName(r, "");
  std::unordered_set<IpAddr, IpAddrHash> seen_addresses;
  auto addAddress = [&](const std::string& text, const SourceLoc& loc, bool v4) {
    if (text.empty()) return;
    auto a = IpAddr::parse(text);
    if (!a || a->isV4() != v4) {
      addError(diags_, loc,
               r.address + ": bad address '" + shorten(text, 60) + "': expected " +
                   (v4 ? "an IPv4" : "an IPv6") + " address");
      return;
    }
    if (seen_addresses.insert(*a).second) i.addresses.push_back(*a);
  };
  const char* const v4_keys[] = {"private_ip", instance ? "secondary_private_ips" : "private_ips",
                                 instance ? "" : "private_ip_list"};
  for (const char* key : v4_keys) {
    if (!*key) continue;
    for (auto& [text, loc] :
         refs(r, n, key, RefKind::kAddress, "the interface is loaded without it"))
      addAddress(text, loc, true);
  }
  for (auto& [text, loc] :
       refs(r, n, "ipv6_addresses", RefKind::kAddress, "the interface is loaded without it"))
    addAddress(text, loc, false);
  if (i.addresses.empty()) {
    warning(r.path, r.address +
                        ": the interface has no known address (AWS assigns it at apply); "
                        "it is left out");
    return;
  }
  for (auto& [s, loc] : refs(r, n, "subnet_id", RefKind::kSubnet, "no subnet")) {
    pi.subnet_key = s;
    pi.subnet_loc = loc;
  }
  const char* const groups_key = instance ? "vpc_security_group_ids" : "security_groups";
  const Attr groups_attr = attr(n, groups_key);
  auto groups = refs(r, n, groups_key, RefKind::kGroup,
                     "the VPC's default security group (AWS gives it to an interface launched "
                     "without groups), if this plan has it");
  if (groups.empty() && groups_attr.unknown) {
    if (auto def = defaultGroup(pi.subnet_key)) groups.emplace_back(*def, at(groups_attr.path));
  } else if (instance && groups.empty()) {
    // An instance outside a VPC names its groups (by name) in security_groups.
    groups = refs(r, n, "security_groups", RefKind::kGroup, "no security groups");
  }
  for (auto& [g, loc] : groups)
    i.groups.push_back(g);
  if (iface_of_.count(i.id)) {
    error(r.path, r.address + ": a second interface with id " + i.id);
    return;
  }
  iface_of_[i.id] = ifaces_.size();
  if (i.id != r.address) iface_of_[r.address] = ifaces_.size();
  ifaces_.push_back(std::move(pi));
}

std::optional<std::string> TerraformLoader::defaultGroup(const std::string& subnet_key) const {
  std::string vpc;
  if (auto s = subnet_of_.find(subnet_key); s != subnet_of_.end()) vpc = subnets_[s->second].vpc_id;
  const Resource* found = nullptr;
  for (const Resource* r : default_groups_) {
    const json* v = member(r->values, "vpc_id");
    if (!vpc.empty() && !(v && v->is_string() && *v == vpc)) continue;
    if (found) return std::nullopt;  // more than one: which is not known
    found = r;
  }
  if (!found) return std::nullopt;
  return keyOf(*found);
}

void TerraformLoader::loadSgAttachment(const Resource& r) {
  const Node n = rootNode(r);
  auto i = named(r, n, "network_interface_id", RefKind::kInterface, iface_of_, "network interface",
                 "the attachment");
  auto groups = refs(r, n, "security_group_id", RefKind::kGroup, "the attachment is left out");
  if (!i || groups.empty()) return;
  PendingInterface& pi = ifaces_[*i];
  if (pi.groups_seen.empty()) pi.groups_seen.insert(pi.iface.groups.begin(), pi.iface.groups.end());
  if (pi.groups_seen.insert(groups[0].first).second) pi.iface.groups.push_back(groups[0].first);
}

// The VPC's CIDRs: base + 2 of each is its Amazon DNS address (docs/design.md "Exempt traffic").
void TerraformLoader::loadVpc(const Resource& r) {
  auto& list = out_.policy.vpc_cidrs;
  for (const auto& [c, loc] :
       blockCidrs(r, "VPC CIDR", "its Amazon DNS address is not known to the policy")) {
    if (checkVpcCidr(c, loc, diags_) && std::find(list.begin(), list.end(), c) == list.end())
      list.push_back(c);
  }
}

void TerraformLoader::loadPrefixList(const Resource& r) {
  PrefixList pl;
  pl.loc = at(r.path);
  pl.id = keyOf(r);
  pl.name = objectName(r, "name");
  if (const json* n = member(r.values, "name");
      n && n->is_string() && !n->get_ref<const std::string&>().empty())
    pl.name = n->get<std::string>();  // as describe-managed-prefix-lists' PrefixListName
  if (pl_of_.count(pl.id)) {
    error(r.path, r.address + ": a second prefix list with id " + pl.id);
    return;
  }
  pl_of_[pl.id] = prefix_lists_.size();
  if (pl.id != r.address) pl_of_[r.address] = prefix_lists_.size();
  prefix_lists_.push_back(std::move(pl));
  pl_seen_.emplace_back();
  for (const Node& b : blocks(r, "entry")) {
    const Attr c = attr(b, "cidr");
    if (!c.value && c.unknown) {
      warnUnknown(r, c, "the entry is left out");
      continue;
    }
    auto text = str(r, c, "expected a CIDR such as 203.0.113.0/24");
    if (text) addPrefixListCidr(prefix_lists_.size() - 1, *text, at(c.path));
  }
}

// Each CIDR once: a state lists the entry resources among the list's own entries too.
void TerraformLoader::addPrefixListCidr(size_t pl, const std::string& text, const SourceLoc& loc) {
  auto c = checkCidr(text, loc, diags_);
  if (c && pl_seen_[pl].insert(c->str()).second) prefix_lists_[pl].cidrs.push_back(*c);
}

void TerraformLoader::loadPrefixListEntry(const Resource& r) {
  const Node n = rootNode(r);
  auto pl = named(r, n, "prefix_list_id", RefKind::kPrefixList, pl_of_, "prefix list", "the entry");
  if (!pl) return;
  for (auto& [text, loc] : refs(r, n, "cidr", RefKind::kCidr4, "the entry is left out"))
    addPrefixListCidr(*pl, text, loc);
}

// ---- the policy ----

int peerOrder(const Peer& p) {
  if (p.kind == PeerKind::kCidr) return p.cidr.addr.isV4() ? 0 : 1;
  return p.kind == PeerKind::kGroup ? 2 : 3;
}

void TerraformLoader::finish() {
  Policy& pol = out_.policy;
  for (auto& pl : prefix_lists_)
    pol.prefix_lists.push_back(std::move(pl));
  for (auto& pg : groups_) {
    const size_t owner = pol.groups.size();
    for (Direction dir : {Direction::kInbound, Direction::kOutbound}) {
      auto& pending = pg.rules[static_cast<size_t>(dir)];
      std::stable_sort(pending.begin(), pending.end(),
                       [](const PendingRule& a, const PendingRule& b) {
                         return matchKey(a.match) < matchKey(b.match);
                       });
      auto& rules = dir == Direction::kInbound ? pg.group.inbound : pg.group.outbound;
      for (auto& pr : pending) {
        // Peers as describe-security-groups lists them: IPv4, IPv6, groups, prefix lists; each
        // once (a state lists a separate rule's peers in the group's inline rules too).
        std::stable_sort(pr.peers.begin(), pr.peers.end(),
                         [](const PendingPeer& a, const PendingPeer& b) {
                           return peerOrder(a.peer) < peerOrder(b.peer);
                         });
        SgRule rule;
        rule.match = pr.match;
        rule.loc = pr.loc;
        std::vector<std::string> descriptions;
        std::unordered_set<std::string> peers_seen, descriptions_seen;
        for (auto& pp : pr.peers) {
          if (!peers_seen.insert(pp.peer.str()).second) continue;
          if (!pp.description.empty() && descriptions_seen.insert(pp.description).second)
            descriptions.push_back(pp.description);
          if (pp.peer.kind != PeerKind::kCidr) {
            out_.id_refs.push_back(IdRef{pp.peer.kind == PeerKind::kGroup
                                             ? IdRefKind::kGroupPeer
                                             : IdRefKind::kPrefixListPeer,
                                         owner, dir, rules.size(), rule.peers.size()});
          }
          rule.peers.push_back(std::move(pp.peer));
        }
        for (const auto& d : descriptions)
          rule.description += (rule.description.empty() ? "" : "; ") + d;
        rules.push_back(std::move(rule));
      }
    }
    pol.groups.push_back(std::move(pg.group));
  }
  // A subnet no ACL names is associated with its VPC's default ACL (AWS), when this plan has it.
  for (const auto& a : out_.acl_associations) {
    if (auto it = subnet_of_.find(a.subnet_id); it != subnet_of_.end())
      subnets_[it->second].associated = true;
  }
  std::unordered_map<std::string, std::vector<size_t>> subnets_of_vpc;
  for (size_t k = 0; k < subnets_.size(); ++k)
    if (!subnets_[k].associated) subnets_of_vpc[subnets_[k].vpc_id].push_back(k);
  for (size_t k = 0; k < acls_.size(); ++k) {
    if (!acls_[k].is_default || acls_[k].vpc_id.empty()) continue;
    auto it = subnets_of_vpc.find(acls_[k].vpc_id);
    if (it == subnets_of_vpc.end()) continue;
    for (size_t i : it->second) {
      PendingSubnet& sn = subnets_[i];
      if (sn.associated) continue;
      out_.acl_associations.push_back(AclAssociation{k, sn.subnet.id, sn.subnet.loc});
      sn.associated = true;
    }
  }
  for (auto& a : acls_)
    pol.acls.push_back(std::move(a.acl));
  for (auto& s : subnets_)
    pol.subnets.push_back(std::move(s.subnet));
  for (auto& pi : ifaces_) {
    const size_t index = pol.interfaces.size();
    for (size_t g = 0; g < pi.iface.groups.size(); ++g)
      out_.id_refs.push_back(IdRef{IdRefKind::kInterfaceGroup, index, Direction::kInbound, 0, g});
    if (!pi.subnet_key.empty())
      out_.interface_subnets.push_back(InterfaceSubnet{index, pi.subnet_key, pi.subnet_loc});
    pol.interfaces.push_back(std::move(pi.iface));
  }
}

void TerraformLoader::load(const json& doc, std::optional<TerraformValues> selector) {
  const bool prior = selector == TerraformValues::kPrior;
  const bool plan = doc.contains("planned_values") || doc.contains("resource_changes") ||
                    doc.contains("prior_state") || doc.contains("configuration");
  const json* values = nullptr;
  std::string path;
  if (!plan) {
    if (selector) {
      error("", std::string(prior ? "'#prior'" : "'#planned'") + " selects a plan's " +
                    (prior ? "prior state" : "planned values") +
                    ", and this is a state (no planned_values): load it without the suffix");
      return;
    }
    values = member(&doc, "values");
    path = "values";
    if (!values) warning("", "the state has no values: it defines nothing");
  } else if (prior) {
    const json* ps = member(&doc, "prior_state");
    values = member(ps, "values");
    path = "prior_state.values";
    if (!values)
      warning("",
              "the plan has no prior_state (nothing exists before it is applied): the policy "
              "it gives is empty");
  } else {
    values = member(&doc, "planned_values");
    path = "planned_values";
    if (!values) warning("", "the plan has no planned_values: it defines nothing");
  }
  if (!values) return;
  if (!values->is_object()) {
    error(path, "expected an object, found " + describeJson(*values));
    return;
  }
  // after_unknown per resource address (planned values only).
  std::map<std::string, const json*> unknowns;
  if (!prior && plan) {
    if (const json* changes = member(&doc, "resource_changes"); changes && changes->is_array()) {
      for (const auto& c : *changes) {
        const json* addr = member(&c, "address");
        const json* u = member(member(&c, "change"), "after_unknown");
        if (addr && addr->is_string() && u && !member(&c, "deposed"))
          unknowns[addr->get<std::string>()] = u;
      }
    }
    if (const json* root = member(member(&doc, "configuration"), "root_module"))
      indexConfig(root, "configuration.root_module", config_, 0);
  }
  const json* root = member(values, "root_module");
  if (!root) return;
  walkModule(*root, keyPath(path, "root_module"), "", unknowns, 0);

  // Objects first (rules and attachments refer to them), then what refers to them.
  for (const auto& r : resources_) {
    if (r.type == "aws_ec2_managed_prefix_list") loadPrefixList(r);
    if (r.type == "aws_security_group" || r.type == "aws_default_security_group") loadGroup(r);
    if (r.type == "aws_subnet") loadSubnet(r);
    if (r.type == "aws_vpc") loadVpc(r);
  }
  for (const auto& r : resources_) {
    if (r.type == "aws_network_acl" || r.type == "aws_default_network_acl") loadAcl(r);
    if (r.type == "aws_network_interface") loadInterface(r, false);
    if (r.type == "aws_instance") loadInterface(r, true);
    if (r.type == "aws_ec2_managed_prefix_list_entry") loadPrefixListEntry(r);
  }
  for (const auto& r : resources_) {
    if (r.type == "aws_security_group" || r.type == "aws_default_security_group") {
      auto it = group_of_.find(r.address);
      if (it == group_of_.end()) continue;  // not loaded (reported)
      const size_t g = it->second;
      for (auto [key, dir] : {std::pair{std::string_view("ingress"), Direction::kInbound},
                              std::pair{std::string_view("egress"), Direction::kOutbound}}) {
        for (const Node& b : blocks(r, key)) {
          auto m = sgMatch(r, b, "protocol");
          if (!m) continue;
          std::vector<PendingPeer> peers;
          sgPeers(r, b, g, peers, true);
          if (peers.empty()) {
            warning(b.path, r.address + ": " + b.rel + " has no peer; it allows nothing");
            continue;
          }
          addRule(r, g, dir, *m, std::move(peers), at(b.path));
        }
      }
    }
    if (r.type == "aws_security_group_rule") loadSgRule(r);
    if (r.type == "aws_vpc_security_group_ingress_rule") loadVpcSgRule(r, Direction::kInbound);
    if (r.type == "aws_vpc_security_group_egress_rule") loadVpcSgRule(r, Direction::kOutbound);
    if (r.type == "aws_network_acl_rule") loadAclRule(r);
    if (r.type == "aws_network_acl_association") loadAclAssociation(r);
    if (r.type == "aws_network_interface_sg_attachment") loadSgAttachment(r);
  }
  finish();
}

}  // namespace

std::optional<TerraformValues> terraformSelector(std::string_view name) {
  if (name.ends_with("#prior")) return TerraformValues::kPrior;
  if (name.ends_with("#planned")) return TerraformValues::kPlanned;
  return std::nullopt;
}

bool tryLoadTerraformJson(const std::string& file, const std::string& text, Fragment& out,
                          Diagnostics& diags) {
  const bool bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0;
  const size_t first = text.find_first_not_of(" \t\r\n", bom ? 3 : 0);
  if (first == std::string::npos || text[first] != '{') return false;
  const bool looks_tf = text.find("\"format_version\"") != std::string::npos ||
                        text.find("\"terraform_version\"") != std::string::npos;
  const auto selector = terraformSelector(file);
  if (!looks_tf && !selector) return false;
  std::optional<Diagnostic> parse_error;
  std::optional<json> doc = parseJsonText(file, text, parse_error);
  if (!doc) {
    if (!selector && !(text.find("\"format_version\"") != std::string::npos &&
                       text.find("\"terraform_version\"") != std::string::npos))
      return false;
    diags.push_back(std::move(*parse_error));
    return true;
  }
  if (!doc->is_object()) return false;
  const json* version = member(&*doc, "format_version");
  if (!version) {
    // terraform.tfstate itself (version 4, lineage, resources[].instances[]).
    if (doc->contains("lineage") && doc->contains("resources")) {
      addError(diags, SourceLoc{file, 0, 0, {}},
               "a Terraform state file (terraform.tfstate): expected the JSON of `terraform show "
               "-json` (run: terraform show -json > state.json)");
      return true;
    }
    if (!selector) return false;
  }
  if (!version || !version->is_string() ||
      version->get_ref<const std::string&>().rfind("1.", 0) != 0) {
    addError(diags, SourceLoc{file, 0, 0, "format_version"},
             "unsupported format_version " +
                 (version ? describeJson(*version) : std::string("(none)")) +
                 ": expected the JSON of `terraform show -json`, format 1.x");
    return true;
  }
  try {
    TerraformLoader(file, out, diags).load(*doc, selector);
  } catch (const std::exception& e) {
    addError(diags, SourceLoc{file, 0, 0, {}},
             std::string("cannot read Terraform JSON: ") + e.what());
  }
  return true;
}

}  // namespace statewall::rules::internal
