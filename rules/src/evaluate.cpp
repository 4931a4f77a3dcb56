#include "statewall/rules/evaluate.hpp"

namespace statewall::rules {

void evaluate(const CompiledPolicy& policy, const Flow5& f, EvalMode mode, Evaluation* out) {
  // Fields are set one by one rather than assigning a fresh Evaluation: the struct is large and
  // only the used checks need writing (this function runs for every new connection).
  Evaluation& e = *out;
  e.src_iface = policy.interfaceOf(f.src);
  e.dst_iface = policy.interfaceOf(f.dst);
  e.src_protected = e.src_iface != kNoIface;
  e.dst_protected = e.dst_iface != kNoIface;
  e.n_checks = 0;
  e.first_deny = -1;
  e.untracked = false;
  e.unprotected = false;
  if (!e.src_protected && !e.dst_protected) {
    e.unprotected = true;
    e.allowed = policy.unprotectedAllow();
    return;
  }

  const bool run_src_sg = mode == EvalMode::kFull || mode == EvalMode::kSrcSideOnly;
  const bool run_dst_sg = mode == EvalMode::kFull || mode == EvalMode::kDstSideOnly;
  bool all_sg_untracked = true;
  int n_sg = 0;

  auto next = [&](CheckKind kind, Direction dir, IfaceId iface, SubnetId subnet) -> Check& {
    Check& c = e.checks[e.n_checks++];
    c.kind = kind;
    c.dir = dir;
    c.iface = iface;
    c.subnet = subnet;
    c.sg = SgVerdict{};
    c.acl = AclVerdict{};
    return c;
  };
  auto done = [&](const Check& c) {
    if (!c.allowed && e.first_deny < 0) e.first_deny = e.n_checks - 1;
  };
  auto sgCheck = [&](Direction dir, IfaceId iface, SubnetId sn, const FlowSpec& spec) {
    Check& c = next(CheckKind::kSg, dir, iface, sn);
    c.sg = policy.classify(iface, dir, spec);
    c.allowed = c.sg.allowed();
    all_sg_untracked = all_sg_untracked && c.sg.untracked;
    ++n_sg;
    done(c);
  };
  auto aclCheck = [&](Direction dir, IfaceId iface, SubnetId sn, const FlowSpec& spec) {
    Check& c = next(CheckKind::kAcl, dir, iface, sn);
    c.acl = policy.aclCheck(sn, dir, spec);
    c.allowed = c.acl.allow;
    done(c);
  };

  if (e.src_protected) {
    const FlowSpec spec = srcSideSpec(f);
    const SubnetId sn = policy.subnetOfIface(e.src_iface);
    if (run_src_sg) sgCheck(Direction::kOutbound, e.src_iface, sn, spec);
    if (policy.hasAcl(sn) && !policy.subnetContains(sn, f.dst))
      aclCheck(Direction::kOutbound, e.src_iface, sn, spec);
  }
  if (e.dst_protected) {
    const FlowSpec spec = dstSideSpec(f);
    const SubnetId sn = policy.subnetOfIface(e.dst_iface);
    if (policy.hasAcl(sn) && !policy.subnetContains(sn, f.src))
      aclCheck(Direction::kInbound, e.dst_iface, sn, spec);
    if (run_dst_sg) sgCheck(Direction::kInbound, e.dst_iface, sn, spec);
  }
  e.allowed = e.first_deny < 0;
  e.untracked = e.allowed && n_sg > 0 && all_sg_untracked;
}

}  // namespace statewall::rules
