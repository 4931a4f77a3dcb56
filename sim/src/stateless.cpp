#include "statewall/sim/stateless.hpp"

namespace statewall::sim {

using dataplane::Reason;

Reason rulesAloneReason(const rules::Evaluation& ev) {
  if (ev.allowed) return ev.unprotected ? Reason::kAllowUnprotected : Reason::kAllowRule;
  if (ev.first_deny >= 0 &&
      ev.checks[static_cast<size_t>(ev.first_deny)].kind == rules::CheckKind::kAcl) {
    return Reason::kDenyAcl;
  }
  return Reason::kDenySg;
}

bool hasRulesAloneVerdict(const dataplane::ParsedPacket& p, const dataplane::Verdict& v) {
  const bool ip = p.l3 == dataplane::L3::kIpv4 || p.l3 == dataplane::L3::kIpv6;
  // Exempt traffic passes whatever the rules say, stateless or not.
  return ip && (v.flags & (dataplane::kFlagControl | dataplane::kFlagFragment)) == 0 &&
         v.reason != Reason::kDenyMalformed && v.reason != Reason::kAllowExempt;
}

Reason statelessReason(const rules::CompiledPolicy& policy, const dataplane::ParsedPacket& p,
                       const dataplane::Verdict& v, rules::Evaluation* eval) {
  if (!hasRulesAloneVerdict(p, v)) return v.reason;
  rules::evaluate(policy, dataplane::ruleFlowOf(p), rules::EvalMode::kFull, eval);
  return rulesAloneReason(*eval);
}

}  // namespace statewall::sim
