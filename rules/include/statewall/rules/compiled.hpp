// The compiled, immutable form of a Policy: the security-group classifier, the network-ACL
// matcher and the address -> interface / subnet maps that the data path queries per packet.
//
// compile() does all the work up front; every const member function of CompiledPolicy is
// allocation-free, exception-free and safe to call from any number of threads at once.
//
// Query cost does not grow with the number of rules: each interface's union of groups is
// precomputed per (direction, protocol, address family) into a partition of the destination
// port (or ICMP type/code) space, and each part holds a sorted, disjoint address-range table
// that gives the winning rule directly (two binary searches per query).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/ip.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

using IfaceId = uint16_t;
inline constexpr IfaceId kNoIface = 0xFFFF;
using SubnetId = uint16_t;
inline constexpr SubnetId kNoSubnet = 0xFFFF;
using AclId = uint16_t;
inline constexpr AclId kNoAcl = 0xFFFF;
// Global index over all security-group rules of all groups: groups in policy order, then the
// inbound rules, then the outbound rules of each group.
using RuleId = uint32_t;
inline constexpr RuleId kNoRule = 0xFFFFFFFF;
// Global index over all ACL entries, including one implicit '*' deny per (ACL, direction).
using AclEntryId = uint32_t;
inline constexpr AclEntryId kNoAclEntry = 0xFFFFFFFF;

// A packet as one side sees it: `remote` is the peer address (the source for inbound, the
// destination for outbound). dport is used for TCP and UDP, icmp_type/icmp_code for ICMP and
// ICMPv6; the other fields are ignored for those protocols.
struct FlowSpec {
  uint8_t proto = 0;
  IpAddr remote;
  uint16_t dport = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
};

// The security-group answer for one interface and direction.
struct SgVerdict {
  RuleId rule = kNoRule;  // the first matching rule in (interface group order, rule index) order
  bool untracked =
      false;  // AWS untracked flow (docs/design.md "Connection tracking"); only when allowed
  bool allowed() const { return rule != kNoRule; }
};

// The network-ACL answer for one subnet and direction.
struct AclVerdict {
  bool allow = false;
  AclId acl = kNoAcl;
  int rule_number = 0;  // 0 = the implicit '*' deny
  AclEntryId entry = kNoAclEntry;
};

// Descriptions for outputs (explanations, query, replay logs). Built once by compile().
struct RuleInfo {
  uint16_t group = 0;  // index into source().groups
  Direction dir = Direction::kInbound;
  uint32_t index = 0;  // index within that group's inbound or outbound list
  std::string group_name;
  std::string text;  // SgRule::str(dir), e.g. "tcp 443 from 0.0.0.0/0, ::/0"
  std::string description;
  SourceLoc loc;
};

struct AclEntryInfo {
  AclId acl = kNoAcl;
  Direction dir = Direction::kInbound;
  int rule_number = 0;  // 0 = '*'
  bool allow = false;
  std::string acl_name;
  std::string text;    // AclEntry::str(dir), or "* deny all from 0.0.0.0/0, ::/0"
  SourceLoc loc;       // empty for '*'
  uint32_t index = 0;  // within source()'s acls[acl] inbound or outbound list; unused for '*'

  std::string ruleNumberStr() const { return rule_number == 0 ? "*" : std::to_string(rule_number); }
};

struct InterfaceInfo {
  std::string name;
  std::string id;
  std::vector<IpAddr> addresses;
  SubnetId subnet = kNoSubnet;
  std::vector<uint16_t> groups;  // indices into source().groups, in the interface's order
  std::vector<std::string> group_names;
  InterfaceTimeouts timeouts;  // 0 = the policy's
  SourceLoc loc;
};

struct SubnetInfo {
  std::string name;
  std::string id;
  std::vector<Cidr> cidrs;
  AclId acl = kNoAcl;
  std::string acl_name;  // empty when the subnet has no ACL
  SourceLoc loc;
};

struct AclInfo {
  std::string name;
  std::string id;
  std::array<AclEntryId, 2> default_entry{kNoAclEntry, kNoAclEntry};  // '*' per direction
  SourceLoc loc;
};

class CompiledPolicy {
 public:
  CompiledPolicy();
  ~CompiledPolicy();
  CompiledPolicy(const CompiledPolicy&) = delete;
  CompiledPolicy& operator=(const CompiledPolicy&) = delete;

