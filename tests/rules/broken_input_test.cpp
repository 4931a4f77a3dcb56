// Broken policies: each must fail as a whole with a message that says what was found and what
// was expected, at FILE:LINE:COL (YAML) or FILE: JSON-PATH (AWS JSON).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rules/rules_test_util.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

struct BrokenCase {
  const char* name;
  std::vector<SourceText> docs;
  std::string loc;       // SourceLoc::str() of the error
  std::string fragment;  // part of its message
};

// A valid base for YAML cases that only need one bad line: group g, used by interface i.
std::string withRule(const std::string& rule) {
  return "groups:\n"
         "  g:\n"
         "    inbound:\n"
         "      - " +
         rule + "\n";
}

const std::vector<BrokenCase>& cases() {
  static const std::vector<BrokenCase> kCases = {
      // ---- YAML: structure ----
      {"UnknownTopLevelKey",
       {{"p.yaml", "version: 1\ngrups: {}\n"}},
       "p.yaml:2:1",
       "unknown key 'grups' in the policy; expected one of: version, timeouts, unprotected"},
      {"UnknownRuleKey",
       {{"p.yaml", withRule("{proto: tcp, port: 22, from: 0.0.0.0/0}")}},
       "p.yaml:4:22",
       "unknown key 'port' in inbound rule; expected one of: proto, ports, icmp"},
      {"UnknownGroupKey",
       {{"p.yaml", "groups:\n  g:\n    ingress: []\n"}},
       "p.yaml:3:5",
       "unknown key 'ingress' in group 'g'; expected one of: description, inbound, outbound"},
      {"YamlSyntaxError",
       {{"p.yaml", "groups:\n  g: {inbound: [\n"}},
       "p.yaml:3:1",
       "YAML syntax error: "},
      {"EmptyFile",
       {{"p.yaml", "# nothing here\n"}},
       "p.yaml:1:1",
       "empty policy: expected a mapping with keys such as version, groups"},
      {"TopLevelList",
       {{"p.yaml", "- groups\n"}},
       "p.yaml:1:1",
       "expected the policy as a mapping, found a list"},
      {"TwoDocuments",
       {{"p.yaml", "version: 1\n---\nversion: 1\n"}},
       "p.yaml:2:1",
       "expected one YAML document, found 2"},
      // yaml-cpp 0.7's LoadAll() would loop for ever on this one.
      {"StrayCommaDocument",
       {{"p.yaml", "version: 1\n...\n, a\n"}},
       "p.yaml:3:1",
       "YAML syntax error: unexpected ',' at the start of a document"},
      {"UnsupportedVersion",
       {{"p.yaml", "version: 2\n"}},
       "p.yaml:1:10",
       "unsupported version '2': expected 1"},
      {"GroupDefinedTwiceInOneFile",
       {{"p.yaml", "groups:\n  g: {}\n  g: {}\n"}},
       "p.yaml:3:3",
       "'g' is defined twice in 'groups' (first at p.yaml:2:3)"},
      {"RulesNotAList",
       {{"p.yaml", "groups:\n  g:\n    inbound: {proto: tcp}\n"}},
       "p.yaml:3:14",
       "'inbound' of group 'g': expected a list of rules, found a mapping"},
      // ---- YAML: rule forms ----
      {"BadProto",
       {{"p.yaml", withRule("{proto: tcpp, ports: 22, from: 0.0.0.0/0}")}},
       "p.yaml:4:17",
       "bad proto 'tcpp': expected tcp, udp, icmp, icmpv6, all, -1 or a protocol number 0..255"},
      {"ProtoNumberTooBig",
       {{"p.yaml", withRule("{proto: 256, from: 0.0.0.0/0}")}},
       "p.yaml:4:17",
       "bad proto '256'"},
      {"MissingProto",
       {{"p.yaml", withRule("{ports: 22, from: 0.0.0.0/0}")}},
       "p.yaml:4:9",
       "missing key 'proto': expected tcp, udp"},
      {"PortOutOfRange",
       {{"p.yaml", withRule("{proto: tcp, ports: 70000, from: 0.0.0.0/0}")}},
       "p.yaml:4:29",
       "port 70000 is out of range: expected 0..65535"},
      {"PortRangeReversed",
       {{"p.yaml", withRule("{proto: udp, ports: 2000-1000, from: 0.0.0.0/0}")}},
       "p.yaml:4:29",
       "port range 2000-1000 is reversed: the first port is greater than the last"},
      {"BadPorts",
       {{"p.yaml", withRule("{proto: tcp, ports: http, from: 0.0.0.0/0}")}},
       "p.yaml:4:29",
       "bad ports 'http': expected a port number, FROM-TO or all"},
      {"MissingPortsForTcp",
       {{"p.yaml", withRule("{proto: tcp, from: 0.0.0.0/0}")}},
       "p.yaml:4:17",
       "missing key 'ports' for proto tcp: expected a port number, FROM-TO or all"},
      {"PortsOnIcmp",
       {{"p.yaml", withRule("{proto: icmp, ports: 8, from: 0.0.0.0/0}")}},
       "p.yaml:4:30",
       "ports 8 given for proto icmp: only tcp and udp have ports (use icmp: {type, code})"},
      {"IcmpCodeWithoutType",
       {{"p.yaml", withRule("{proto: icmp, icmp: {code: 3}, from: 0.0.0.0/0}")}},
       "p.yaml:4:36",
       "ICMP code 3 without a type: give a type, or use code -1 (any)"},
      {"IcmpTypeOutOfRange",
       {{"p.yaml", withRule("{proto: icmpv6, icmp: {type: 300}, from: '::/0'}")}},
       "p.yaml:4:38",
       "ICMP type 300 is out of range: expected -1 (any) or 0..255"},
      {"IcmpOnTcp",
       {{"p.yaml", withRule("{proto: tcp, ports: 1, icmp: {type: 8}, from: 0.0.0.0/0}")}},
       "p.yaml:4:32",
       "'icmp' given for proto tcp: only icmp and icmpv6 have a type and code"},
      {"BadCidr",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, from: 10.0.0.300/24}")}},
       "p.yaml:4:39",
       "bad CIDR '10.0.0.300/24': expected an IPv4 or IPv6 prefix such as 10.0.0.0/16"},
      {"BadIpv6Prefix",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, from: [0.0.0.0/0, '2001:db8::/129']}")}},
       "p.yaml:4:51",
       "bad CIDR '2001:db8::/129'"},
      {"ToInInboundRule",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, to: 0.0.0.0/0}")}},
       "p.yaml:4:33",
       "'to' in an inbound rule: inbound rules take 'from'"},
      {"MissingFrom",
       {{"p.yaml", withRule("{proto: tcp, ports: 22}")}},
       "p.yaml:4:9",
       "missing key 'from': expected a CIDR, a list of CIDRs, sg:GROUP or pl:PREFIX_LIST"},
      {"EmptyFrom",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, from: []}")}},
       "p.yaml:4:39",
       "'from' is empty: expected a CIDR"},
      {"EmptyGroupReference",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, from: 'sg:'}")}},
       "p.yaml:4:39",
       "'sg:' names no group: expected sg:GROUP"},
      // ---- YAML: references and names ----
      {"UnknownGroupReference",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, from: sg:nope}")}},
       "p.yaml:4:39",
       "unknown security group 'nope' in inbound rule of group 'g': expected sg:NAME naming a "
       "group under 'groups'"},
      {"UnknownPrefixList",
       {{"p.yaml", withRule("{proto: tcp, ports: 22, from: pl:office}")}},
       "p.yaml:4:39",
       "unknown prefix list 'office' in inbound rule of group 'g': expected pl:NAME naming a list "
       "under 'prefix_lists'"},
      {"DuplicateGroupAcrossFiles",
       {{"a.yaml", "groups:\n  web: {}\n"}, {"b.yaml", "groups:\n  db: {}\n  web: {}\n"}},
       "b.yaml:3:3",
       "duplicate security group name 'web' (first defined at a.yaml:2:3)"},
      {"DuplicateInterfaceAcrossFiles",
       {{"a.yaml", "groups: {g: {}}\ninterfaces: {i: {addresses: 10.0.0.1, groups: g}}\n"},
        {"b.yaml", "interfaces: {i: {addresses: 10.0.0.2, groups: g}}\n"}},
       "b.yaml:1:14",
       "duplicate interface name 'i' (first defined at a.yaml:2:14)"},
      {"AddressOnTwoInterfaces",
       {{"p.yaml",
         "groups: {g: {}}\n"
         "interfaces:\n"
         "  a: {addresses: [10.0.0.1, 10.0.0.2], groups: [g]}\n"
         "  b: {addresses: [10.0.0.2], groups: [g]}\n"}},
       "p.yaml:4:3",
       "address 10.0.0.2 is on two interfaces: 'a' (p.yaml:3:3) and 'b'; expected each address "
       "on one interface"},
      {"TooManyGroupsOnInterface",
       {{"p.yaml",
         "groups: {g0: {}, g1: {}, g2: {}, g3: {}, g4: {}, g5: {}, g6: {}, g7: {}, g8: {}, g9: "
         "{},\n"
         "         g10: {}, g11: {}, g12: {}, g13: {}, g14: {}, g15: {}, g16: {}}\n"
         "interfaces:\n"
         "  i: {addresses: 10.0.0.1, groups: [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11,\n"
         "                                    g12, g13, g14, g15, g16]}\n"}},
       "p.yaml:4:3",
       "interface 'i' has 17 security groups: expected at most 16"},
      {"InterfaceUnknownGroup",
       {{"p.yaml", "interfaces:\n  i: {addresses: 10.0.0.1, groups: [web]}\n"}},
       "p.yaml:2:3",
       "interface 'i' refers to unknown security group 'web': expected a name under 'groups'"},
      {"BadInterfaceAddress",
       {{"p.yaml", "groups: {g: {}}\ninterfaces:\n  i: {addresses: [10.0.0.0/24], groups: g}\n"}},
       "p.yaml:3:19",
       "bad address '10.0.0.0/24': expected an IPv4 or IPv6 address without a prefix length"},
      {"InterfaceWithoutAddresses",
       {{"p.yaml", "groups: {g: {}}\ninterfaces:\n  i: {groups: g}\n"}},
       "p.yaml:3:3",
       "interface 'i' has no addresses: expected at least one"},
      {"SubnetUnknownAcl",
       {{"p.yaml", "subnets:\n  s: {cidr: 10.0.0.0/24, acl: pub}\n"}},
       "p.yaml:2:3",
       "subnet 's' refers to unknown network ACL 'pub': expected a name under 'network_acls'"},
      {"OverlappingSubnets",
       {{"p.yaml", "subnets:\n  a: {cidr: 10.0.0.0/16}\n  b: {cidr: 10.0.3.0/24}\n"}},
       "p.yaml:3:3",
       "subnet 'b' CIDR 10.0.3.0/24 overlaps 10.0.0.0/16 of subnet 'a' (p.yaml:2:3): expected "
       "disjoint subnets"},
      // ---- YAML: network ACLs ----
      {"AclRuleNumberZero",
       {{"p.yaml",
         "network_acls:\n  a:\n    inbound:\n      - {rule: 0, action: allow, proto: all, from: "
         "0.0.0.0/0}\n"}},
       "p.yaml:4:16",
       "network ACL rule number 0 is out of range: expected 1..32766"},
      {"AclRuleNumber32767",
       {{"p.yaml",
         "network_acls:\n  a:\n    outbound:\n      - {rule: 32767, action: deny, proto: all, to: "
         "0.0.0.0/0}\n"}},
       "p.yaml:4:16",
       "network ACL rule number 32767 is out of range: expected 1..32766"},
      {"AclRuleNumberRepeated",
       {{"p.yaml",
         "network_acls:\n  a:\n    inbound:\n"
         "      - {rule: 100, action: allow, proto: tcp, ports: 80, from: 0.0.0.0/0}\n"
         "      - {rule: 100, action: deny, proto: all, from: 192.0.2.0/24}\n"}},
       "p.yaml:5:9",
       "network ACL rule number 100 is repeated in inbound entries of 'a' (first at p.yaml:4:9): "
       "expected unique numbers"},
      {"AclBadAction",
       {{"p.yaml",
         "network_acls:\n  a:\n    inbound:\n      - {rule: 1, action: permit, proto: all, from: "
         "0.0.0.0/0}\n"}},
       "p.yaml:4:27",
       "bad action 'permit': expected allow or deny"},
      {"AclGroupPeer",
       {{"p.yaml",
         "network_acls:\n  a:\n    inbound:\n      - {rule: 1, action: allow, proto: all, from: "
         "sg:web}\n"}},
       "p.yaml:4:52",
       "'sg:web' in a network ACL entry: expected one CIDR (ACLs match addresses, not groups or "
       "prefix lists)"},
      {"AclCidrList",
       {{"p.yaml",
         "network_acls:\n  a:\n    inbound:\n      - {rule: 1, action: allow, proto: all, from: "
         "[10.0.0.0/8, 0.0.0.0/0]}\n"}},
       "p.yaml:4:52",
       "'from': expected one CIDR (a network ACL entry has exactly one), found a list"},
      // ---- YAML: settings ----
      {"TimeoutOutOfAwsRange",
       {{"p.yaml", "timeouts: {profile: aws, tcp_established: 30}\n"}},
       "p.yaml:1:43",
       "timeouts: tcp_established is 30 s; profile aws allows 60..432000"},
      {"UdpTimeoutOutOfAwsRange",
       {{"p.yaml", "timeouts:\n  udp: 120\n"}},
       "p.yaml:2:8",
       "timeouts: udp is 120 s; profile aws allows 30..60"},
      {"BadTimeoutValue",
       {{"p.yaml", "timeouts: {profile: linux, tcp_close: 0}\n"}},
       "p.yaml:1:39",
       "bad timeout '0' for tcp_close: expected a number of seconds, at least 1"},
      {"BadTimeoutProfile",
       {{"p.yaml", "timeouts: {profile: bsd}\n"}},
       "p.yaml:1:21",
       "bad timeout profile 'bsd': expected aws or linux"},
      {"UnknownTimeoutKey",
       {{"p.yaml", "timeouts: {tcp_estab: 100}\n"}},
       "p.yaml:1:12",
       "unknown key 'tcp_estab' in timeouts; expected one of: profile, tcp_syn_sent"},
      {"BadUnprotected",
       {{"p.yaml", "unprotected: drop\n"}},
       "p.yaml:1:14",
       "bad unprotected 'drop': expected allow or deny"},
      {"BadStrict",
       {{"p.yaml", "strict: maybe\n"}},
       "p.yaml:1:9",
       "bad strict 'maybe': expected true or false"},
      {"TimeoutsInTwoFiles",
       {{"a.yaml", "timeouts: {profile: aws}\n"}, {"b.yaml", "timeouts: {profile: linux}\n"}},
       "b.yaml:1:1",
       "timeouts is set again (first at a.yaml:1:1): expected it in one file only"},
      // ---- AWS JSON ----
      {"JsonSyntaxError",
       {{"sg.json", "{\"SecurityGroups\": [\n  {\"GroupId\": \"sg-1\",,}\n]}\n"}},
       "sg.json:2:22",
       "invalid JSON at byte 42: syntax error while parsing object key"},
      {"FromPortGreaterThanToPort",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1"}, {"GroupId": "sg-2", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})"}},
       "sg.json: SecurityGroups[1].IpPermissions[0].FromPort",
       "port range 8080-80 is reversed: the first port is greater than the last"},
      {"ToPortOutOfRange",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "udp", "FromPort": 1, "ToPort": 65536, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].ToPort",
       "port 65536 is out of range: expected 0..65535"},
      {"FromPortIsAString",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": "22", "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].FromPort",
       "expected a port number 0..65535, found string \"22\""},
      {"MissingFromPortForTcp",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "tcp", "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].FromPort",
       "missing FromPort: expected a port number 0..65535"},
      {"BadIpProtocol",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "sctpx", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].IpProtocol",
       "bad IpProtocol 'sctpx': expected tcp, udp, icmp, icmpv6, all, -1"},
      {"IcmpCodeWithoutTypeJson",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": 3, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].ToPort",
       "ICMP code 3 without a type: give a type, or use code -1 (any)"},
      {"BadCidrIp",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/33"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].IpRanges[1].CidrIp",
       "bad CIDR '10.0.0.0/33': expected an IPv4 or IPv6 prefix"},
      {"Ipv6CidrInIpRanges",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "::/0"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp",
       "'::/0' in IpRanges: expected an IPv4 CIDR"},
      {"PermissionWithoutPeers",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissionsEgress": [
            {"IpProtocol": "-1", "IpRanges": [], "UserIdGroupPairs": []}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissionsEgress[0]",
       "permission has no IpRanges, Ipv6Ranges, UserIdGroupPairs or PrefixListIds"},
      {"UnknownGroupId",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "GroupName": "web", "IpPermissions": [
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-999"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].UserIdGroupPairs[0].GroupId",
       "unknown security group 'sg-999' in inbound rule of group 'web': no group in the loaded "
       "files has this GroupId"},
      {"UnresolvedPrefixList",
       {{"sg.json",
         R"({"SecurityGroups": [{"GroupId": "sg-1", "GroupName": "web", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "PrefixListIds": [{"PrefixListId": "pl-123"}]}]}]})"}},
       "sg.json: SecurityGroups[0].IpPermissions[0].PrefixListIds[0].PrefixListId",
       "unknown prefix list 'pl-123' in inbound rule of group 'web': no loaded document defines "
       "this PrefixListId; add one shaped {\"PrefixLists\":[{\"PrefixListId\":\"pl-123\""},
      {"MissingGroupId",
       {{"sg.json", R"({"SecurityGroups": [{"GroupName": "web"}]})"}},
       "sg.json: SecurityGroups[0].GroupId",
       "missing GroupId: expected a group id such as sg-0123456789abcdef0"},
      {"DuplicateGroupIdAcrossFiles",
       {{"a.json", R"({"SecurityGroups": [{"GroupId": "sg-1", "GroupName": "a"}]})"},
        {"b.json", R"({"SecurityGroups": [{"GroupId": "sg-1", "GroupName": "b"}]})"}},
       "b.json: SecurityGroups[0]",
       "duplicate GroupId sg-1 (first defined at a.json: "
       "SecurityGroups[0])"},
      {"DuplicateGroupNameTwoVpcs",
       {{"sg.json", R"({"SecurityGroups": [{"GroupId": "sg-1", "GroupName": "default"},
                                            {"GroupId": "sg-2", "GroupName": "default"}]})"}},
       "sg.json: SecurityGroups[1]",
       "duplicate security group name 'default' (first defined at sg.json: SecurityGroups[0]); "
       "GroupNames are unique only within a VPC"},
      {"AclRuleNumberOutOfRangeJson",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 40000}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[0]",
       "network ACL rule number 40000 is out of range: expected 1..32766"},
      {"AclRuleNumberRepeatedJson",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": true, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100},
            {"Ipv6CidrBlock": "::/0", "Egress": true, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[1]",
       "network ACL rule number 100 is repeated in outbound entries of 'acl-1' (first at "
       "acl.json: NetworkAcls[0].Entries[0])"},
      {"AclDefaultEntryThatAllows",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 32767}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[0].RuleNumber",
       "rule 32767 is AWS's default '*' entry: expected RuleAction deny and Protocol -1"},
      {"AclTcpWithoutPortRange",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "6", "RuleAction": "allow", "RuleNumber": 100}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[0].PortRange",
       "missing PortRange: expected {\"From\": PORT, \"To\": PORT} for protocol 6"},
      {"AclBothCidrs",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Ipv6CidrBlock": "::/0", "Egress": false, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[0]",
       "both CidrBlock and Ipv6CidrBlock: expected exactly one of them"},
      {"AclIcmpCodeWithoutType",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "1", "IcmpTypeCode": {"Code": 1, "Type": -1}, "RuleAction": "allow", "RuleNumber": 100}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[0].IcmpTypeCode.Code",
       "ICMP code 1 without a type"},
      {"AclBadRuleAction",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
            {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "-1", "RuleAction": "Allow", "RuleNumber": 100}]}]})"}},
       "acl.json: NetworkAcls[0].Entries[0].RuleAction",
       "bad RuleAction 'Allow': expected allow or deny"},
      {"SubnetWithTwoAcls",
       {{"acl.json",
         R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Associations": [{"SubnetId": "subnet-1"}]},
                             {"NetworkAclId": "acl-2", "Associations": [{"SubnetId": "subnet-1"}]}]})"},
        {"subnets.json", R"({"Subnets": [{"SubnetId": "subnet-1", "CidrBlock": "10.0.0.0/24"}]})"}},
       "acl.json: NetworkAcls[1].Associations[0].SubnetId",
       "subnet 'subnet-1' is associated with two network ACLs, 'acl-1' and 'acl-2': expected one"},
      {"EniUnknownGroup",
       {{"eni.json",
         R"({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0.1",
                                     "Groups": [{"GroupId": "sg-404", "GroupName": "web"}]}]})"}},
       "eni.json: NetworkInterfaces[0]",
       "interface 'eni-1' refers to unknown security group 'sg-404': no group in the loaded files "
       "has this GroupId"},
      {"EniBadAddress",
       {{"eni.json",
         R"({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0.256"}]})"}},
       "eni.json: NetworkInterfaces[0].PrivateIpAddress",
       "bad address '10.0.0.256': expected an IPv4 address"},
      {"EniAddressOnTwoInterfaces",
       {{"eni.json",
         R"({"NetworkInterfaces": [
              {"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0.1", "Groups": [{"GroupId": "sg-1"}]},
              {"NetworkInterfaceId": "eni-2", "Ipv6Addresses": [{"Ipv6Address": "2001:db8::1"}],
               "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.1"}], "Groups": [{"GroupId": "sg-1"}]}]})"},
        {"sg.json", R"({"SecurityGroups": [{"GroupId": "sg-1"}]})"}},
       "eni.json: NetworkInterfaces[1]",
       "address 10.0.0.1 is on two interfaces: 'eni-1' (eni.json: NetworkInterfaces[0]) and "
       "'eni-2'"},
      {"EniIpv4InIpv6Addresses",
       {{"eni.json",
         R"({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0.1",
                                     "Ipv6Addresses": [{"Ipv6Address": "10.0.0.2"}]}]})"}},
       "eni.json: NetworkInterfaces[0].Ipv6Addresses[0].Ipv6Address",
       "bad address '10.0.0.2': expected an IPv6 address"},
      {"SubnetIpv4InIpv6Block",
       {{"subnets.json",
         R"({"Subnets": [{"SubnetId": "subnet-1", "CidrBlock": "10.0.0.0/24",
                          "Ipv6CidrBlockAssociationSet": [{"Ipv6CidrBlock": "10.1.0.0/16"}]}]})"}},
       "subnets.json: Subnets[0].Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock",
       "'10.1.0.0/16' in Ipv6CidrBlock: expected an IPv6 CIDR"},
      {"Utf16File",
       {{"sg.json", std::string("\xFF\xFE{\0}\0", 6)}},
       "sg.json:1:1",
       "the file is UTF-16 encoded: expected UTF-8"},
      {"AwsOutputAsYaml",
       {{"sg.yaml", "SecurityGroups:\n- GroupId: sg-1\n"}},
       "sg.yaml:1:1",
       "unknown key 'SecurityGroups' in the policy; expected one of: version, timeouts, "
       "unprotected, strict, exempt, vpc_cidrs, prefix_lists, groups, network_acls, subnets, "
       "interfaces (AWS CLI "
       "output is read as JSON: use --output json)"},
      {"PrefixListWithoutEntries",
       {{"pl.json", R"({"PrefixLists": [{"PrefixListId": "pl-1", "PrefixListName": "office"}]})"}},
       "pl.json: PrefixLists[0].Entries",
       "missing Entries: expected [{\"Cidr\": ...}] (describe-managed-prefix-lists does not print "
       "entries"},
      {"TopLevelNotAnArray",
       {{"sg.json", R"({"SecurityGroups": {"GroupId": "sg-1"}})"}},
       "sg.json: SecurityGroups",
       "expected an array, found an object"},
  };
  return kCases;
}

