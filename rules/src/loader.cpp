// Reads the documents, detects their format, merges what they define, resolves AWS ids to names
// and validates the whole policy. A policy is returned only when nothing is an error.
#include "statewall/rules/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "loader_internal.hpp"

namespace statewall::rules {
namespace {

using internal::addError;
using internal::addWarning;
using internal::Fragment;
using internal::IdRefKind;

struct Merged {
  Policy policy;
  std::optional<SourceLoc> timeouts_at, unprotected_at, strict_at, exempt_at;
  std::vector<internal::IdRef> id_refs;
  std::vector<internal::AclAssociation> acl_associations;
  std::vector<internal::InterfaceSubnet> interface_subnets;
};

// A policy-wide setting may come from one document only.
bool takeSetting(const std::optional<SourceLoc>& given, std::optional<SourceLoc>& first,
                 std::string_view what, Diagnostics& diags) {
  if (!given) return false;
  if (first) {
    addError(diags, *given,
             std::string(what) + " is set again (first at " + first->str() +
                 "): expected it in one file only");
    return false;
  }
  first = given;
  return true;
}

template <typename T>
void append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

void merge(Fragment& f, Merged& m, Diagnostics& diags) {
  if (takeSetting(f.timeouts_at, m.timeouts_at, "timeouts", diags)) {
    m.policy.timeouts = f.policy.timeouts;
  }
  if (takeSetting(f.unprotected_at, m.unprotected_at, "unprotected", diags)) {
    m.policy.unprotected_allow = f.policy.unprotected_allow;
  }
  if (takeSetting(f.strict_at, m.strict_at, "strict", diags)) {
    m.policy.strict = f.policy.strict;
  }
  if (takeSetting(f.exempt_at, m.exempt_at, "exempt", diags)) {
    m.policy.exempt = f.policy.exempt;
  }
  // VPC CIDRs from every document (YAML vpc_cidrs, describe-vpcs), each once.
  for (const Cidr& c : f.policy.vpc_cidrs) {
    if (std::find(m.policy.vpc_cidrs.begin(), m.policy.vpc_cidrs.end(), c) ==
        m.policy.vpc_cidrs.end()) {
      m.policy.vpc_cidrs.push_back(c);
    }
  }
  const size_t group0 = m.policy.groups.size();
  const size_t iface0 = m.policy.interfaces.size();
  const size_t acl0 = m.policy.acls.size();
  for (auto r : f.id_refs) {
    r.owner += r.kind == IdRefKind::kInterfaceGroup ? iface0 : group0;
    m.id_refs.push_back(r);
  }
  for (auto& a : f.acl_associations) {
    a.acl += acl0;
    m.acl_associations.push_back(std::move(a));
  }
  for (auto& s : f.interface_subnets) {
    s.iface += iface0;
    m.interface_subnets.push_back(std::move(s));
  }
  append(m.policy.prefix_lists, f.policy.prefix_lists);
  append(m.policy.groups, f.policy.groups);
  append(m.policy.acls, f.policy.acls);
  append(m.policy.subnets, f.policy.subnets);
  append(m.policy.interfaces, f.policy.interfaces);
}

template <typename T>
std::unordered_map<std::string, size_t> indexById(const std::vector<T>& items) {
  std::unordered_map<std::string, size_t> ids;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].id.empty())
      ids.emplace(items[i].id, i);  // the first wins; duplicates are
                                    // reported by validatePolicy()
  }
  return ids;
}

// Replaces AWS ids by names, and links ACL associations to subnets. Ids that nothing defines
// stay as they are; validatePolicy() reports them as unknown references.
void resolve(Merged& m, Diagnostics& diags) {
  Policy& p = m.policy;
  auto groups = indexById(p.groups);
  auto prefix_lists = indexById(p.prefix_lists);
  auto subnets = indexById(p.subnets);

  for (const auto& r : m.id_refs) {
    std::string* name = nullptr;
    if (r.kind == IdRefKind::kInterfaceGroup) {
      name = &p.interfaces[r.owner].groups[r.item];
    } else {
      auto& g = p.groups[r.owner];
      auto& rules = r.dir == Direction::kInbound ? g.inbound : g.outbound;
      name = &rules[r.rule].peers[r.item].name;
    }
    const auto& ids = r.kind == IdRefKind::kPrefixListPeer ? prefix_lists : groups;
    if (auto it = ids.find(*name); it != ids.end()) {
      *name = r.kind == IdRefKind::kPrefixListPeer ? p.prefix_lists[it->second].name
                                                   : p.groups[it->second].name;
    }
  }

  for (const auto& a : m.acl_associations) {
    const NetworkAcl& acl = p.acls[a.acl];
    auto it = subnets.find(a.subnet_id);
    if (it == subnets.end()) {
      addWarning(diags, a.loc,
                 "network ACL '" + acl.name + "' is associated with " + a.subnet_id +
                     ", which no loaded describe-subnets output contains; the association is "
                     "ignored");
      continue;
    }
    Subnet& s = p.subnets[it->second];
    if (s.acl.empty()) {
      s.acl = acl.name;
    } else if (s.acl != acl.name) {
      addError(diags, a.loc,
               "subnet '" + s.name + "' is associated with two network ACLs, '" + s.acl +
                   "' and '" + acl.name + "': expected one");
    }
  }

  for (const auto& is : m.interface_subnets) {
    auto it = subnets.find(is.subnet_id);
    if (it == subnets.end()) continue;
    const Subnet& s = p.subnets[it->second];
    const Interface& iface = p.interfaces[is.iface];
    for (const auto& addr : iface.addresses) {
      bool family_seen = false, inside = false;
      for (const auto& c : s.cidrs) {
        family_seen = family_seen || c.family() == addr.family;
        inside = inside || c.contains(addr);
      }
      if (family_seen && !inside) {
        addWarning(diags, is.loc,
                   "address " + addr.str() + " of interface '" + iface.name +
                       "' is outside its subnet '" + s.name +
                       "'; it is filtered by the subnet "
                       "that holds it, if any");
      }
    }
  }
}

