// Which rule change between two policies makes a packet's verdict change: evaluate the packet
// under both policies, find the check (source groups, source ACL, destination ACL, destination
// groups) that flipped, then the change (rules/policy_diff.hpp) that made it flip. Used by
// `statewall diff` on traces and `statewall flowlogs --against` on flow logs.
//
// Pure; const members may be called from any thread. Keeps references to its arguments.
#pragma once

#include <string>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/evaluate.hpp"
#include "statewall/rules/policy_diff.hpp"

namespace statewall::sim {

// Returns from cause(): an index into PolicyDiff::changes, or -1 with *note saying why no single
// change is responsible. `now_denied`: the packet was allowed under the old policy and is denied
// under the new one (false: the other way round).
// The change responsible for a flow's verdict changing: evaluate the packet under both policies
// and find the check (source groups, source ACL, destination ACL, destination groups) that
// flipped, then the rule change that made it flip.
class ChangeAttributor {
 public:
  ChangeAttributor(const rules::CompiledPolicy& o, const rules::CompiledPolicy& n,
                   const rules::PolicyDiff& d)
      : old_(o), new_(n), diff_(d) {}

  long cause(const rules::Flow5& x, bool now_denied, std::string* note) const {
    rules::Evaluation eo, en;
    rules::evaluate(old_, x, rules::EvalMode::kFull, &eo);
    rules::evaluate(new_, x, rules::EvalMode::kFull, &en);
    if (eo.unprotected && en.unprotected) return find(rules::ObjectKind::kSetting, "unprotected");
    struct Slot {
      rules::CheckKind kind;
      rules::Direction dir;
    };
    static constexpr Slot kSlots[] = {{rules::CheckKind::kSg, rules::Direction::kOutbound},
                                      {rules::CheckKind::kAcl, rules::Direction::kOutbound},
                                      {rules::CheckKind::kAcl, rules::Direction::kInbound},
                                      {rules::CheckKind::kSg, rules::Direction::kInbound}};
    for (const Slot& slot : kSlots) {
      const rules::Check* co = checkOf(eo, slot.kind, slot.dir);
      const rules::Check* cn = checkOf(en, slot.kind, slot.dir);
      const bool ao = co ? co->allowed : true;  // no check: nothing filters on that side
      const bool an = cn ? cn->allowed : true;
      if (ao == an || (ao && !an) != now_denied) continue;  // not flipped the way the packet did
      const long c = slot.kind == rules::CheckKind::kSg ? sgCause(eo, en, co, cn, slot.dir)
                                                        : aclCause(co, cn, slot.dir);
      if (c >= 0) return c;
    }
    *note =
        "no single rule change: the connection's state differs (an earlier packet of it, or "
        "whether it is tracked)";
    return -1;
  }

 private:
  static const rules::Check* checkOf(const rules::Evaluation& e, rules::CheckKind k,
                                     rules::Direction d) {
    for (int i = 0; i < e.n_checks; ++i)
      if (e.checks[static_cast<size_t>(i)].kind == k && e.checks[static_cast<size_t>(i)].dir == d)
        return &e.checks[static_cast<size_t>(i)];
    return nullptr;
  }

  long find(rules::ObjectKind o, const std::string& name) const {
    for (size_t i = 0; i < diff_.changes.size(); ++i)
      if (diff_.changes[i].object == o && diff_.changes[i].name == name)
        return static_cast<long>(i);
    return -1;
  }
  long findScope(const std::string& scope) const {
    for (size_t i = 0; i < diff_.changes.size(); ++i)
      if (diff_.changes[i].scope == scope) return static_cast<long>(i);
    return -1;
  }

  long sgCause(const rules::Evaluation& eo, const rules::Evaluation& en, const rules::Check* co,
               const rules::Check* cn, rules::Direction d) const {
    // The rule that allowed it under one policy and is gone or changed under the other.
    if (co && co->sg.allowed()) {
      for (size_t i = 0; i < diff_.changes.size(); ++i)
        if (diff_.changes[i].old_rule == co->sg.rule &&
            diff_.changes[i].kind != rules::ChangeKind::kMoved)
          return static_cast<long>(i);
    }
    if (cn && cn->sg.allowed()) {
      for (size_t i = 0; i < diff_.changes.size(); ++i)
        if (diff_.changes[i].new_rule == cn->sg.rule &&
            diff_.changes[i].kind != rules::ChangeKind::kMoved)
          return static_cast<long>(i);
    }
    // Otherwise the interface (its groups, its addresses) or the group's rules changed.
    const rules::IfaceId io = d == rules::Direction::kOutbound ? eo.src_iface : eo.dst_iface;
    const rules::IfaceId in = d == rules::Direction::kOutbound ? en.src_iface : en.dst_iface;
    for (const auto& [p, i] : {std::pair{&old_, io}, std::pair{&new_, in}}) {
      if (i == rules::kNoIface) continue;
      if (long c = find(rules::ObjectKind::kInterface, p->iface(i).name); c >= 0) return c;
    }
    for (const auto& [p, i] : {std::pair{&old_, io}, std::pair{&new_, in}}) {
      if (i == rules::kNoIface) continue;
      for (const auto& g : p->iface(i).group_names)
        if (long c = findScope("group " + g + " " + std::string(rules::directionName(d))); c >= 0)
          return c;
    }
    return -1;
  }

  long aclCause(const rules::Check* co, const rules::Check* cn, rules::Direction d) const {
    if (cn && cn->acl.entry != rules::kNoAclEntry) {
      for (size_t i = 0; i < diff_.changes.size(); ++i)
        if (diff_.changes[i].new_entry == cn->acl.entry) return static_cast<long>(i);
    }
    if (co && co->acl.entry != rules::kNoAclEntry) {
      for (size_t i = 0; i < diff_.changes.size(); ++i)
        if (diff_.changes[i].old_entry == co->acl.entry) return static_cast<long>(i);
    }
    for (const auto& [p, c] : {std::pair{&old_, co}, std::pair{&new_, cn}}) {
      if (!c) continue;
      if (c->acl.acl != rules::kNoAcl) {
        const std::string scope =
            "network ACL " + p->acl(c->acl.acl).name + " " + std::string(rules::directionName(d));
        if (long x = findScope(scope); x >= 0) return x;
      }
      if (c->subnet != rules::kNoSubnet)
        if (long x = find(rules::ObjectKind::kSubnet, p->subnet(c->subnet).name); x >= 0) return x;
    }
    return -1;
  }

  const rules::CompiledPolicy& old_;
  const rules::CompiledPolicy& new_;
  const rules::PolicyDiff& diff_;
};

}  // namespace statewall::sim
