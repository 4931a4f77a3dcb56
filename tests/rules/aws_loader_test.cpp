// The AWS CLI JSON loader: every field the model uses, id resolution across documents, names.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "rules/rules_test_util.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using testutil::dumpDiagnostics;

Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}
IpAddr addr(const char* text) {
  return *IpAddr::parse(text);
}

template <typename T>
const T& byName(const std::vector<T>& items, const std::string& name) {
  for (const auto& x : items)
    if (x.name == name) return x;
  ADD_FAILURE() << "no " << name;
  static T none;
  return none;
}

constexpr const char* kGroups = R"({
  "SecurityGroups": [
    {
      "GroupName": "web", "GroupId": "sg-0000000000000000a", "Description": "web tier",
      "OwnerId": "123456789012", "VpcId": "vpc-1",
      "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "https"}],
         "PrefixListIds": [], "UserIdGroupPairs": []},
        {"IpProtocol": "udp", "FromPort": 1024, "ToPort": 65535,
         "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "icmpv6", "FromPort": 128, "ToPort": 0, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0000000000000000a", "UserId": "123456789012"}]},
        {"IpProtocol": "50", "IpRanges": [{"CidrIp": "192.0.2.0/24"}]},
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22,
         "PrefixListIds": [{"PrefixListId": "pl-00000000000000001", "Description": "office"}],
         "UserIdGroupPairs": [{"GroupId": "sg-0000000000000000b", "Description": "from app"}]}
      ],
      "IpPermissionsEgress": [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
         "PrefixListIds": [], "UserIdGroupPairs": []}
      ]
    },
    {
      "GroupName": "application", "GroupId": "sg-0000000000000000b", "Description": "app",
      "Tags": [{"Key": "Team", "Value": "x"}, {"Key": "Name", "Value": "app"}],
      "IpPermissions": [], "IpPermissionsEgress": []
    }
  ]
})";

constexpr const char* kPrefixLists = R"({"PrefixLists": [
  {"PrefixListId": "pl-00000000000000001", "PrefixListName": "office",
   "Entries": [{"Cidr": "203.0.113.0/24"}, {"Cidr": "2001:db8:100::/48"}]}
]})";

