// `statewall lint`: findings about what is wrong or risky in a policy, each with a stable code,
// a severity, the location of the rule or entry it is about and a one-line fix.
//
// Coverage and shadowing are computed exactly on sets of packets (PacketSet below): protocol,
// destination port or ICMP type/code, and the remote address, with prefix lists and group
// references expanded to addresses the way the compiler expands them. No finding comes from
// comparing rule texts.
//
// Everything here is pure and allocates freely: it runs once per command, never per packet.
// All functions may be called from any thread; PolicySets is immutable once built.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "statewall/rules/compiled.hpp"
#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/ip.hpp"
#include "statewall/rules/policy.hpp"

namespace statewall::rules {

// ---- exact sets ----

// A set of addresses of one family as sorted, disjoint, non-adjacent inclusive ranges. Operations
// between sets of different families are not meaningful; PacketSet keeps the families apart.
class AddrSet {
 public:
  struct Range {
    IpAddr first;
    IpAddr last;
    friend bool operator==(const Range&, const Range&) = default;
  };

  AddrSet() = default;  // empty
  static AddrSet of(const Cidr& c);
  static AddrSet universe(Family f);
  static AddrSet ofRange(const IpAddr& first, const IpAddr& last);  // first <= last, same family

  bool empty() const { return ranges_.empty(); }
  const std::vector<Range>& ranges() const { return ranges_; }
  bool contains(const IpAddr& a) const;
  bool covers(const AddrSet& other) const { return other.subtract(*this).empty(); }

  AddrSet unite(const AddrSet& o) const;
  AddrSet intersect(const AddrSet& o) const;
  AddrSet subtract(const AddrSet& o) const;

  // The fewest CIDRs whose union is the set, in address order ("10.0.0.0/8").
  std::vector<Cidr> toCidrs() const;
  // "10.0.0.0/8, 192.168.0.0/16" (at most `max_cidrs` CIDRs, then "and N more"); "nothing".
  std::string str(size_t max_cidrs = 4) const;

  friend bool operator==(const AddrSet&, const AddrSet&) = default;

 private:
  friend struct AddrSetAccess;  // lint_sets.cpp
  std::vector<Range> ranges_;
};

// The 16-bit key the classifier matches on for ICMP and ICMPv6 (type << 8 | code).
constexpr uint16_t icmpKey(int type, int code) {
  return static_cast<uint16_t>(((type & 0xFF) << 8) | (code & 0xFF));
}

// A set of packets as one side of a connection sees them: (protocol 0..255, key, remote address).
// The key is the destination port for TCP and UDP, icmpKey(type, code) for ICMP and ICMPv6, and
// is irrelevant for other protocols (every set built from rules covers all keys there).
class PacketSet {
 public:
  PacketSet() = default;  // empty
  static PacketSet everything();
  // The packets a rule or ACL entry matches: `m` with a remote address in `v4` or `v6`.
  static PacketSet of(const Match& m, const AddrSet& v4, const AddrSet& v6);
  static PacketSet of(const Match& m, const std::vector<Cidr>& peers);
  // Protocol `proto` (kProtoAll: every protocol; then use the whole key range) with keys
  // key_lo..key_hi and remote addresses in v4 / v6.
  static PacketSet box(int proto, uint16_t key_lo, uint16_t key_hi, const AddrSet& v4,
                       const AddrSet& v6);

  bool empty() const;
  bool contains(const PacketSet& o) const { return o.subtract(*this).empty(); }
  bool intersects(const PacketSet& o) const { return !intersect(o).empty(); }

  PacketSet unite(const PacketSet& o) const;
  PacketSet intersect(const PacketSet& o) const;
  PacketSet subtract(const PacketSet& o) const;
  // Only the packets whose remote address lies in v4 / v6.
  PacketSet withAddresses(const AddrSet& v4, const AddrSet& v6) const;

  // The remote addresses of packets of protocol `proto` with keys key_lo..key_hi.
  AddrSet addresses(int proto, Family f, uint16_t key_lo = 0, uint16_t key_hi = 65535) const;
  // The keys of protocol `proto` at address `a`, as inclusive ranges.
  std::vector<std::pair<uint16_t, uint16_t>> keys(int proto, const IpAddr& a) const;
  // Protocols with at least one packet; kProtoAll stands for "every protocol not listed".
  std::vector<int> protocols() const;

  // One packet of the set, preferring the given protocols, keys and addresses (in order) when
  // the set holds them: an example for messages. nullopt when empty.
  struct Point {
    int proto = 0;
    uint16_t key = 0;
    IpAddr addr;
  };
  std::optional<Point> sample(std::span<const int> protos = {}, std::span<const uint16_t> keys = {},
                              std::span<const IpAddr> addrs = {}) const;

  // A readable listing, one part per protocol and key range: "tcp 22 from 10.0.0.0/8; all from
  // ::/0". For tests and debugging.
  std::string str() const;

  // Same packets (whatever the representation).
  friend bool operator==(const PacketSet&, const PacketSet&);

 private:
  // A function from key to (v4, v6) address sets, piecewise constant: piece i holds from
  // pieces[i].start to the next piece's start - 1. pieces[0].start == 0; neighbours differ.
  struct Piece {
    uint32_t start = 0;
    AddrSet v4;
    AddrSet v6;
    friend bool operator==(const Piece&, const Piece&) = default;
  };
  struct KeyMap {
    std::vector<Piece> pieces{Piece{}};
    bool empty() const;
    friend bool operator==(const KeyMap&, const KeyMap&) = default;
  };
  enum class Op : uint8_t { kUnite, kIntersect, kSubtract };
  static KeyMap combine(const KeyMap& a, const KeyMap& b, Op op);
  static PacketSet combine(const PacketSet& a, const PacketSet& b, Op op);
  const KeyMap& get(int proto) const;
  void normalise();