  // The protected interface owning this address, or kNoIface. One hash probe sequence.
  IfaceId interfaceOf(const IpAddr& a) const;
  // The subnet whose CIDR holds the interface's address (the most specific), or kNoSubnet.
  SubnetId subnetOfIface(IfaceId i) const {
    return i < iface_hot_.size() ? iface_hot_[i].subnet : kNoSubnet;
  }
  bool subnetContains(SubnetId s, const IpAddr& a) const;

  // The security groups of interface `i` in direction `d` for the packet `f`. An unknown
  // interface id gives "not allowed".
  SgVerdict classify(IfaceId i, Direction d, const FlowSpec& f) const;

  bool hasAcl(SubnetId s) const { return s < subnet_hot_.size() && subnet_hot_[s].acl != kNoAcl; }
  // First ACL entry by rule number that matches, else the '*' deny. A subnet without an ACL
  // allows everything (acl = kNoAcl, entry = kNoAclEntry).
  AclVerdict aclCheck(SubnetId s, Direction d, const FlowSpec& f) const;

  const RuleInfo& rule(RuleId r) const { return rules_[r]; }
  size_t ruleCount() const { return rules_.size(); }
  const AclEntryInfo& aclEntry(AclEntryId e) const { return acl_entries_[e]; }
  size_t aclEntryCount() const { return acl_entries_.size(); }
  const InterfaceInfo& iface(IfaceId i) const { return ifaces_[i]; }
  size_t ifaceCount() const { return ifaces_.size(); }
  const SubnetInfo& subnet(SubnetId s) const { return subnets_[s]; }
  size_t subnetCount() const { return subnets_.size(); }
  const AclInfo& acl(AclId a) const { return acls_[a]; }
  size_t aclCount() const { return acls_.size(); }

  const Timeouts& timeouts() const { return source_.timeouts; }
  bool unprotectedAllow() const { return source_.unprotected_allow; }
  bool strict() const { return source_.strict; }
  // `exempt`: whether the AWS service exemptions apply (serviceExemption() in evaluate.hpp).
  bool exempt() const { return source_.exempt; }
  // The validated Policy this was compiled from.
  const Policy& source() const { return source_; }

  // Compile-time metadata, kept beside the matching tables (the data path never reads it): what
  // the compiler worked out once, for explain, lint and other readers, so that none works it out
  // again from names. Any thread.
  // The rule in source() that RuleId r was compiled from.
  const SgRule& sourceRule(RuleId r) const;
  // The entry in source() that ACL entry e was compiled from; null for a default '*' entry.
  const AclEntry* sourceAclEntry(AclEntryId e) const;
  // Rule r's peers expanded to CIDRs of one family, as the matcher holds them: prefix lists
  // resolved, a group reference as the host addresses of the interfaces carrying the group.
  const std::vector<Cidr>& rulePeers(RuleId r, Family f) const {
    return rule_peers_[r].by_family[f == Family::kV4 ? 0 : 1];
  }
  // Whether one of them is the family's all-addresses CIDR.
  bool rulePeerIsAll(RuleId r, Family f) const {
    return rule_peers_[r].all[f == Family::kV4 ? 0 : 1];
  }
  // The expansion of the i-th peer of sourceRule(r).peers, both families, in order.
  const std::vector<Cidr>& rulePeerExpansion(RuleId r, size_t i) const {
    return rule_peers_[r].per_peer[i];
  }

  // Sizes of the compiled structures, for benchmarks and `statewall check`.
  struct Stats {
    size_t group_sets = 0;  // distinct ordered group lists over all interfaces
    size_t matchers = 0;    // distinct (port partition, address tables) structures
    size_t port_intervals = 0;
    size_t addr_tables = 0;
    size_t addr_ranges = 0;
  };
  Stats stats() const;

 private:
  friend class PolicyCompiler;

  // A rule's expanded peers (the metadata above).
  struct RulePeers {
    std::array<std::vector<Cidr>, 2> by_family;
    std::array<bool, 2> all{false, false};
    std::vector<std::vector<Cidr>> per_peer;
  };
  std::vector<RulePeers> rule_peers_;  // per RuleId