TEST(AwsLoader, SecurityGroupRuleForms) {
  auto r = loadPolicyTexts({{"sg.json", kGroups}, {"pl.json", kPrefixLists}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& web = byName(r.policy->groups, "web");
  EXPECT_EQ(web.id, "sg-0000000000000000a");
  EXPECT_EQ(web.description, "web tier");
  ASSERT_EQ(web.inbound.size(), 9u);
  auto in = [&](size_t i) { return web.inbound[i].str(Direction::kInbound); };
  EXPECT_EQ(in(0), "tcp 443 from 0.0.0.0/0, ::/0");
  EXPECT_EQ(web.inbound[0].description, "https");
  EXPECT_EQ(in(1), "udp 1024-65535 from 10.0.0.0/8");
  EXPECT_EQ(in(2), "icmp type 3 code 4 from 10.0.0.0/8");
  EXPECT_EQ(in(3), "icmp type 8 code any from 10.0.0.0/8");
  EXPECT_EQ(in(4), "icmp any from 10.0.0.0/8");
  EXPECT_EQ(in(5), "icmpv6 type 128 code 0 from 2001:db8::/32");
  EXPECT_EQ(in(6), "all from sg:web");  // self reference by GroupId, resolved to the name
  EXPECT_EQ(in(7), "50 from 192.0.2.0/24");
  // IpProtocol "6" is tcp; the reference to sg-...b resolves to its Name tag.
  EXPECT_EQ(in(8), "tcp 22 from sg:app, pl:office");
  EXPECT_EQ(web.inbound[8].description, "from app; office");
  ASSERT_EQ(web.outbound.size(), 1u);
  EXPECT_EQ(web.outbound[0].str(Direction::kOutbound), "all to 0.0.0.0/0");
  // Locations are JSON paths.
  EXPECT_EQ(web.inbound[1].loc.str(), "sg.json: SecurityGroups[0].IpPermissions[1]");
  EXPECT_EQ(web.inbound[8].peers[1].loc.str(),
            "sg.json: SecurityGroups[0].IpPermissions[8].PrefixListIds[0].PrefixListId");

  const auto& app = byName(r.policy->groups, "app");  // the Name tag wins over GroupName
  EXPECT_EQ(app.id, "sg-0000000000000000b");
  EXPECT_TRUE(app.inbound.empty());
  EXPECT_TRUE(app.outbound.empty());

  const auto& office = byName(r.policy->prefix_lists, "office");
  EXPECT_EQ(office.id, "pl-00000000000000001");
  EXPECT_EQ(office.cidrs, (std::vector<Cidr>{cidr("203.0.113.0/24"), cidr("2001:db8:100::/48")}));
}

TEST(AwsLoader, NetworkAclsAndTheirSubnets) {
  auto r = loadPolicyTexts({
      {"acl.json", R"({"NetworkAcls": [{
        "NetworkAclId": "acl-1", "IsDefault": false,
        "Tags": [{"Key": "Name", "Value": "public"}],
        "Associations": [{"NetworkAclAssociationId": "aclassoc-1", "SubnetId": "subnet-1"}],
        "Entries": [
          {"CidrBlock": "0.0.0.0/0", "Egress": true, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100},
          {"CidrBlock": "0.0.0.0/0", "Egress": true, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32767},
          {"Ipv6CidrBlock": "::/0", "Egress": true, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32768},
          {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "6", "PortRange": {"From": 1024, "To": 65535}, "RuleAction": "allow", "RuleNumber": 200},
          {"CidrBlock": "192.0.2.0/24", "Egress": false, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 50},
          {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "1", "IcmpTypeCode": {"Code": -1, "Type": 8}, "RuleAction": "allow", "RuleNumber": 120},
          {"Ipv6CidrBlock": "::/0", "Egress": false, "Protocol": "58", "IcmpTypeCode": {"Code": 0, "Type": 1}, "RuleAction": "allow", "RuleNumber": 121},
          {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "17", "PortRange": {"From": 53, "To": 53}, "RuleAction": "allow", "RuleNumber": 130},
          {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "47", "RuleAction": "allow", "RuleNumber": 140},
          {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32767}
        ]}]})"},
      {"subnets.json", R"({"Subnets": [
        {"SubnetId": "subnet-1", "CidrBlock": "10.0.1.0/24",
         "Ipv6CidrBlockAssociationSet": [
           {"Ipv6CidrBlock": "2001:db8:1::/64", "Ipv6CidrBlockState": {"State": "associated"}},
           {"Ipv6CidrBlock": "2001:db8:9::/64", "Ipv6CidrBlockState": {"State": "disassociated"}}]},
        {"SubnetId": "subnet-2", "CidrBlock": "10.0.2.0/24", "Tags": [{"Key": "Name", "Value": "private"}]}
      ]})"},
  });
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& acl = byName(r.policy->acls, "public");
  EXPECT_EQ(acl.id, "acl-1");
  ASSERT_EQ(acl.inbound.size(), 6u);  // the 32767 default is the implicit deny, not an entry
  std::vector<std::string> in;
  for (const auto& e : acl.inbound)
    in.push_back(e.str(Direction::kInbound));
  EXPECT_EQ(in,
            (std::vector<std::string>{
                "50 deny all from 192.0.2.0/24", "120 allow icmp type 8 code any from 0.0.0.0/0",
                "121 allow icmpv6 type 1 code 0 from ::/0", "130 allow udp 53 from 0.0.0.0/0",
                "140 allow 47 from 0.0.0.0/0", "200 allow tcp 1024-65535 from 0.0.0.0/0"}));
  ASSERT_EQ(acl.outbound.size(), 1u);
  EXPECT_EQ(acl.outbound[0].str(Direction::kOutbound), "100 allow all to 0.0.0.0/0");

  // Subnet names: the Name tag, else the id. The association sets the subnet's ACL.
  const auto& s1 = byName(r.policy->subnets, "subnet-1");
  EXPECT_EQ(s1.acl, "public");
  EXPECT_EQ(s1.cidrs, (std::vector<Cidr>{cidr("10.0.1.0/24"), cidr("2001:db8:1::/64")}));
  const auto& s2 = byName(r.policy->subnets, "private");
  EXPECT_EQ(s2.id, "subnet-2");
  EXPECT_TRUE(s2.acl.empty());
}