// File order: the input order of the documents, then line and column within one.
void sortDiagnostics(const std::vector<std::string>& files, Diagnostics& diags) {
  std::unordered_map<std::string, size_t> order;
  for (size_t i = 0; i < files.size(); ++i)
    order.emplace(files[i], i);
  auto key = [&](const Diagnostic& d) {
    auto it = order.find(d.loc.file);
    return std::make_tuple(it == order.end() ? files.size() : it->second, d.loc.line, d.loc.col);
  };
  std::stable_sort(diags.begin(), diags.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
}

// Line and column (1-based, the column in characters) of a byte offset of valid UTF-8 text.
std::pair<int, int> lineColumn(std::string_view text, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      col = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++col;  // a continuation byte is part of the character before it
    }
  }
  return {line, col};
}

// How many of one kind of object the policy may hold (loader.hpp), and where the first one
// beyond the limit is.
class LimitCounter {
 public:
  LimitCounter(std::string_view what, size_t limit, Diagnostics& diags)
      : what_(what), limit_(limit), diags_(diags) {}
  // Counts `n` more objects at `loc`; false once the limit is exceeded (reported once).
  bool add(size_t n, const SourceLoc& loc) {
    if (count_ > limit_) return false;
    count_ += n;
    if (count_ <= limit_) return true;
    addError(diags_, loc,
             "the policy has more than " + std::to_string(limit_) + " " + std::string(what_) +
                 ": expected at most " + std::to_string(limit_));
    return false;
  }
  bool ok() const { return count_ <= limit_; }

 private:
  std::string_view what_;
  size_t limit_;
  size_t count_ = 0;
  Diagnostics& diags_;
};

// The limits on objects (loader.hpp) over the merged policy; false when one is exceeded.
bool checkLimits(const Policy& p, Diagnostics& diags) {
  LimitCounter rules("rules (security-group rules and network-ACL entries together)",
                     kMaxPolicyRules, diags);
  LimitCounter cidrs(
      "CIDRs and addresses (rule peers, prefix-list entries, subnet CIDRs and "
      "interface addresses together)",
      kMaxPolicyCidrs, diags);
  LimitCounter groups("security groups", kMaxPolicyGroups, diags);
  LimitCounter ifaces("interfaces", kMaxPolicyInterfaces, diags);
  LimitCounter subnets("subnets", kMaxPolicySubnets, diags);
  LimitCounter acls("network ACLs", kMaxPolicyAcls, diags);
  LimitCounter pls("prefix lists", kMaxPolicyPrefixLists, diags);
  for (const auto& g : p.groups) {
    groups.add(1, g.loc);
    for (const auto* list : {&g.inbound, &g.outbound}) {
      for (const auto& r : *list) {
        rules.add(1, r.loc);
        for (const auto& peer : r.peers)
          cidrs.add(1, peer.loc.file.empty() ? r.loc : peer.loc);
      }
    }
  }
  for (const auto& a : p.acls) {
    acls.add(1, a.loc);
    for (const auto* list : {&a.inbound, &a.outbound})
      for (const auto& e : *list)
        rules.add(1, e.loc);
  }
  for (const auto& pl : p.prefix_lists) {
    pls.add(1, pl.loc);
    cidrs.add(pl.cidrs.size(), pl.loc);
  }
  for (const auto& s : p.subnets) {
    subnets.add(1, s.loc);
    cidrs.add(s.cidrs.size(), s.loc);
  }
  for (const auto& i : p.interfaces) {
    ifaces.add(1, i.loc);
    cidrs.add(i.addresses.size(), i.loc);
  }
  return rules.ok() && cidrs.ok() && groups.ok() && ifaces.ok() && subnets.ok() && acls.ok() &&
         pls.ok();
}

