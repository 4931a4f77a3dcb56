// The JSON of a rule and of an ACL entry, the same in every output (README, "JSON schema of a rule
// and an ACL entry"). Templates over the JSON type so that rules/ does not impose one: callers pass
// nlohmann::json or nlohmann::ordered_json and may append keys of their own (id, hits, location).
#pragma once

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

// {"group":"web","direction":"inbound","index":0,"text":"tcp 443 from 0.0.0.0/0, ::/0"}
template <class Json>
Json ruleJson(const RuleInfo& r) {
  return Json{{"group", r.group_name},
              {"direction", directionName(r.dir)},
              {"index", r.index},
              {"text", r.text}};
}

// {"acl":"public-acl","direction":"inbound","number":90,"action":"deny","text":"..."}; the
// final default entry has "number":"*".
template <class Json>
Json aclEntryJson(const AclEntryInfo& e) {
  return Json{{"acl", e.acl_name},
              {"direction", directionName(e.dir)},
              {"number", e.rule_number == 0 ? Json("*") : Json(e.rule_number)},
              {"action", e.allow ? "allow" : "deny"},
              {"text", e.text}};
}

}  // namespace statewall::rules