TEST(AwsLoader, NetworkInterfaces) {
  // Interfaces come before the groups they use: the order of documents does not matter.
  auto r = loadPolicyTexts({
      {"eni.json", R"({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-1", "SubnetId": "subnet-1",
         "PrivateIpAddress": "10.0.1.10",
         "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": "10.0.1.10"},
                                {"Primary": false, "PrivateIpAddress": "10.0.1.20"}],
         "Ipv6Addresses": [{"Ipv6Address": "2001:db8:1::10"}],
         "Groups": [{"GroupName": "web", "GroupId": "sg-1"}, {"GroupName": "ops", "GroupId": "sg-2"}],
         "TagSet": [{"Key": "Name", "Value": "web-1"}]},
        {"NetworkInterfaceId": "eni-2", "PrivateIpAddress": "10.0.1.11",
         "Groups": [{"GroupId": "sg-2"}], "TagSet": []}
      ]})"},
      {"sg.json", R"({"SecurityGroups": [
        {"GroupName": "web", "GroupId": "sg-1"}, {"GroupName": "ops", "GroupId": "sg-2"}]})"},
      {"subnets.json", R"({"Subnets": [{"SubnetId": "subnet-1", "CidrBlock": "10.0.1.0/24",
        "Ipv6CidrBlockAssociationSet": [{"Ipv6CidrBlock": "2001:db8:1::/64"}]}]})"},
  });
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& web1 = byName(r.policy->interfaces, "web-1");
  EXPECT_EQ(web1.id, "eni-1");
  EXPECT_EQ(web1.addresses,
            (std::vector<IpAddr>{addr("10.0.1.10"), addr("10.0.1.20"), addr("2001:db8:1::10")}));
  EXPECT_EQ(web1.groups, (std::vector<std::string>{"web", "ops"}));
  const auto& eni2 = byName(r.policy->interfaces, "eni-2");  // no Name tag: the id
  EXPECT_EQ(eni2.groups, std::vector<std::string>{"ops"});
  EXPECT_TRUE(r.diagnostics.empty()) << dumpDiagnostics(r);
}

TEST(AwsLoader, InterfaceConnectionTrackingConfiguration) {
  auto r = loadPolicyTexts({{"eni.json", R"({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.1.10",
         "ConnectionTrackingConfiguration": {"TcpEstablishedTimeout": 3600, "UdpStreamTimeout": 90,
                                             "UdpTimeout": 45}},
        {"NetworkInterfaceId": "eni-2", "PrivateIpAddress": "10.0.1.11"}]})"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& t = byName(r.policy->interfaces, "eni-1").timeouts;
  EXPECT_EQ(t.tcp_established, 3600u);
  EXPECT_EQ(t.udp_stream, 90u);
  EXPECT_EQ(t.udp, 45u);
  EXPECT_FALSE(byName(r.policy->interfaces, "eni-2").timeouts.any());

  // AWS's ranges: TcpEstablishedTimeout 60..432000, UdpStreamTimeout 60..180, UdpTimeout 30..60.
  for (const auto& [key, value, message] :
       {std::tuple{"TcpEstablishedTimeout", "59", "tcp_established is 59 s; AWS allows 60..432000"},
        std::tuple{"UdpStreamTimeout", "181", "udp_stream is 181 s; AWS allows 60..180"},
        std::tuple{"UdpTimeout", "29", "udp is 29 s; AWS allows 30..60"},
        std::tuple{"UdpTimeout", "\"30\"", "expected a number of seconds"}}) {
    r = loadPolicyTexts({{"eni.json", std::string(R"({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.1.10",
         "ConnectionTrackingConfiguration": {")") +
                                          key + "\": " + value + "}}]}"}});
    EXPECT_TRUE(testutil::failsWith(
        r, std::string("eni.json: NetworkInterfaces[0].ConnectionTrackingConfiguration.") + key,
        message));
  }
}

TEST(AwsLoader, InterfaceOutsideItsSubnetIsAWarning) {
  auto r = loadPolicyTexts({
      {"eni.json", R"({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "SubnetId": "subnet-1",
        "PrivateIpAddress": "10.0.9.10", "Groups": [{"GroupId": "sg-1"}]}]})"},
      {"sg.json", R"({"SecurityGroups": [{"GroupName": "web", "GroupId": "sg-1"}]})"},
      {"subnets.json", R"({"Subnets": [{"SubnetId": "subnet-1", "CidrBlock": "10.0.1.0/24"}]})"},
  });
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(testutil::findDiagnostic(r, Severity::kWarning,
                                       "eni.json: NetworkInterfaces[0].SubnetId",
                                       "address 10.0.9.10 of interface 'eni-1' is outside its "
                                       "subnet 'subnet-1'"))
      << dumpDiagnostics(r);
}