LoadResult loadDocuments(const std::vector<const SourceText*>& docs,
                         const std::vector<std::string>& files, Diagnostics diags) {
  LoadResult result;
  Merged m;
  m.policy.files = files;
  if (files.empty()) {
    addError(diags, SourceLoc{"policy", 0, 0, {}}, "no policy files given: expected at least one");
  }
  for (const SourceText* doc : docs) {
    Fragment f;
    const std::string& t = doc->text;
    if (t.size() >= 2 &&
        ((t[0] == '\xFF' && t[1] == '\xFE') || (t[0] == '\xFE' && t[1] == '\xFF'))) {
      // PowerShell's '>' writes UTF-16; neither parser reads it.
      addError(diags, SourceLoc{doc->name, 1, 1, {}},
               "the file is UTF-16 encoded: expected UTF-8 (convert it with iconv -f UTF-16 -t "
               "UTF-8, or write it with Out-File -Encoding utf8)");
    } else if (auto bad = utf8Error(doc->name, t)) {
      // Not parsed: every string of a policy (names, descriptions, keys) is text, and every
      // message and output would otherwise have to carry the bad bytes.
      diags.push_back(std::move(*bad));
    } else if (!internal::tryLoadTerraformJson(doc->name, doc->text, f, diags)) {
      if (internal::terraformSelector(doc->name)) {
        addError(diags, SourceLoc{doc->name, 0, 0, {}},
                 "'#prior' and '#planned' select the values of a Terraform plan (terraform show "
                 "-json), and this file is not one");
      } else if (!internal::tryLoadAwsJson(doc->name, doc->text, f, diags)) {
        internal::loadYaml(doc->name, doc->text, f, diags);
      }
    }
    merge(f, m, diags);
  }
  if (!checkLimits(m.policy, diags)) {
    // Nothing more is checked on a policy this size; its errors are those above.
    sortDiagnostics(files, diags);
    result.diagnostics = std::move(diags);
    return result;
  }
  resolve(m, diags);
  validatePolicy(m.policy, diags);
  sortDiagnostics(files, diags);
  if (!hasErrors(diags)) result.policy = std::move(m.policy);
  result.diagnostics = std::move(diags);
  return result;
}

}  // namespace

std::optional<Diagnostic> utf8Error(const std::string& name, std::string_view text) {
  const size_t bad = validUtf8Prefix(text);
  if (bad == text.size()) return std::nullopt;
  auto [line, col] = lineColumn(text, bad);
  std::string bytes;
  // The bad byte and the non-ASCII bytes right after it (at most 4).
  for (size_t i = bad; i < text.size() && i < bad + 4; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (i > bad && c < 0x80) break;
    char hex[8];
    std::snprintf(hex, sizeof hex, "%s0x%02X", bytes.empty() ? "" : " ", c);
    bytes += hex;
  }
  return Diagnostic{Severity::kError, SourceLoc{name, line, col, {}},
                    "invalid UTF-8 at byte " + std::to_string(bad) + " (" + bytes +
                        "): expected UTF-8 text (names, descriptions and keys are text; convert "
                        "the file, e.g. iconv -f LATIN1 -t UTF-8)"};
}

size_t validUtf8Prefix(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return n;
}

std::string replaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t ok = validUtf8Prefix(text);
    out.append(text.substr(0, ok));
    if (ok == text.size()) break;
    out.append("\xEF\xBF\xBD");  // U+FFFD for the byte that breaks the sequence
    text.remove_prefix(ok + 1);
  }
  return out;
}

LoadResult loadPolicyTexts(const std::vector<SourceText>& docs) {
  std::vector<const SourceText*> ptrs;
  std::vector<std::string> files;
  for (const auto& d : docs) {
    ptrs.push_back(&d);
    files.push_back(d.name);
  }
  return loadDocuments(ptrs, files, {});
}

LoadResult loadPolicyFiles(const std::vector<std::string>& paths) {
  std::vector<SourceText> texts;
  Diagnostics diags;
  texts.reserve(paths.size());
  for (const auto& path : paths) {
    // plan.json#prior names plan.json (unless a file has that very name).
    std::string read_path = path;
    if (auto sel = internal::terraformSelector(path); sel && !std::filesystem::exists(path)) {
      read_path = path.substr(0, path.rfind('#'));
    }
    auto text = readFileCapped(read_path, kMaxPolicyFileBytes);
    if (!text) {
      addError(diags, SourceLoc{path, 0, 0, {}}, text.message());
      continue;
    }
    texts.push_back(SourceText{path, std::move(*text)});
  }
  std::vector<const SourceText*> ptrs;
  for (const auto& t : texts)
    ptrs.push_back(&t);
  return loadDocuments(ptrs, paths, std::move(diags));
}

}  // namespace statewall::rules
