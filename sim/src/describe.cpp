#include "describe.hpp"

#include "statewall/flowlog/flow_log.hpp"

#include <fmt/format.h>

#include "out_file.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::sim::detail {

using dataplane::Reason;

PolicyTexts::PolicyTexts(const rules::CompiledPolicy& p) {
  for (rules::RuleId r = 0; r < p.ruleCount(); ++r) {
    const rules::RuleInfo& ri = p.rule(r);
    std::string_view dir = rules::directionName(ri.dir);
    rule_label_.push_back(rules::ruleLabel(ri));
    rule_text_.push_back(ri.text);
    rule_json_.push_back(fmt::format(R"({{"group":{},"direction":"{}","index":{},"text":{}}})",
                                     jsonString(ri.group_name), dir, ri.index,
                                     jsonString(ri.text)));
  }
  for (rules::AclEntryId e = 0; e < p.aclEntryCount(); ++e) {
    const rules::AclEntryInfo& ai = p.aclEntry(e);
    std::string_view dir = rules::directionName(ai.dir);
    acl_label_.push_back(rules::aclEntryLabel(ai));
    acl_text_.push_back(ai.text);
    std::string number = ai.rule_number == 0 ? "\"*\"" : std::to_string(ai.rule_number);
    acl_json_.push_back(fmt::format(
        R"({{"acl":{},"direction":"{}","number":{},"action":"{}","text":{}}})",
        jsonString(ai.acl_name), dir, number, ai.allow ? "allow" : "deny", jsonString(ai.text)));
  }
  for (rules::IfaceId i = 0; i < p.ifaceCount(); ++i) {
    const rules::InterfaceInfo& ii = p.iface(i);
    std::string groups_json, groups_text;
    for (const auto& g : ii.group_names) {
      groups_json += (groups_json.empty() ? "" : ",") + jsonString(g);
      groups_text += (groups_text.empty() ? "" : ", ") + g;
    }
    for (auto d : {rules::Direction::kInbound, rules::Direction::kOutbound}) {
      std::string_view dir = rules::directionName(d);
      iface_json_.push_back(fmt::format(R"({{"interface":{},"direction":"{}","groups":[{}]}})",
                                        jsonString(ii.name), dir, groups_json));
      iface_deny_.push_back(fmt::format("no {} rule of {} (groups {}) allows it", dir, ii.name,
                                        groups_text.empty() ? "none" : groups_text));
    }
  }
}

std::string PolicyTexts::detail(const dataplane::Verdict& v, uint64_t conn_number) const {
  const std::string conn =
      conn_number != 0 ? fmt::format("connection #{}", conn_number) : "a tracked connection";
  auto rule = [&]() -> std::string {
    if (v.rule == rules::kNoRule || v.rule >= rule_label_.size()) return "";
    return fmt::format("{} \"{}\"", rule_label_[v.rule], rule_text_[v.rule]);
  };
  switch (v.reason) {
    case Reason::kAllowRule:
    case Reason::kAllowUntracked: {
      std::string r = rule();
      return r.empty() ? "allowed by the rules" : "by " + r;
    }
    case Reason::kAllowTracked: {
      std::string r = rule();
      return fmt::format("{}{}", conn, r.empty() ? "" : ", opened by " + r);
    }
    case Reason::kAllowRelated:
      return fmt::format("ICMP error about {}", conn);
    case Reason::kAllowUnprotected:
      return "neither address is protected";
    case Reason::kAllowExempt:
      return fmt::format("{} ({}): security groups do not filter it",
                         rules::exemptionWords(v.exemption), rules::exemptionName(v.exemption));
    case Reason::kDenySg:
      if (v.deny_iface != rules::kNoIface && v.deny_iface < ifaceCount()) {
        return ifaceDeny(v.deny_iface, v.deny_dir);
      }
      return "no security-group rule allows it";
    case Reason::kDenyAcl:
      if (v.acl_entry != rules::kNoAclEntry && v.acl_entry < acl_label_.size()) {
        return fmt::format("{} \"{}\"", acl_label_[v.acl_entry], acl_text_[v.acl_entry]);
      }
      return "a network ACL denies it";
    case Reason::kDenyInvalid:
      return v.why != nullptr ? v.why : "invalid for the TCP state machine";
    case Reason::kDenyTableFull:
      return "the connection table is full";
    case Reason::kDenyMalformed:
      return fmt::format("{}: {}", dataplane::layerName(v.malformed_layer),
                         v.why != nullptr ? v.why : "cannot be parsed");
  }
  return "";
}

std::string PolicyTexts::describe(const dataplane::Verdict& v, uint64_t conn_number) const {
  return fmt::format("{} ({})", dataplane::reasonCode(v.reason), detail(v, conn_number));
}

}  // namespace statewall::sim::detail
