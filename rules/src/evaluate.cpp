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

namespace {

// The service a well-known or VPC DNS address belongs to.
Exemption serviceAt(const CompiledPolicy& policy, const IpAddr& a) {
  if (a.isV4()) {
    switch (a.v4()) {
      case kInstanceMetadataV4:
        return Exemption::kInstanceMetadata;
      case kAmazonDnsV4:
        return Exemption::kAmazonDns;
      case kTimeSyncV4:
        return Exemption::kTimeSync;
      default:
        break;
    }
  } else if (a.hi == kAwsServicesV6Hi) {
    switch (a.lo) {
      case kInstanceMetadataV6Lo:
        return Exemption::kInstanceMetadata;
      case kAmazonDnsV6Lo:
        return Exemption::kAmazonDns;
      case kTimeSyncV6Lo:
        return Exemption::kTimeSync;
      default:
        break;
    }
  }
  for (const Cidr& c : policy.source().vpc_cidrs)
    if (a == vpcDnsAddress(c)) return Exemption::kAmazonDns;
  return Exemption::kNone;
}

bool inVpc(const CompiledPolicy& policy, const IpAddr& a) {
  for (const Cidr& c : policy.source().vpc_cidrs)
    if (c.contains(a)) return true;
  return false;
}

}  // namespace

Exemption serviceExemption(const CompiledPolicy& policy, const Flow5& f) {
  if (!policy.exempt()) return Exemption::kNone;
  if (f.proto == 17 && f.src.isV4()) {
    const bool to_server = f.sport == kDhcpClientPort && f.dport == kDhcpServerPort;
    const bool to_client = f.sport == kDhcpServerPort && f.dport == kDhcpClientPort;
    if (to_server || to_client) {
      constexpr uint32_t kBroadcast = 0xFFFFFFFF;
      const IpAddr& client = to_server ? f.src : f.dst;
      const IpAddr& server = to_server ? f.dst : f.src;
      const bool client_ok =
          client.v4() == (to_server ? 0u : kBroadcast) || policy.interfaceOf(client) != kNoIface;
      const bool server_ok = (to_server && server.v4() == kBroadcast) || inVpc(policy, server);
      if (client_ok && server_ok) return Exemption::kDhcp;
    }
  }
  Exemption e = serviceAt(policy, f.dst);
  if (e != Exemption::kNone) {
    return policy.interfaceOf(f.src) != kNoIface ? e : Exemption::kNone;
  }
  e = serviceAt(policy, f.src);
  if (e != Exemption::kNone && policy.interfaceOf(f.dst) != kNoIface) return e;
  return Exemption::kNone;
}

}  // namespace statewall::rules
