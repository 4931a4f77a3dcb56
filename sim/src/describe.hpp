// Names and texts of rules, ACL entries and interfaces, precomputed once per policy for the
// replay's outputs (so the per-packet path only copies bytes).
#pragma once

#include <string>
#include <vector>

#include "statewall/dataplane/engine.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::sim::detail {

class PolicyTexts {
 public:
  explicit PolicyTexts(const rules::CompiledPolicy& p);

  // "web inbound[0]"
  const std::string& ruleLabel(rules::RuleId r) const { return rule_label_[r]; }
  // {"group":"web","direction":"inbound","index":0,"text":"tcp 443 from 0.0.0.0/0, ::/0"}
  const std::string& ruleJson(rules::RuleId r) const { return rule_json_[r]; }
  // "public-acl inbound rule 90" / "public-acl inbound rule *"
  const std::string& aclLabel(rules::AclEntryId e) const { return acl_label_[e]; }
  // {"acl":"public-acl","direction":"inbound","number":90,"action":"deny","text":"..."}
  const std::string& aclJson(rules::AclEntryId e) const { return acl_json_[e]; }
  // {"interface":"web-1","direction":"inbound","groups":["web"]}
  const std::string& ifaceJson(rules::IfaceId i, rules::Direction d) const {
    return iface_json_[i * 2 + static_cast<size_t>(d)];
  }
  // "no inbound rule of web-1 (groups web) allows it"
  const std::string& ifaceDeny(rules::IfaceId i, rules::Direction d) const {
    return iface_deny_[i * 2 + static_cast<size_t>(d)];
  }
  size_t ruleCount() const { return rule_label_.size(); }
  size_t aclEntryCount() const { return acl_label_.size(); }
  size_t ifaceCount() const { return iface_json_.size() / 2; }

  // The human description of a verdict (see Replay::describe). `conn_number`: the connection's
  // number in the run (#N), never the engine's id; 0 when unknown ("a tracked connection").
  std::string describe(const dataplane::Verdict& v, uint64_t conn_number = 0) const;
  // Only what decided it, without the reason code: "no inbound rule of web-1 ... allows it".
  std::string detail(const dataplane::Verdict& v, uint64_t conn_number = 0) const;

 private:
  std::vector<std::string> rule_label_, rule_json_, acl_label_, acl_json_, iface_json_, iface_deny_;
  std::vector<std::string> rule_text_, acl_text_;
};

}  // namespace statewall::sim::detail
