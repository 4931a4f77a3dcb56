// The first-packet decision of docs/design.md "Direction" in one place: which checks a packet from
// S to D meets, in which order, and which of them denies it. Used by `statewall query`, by the
// engine for the first packet of a connection, and by the explain tool.
#pragma once

#include <array>
#include <cstdint>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/exemption.hpp"
#include "statewall/rules/ip.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

// A packet's 5-tuple (ICMP type/code in place of ports for ICMP and ICMPv6).
struct Flow5 {
  uint8_t proto = 0;
  IpAddr src;
  IpAddr dst;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
};

enum class CheckKind : uint8_t { kSg, kAcl };

struct Check {
  CheckKind kind = CheckKind::kSg;
  Direction dir = Direction::kOutbound;  // outbound: the source's side; inbound: the destination's
  IfaceId iface = kNoIface;              // the interface of that side
  SubnetId subnet = kNoSubnet;           // that interface's subnet
  bool allowed = false;
  SgVerdict sg;    // kind == kSg
  AclVerdict acl;  // kind == kAcl
};

struct Evaluation {
  bool src_protected = false;
  bool dst_protected = false;
  IfaceId src_iface = kNoIface;
  IfaceId dst_iface = kNoIface;
  // In docs/design.md order: S's SG outbound, S's subnet ACL outbound (if D is outside that
  // subnet), D's subnet ACL inbound (if S is outside that subnet), D's SG inbound. Every applicable
  // check runs, also after a deny, so that outputs can show both sides.
  std::array<Check, 4> checks{};
  uint8_t n_checks = 0;
  int first_deny = -1;  // index into checks of the first check that denied; -1 if none did
  bool allowed = false;
  bool unprotected = false;  // neither side protected: allowed = policy.unprotectedAllow()
  // Allowed, at least one SG check ran, and every SG check that ran found an untracked flow:
  // no connection entry is needed on any side (reason allow-untracked rather than allow-rule).
  bool untracked = false;
};

// Which checks run. ACL checks are stateless and run in every mode; the modes choose the
// security-group checks: the engine re-runs only ACLs for packets of a connection tracked on
// every side, and only one side's groups where the other side is tracked.
enum class EvalMode : uint8_t {
  kFull,         // both sides' security groups
  kAclOnly,      // no security groups
  kSrcSideOnly,  // the source's outbound groups only
  kDstSideOnly,  // the destination's inbound groups only
};

// Fills *out for the packet `f`. Allocation-free and exception-free; safe from any thread.
void evaluate(const CompiledPolicy& policy, const Flow5& f, EvalMode mode, Evaluation* out);

// The AWS service exemption of the packet f (docs/design.md "Exempt traffic"), or Exemption::kNone:
// traffic between a protected interface and the instance metadata service, Amazon DNS (its
// well-known addresses and base + 2 of each VPC CIDR) or the Time Sync Service; and DHCP (UDP
// 68 -> 67, 67 -> 68) between a client (a protected interface, or 0.0.0.0 before it has an
// address) and a server (an address inside a VPC CIDR, or the broadcast address). Always kNone
// with `exempt: false`. ARP and neighbour discovery are the data plane's to judge.
// Allocation-free and exception-free; safe from any thread.
Exemption serviceExemption(const CompiledPolicy& policy, const Flow5& f);

// The packet as the source's side sees it (remote = destination) and as the destination's side
// sees it (remote = source).
inline FlowSpec srcSideSpec(const Flow5& f) {
  return FlowSpec{f.proto, f.dst, f.dport, f.icmp_type, f.icmp_code};
}
inline FlowSpec dstSideSpec(const Flow5& f) {
  return FlowSpec{f.proto, f.src, f.dport, f.icmp_type, f.icmp_code};
}

}  // namespace statewall::rules
