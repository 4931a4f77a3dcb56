// Loading and validating a policy from the project's YAML format and from the JSON printed by
// `aws ec2 describe-security-groups`, `describe-network-acls`, `describe-network-interfaces` and
// `describe-subnets` (plus an optional prefix-list document, see below).
//
// Several files together form one policy; they may mix formats, in any order. The format of each
// file is detected from its content: a JSON object with any of the keys SecurityGroups,
// NetworkAcls, NetworkInterfaces, Subnets or PrefixLists is AWS JSON; anything else is YAML.
//
// AWS JSON references prefix lists only by id (pl-...). Their entries come from a fifth document
// shaped like the output of describe-managed-prefix-lists merged with
// get-managed-prefix-list-entries:
//   {"PrefixLists": [{"PrefixListId": "pl-...", "PrefixListName": "office",
//                     "Entries": [{"Cidr": "203.0.113.0/24"}]}]}
// A prefix-list id that no loaded document defines is an error.
//
// A policy loads whole or not at all: `policy` is set only when no diagnostic is an error.
// All functions here are pure (no global state) and may be called from any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

struct LoadResult {
  std::optional<Policy> policy;  // set only when there are no errors
  Diagnostics diagnostics;       // all errors and warnings, in file order (input order, then line)

  bool ok() const { return policy.has_value(); }
};

// Reads, parses, merges and validates the given files. A file that cannot be read is an error.
LoadResult loadPolicyFiles(const std::vector<std::string>& paths);

// The same from in-memory documents; `name` stands for the file name in every message.
struct SourceText {
  std::string name;
  std::string text;
};
LoadResult loadPolicyTexts(const std::vector<SourceText>& docs);

// Whole-policy checks on an already parsed Policy whose references are names (what both loaders
// produce): duplicate names and addresses, unknown group / prefix-list / ACL references, more
// than kMaxGroupsPerInterface groups, ACL rule numbers out of 1..32766 or repeated in one
// direction, overlapping subnets, timeouts. Sorts each ACL direction by rule number.
// Appends to `diags`; returns true when it added no error.
bool validatePolicy(Policy& policy, Diagnostics& diags);

}  // namespace statewall::rules
