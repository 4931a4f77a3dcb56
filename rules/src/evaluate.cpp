#include "statewall/rules/evaluate.hpp"

namespace statewall::rules {

void evaluate(const CompiledPolicy& policy, const Flow5& f, EvalMode mode, Evaluation* out) {
  Evaluation& e = *out;
  e = Evaluation{};
  e.src_iface = policy.interfaceOf(f.src);
  e.dst_iface = policy.interfaceOf(f.dst);
  e.src_protected = e.src_iface != kNoIface;
  e.dst_protected = e.dst_iface != kNoIface;
  if (!e.src_protected && !e.dst_protected) {
    e.unprotected = true;
    e.allowed = policy.unprotectedAllow();
    return;
  }

  const bool run_src_sg = mode == EvalMode::kFull || mode == EvalMode::kSrcSideOnly;
  const bool run_dst_sg = mode == EvalMode::kFull || mode == EvalMode::kDstSideOnly;
  bool all_sg_untracked = true;
  int n_sg = 0;

  auto add = [&](const Check& c) {
    if (!c.allowed && e.first_deny < 0) e.first_deny = e.n_checks;
    e.checks[e.n_checks++] = c;
  };

  if (e.src_protected) {
    const FlowSpec spec = srcSideSpec(f);
    const SubnetId sn = policy.subnetOfIface(e.src_iface);
    if (run_src_sg) {
      Check c;
      c.kind = CheckKind::kSg;
      c.dir = Direction::kOutbound;
      c.iface = e.src_iface;
      c.subnet = sn;
      c.sg = policy.classify(e.src_iface, Direction::kOutbound, spec);
      c.allowed = c.sg.allowed();
      all_sg_untracked = all_sg_untracked && c.sg.untracked;
      ++n_sg;
      add(c);
    }
    if (policy.hasAcl(sn) && !policy.subnetContains(sn, f.dst)) {
      Check c;
      c.kind = CheckKind::kAcl;
      c.dir = Direction::kOutbound;
      c.iface = e.src_iface;
      c.subnet = sn;
      c.acl = policy.aclCheck(sn, Direction::kOutbound, spec);
      c.allowed = c.acl.allow;
      add(c);
    }
  }
  if (e.dst_protected) {
    const FlowSpec spec = dstSideSpec(f);
    const SubnetId sn = policy.subnetOfIface(e.dst_iface);
    if (policy.hasAcl(sn) && !policy.subnetContains(sn, f.src)) {
      Check c;
      c.kind = CheckKind::kAcl;
      c.dir = Direction::kInbound;
      c.iface = e.dst_iface;
      c.subnet = sn;
      c.acl = policy.aclCheck(sn, Direction::kInbound, spec);
      c.allowed = c.acl.allow;
      add(c);
    }
    if (run_dst_sg) {
      Check c;
      c.kind = CheckKind::kSg;
      c.dir = Direction::kInbound;
      c.iface = e.dst_iface;
      c.subnet = sn;
      c.sg = policy.classify(e.dst_iface, Direction::kInbound, spec);
      c.allowed = c.sg.allowed();
      all_sg_untracked = all_sg_untracked && c.sg.untracked;
      ++n_sg;
      add(c);
    }
  }
  e.allowed = e.first_deny < 0;
  e.untracked = e.allowed && n_sg > 0 && all_sg_untracked;
}

}  // namespace statewall::rules
