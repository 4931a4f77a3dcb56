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

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/files.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

// What a policy may hold, so that no input (a file, an API body, a YAML alias bomb) can take
// the process's memory or time: each limit exceeded is an error naming the limit and where it
// was exceeded (README "Limits").
inline constexpr size_t kMaxPolicyFileBytes = size_t{32} << 20;  // one policy or expect file
// YAML nodes a document expands to, each alias counted as the whole node it names.
inline constexpr size_t kMaxYamlNodes = 2'000'000;
inline constexpr int kMaxYamlDepth = 64;  // nested mappings and lists (the format needs 6)
inline constexpr size_t kMaxPolicyRules = 500'000;  // security-group rules plus ACL entries
// Rule peers, prefix-list entries, subnet CIDRs and interface addresses together.
inline constexpr size_t kMaxPolicyCidrs = 1'000'000;
inline constexpr size_t kMaxPolicyGroups = 65'535;      // as many as the compiler numbers
inline constexpr size_t kMaxPolicyInterfaces = 65'534;  // the same for interfaces, subnets,
inline constexpr size_t kMaxPolicySubnets = 65'534;     // network ACLs and prefix lists
inline constexpr size_t kMaxPolicyAcls = 65'534;
inline constexpr size_t kMaxPolicyPrefixLists = 65'535;

// The length of the longest prefix of `text` that is well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF); text.size() when all of it is.
size_t validUtf8Prefix(std::string_view text);

// `text` with each byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD (for
// messages that quote input, e.g. a JSON parser's "last read" bytes cut inside a character).
std::string replaceInvalidUtf8(std::string_view text);

// The error for a text that is not UTF-8 ("NAME:LINE:COL: invalid UTF-8 at byte N (0xFF): ..."),
// or nullopt when it is. The loaders apply it to every document.
std::optional<Diagnostic> utf8Error(const std::string& name, std::string_view text);

struct LoadResult {
  std::optional<Policy> policy;  // set only when there are no errors
  Diagnostics diagnostics;       // all errors and warnings, in file order (input order, then line)

  bool ok() const { return policy.has_value(); }
};

// Reads, parses, merges and validates the given files. A file that cannot be read, or is larger
// than kMaxPolicyFileBytes, is an error; so is a file that is not UTF-8 (every name, description
// and key is text).
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