  // Protocols whose packets differ from `other_`'s; every protocol not listed behaves as other_.
  std::vector<std::pair<int, KeyMap>> by_proto_;  // sorted by protocol
  KeyMap other_;
};

// ---- the policy as sets ----

// Exact packet sets of one compiled policy: every rule and ACL entry, what each ACL allows, and
// what each interface's groups allow. Group references expand to the addresses of the interfaces
// carrying the group (today's members), prefix lists to their CIDRs, as the compiler does.
class PolicySets {
 public:
  explicit PolicySets(const CompiledPolicy& policy);

  const CompiledPolicy& policy() const { return *p_; }
  // The packets rule `r` allows (remote = the peer).
  const PacketSet& rule(RuleId r) const { return rules_[r]; }
  // Of those, the ones whose peer is an all-addresses CIDR (0.0.0.0/0 or ::/0): the rule's
  // contribution to untracked flows.
  const PacketSet& ruleAllPeer(RuleId r) const { return rules_all_peer_[r]; }
  // The packets ACL entry `e` matches; everything for a '*' entry.
  const PacketSet& aclEntry(AclEntryId e) const { return entries_[e]; }
  // What ACL `a` lets through in direction `d` (first match wins, then the '*' deny).
  const PacketSet& aclAllowed(AclId a, Direction d) const {
    return acl_allowed_[a * 2 + static_cast<size_t>(d)];
  }
  // What the union of interface `i`'s groups allows in direction `d`.
  const PacketSet& ifaceAllowed(IfaceId i, Direction d) const {
    return iface_allowed_[i * 2 + static_cast<size_t>(d)];
  }
  // The addresses of the interfaces carrying group `g`.
  const AddrSet& groupMembers(uint16_t g, Family f) const {
    return members_[g * 2 + (f == Family::kV4 ? 0 : 1)];
  }
  // The address sets of one peer (a group or prefix list not found gives nothing).
  void peerAddresses(const Peer& peer, AddrSet* v4, AddrSet* v6) const;
  // The RuleIds of group g in direction d, in rule order.
  std::vector<RuleId> groupRules(uint16_t g, Direction d) const;
  // The entries of ACL a in direction d, in rule-number order, ending with the '*' entry.
  std::vector<AclEntryId> aclEntries(AclId a, Direction d) const;
  // The addresses of subnet s.
  AddrSet subnetAddresses(SubnetId s, Family f) const;

  // The SgRule behind a RuleId (the Policy the compiled policy was built from).
  const SgRule& sgRule(RuleId r) const;
  // The index of a group / prefix list named by `ref` (by name, then by AWS id); -1 if none.
  long groupIndex(const std::string& ref) const;
  long prefixListIndex(const std::string& ref) const;

 private:
  const CompiledPolicy* p_;
  std::vector<PacketSet> rules_;
  std::vector<PacketSet> rules_all_peer_;
  std::vector<PacketSet> entries_;
  std::vector<PacketSet> acl_allowed_;
  std::vector<PacketSet> iface_allowed_;
  std::vector<AddrSet> members_;
  std::vector<std::vector<AclEntryId>> acl_entry_lists_;  // per (acl, direction)
  std::vector<std::array<RuleId, 2>> rule_base_;          // per group: first RuleId per direction
  std::unordered_map<std::string, size_t> group_by_name_, group_by_id_;
  std::unordered_map<std::string, size_t> pl_by_name_, pl_by_id_;
};

// ---- findings ----

enum class LintSeverity : uint8_t { kInfo = 0, kWarning = 1, kError = 2 };
std::string_view lintSeverityName(LintSeverity s);  // "info", "warning", "error"
std::optional<LintSeverity> parseLintSeverity(std::string_view s);

// One check. Codes are stable: a code keeps its meaning and is never reused.
struct LintCheck {
  std::string_view code;  // "SW001"
  std::string_view name;  // "admin-port-open"
  LintSeverity severity;  // the usual severity (some findings lower it, e.g. when an ACL blocks)
  std::string_view title;
};
// Every check, in code order.
std::span<const LintCheck> lintChecks();

// Something a finding points at besides its main location: a covering rule, an ACL entry.
struct LintRef {
  std::string what;  // `web inbound[1] "tcp 0-65535 from 10.0.0.0/8"`
  SourceLoc loc;
};

struct LintFinding {
  std::string code;
  std::string name;
  LintSeverity severity = LintSeverity::kWarning;
  SourceLoc loc;        // the rule, entry, group or interface the finding is about
  std::string subject;  // what is at loc, e.g. `web inbound[2] "tcp 22 from 0.0.0.0/0"`
  std::string message;
  std::string fix;  // one line
  std::vector<LintRef> related;
};

struct LintOptions {
  // The ports a client's replies come back to, for the stateless-ACL check. AWS recommends
  // 1024-65535 (NAT gateways and load balancers use all of it; Linux clients 32768-60999).
  uint16_t ephemeral_lo = 1024;
  uint16_t ephemeral_hi = 65535;
  // Tests only: compare every rule with every other rule of its groups, as lint did before it
  // indexed rules (quadratic); the findings must be the same either way.
  bool exhaustive_pairs = false;
};

// All findings, sorted by location (file order, then line, then JSON path), then code.
std::vector<LintFinding> lintPolicy(const CompiledPolicy& policy, const LintOptions& options = {});

// `group dir[index] "text"`, the way findings and diffs name a rule.
std::string ruleLabel(const CompiledPolicy& policy, RuleId r);
// `acl dir rule N "N allow tcp 443 from 0.0.0.0/0"` ('*' for the default entry).
std::string aclEntryLabel(const CompiledPolicy& policy, AclEntryId e);

}  // namespace statewall::rules
