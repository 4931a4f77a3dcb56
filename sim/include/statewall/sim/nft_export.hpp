// A compiled policy's security groups as an nftables ruleset, for a Linux router that forwards
// between the protected interfaces and their peers (`statewall export --nft`, and the
// differential test against the kernel in tests/kernel).
//
// The ruleset has one table (inet family) whose forward chain mirrors docs/design.md "Direction"
// and "Connection tracking" with the kernel's conntrack:
//   ct state established accept              lookup first: tracked packets need no rule
//   ct state related ip saddr { protected } accept   related ICMP errors that reach or leave a
//   ct state related ip daddr { protected } accept   protected interface (one whose tracking
//                                                     sees them); others are unprotected traffic
//   [ct state invalid drop]                   strict mode only
//   ip saddr vmap { ADDR : jump out_N, ... }  the source interface's outbound rules
//   ip daddr vmap { ADDR : jump in_N, ... }   the destination interface's inbound rules
//   ip saddr { protected } accept             every side that ran allowed it
//   ip daddr { protected } accept
//   accept | drop                             neither side protected: `unprotected`
// Each interface chain returns on the first rule (of the union of its groups) that matches and
// drops otherwise. A new packet, and an INVALID one (which gets no help from its connection),
// therefore passes only where the rules of its own direction allow it.
//
// One conntrack table serves every interface, so a related error whose source is a protected
// interface that is not an endpoint of the quoted connection (a protected host acting as a router
// on the path) passes here as related, where statewall judges it by that interface's rules.
//
// Not translated: network ACLs (an error: they would have to run before conntrack to change no
// state, which this ruleset does not attempt), and AWS untracked flows (a warning: the kernel
// tracks them, so their replies pass as established rather than by the reverse rule).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "statewall/rules/compiled.hpp"

namespace statewall::sim {

struct NftExportOptions {
  std::string table = "statewall";
};

struct NftExport {
  std::string ruleset;                // `nft -f` input; empty when errors is not
  std::vector<std::string> errors;    // what cannot be translated
  std::vector<std::string> warnings;  // translated, but the kernel will behave differently
  bool ok() const { return errors.empty(); }
};

NftExport exportNft(const rules::CompiledPolicy& policy, const NftExportOptions& options = {});

// The policy's idle timeouts as the kernel's per-namespace conntrack sysctls
// (net.netfilter.nf_conntrack_*), in seconds. The kernel's own refinements (the retransmission and
// unacknowledged-data timeouts) are set to the longest TCP timeout, so they never shorten one.
std::vector<std::pair<std::string, uint32_t>> conntrackSysctls(const rules::Timeouts& t);

}  // namespace statewall::sim
