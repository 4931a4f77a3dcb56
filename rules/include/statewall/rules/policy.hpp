// The policy model of docs/design.md "Policy model", as loaded from YAML or AWS JSON and validated.
// Plain data; rules::compile() turns it into an immutable CompiledPolicy for the data path.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::rules {

inline constexpr int kProtoAll = -1;
inline constexpr int kProtoIcmp = 1;
inline constexpr int kProtoTcp = 6;
inline constexpr int kProtoUdp = 17;
inline constexpr int kProtoIcmpV6 = 58;
inline constexpr int kAny = -1;  // ICMP type/code wildcard
inline constexpr size_t kMaxGroupsPerInterface = 16;

enum class Direction : uint8_t { kInbound = 0, kOutbound = 1 };
std::string_view directionName(Direction d);  // "inbound" / "outbound"

// Protocol numbers with ports (TCP, UDP) and with type/code (ICMP, ICMPv6).
constexpr bool protoHasPorts(int p) {
  return p == kProtoTcp || p == kProtoUdp;
}
constexpr bool protoIsIcmp(int p) {
  return p == kProtoIcmp || p == kProtoIcmpV6;
}
// The printed name of a protocol, protoName(), is the vocabulary's (statewall/rules/vocab.hpp).

// What a rule matches besides its peer: protocol, then destination ports or ICMP type/code.
struct Match {
  int proto = kProtoAll;  // kProtoAll or 0..255
  uint16_t port_lo = 0;   // destination port range, inclusive; meaningful when protoHasPorts
  uint16_t port_hi = 65535;
  int icmp_type = kAny;  // meaningful when protoIsIcmp
  int icmp_code = kAny;

  bool allPorts() const { return port_lo == 0 && port_hi == 65535; }
  // "tcp 443", "udp 1024-65535", "icmp type 8 code any", "all"
  std::string str() const;
  friend bool operator==(const Match&, const Match&) = default;
};

enum class PeerKind : uint8_t { kCidr, kPrefixList, kGroup };

struct Peer {
  PeerKind kind = PeerKind::kCidr;
  Cidr cidr;         // kCidr
  std::string name;  // kPrefixList / kGroup: the referenced name (resolved by validation)
  SourceLoc loc;

  std::string str() const;  // "10.0.0.0/8", "pl:office", "sg:web"
  friend bool operator==(const Peer& a, const Peer& b) {
    return a.kind == b.kind && a.cidr == b.cidr && a.name == b.name;
  }
};

// One security-group rule: allows `match` from (inbound) or to (outbound) any of `peers`.
// A YAML rule with several `from` entries and an AWS IpPermission with several ranges are one rule.
struct SgRule {
  Match match;
  std::vector<Peer> peers;
  std::string description;
  SourceLoc loc;

  std::string str(Direction d) const;  // "tcp 443 from 0.0.0.0/0, ::/0"
};

struct SecurityGroup {
  std::string name;  // YAML key, or the AWS GroupName
  std::string id;    // AWS GroupId (sg-...), empty for YAML
  std::string description;
  std::vector<SgRule> inbound;
  std::vector<SgRule> outbound;
  SourceLoc loc;
};

struct AclEntry {
  int rule_number = 0;  // 1..32766
  bool allow = false;
  Match match;
  Cidr cidr;
  SourceLoc loc;

  std::string str(Direction d) const;  // "100 allow tcp 443 from 0.0.0.0/0"
};

// Stateless network ACL: entries sorted by rule_number, first match wins, then an implicit deny.
struct NetworkAcl {
  std::string name;  // YAML key, or the Name tag / NetworkAclId
  std::string id;
  std::vector<AclEntry> inbound;
  std::vector<AclEntry> outbound;
  SourceLoc loc;
};

struct Subnet {
  std::string name;
  std::string id;
  std::vector<Cidr> cidrs;  // IPv4 and/or IPv6
  std::string acl;          // NetworkAcl name; empty = none
  SourceLoc loc;
};

// An interface's own idle timeouts, as AWS sets them per ENI (`ConnectionTrackingConfiguration`
// of describe-network-interfaces; YAML `timeouts` under the interface). Seconds; 0 = the policy's.
// They apply to the connections tracked on the interface's side (docs/semantics.md "Timeouts").
struct InterfaceTimeouts {
  uint32_t tcp_established = 0;  // TcpEstablishedTimeout, 60..432000
  uint32_t udp_stream = 0;       // UdpStreamTimeout, 60..180
  uint32_t udp = 0;              // UdpTimeout, 30..60
  SourceLoc loc;                 // where they were given

  bool any() const { return tcp_established != 0 || udp_stream != 0 || udp != 0; }
  // Checks AWS's ranges for the values given. Returns an empty string when valid, else a message
  // that starts with the key's YAML name.
  std::string validate() const;
};

struct Interface {
  std::string name;
  std::string id;
  std::vector<IpAddr> addresses;
  std::vector<std::string> groups;  // SecurityGroup names, at most kMaxGroupsPerInterface
  InterfaceTimeouts timeouts;
  SourceLoc loc;
};

struct PrefixList {
  std::string name;
  std::string id;
  std::vector<Cidr> cidrs;
  SourceLoc loc;
};

// Idle-timeout classes of docs/design.md "Idle timeouts". Order is the YAML key order.
enum class TimeoutKey : uint8_t {
  kTcpSynSent,
  kTcpSynRecv,
  kTcpEstablished,
  kTcpFinWait,
  kTcpCloseWait,
  kTcpLastAck,
  kTcpTimeWait,
  kTcpClose,
  kUdp,
  kUdpStream,
  kIcmp,
  kOther,
  kCount
};
inline constexpr size_t kTimeoutKeyCount = static_cast<size_t>(TimeoutKey::kCount);
std::string_view timeoutKeyName(TimeoutKey k);  // "tcp_syn_sent", ...

enum class TimeoutProfile : uint8_t { kAws, kLinux };

struct Timeouts {
  TimeoutProfile profile = TimeoutProfile::kAws;
  std::array<uint32_t, kTimeoutKeyCount> seconds{};

  uint32_t get(TimeoutKey k) const { return seconds[static_cast<size_t>(k)]; }
  static Timeouts defaults(TimeoutProfile p);
  // Checks the AWS ranges when profile is aws (tcp_established 60..432000, udp 30..60,
  // udp_stream 60..180) and that every value is >= 1. Returns an empty string when valid.
  std::string validate() const;
};

struct Policy {
  std::vector<std::string> files;  // the input files, in order
  Timeouts timeouts = Timeouts::defaults(TimeoutProfile::kAws);
  bool unprotected_allow = true;  // `unprotected: allow|deny`
  bool strict = false;            // `strict: true`: INVALID TCP packets are denied (deny-invalid)
  // `exempt: true|false`: the AWS service exemptions (docs/design.md "Exempt traffic"); off outside
  // AWS.
  bool exempt = true;
  // `vpc_cidrs` (YAML) and describe-vpcs (AWS): base + 2 of each is an Amazon DNS address.
  std::vector<Cidr> vpc_cidrs;
  std::vector<PrefixList> prefix_lists;
  std::vector<SecurityGroup> groups;
  std::vector<NetworkAcl> acls;
  std::vector<Subnet> subnets;
  std::vector<Interface> interfaces;
};

}  // namespace statewall::rules