TEST(AwsLoader, AclAssociatedWithAnUnloadedSubnetIsAWarning) {
  auto r = loadPolicyTexts({{"acl.json", R"({"NetworkAcls": [{"NetworkAclId": "acl-1",
      "Associations": [{"SubnetId": "subnet-404"}], "Entries": []}]})"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(testutil::findDiagnostic(r, Severity::kWarning,
                                       "acl.json: NetworkAcls[0].Associations[0].SubnetId",
                                       "associated with subnet-404, which no loaded "
                                       "describe-subnets output contains"))
      << dumpDiagnostics(r);
}

TEST(AwsLoader, GroupNameIsTheNameWithoutATag) {
  auto r = loadPolicyTexts({{"sg.json", R"({"SecurityGroups": [
      {"GroupName": "default", "GroupId": "sg-1", "Tags": [{"Key": "Name", "Value": ""}]},
      {"GroupId": "sg-2"}]})"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->groups[0].name, "default");
  EXPECT_EQ(r.policy->groups[1].name, "sg-2");
}

TEST(AwsLoader, MixesWithYaml) {
  // YAML interfaces use AWS groups by their names; YAML sets the policy-wide settings.
  auto r = loadPolicyTexts({
      {"sg.json", R"({"SecurityGroups": [{"GroupName": "web", "GroupId": "sg-1",
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                           "UserIdGroupPairs": [{"GroupId": "sg-1"}]}]}]})"},
      {"rest.yaml", "unprotected: deny\ninterfaces: {i: {addresses: 10.0.0.1, groups: [web]}}\n"},
  });
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_FALSE(r.policy->unprotected_allow);
  EXPECT_EQ(r.policy->groups[0].inbound[0].str(Direction::kInbound), "tcp 80 from sg:web");
  EXPECT_EQ(r.policy->interfaces[0].groups, std::vector<std::string>{"web"});
}

TEST(AwsLoader, AwsDocumentsHaveTheDefaultSettings) {
  auto r = loadPolicyTexts({{"sg.json", R"({"SecurityGroups": []})"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->timeouts.seconds, Timeouts::defaults(TimeoutProfile::kAws).seconds);
  EXPECT_TRUE(r.policy->unprotected_allow);
  EXPECT_FALSE(r.policy->strict);
}

TEST(AwsLoader, Utf8ByteOrderMarkIsSkipped) {
  auto r = loadPolicyTexts(
      {{"sg.json",
        "\xEF\xBB\xBF{\"SecurityGroups\": [{\"GroupId\": \"sg-1\", \"GroupName\": \"web\"}]}"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->groups[0].name, "web");
}

TEST(AwsLoader, ProtocolMayBeANumber) {
  // The CLI prints protocols as strings; hand-written or converted JSON may use numbers.
  auto r =
      loadPolicyTexts({{"acl.json", R"({"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [
      {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": 6, "PortRange": {"From": 22, "To": 22},
       "RuleAction": "allow", "RuleNumber": 10},
      {"CidrBlock": "0.0.0.0/0", "Egress": false, "Protocol": -1, "RuleAction": "deny", "RuleNumber": 20}]}]})"},
                       {"sg.json", R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
      {"IpProtocol": 17, "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}]})"}});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  ASSERT_EQ(r.policy->acls[0].inbound.size(), 2u);
  EXPECT_EQ(r.policy->acls[0].inbound[0].str(Direction::kInbound),
            "10 allow tcp 22 from 0.0.0.0/0");
  EXPECT_EQ(r.policy->acls[0].inbound[1].str(Direction::kInbound), "20 deny all from 0.0.0.0/0");
  EXPECT_EQ(r.policy->groups[0].inbound[0].str(Direction::kInbound), "udp 53 from 10.0.0.0/8");
  auto bad =
      loadPolicyTexts({{"sg.json", R"({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
      {"IpProtocol": 300, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}]})"}});
  EXPECT_TRUE(testutil::failsWith(bad, "sg.json: SecurityGroups[0].IpPermissions[0].IpProtocol",
                                  "bad IpProtocol 300: expected tcp, udp"));
}

}  // namespace
}  // namespace statewall::rules
