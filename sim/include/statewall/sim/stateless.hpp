// The rules-alone judgement behind `statewall replay --stateless`, `explain`'s contrast and the
// report's stateful-vs-stateless section: what a stateless filter with the same rules (every packet
// needs a rule of its own direction on both sides; no connection table) would do to a packet.
#pragma once

#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"

namespace statewall::sim {

// The reason a rules-only filter gives for an evaluation in EvalMode::kFull: allow-rule (or
// allow-unprotected), else deny-acl when an ACL check denied first, else deny-sg.
dataplane::Reason rulesAloneReason(const rules::Evaluation& ev);

// Whether the packet has a rules-only verdict of its own. Control traffic (ARP, neighbour
// discovery), unparsable packets and later fragments do not: a stateless filter treats them as the
// engine did.
bool hasRulesAloneVerdict(const dataplane::ParsedPacket& p, const dataplane::Verdict& v);

// The rules-only reason for packet `p` that the engine judged `v`: v.reason when the packet has no
// rules-only verdict of its own, else rulesAloneReason() of evaluate(kFull), left in *eval
// (scratch owned by the caller, so that the per-packet path does not allocate).
dataplane::Reason statelessReason(const rules::CompiledPolicy& policy,
                                  const dataplane::ParsedPacket& p, const dataplane::Verdict& v,
                                  rules::Evaluation* eval);

}  // namespace statewall::sim