  // One address-range table: sorted range starts with the winning id of each range; the first
  // start is 0 so every address falls in exactly one range.
  struct AddrTable {
    uint32_t offset = 0;  // into v4_ranges_ / v6_ranges_
    uint32_t count = 0;
  };
  // A partition of the 16-bit key space (destination port, or ICMP type << 8 | code).
  struct Matcher {
    uint32_t offset = 0;  // into interval_starts_ / interval_values_
    uint32_t count = 0;
  };
  // The address-range table of one interval, inlined (offset and count into the pools of the
  // matcher's family) to save a dependent load per query.
  struct IntervalValue {
    uint32_t table_offset = 0;
    uint32_t table_count : 31 = 1;
    uint32_t untracked : 1 = 0;  // a matching rule has the all-addresses peer and the reverse
                                 // direction allows everything (TCP/UDP only)
  };
  // One range of an address table: its first address and the winning id. Start and value sit
  // together so the last probe of the binary search brings the answer with it.
  struct V4Range {
    uint32_t start = 0;
    uint32_t value = 0;
  };
  struct V6Range {
    uint64_t hi = 0;
    uint64_t lo = 0;
    uint32_t value = 0;
    uint32_t pad = 0;
  };
  struct AclEntryHot {
    int32_t rule_number = 0;
    uint16_t acl = kNoAcl;
    uint8_t allow = 0;
  };
  // Per-packet data apart from the descriptive *Info structures, so queries touch few lines.
  struct IfaceHot {
    uint32_t group_set = 0;
    SubnetId subnet = kNoSubnet;
  };
  struct SubnetHot {
    uint32_t cidr_offset = 0;  // into subnet_cidrs_
    uint16_t n_cidrs = 0;
    AclId acl = kNoAcl;
  };
  struct HashSlot {
    IpAddr addr;
    IfaceId iface = kNoIface;
  };

  // The matcher index for (group set or ACL, direction, protocol slot, family).
  size_t slotIndex(uint32_t set, Direction d, uint8_t proto, const IpAddr& a) const {
    return ((static_cast<size_t>(set) * 2 + static_cast<size_t>(d)) * proto_slots_ +
            proto_slot_[proto]) *
               2 +
           (a.isV4() ? 0 : 1);
  }
  // Finds the range of `m` holding (key, addr): the winning id (or kNoRule) and the untracked bit.
  uint32_t lookup(const Matcher& m, uint16_t key, const IpAddr& a, bool* untracked) const;

  Policy source_;

  std::vector<RuleInfo> rules_;
  std::vector<AclEntryInfo> acl_entries_;
  std::vector<InterfaceInfo> ifaces_;
  std::vector<SubnetInfo> subnets_;
  std::vector<AclInfo> acls_;

  // address -> interface, open addressing with linear probing, power-of-two size.
  std::vector<HashSlot> addr_hash_;
  size_t addr_hash_mask_ = 0;

  // Protocol number -> slot: 0 tcp, 1 udp, 2 icmp, 3 icmpv6, 4 any protocol no rule names,
  // then one slot per other protocol number that some rule or ACL entry names.
  std::array<uint8_t, 256> proto_slot_{};
  size_t proto_slots_ = 5;

  std::vector<IfaceHot> iface_hot_;    // per interface
  std::vector<SubnetHot> subnet_hot_;  // per subnet
  std::vector<Cidr> subnet_cidrs_;
  std::vector<std::array<AclEntryId, 2>> acl_default_;  // per ACL: '*' per direction
  std::vector<Matcher> sg_matcher_;                     // per slotIndex(group set, ...)
  std::vector<Matcher> acl_matcher_;                    // per slotIndex(acl, ...)
  std::vector<AclEntryHot> acl_hot_;                    // per AclEntryId, for the hot path

  std::vector<Matcher> matchers_;  // distinct matchers (compile time and stats)
  std::vector<uint16_t> interval_starts_;
  std::vector<IntervalValue> interval_values_;
  std::vector<AddrTable> v4_tables_;
  std::vector<AddrTable> v6_tables_;
  std::vector<V4Range> v4_ranges_;
  std::vector<V6Range> v6_ranges_;
};

using CompiledPolicyPtr = std::shared_ptr<const CompiledPolicy>;

struct CompileResult {
  CompiledPolicyPtr policy;  // null when there are errors
  Diagnostics diagnostics;
};

// Compiles a validated Policy (what loadPolicyFiles() returns). References are resolved by name,
// then by AWS id; anything left unresolved is reported as an error rather than ignored.
// Pure; may be called from any thread.
CompileResult compile(const Policy& policy);

}  // namespace statewall::rules
