// `statewall diff --policy OLD --against NEW` without a trace: what changed between two policies,
// rule by rule, matched up even when rules were reordered or renumbered.
//
// Objects are matched by name (groups, ACLs, subnets, interfaces, prefix lists). Within a group
// direction, rules are matched first by content (protocol, ports or ICMP type/code, and the set
// of peers, order ignored; group and prefix-list references by name), then a rule whose match or
// whose peers alone changed is paired with its old version as "changed". ACL entries are matched
// by content first (a moved entry is "renumbered"), then by rule number.
//
// For every group direction and ACL direction that changed, and every interface and subnet
// whose allowed packets changed, `effects` says whether what it allows changed at all
// (computed exactly, rules/lint.hpp), and what was gained and lost: a reorder of security-group
// rules changes nothing; a renumbering of ACL entries may.
//
// Pure; may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/diagnostic.hpp"

namespace statewall::rules {

enum class ChangeKind : uint8_t { kAdded, kRemoved, kChanged, kMoved };
std::string_view changeKindName(ChangeKind k);  // "added", "removed", "changed", "moved"

enum class ObjectKind : uint8_t {
  kSetting,
  kPrefixList,
  kGroup,
  kRule,  // a security-group rule
  kAcl,
  kAclEntry,
  kSubnet,
  kInterface,
};
std::string_view objectKindName(ObjectKind k);  // "setting", "prefix list", "group", "rule", ...

struct PolicyChange {
  ChangeKind kind = ChangeKind::kChanged;
  ObjectKind object = ObjectKind::kRule;
  std::string name;    // the object: group, ACL, subnet, interface, prefix list or setting name
  std::string scope;   // "group web inbound", "network ACL public-acl inbound", "interface web-1"
  std::string before;  // the old text (empty when added)
  std::string after;   // the new text (empty when removed)
  std::string detail;  // what changed: "ports 22 -> 2222", "peers +10.0.0.0/8 -pl:office", ...
  SourceLoc old_loc;
  SourceLoc new_loc;
  RuleId old_rule = kNoRule;  // kRule: the rule in each policy
  RuleId new_rule = kNoRule;
  AclEntryId old_entry = kNoAclEntry;  // kAclEntry: the entry in each policy
  AclEntryId new_entry = kNoAclEntry;

  std::string str() const;  // "changed rule in group web inbound: ... -> ... (detail)"
};

// Whether what a group direction, an ACL direction, an interface's groups or a subnet's ACL
// allow changed, exactly (group references expand to each policy's own members).
struct ScopeEffect {
  std::string scope;      // "group web inbound", "network ACL a outbound", "interface web-1
                          // inbound" (its groups), "subnet s1 inbound" (its ACL)
  bool same = true;       // allows exactly the same packets as before
  bool narrower = false;  // something allowed before no longer is
  bool wider = false;     // something is allowed that was not
  std::string gained;     // PacketSet::str() of what is newly allowed ("nothing" when none)
  std::string lost;       // of what is no longer allowed
};

struct PolicyDiff {
  std::vector<PolicyChange> changes;  // settings, prefix lists, groups and rules, ACLs and
                                      // entries, subnets, interfaces; in that order
  std::vector<ScopeEffect> effects;

  bool empty() const { return changes.empty(); }
  size_t count(ChangeKind k) const;
  // Does the new policy allow less anywhere: an interface's groups or a subnet's ACL allow
  // fewer packets, or an interface is gone?
  bool narrows() const;
};

PolicyDiff diffPolicies(const CompiledPolicy& old_policy, const CompiledPolicy& new_policy);

}  // namespace statewall::rules