class BrokenInput : public ::testing::TestWithParam<size_t> {};

TEST_P(BrokenInput, FailsWholeWithMessageAndLocation) {
  const BrokenCase& c = cases()[GetParam()];
  auto r = loadPolicyTexts(c.docs);
  EXPECT_TRUE(testutil::failsWith(r, c.loc, c.fragment)) << c.name;
}

INSTANTIATE_TEST_SUITE_P(AllCases, BrokenInput, ::testing::Range<size_t>(0, cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& param) {
                           return std::string(cases()[param.param].name);
                         });

TEST(BrokenInputTable, HasEnoughCases) {
  EXPECT_GE(cases().size(), 25u);
}

TEST(LoadsWholeOrNotAtAll, OneBadRuleRejectsEverything) {
  auto good = loadPolicyTexts({{"p.yaml", std::string(R"(
groups:
  web: {inbound: [{proto: tcp, ports: 443, from: 0.0.0.0/0}]}
  app: {inbound: [{proto: tcp, ports: 8080, from: sg:web}]}
interfaces:
  web-1: {addresses: 10.0.1.10, groups: [web]}
)")}});
  ASSERT_TRUE(good.ok()) << testutil::dumpDiagnostics(good);
  auto bad = loadPolicyTexts({{"p.yaml", std::string(R"(
groups:
  web: {inbound: [{proto: tcp, ports: 443, from: 0.0.0.0/0}]}
  app: {inbound: [{proto: tcp, ports: 8080, from: sg:web}, {proto: tcp, ports: 99999, from: sg:web}]}
interfaces:
  web-1: {addresses: 10.0.1.10, groups: [web]}
)")}});
  EXPECT_FALSE(bad.policy.has_value());
  EXPECT_EQ(testutil::errorCount(bad), 1u) << testutil::dumpDiagnostics(bad);
}

TEST(LoadsWholeOrNotAtAll, AllErrorsAreReportedNotJustTheFirst) {
  auto r = loadPolicyTexts({
      {"a.yaml", withRule("{proto: tcp, ports: 70000, from: 0.0.0.0/0}")},
      {"b.json", R"({"SecurityGroups": [{"GroupName": "x"}]})"},
      {"c.yaml", "interfaces: {i: {addresses: 10.0.0.1, groups: [nope]}}\n"},
  });
  EXPECT_FALSE(r.policy.has_value());
  EXPECT_EQ(testutil::errorCount(r), 3u) << testutil::dumpDiagnostics(r);
  EXPECT_TRUE(testutil::failsWith(r, "a.yaml:4:29", "port 70000"));
  EXPECT_TRUE(testutil::failsWith(r, "b.json: SecurityGroups[0].GroupId", "missing GroupId"));
  EXPECT_TRUE(testutil::failsWith(r, "c.yaml:1:14", "unknown security group 'nope'"));
}

TEST(LoadsWholeOrNotAtAll, UnreadableFileRejectsEverything) {
  testutil::TempDir dir;
  std::string good = dir.write("good.yaml", "groups: {g: {}}\n");
  std::string missing = dir.file("missing.yaml");
  auto r = loadPolicyFiles({good, missing});
  EXPECT_FALSE(r.policy.has_value());
  EXPECT_TRUE(testutil::failsWith(r, missing, "cannot read file: No such file or directory"));
  auto d = loadPolicyFiles({good, dir.file("")});
  EXPECT_FALSE(d.policy.has_value());
  EXPECT_EQ(testutil::errorCount(d), 1u) << testutil::dumpDiagnostics(d);
  EXPECT_NE(testutil::dumpDiagnostics(d).find("cannot read file: it is a directory"),
            std::string::npos);
}

TEST(LoadsWholeOrNotAtAll, NoFiles) {
  auto r = loadPolicyTexts({});
  EXPECT_TRUE(testutil::failsWith(r, "policy", "no policy files given"));
}

}  // namespace
}  // namespace statewall::rules
