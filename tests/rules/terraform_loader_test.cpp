// The Terraform loader (rules/src/terraform_loader.cpp): plans and states of `terraform show -json`
// built here, resource by resource; the three rule styles; modules; values unknown until apply;
// errors that name the JSON path and the resource address.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rules/rules_test_util.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using nlohmann::json;
using testutil::canonical;
using testutil::dumpDiagnostics;
using testutil::failsWith;
using testutil::findDiagnostic;

json res(const std::string& address, const std::string& type, const std::string& name,
         json values) {
  return {{"address", address},
          {"mode", "managed"},
          {"type", type},
          {"name", name},
          {"provider_name", "registry.terraform.io/hashicorp/aws"},
          {"schema_version", 0},
          {"values", std::move(values)},
          {"sensitive_values", json::object()}};
}

json module(json resources, json children = json::array(), const std::string& address = "") {
  json m = {{"resources", std::move(resources)}};
  if (!address.empty()) m["address"] = address;
  if (!children.empty()) m["child_modules"] = std::move(children);
  return m;
}

// A plan whose planned values hold `root`; `prior` (a root module) when given.
json plan(json root, json prior = nullptr, json changes = json::array(), json config = nullptr) {
  json p = {{"format_version", "1.2"},
            {"terraform_version", "1.9.8"},
            {"planned_values", {{"root_module", std::move(root)}}},
            {"resource_changes", std::move(changes)}};
  if (!prior.is_null())
    p["prior_state"] = {{"format_version", "1.0"},
                        {"terraform_version", "1.9.8"},
                        {"values", {{"root_module", std::move(prior)}}}};
  if (!config.is_null()) p["configuration"] = {{"root_module", std::move(config)}};
  return p;
}

json state(json root) {
  return {{"format_version", "1.0"},
          {"terraform_version", "1.9.8"},
          {"values", {{"root_module", std::move(root)}}}};
}

LoadResult loadJson(const json& doc, const std::string& name = "plan.json") {
  return loadPolicyTexts({SourceText{name, doc.dump(2)}});
}

json sgBlock(const std::string& proto, int from, int to, json extra = json::object()) {
  json b = {{"protocol", proto},
            {"from_port", from},
            {"to_port", to},
            {"cidr_blocks", json::array()},
            {"ipv6_cidr_blocks", json::array()},
            {"prefix_list_ids", json::array()},
            {"security_groups", json::array()},
            {"self", false},
            {"description", ""}};
  for (auto& [k, v] : extra.items())
    b[k] = v;
  return b;
}

json group(const std::string& tf_name, const std::string& id, const std::string& name,
           json ingress = json::array(), json egress = json::array()) {
  return res("aws_security_group." + tf_name, "aws_security_group", tf_name,
             {{"id", id},
              {"name", name},
              {"description", name + " tier"},
              {"vpc_id", "vpc-1"},
              {"ingress", std::move(ingress)},
              {"egress", std::move(egress)},
              {"tags", {{"Name", name}}}});
}

json prefixList() {
  return res("aws_ec2_managed_prefix_list.office", "aws_ec2_managed_prefix_list", "office",
             {{"id", "pl-1"},
              {"name", "office"},
              {"address_family", "IPv4"},
              {"max_entries", 5},
              {"entry", {{{"cidr", "203.0.113.0/24"}, {"description", "office"}}}}});
}

json eni(const std::string& tf_name, const std::string& id, const std::string& ip, json groups,
         const std::string& subnet = "subnet-1") {
  return res("aws_network_interface." + tf_name, "aws_network_interface", tf_name,
             {{"id", id},
              {"private_ip", ip},
              {"private_ips", {ip}},
              {"ipv6_addresses", json::array()},
              {"security_groups", std::move(groups)},
              {"subnet_id", subnet},
              {"tags", {{"Name", tf_name}}}});
}

json subnet(const std::string& tf_name, const std::string& id, const std::string& cidr,
            const std::string& v6 = "") {
  return res("aws_subnet." + tf_name, "aws_subnet", tf_name,
             {{"id", id},
              {"cidr_block", cidr},
              {"ipv6_cidr_block", v6},
              {"vpc_id", "vpc-1"},
              {"tags", {{"Name", tf_name}}}});
}

// ---- security groups: three ways to write the same rules ----

// web: tcp 443 from 0.0.0.0/0 and ::/0; tcp 22 from the office prefix list; icmp echo from
// 0.0.0.0/0; all protocols from itself; udp 53 from app. app: all outbound to 0.0.0.0/0.
json inlineStyle() {
  json web_in = {
      sgBlock("tcp", 443, 443, {{"cidr_blocks", {"0.0.0.0/0"}}, {"ipv6_cidr_blocks", {"::/0"}}}),
      sgBlock("tcp", 22, 22, {{"prefix_list_ids", {"pl-1"}}}),
      sgBlock("icmp", 8, -1, {{"cidr_blocks", {"0.0.0.0/0"}}}),
      sgBlock("-1", 0, 0, {{"self", true}}),
      sgBlock("udp", 53, 53, {{"security_groups", {"sg-2"}}})};
  json app_out = {sgBlock("-1", 0, 0, {{"cidr_blocks", {"0.0.0.0/0"}}})};
  return module({prefixList(), group("web", "sg-1", "web", web_in),
                 group("app", "sg-2", "app", json::array(), app_out)});
}

json sgRule(const std::string& tf_name, const std::string& type, const std::string& group_id,
            const std::string& proto, int from, int to, json extra) {
  json v = {{"type", type},
            {"security_group_id", group_id},
            {"protocol", proto},
            {"from_port", from},
            {"to_port", to},
            {"cidr_blocks", nullptr},
            {"ipv6_cidr_blocks", nullptr},
            {"prefix_list_ids", nullptr},
            {"source_security_group_id", nullptr},
            {"self", false},
            {"description", nullptr}};
  for (auto& [k, x] : extra.items())
    v[k] = x;
  return res("aws_security_group_rule." + tf_name, "aws_security_group_rule", tf_name, v);
}

json ruleStyle() {
  return module(
      {prefixList(), group("web", "sg-1", "web"), group("app", "sg-2", "app"),
       sgRule("https", "ingress", "sg-1", "tcp", 443, 443,
              {{"cidr_blocks", {"0.0.0.0/0"}}, {"ipv6_cidr_blocks", {"::/0"}}}),
       sgRule("ssh", "ingress", "sg-1", "6", 22, 22, {{"prefix_list_ids", {"pl-1"}}}),
       sgRule("ping", "ingress", "sg-1", "icmp", 8, -1, {{"cidr_blocks", {"0.0.0.0/0"}}}),
       sgRule("self", "ingress", "sg-1", "all", 0, 0, {{"self", true}}),
       sgRule("dns", "ingress", "sg-1", "udp", 53, 53, {{"source_security_group_id", "sg-2"}}),
       sgRule("out", "egress", "sg-2", "-1", 0, 0, {{"cidr_blocks", {"0.0.0.0/0"}}})});
}

json vpcRule(const std::string& tf_name, bool ingress, const std::string& group_id,
             const std::string& proto, json from, json to, json extra) {
  const std::string type =
      ingress ? "aws_vpc_security_group_ingress_rule" : "aws_vpc_security_group_egress_rule";
  json v = {{"security_group_id", group_id},
            {"ip_protocol", proto},
            {"from_port", from},
            {"to_port", to},
            {"cidr_ipv4", nullptr},
            {"cidr_ipv6", nullptr},
            {"prefix_list_id", nullptr},
            {"referenced_security_group_id", nullptr},
            {"description", nullptr},
            {"id", "sgr-" + tf_name}};
  for (auto& [k, x] : extra.items())
    v[k] = x;
  return res(type + "." + tf_name, type, tf_name, v);
}

json vpcRuleStyle() {
  return module(
      {prefixList(), group("web", "sg-1", "web"), group("app", "sg-2", "app"),
       vpcRule("https6", true, "sg-1", "tcp", 443, 443, {{"cidr_ipv6", "::/0"}}),
       vpcRule("https4", true, "sg-1", "tcp", 443, 443, {{"cidr_ipv4", "0.0.0.0/0"}}),
       vpcRule("ssh", true, "sg-1", "tcp", 22, 22, {{"prefix_list_id", "pl-1"}}),
       vpcRule("ping", true, "sg-1", "icmp", 8, -1, {{"cidr_ipv4", "0.0.0.0/0"}}),
       vpcRule("self", true, "sg-1", "-1", nullptr, nullptr,
               {{"referenced_security_group_id", "sg-1"}}),
       vpcRule("dns", true, "sg-1", "udp", 53, 53, {{"referenced_security_group_id", "sg-2"}}),
       vpcRule("out", false, "sg-2", "-1", nullptr, nullptr, {{"cidr_ipv4", "0.0.0.0/0"}})});
}

TEST(TerraformRules, ThreeStylesGiveTheSamePolicy) {
  auto a = loadJson(plan(inlineStyle()));
  auto b = loadJson(plan(ruleStyle()));
  auto c = loadJson(plan(vpcRuleStyle()));
  ASSERT_TRUE(a.ok()) << dumpDiagnostics(a);
  ASSERT_TRUE(b.ok()) << dumpDiagnostics(b);
  ASSERT_TRUE(c.ok()) << dumpDiagnostics(c);
  EXPECT_EQ(canonical(*a.policy), canonical(*b.policy));
  EXPECT_EQ(canonical(*a.policy), canonical(*c.policy));
  const std::string text = canonical(*a.policy);
  // Ordered by protocol and port, whatever order the plan lists them in.
  for (const char* line :
       {"group web inbound[0] all from sg:web\n",
        "group web inbound[1] icmp type 8 code any from 0.0.0.0/0\n",
        "group web inbound[2] tcp 22 from pl:office\n",
        "group web inbound[3] tcp 443 from 0.0.0.0/0, ::/0\n",
        "group web inbound[4] udp 53 from sg:app\n", "group web inbound-rules=5 outbound-rules=0\n",
        "group app outbound[0] all to 0.0.0.0/0\n", "prefix-list office: 203.0.113.0/24\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

TEST(TerraformRules, ProtocolMinusOneIsAllWhateverThePorts) {
  // Terraform requires from_port = to_port = 0 with protocol -1; AWS ignores ports for it.
  auto r =
      loadJson(plan(module({group("g", "sg-1", "g",
                                  {sgBlock("-1", 0, 0, {{"cidr_blocks", {"10.0.0.0/8"}}}),
                                   sgBlock("17", 53, 53, {{"cidr_blocks", {"10.0.0.0/8"}}}),
                                   sgBlock("47", 0, 0, {{"cidr_blocks", {"10.0.0.0/8"}}})})})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const auto& in = r.policy->groups[0].inbound;
  ASSERT_EQ(in.size(), 3u);
  EXPECT_EQ(in[0].str(Direction::kInbound), "all from 10.0.0.0/8");
  EXPECT_EQ(in[1].str(Direction::kInbound), "udp 53 from 10.0.0.0/8");
  EXPECT_EQ(in[2].str(Direction::kInbound), "47 from 10.0.0.0/8");
  EXPECT_TRUE(in[2].match.allPorts());
}

TEST(TerraformRules, StateListsSeparateRulesInlineToo) {
  // After apply, a group's `ingress` echoes its aws_security_group_rule resources: one rule.
  json inline_echo = {sgBlock("tcp", 443, 443, {{"cidr_blocks", {"0.0.0.0/0"}}})};
  auto r = loadJson(state(module(
      {group("web", "sg-1", "web", inline_echo),
       sgRule("https", "ingress", "sg-1", "tcp", 443, 443, {{"cidr_blocks", {"0.0.0.0/0"}}})})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  ASSERT_EQ(r.policy->groups[0].inbound.size(), 1u);
  EXPECT_EQ(r.policy->groups[0].inbound[0].peers.size(), 1u);
}

TEST(TerraformRules, DefaultSecurityGroupAndGroupsByName) {
  json def = res("aws_default_security_group.default", "aws_default_security_group", "default",
                 {{"id", "sg-9"},
                  {"name", "default"},
                  {"vpc_id", "vpc-1"},
                  {"ingress", {sgBlock("-1", 0, 0, {{"self", true}})}},
                  {"egress", json::array()}});
  auto r = loadJson(plan(module({def, eni("a", "eni-1", "10.0.1.5", {"sg-9"})})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const std::string text = canonical(*r.policy);
  EXPECT_NE(text.find("group default inbound[0] all from sg:default\n"), std::string::npos) << text;
  EXPECT_NE(text.find("interface a: 10.0.1.5 groups default\n"), std::string::npos) << text;
}

// ---- network ACLs ----

json aclBlock(int rule_no, const std::string& action, const std::string& proto, json extra) {
  json b = {{"rule_no", rule_no},    {"action", action}, {"protocol", proto},
            {"from_port", 0},        {"to_port", 0},     {"cidr_block", ""},
            {"ipv6_cidr_block", ""}, {"icmp_type", 0},   {"icmp_code", 0}};
  for (auto& [k, v] : extra.items())
    b[k] = v;
  return b;
}

TEST(TerraformAcls, InlineEntriesRulesAssociationsAndTheDefaultAcl) {
  json in = {aclBlock(90, "deny", "-1", {{"cidr_block", "192.0.2.0/24"}}),
             aclBlock(100, "allow", "6",
                      {{"from_port", 443}, {"to_port", 443}, {"cidr_block", "0.0.0.0/0"}}),
             aclBlock(110, "allow", "all", {{"ipv6_cidr_block", "::/0"}}),
             aclBlock(120, "allow", "icmp",
                      {{"icmp_type", 3}, {"icmp_code", 4}, {"cidr_block", "0.0.0.0/0"}}),
             aclBlock(130, "deny", "udp",
                      {{"from_port", 1}, {"to_port", 1023}, {"cidr_block", "0.0.0.0/0"}})};
  json acl = res("aws_network_acl.pub", "aws_network_acl", "pub",
                 {{"id", "acl-1"},
                  {"vpc_id", "vpc-1"},
                  {"subnet_ids", json::array()},
                  {"ingress", in},
                  {"egress", json::array()},
                  {"tags", {{"Name", "public-acl"}}}});
  json rule = res("aws_network_acl_rule.out", "aws_network_acl_rule", "out",
                  {{"network_acl_id", "acl-1"},
                   {"rule_number", 100},
                   {"egress", true},
                   {"rule_action", "allow"},
                   {"protocol", "-1"},
                   {"cidr_block", "0.0.0.0/0"},
                   {"ipv6_cidr_block", nullptr},
                   {"from_port", nullptr},
                   {"to_port", nullptr},
                   {"icmp_type", nullptr},
                   {"icmp_code", nullptr}});
  json assoc = res("aws_network_acl_association.pub", "aws_network_acl_association", "pub",
                   {{"id", "aclassoc-1"}, {"network_acl_id", "acl-1"}, {"subnet_id", "subnet-1"}});
  json def = res("aws_default_network_acl.d", "aws_default_network_acl", "d",
                 {{"id", "acl-2"},
                  {"vpc_id", "vpc-1"},
                  {"subnet_ids", json::array()},
                  {"ingress", {aclBlock(100, "allow", "-1", {{"cidr_block", "0.0.0.0/0"}})}},
                  {"egress", json::array()},
                  {"tags", {{"Name", "default-acl"}}}});
  auto r = loadJson(plan(module({acl, rule, assoc, def, subnet("public", "subnet-1", "10.0.1.0/24"),
                                 subnet("private", "subnet-2", "10.0.2.0/24")})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dumpDiagnostics(r);
  const std::string text = canonical(*r.policy);
  for (const char* line :
       {"acl public-acl inbound[0] 90 deny all from 192.0.2.0/24\n",
        "acl public-acl inbound[1] 100 allow tcp 443 from 0.0.0.0/0\n",
        "acl public-acl inbound[2] 110 allow all from ::/0\n",
        "acl public-acl inbound[3] 120 allow icmp type 3 code 4 from 0.0.0.0/0\n",
        "acl public-acl inbound[4] 130 deny udp 1-1023 from 0.0.0.0/0\n",
        "acl public-acl outbound[0] 100 allow all to 0.0.0.0/0\n",
        "subnet public acl=public-acl: 10.0.1.0/24\n",
        // Not associated with another ACL: the VPC's default one (AWS).
        "subnet private acl=default-acl: 10.0.2.0/24\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

// ---- interfaces ----

TEST(TerraformInterfaces, InstancesEnisAndAttachments) {
  json inst = res("aws_instance.web[0]", "aws_instance", "web",
                  {{"id", "i-1"},
                   {"primary_network_interface_id", "eni-10"},
                   {"private_ip", "10.0.1.10"},
                   {"secondary_private_ips", {"10.0.1.20"}},
                   {"ipv6_addresses", {"2001:db8:1::10"}},
                   {"vpc_security_group_ids", {"sg-1"}},
                   {"security_groups", json::array()},
                   {"subnet_id", "subnet-1"},
                   {"network_interface", json::array()},
                   {"tags", {{"Name", "web-1"}}}});
  inst["index"] = 0;
  // An instance whose primary interface is an aws_network_interface: that ENI is the interface.
  json inst2 =
      res("aws_instance.db", "aws_instance", "db",
          {{"id", "i-2"},
           {"primary_network_interface_id", "eni-20"},
           {"private_ip", "10.0.1.30"},
           {"vpc_security_group_ids", {"sg-1"}},
           {"network_interface", {{{"device_index", 0}, {"network_interface_id", "eni-20"}}}},
           {"subnet_id", "subnet-1"}});
  json attach =
      res("aws_network_interface_sg_attachment.extra", "aws_network_interface_sg_attachment",
          "extra", {{"security_group_id", "sg-2"}, {"network_interface_id", "eni-20"}});
  json attach_instance =
      res("aws_network_interface_sg_attachment.web", "aws_network_interface_sg_attachment", "web",
          {{"security_group_id", "sg-2"}, {"network_interface_id", "eni-10"}});
  auto r =
      loadJson(plan(module({group("a", "sg-1", "web"), group("b", "sg-2", "extra"), inst, inst2,
                            eni("db", "eni-20", "10.0.1.30", {"sg-1"}), attach, attach_instance,
                            subnet("s", "subnet-1", "10.0.1.0/24", "2001:db8:1::/64")})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const std::string text = canonical(*r.policy);
  EXPECT_NE(text.find("interface web-1: 10.0.1.10 10.0.1.20 2001:db8:1::10 groups web extra\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("interface db: 10.0.1.30 groups web extra\n"), std::string::npos) << text;
  EXPECT_EQ(r.policy->interfaces.size(), 2u) << text;
}

TEST(TerraformPrefixLists, InlineEntriesAndEntryResources) {
  json entry = res("aws_ec2_managed_prefix_list_entry.vpn", "aws_ec2_managed_prefix_list_entry",
                   "vpn", {{"prefix_list_id", "pl-1"}, {"cidr", "198.51.100.0/24"}});
  auto r = loadJson(plan(module({prefixList(), entry})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_NE(canonical(*r.policy).find("prefix-list office: 203.0.113.0/24 198.51.100.0/24\n"),
            std::string::npos)
      << canonical(*r.policy);
}

TEST(TerraformVpcs, CidrsGiveTheAmazonDnsAddress) {
  json vpc =
      res("aws_vpc.main", "aws_vpc", "main",
          {{"id", "vpc-1"}, {"cidr_block", "10.0.0.0/16"}, {"ipv6_cidr_block", "2001:db8::/56"}});
  auto r = loadJson(plan(module({vpc})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  ASSERT_EQ(r.policy->vpc_cidrs.size(), 2u);
  EXPECT_EQ(r.policy->vpc_cidrs[0].str(), "10.0.0.0/16");
  EXPECT_EQ(r.policy->vpc_cidrs[1].str(), "2001:db8::/56");
}

// ---- modules ----

TEST(TerraformModules, ChildModulesRecursively) {
  json inner = module({group("this", "sg-3", "inner",
                             {sgBlock("tcp", 5432, 5432, {{"security_groups", {"sg-1"}}})})},
                      json::array(), "module.outer.module.inner[0]");
  inner["resources"][0]["address"] = "module.outer.module.inner[0].aws_security_group.this";
  json outer = module({eni("x", "eni-1", "10.0.1.5", {"sg-3"})}, {inner}, "module.outer");
  outer["resources"][0]["address"] = "module.outer.aws_network_interface.x";
  auto r = loadJson(plan(module({group("web", "sg-1", "web")}, {outer})));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const std::string text = canonical(*r.policy);
  EXPECT_NE(text.find("group inner inbound[0] tcp 5432 from sg:web\n"), std::string::npos) << text;
  EXPECT_NE(text.find("interface x: 10.0.1.5 groups inner\n"), std::string::npos) << text;
}

// ---- values unknown until apply ----

// A plan that creates the app and db tiers: ids are unknown, the configuration says what refers
// to what; the db module gets the app group through a variable and exports its group as output.
json creatingPlan() {
  json app = res(
      "aws_security_group.app", "aws_security_group", "app",
      {{"name", "app"}, {"description", "app"}, {"vpc_id", "vpc-1"}, {"egress", json::array()}});
  json db = res("module.db.aws_security_group.this", "aws_security_group", "this",
                {{"name", "db"},
                 {"description", "db"},
                 {"vpc_id", "vpc-1"},
                 {"ingress", json::array()},
                 {"egress", json::array()}});
  json db_rule = res("module.db.aws_vpc_security_group_ingress_rule.from_app",
                     "aws_vpc_security_group_ingress_rule", "from_app",
                     {{"ip_protocol", "tcp"}, {"from_port", 5432}, {"to_port", 5432}});
  json app_eni = res(
      "aws_network_interface.app", "aws_network_interface", "app",
      {{"private_ips", {"10.0.2.10"}}, {"private_ip", "10.0.2.10"}, {"tags", {{"Name", "app-1"}}}});
  json db_inst = res("aws_instance.db", "aws_instance", "db", {{"instance_type", "t3.micro"}});
  json egress_rule =
      res("aws_security_group_rule.app_to_db", "aws_security_group_rule", "app_to_db",
          {{"type", "egress"},
           {"protocol", "tcp"},
           {"from_port", 5432},
           {"to_port", 5432},
           {"self", false}});
  json planned = module({app, app_eni, db_inst, egress_rule},
                        {module({db, db_rule}, json::array(), "module.db")});
  auto change = [](const std::string& address, json unknown) {
    return json{
        {"address", address},
        {"mode", "managed"},
        {"change", {{"actions", {"create"}}, {"before", nullptr}, {"after_unknown", unknown}}}};
  };
  json changes = {
      change("aws_security_group.app", {{"id", true}, {"ingress", true}}),
      change("module.db.aws_security_group.this", {{"id", true}}),
      change("module.db.aws_vpc_security_group_ingress_rule.from_app",
             {{"id", true}, {"security_group_id", true}, {"referenced_security_group_id", true}}),
      change("aws_network_interface.app",
             {{"id", true}, {"security_groups", true}, {"subnet_id", true}}),
      change("aws_instance.db",
             {{"id", true}, {"private_ip", true}, {"vpc_security_group_ids", true}}),
      change("aws_security_group_rule.app_to_db", {{"security_group_id", true},
                                                   {"source_security_group_id", true},
                                                   {"cidr_blocks", true}})};
  auto ref = [](std::vector<std::string> refs) { return json{{"references", refs}}; };
  auto cres = [](const std::string& type, const std::string& name, json exprs) {
    return json{{"address", type + "." + name},
                {"mode", "managed"},
                {"type", type},
                {"name", name},
                {"expressions", exprs}};
  };
  json config = {
      {"resources",
       {cres("aws_security_group", "app",
             {{"ingress",
               {{{"protocol", {{"constant_value", "tcp"}}},
                 {"from_port", {{"constant_value", 8080}}},
                 {"to_port", {{"constant_value", 8080}}},
                 {"cidr_blocks", {{"constant_value", {"10.0.1.0/24"}}}}}}}}),
        cres("aws_network_interface", "app",
             {{"security_groups", ref({"aws_security_group.app.id", "aws_security_group.app"})}}),
        cres("aws_instance", "db",
             {{"vpc_security_group_ids", ref({"module.db.group_id", "module.db"})}}),
        cres("aws_security_group_rule", "app_to_db",
             {{"security_group_id", ref({"aws_security_group.app.id", "aws_security_group.app"})},
              {"source_security_group_id", ref({"module.db.group_id", "module.db"})},
              {"cidr_blocks", ref({"data.aws_vpc.main.cidr_block", "data.aws_vpc.main"})}})}},
      {"module_calls",
       {{"db",
         {{"source", "./db"},
          {"expressions",
           {{"app_group_id", ref({"aws_security_group.app.id", "aws_security_group.app"})}}},
          {"module",
           {{"resources",
             {cres("aws_security_group", "this", json::object()),
              cres("aws_vpc_security_group_ingress_rule", "from_app",
                   {{"security_group_id",
                     ref({"aws_security_group.this.id", "aws_security_group.this"})},
                    {"referenced_security_group_id", ref({"var.app_group_id"})}})}},
            {"outputs",
             {{"group_id",
               {{"expression",
                 ref({"aws_security_group.this.id", "aws_security_group.this"})}}}}}}}}}}}};
  return plan(planned, nullptr, changes, config);
}

TEST(TerraformUnknown, ReferencesResolvedThroughTheConfigurationWithWarnings) {
  auto r = loadJson(creatingPlan());
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const std::string text = canonical(*r.policy);
  for (const char* line :
       {"group db inbound[0] tcp 5432 from sg:app\n", "group app outbound[0] tcp 5432 to sg:db\n",
        // ingress unknown: the configuration's block, with its constants.
        "group app inbound[0] tcp 8080 from 10.0.1.0/24\n",
        "interface app-1: 10.0.2.10 groups app\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
  using testutil::findDiagnostic;
  const std::string base = "plan.json: planned_values.root_module.";
  EXPECT_TRUE(findDiagnostic(
      r, Severity::kWarning,
      base + "child_modules[0].resources[1].values.referenced_security_group_id",
      "module.db.aws_vpc_security_group_ingress_rule.from_app: referenced_security_group_id is "
      "unknown until apply; assumed aws_security_group.app (the configuration refers to it)"))
      << dumpDiagnostics(r);
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning,
                             base + "resources[3].values.source_security_group_id",
                             "aws_security_group_rule.app_to_db: source_security_group_id is "
                             "unknown until apply; assumed module.db.aws_security_group.this"))
      << dumpDiagnostics(r);
  // A data source is not in the plan: nothing is assumed for the CIDRs.
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning, base + "resources[3].values.cidr_blocks",
                             "aws_security_group_rule.app_to_db: cidr_blocks is unknown until "
                             "apply; the configuration refers to nothing in this plan for it; "
                             "assumed no such peer"))
      << dumpDiagnostics(r);
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning, base + "resources[0].values.ingress",
                             "aws_security_group.app: ingress is unknown until apply; assumed the "
                             "configuration's 1 ingress block(s)"))
      << dumpDiagnostics(r);
  // The instance's address is assigned at apply: it is left out, and said so.
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning, base + "resources[2].values.private_ip",
                             "aws_instance.db: private_ip is unknown until apply"))
      << dumpDiagnostics(r);
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning, base + "resources[2]",
                             "aws_instance.db: the interface has no known address"))
      << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->interfaces.size(), 1u);
}

TEST(TerraformUnknown, InlineBlockMatchedToItsConfigurationBlock) {
  // web's 443 block names a group created by this plan, by count index: the plan lists the
  // block with the unknown id as null; the configuration's block with the same ports says which.
  auto peer = [](int i, const std::string& name) {
    json g = res("aws_security_group.peer[" + std::to_string(i) + "]", "aws_security_group", "peer",
                 {{"name", name},
                  {"vpc_id", "vpc-1"},
                  {"ingress", json::array()},
                  {"egress", json::array()}});
    g["index"] = i;
    return g;
  };
  json web = group("web", "sg-1", "web",
                   {sgBlock("tcp", 443, 443, {{"security_groups", {nullptr}}}),
                    sgBlock("tcp", 80, 80, {{"cidr_blocks", {"0.0.0.0/0"}}})});
  auto change = [](const std::string& address, json unknown) {
    return json{{"address", address}, {"change", {{"after_unknown", std::move(unknown)}}}};
  };
  json web_unknown = json::object();
  web_unknown["ingress"] = json::array({{{"security_groups", {true}}}, json::object()});
  json changes = json::array({change("aws_security_group.web", web_unknown),
                              change("aws_security_group.peer[0]", {{"id", true}}),
                              change("aws_security_group.peer[1]", {{"id", true}})});
  auto c = [](json v) { return json{{"constant_value", v}}; };
  json config = {{"resources",
                  {{{"address", "aws_security_group.web"},
                    {"mode", "managed"},
                    {"type", "aws_security_group"},
                    {"name", "web"},
                    {"expressions",
                     {{"ingress",
                       {{{"protocol", c("tcp")}, {"from_port", c(80)}, {"to_port", c(80)}},
                        {{"protocol", c("6")},
                         {"from_port", c(443)},
                         {"to_port", c(443)},
                         {"security_groups",
                          {{"references",
                            {"aws_security_group.peer[1].id", "aws_security_group.peer[1]",
                             "aws_security_group.peer"}}}}}}}}}}}}};
  auto r =
      loadJson(plan(module({web, peer(0, "peer-a"), peer(1, "peer-b")}), nullptr, changes, config));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  const std::string text = canonical(*r.policy);
  EXPECT_NE(text.find("group web inbound[1] tcp 443 from sg:peer-b\n"), std::string::npos) << text;
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning,
                             "plan.json: planned_values.root_module.resources[0].values.ingress[0]."
                             "security_groups",
                             "aws_security_group.web: ingress[0].security_groups is unknown until "
                             "apply; assumed aws_security_group.peer[1]"))
      << dumpDiagnostics(r);
}

TEST(TerraformUnknown, InstanceWithoutGroupsGetsTheVpcDefaultGroup) {
  json def = res("aws_default_security_group.d", "aws_default_security_group", "d",
                 {{"id", "sg-9"},
                  {"name", "default"},
                  {"vpc_id", "vpc-1"},
                  {"ingress", json::array()},
                  {"egress", json::array()}});
  json inst = res("aws_instance.a", "aws_instance", "a",
                  {{"private_ip", "10.0.1.7"}, {"subnet_id", "subnet-1"}});
  json changes = {{{"address", "aws_instance.a"},
                   {"change", {{"after_unknown", {{"vpc_security_group_ids", true}}}}}}};
  auto r =
      loadJson(plan(module({def, inst, subnet("s", "subnet-1", "10.0.1.0/24")}), nullptr, changes));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_NE(canonical(*r.policy).find("interface aws_instance.a: 10.0.1.7 groups default\n"),
            std::string::npos)
      << canonical(*r.policy);
  EXPECT_TRUE(findDiagnostic(r, Severity::kWarning,
                             "plan.json: planned_values.root_module.resources[1].values."
                             "vpc_security_group_ids",
                             "assumed the VPC's default security group"))
      << dumpDiagnostics(r);
}

TEST(TerraformUnknown, UnknownWithoutConfigurationLeavesTheRuleOut) {
  json rule = sgRule("x", "ingress", "sg-1", "tcp", 22, 22, json::object());
  rule["values"].erase("cidr_blocks");
  json changes = {
      {{"address", "aws_security_group_rule.x"},
       {"change", {{"actions", {"create"}}, {"after_unknown", {{"cidr_blocks", true}}}}}}};
  auto r = loadJson(plan(module({group("g", "sg-1", "g"), rule}), nullptr, changes));
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.policy->groups[0].inbound.empty());
  EXPECT_TRUE(
      findDiagnostic(r, Severity::kWarning,
                     "plan.json: planned_values.root_module.resources[1].values.cidr_blocks",
                     "aws_security_group_rule.x: cidr_blocks is unknown until apply"))
      << dumpDiagnostics(r);
}

// ---- plan, prior state, state ----

TEST(TerraformValuesSelection, PriorAndPlannedAndState) {
  json before = module(
      {group("g", "sg-1", "g", {sgBlock("tcp", 22, 22, {{"cidr_blocks", {"10.0.0.0/8"}}})})});
  json after = module(
      {group("g", "sg-1", "g", {sgBlock("tcp", 2222, 2222, {{"cidr_blocks", {"10.0.0.0/8"}}})})});
  const std::string text = plan(after, before).dump();
  auto planned = loadPolicyTexts({SourceText{"p.json", text}});
  auto planned2 = loadPolicyTexts({SourceText{"p.json#planned", text}});
  auto prior = loadPolicyTexts({SourceText{"p.json#prior", text}});
  ASSERT_TRUE(planned.ok() && planned2.ok() && prior.ok())
      << dumpDiagnostics(planned) << dumpDiagnostics(prior);
  EXPECT_EQ(planned.policy->groups[0].inbound[0].match.port_lo, 2222);
  EXPECT_EQ(planned2.policy->groups[0].inbound[0].match.port_lo, 2222);
  EXPECT_EQ(prior.policy->groups[0].inbound[0].match.port_lo, 22);
  EXPECT_EQ(prior.policy->groups[0].loc.str(),
            "p.json#prior: prior_state.values.root_module.resources[0]");

  auto st = loadJson(state(before), "state.json");
  ASSERT_TRUE(st.ok()) << dumpDiagnostics(st);
  EXPECT_EQ(st.policy->groups[0].inbound[0].match.port_lo, 22);

  // A plan that creates everything has no prior state: an empty policy, said so.
  auto empty = loadPolicyTexts({SourceText{"p.json#prior", plan(after).dump()}});
  ASSERT_TRUE(empty.ok()) << dumpDiagnostics(empty);
  EXPECT_TRUE(empty.policy->groups.empty());
  EXPECT_TRUE(findDiagnostic(empty, Severity::kWarning, "p.json#prior", "has no prior_state"));
}

// ---- errors ----

TEST(TerraformErrors, NameTheJsonPathAndTheResourceAddress) {
  json g = group("this", "sg-1", "web", {sgBlock("tcp", 0, 0, {{"from_port", "http"}})});
  g["address"] = "module.web.aws_security_group.this[0]";
  auto r = loadJson(plan(module(json::array(), {module({g}, json::array(), "module.web")})));
  EXPECT_TRUE(failsWith(
      r,
      "plan.json: "
      "planned_values.root_module.child_modules[0].resources[0].values.ingress[0].from_port",
      "module.web.aws_security_group.this[0]: ingress[0].from_port: expected a port number "
      "0..65535, found string \"http\""));

  json bad_proto =
      group("g", "sg-1", "g", {sgBlock("tcpp", 1, 2, {{"cidr_blocks", {"10.0.0.0/8"}}})});
  EXPECT_TRUE(
      failsWith(loadJson(plan(module({bad_proto}))),
                "plan.json: planned_values.root_module.resources[0].values.ingress[0].protocol",
                "aws_security_group.g: ingress[0].protocol: bad protocol"));

  json bad_cidr = group("g", "sg-1", "g", {sgBlock("tcp", 1, 2, {{"cidr_blocks", {"::/0"}}})});
  EXPECT_TRUE(failsWith(
      loadJson(plan(module({bad_cidr}))),
      "plan.json: planned_values.root_module.resources[0].values.ingress[0].cidr_blocks[0]",
      "aws_security_group.g: '::/0' in cidr_blocks: expected an IPv4 CIDR"));

  json acl = res("aws_network_acl.a", "aws_network_acl", "a",
                 {{"id", "acl-1"},
                  {"ingress", {aclBlock(100, "permit", "-1", {{"cidr_block", "0.0.0.0/0"}})}}});
  EXPECT_TRUE(
      failsWith(loadJson(plan(module({acl}))),
                "plan.json: planned_values.root_module.resources[0].values.ingress[0].action",
                "aws_network_acl.a: bad ingress[0].action 'permit': expected allow or deny"));
}

TEST(TerraformErrors, DocumentsThatAreNotWhatTheyClaim) {
  EXPECT_TRUE(failsWith(
      loadPolicyTexts({SourceText{"terraform.tfstate",
                                  R"({"version": 4, "terraform_version": "1.9.8", "serial": 3,
                                      "lineage": "x", "outputs": {}, "resources": []})"}}),
      "terraform.tfstate", "terraform show -json"));
  EXPECT_TRUE(failsWith(
      loadPolicyTexts({SourceText{"p.json", R"({"format_version": "2.0", "planned_values": {}})"}}),
      "p.json: format_version", "unsupported format_version string \"2.0\""));
  EXPECT_TRUE(
      failsWith(loadPolicyTexts({SourceText{"s.json#prior", state(module(json::array())).dump()}}),
                "s.json#prior", "this is a state"));
  EXPECT_TRUE(failsWith(
      loadPolicyTexts({SourceText{"s.json#planned", state(module(json::array())).dump()}}),
      "s.json#planned", "'#planned' selects a plan's planned values, and this is a state"));
  EXPECT_TRUE(failsWith(loadPolicyTexts({SourceText{"p.yaml#prior", "version: 1\n"}}),
                        "p.yaml#prior", "not one"));
  EXPECT_TRUE(failsWith(loadPolicyTexts({SourceText{"p.json", R"({"format_version": "1.2",
      "terraform_version": "1.9.8", "planned_values": {)"}}),
                        "p.json:2:56", "invalid JSON"));
  json not_obj = plan(module({group("g", "sg-1", "g")}));
  not_obj["planned_values"]["root_module"]["resources"][0]["values"]["ingress"] = "all";
  EXPECT_TRUE(failsWith(loadJson(not_obj),
                        "plan.json: planned_values.root_module.resources[0].values.ingress",
                        "aws_security_group.g: ingress: expected a list of blocks"));
}

TEST(TerraformFiles, PriorSuffixReadsThePlanFile) {
  testutil::TempDir dir;
  json before = module({group("g", "sg-1", "g")});
  const std::string path = dir.write("plan.json", plan(module(json::array()), before).dump());
  auto prior = loadPolicyFiles({path + "#prior"});
  ASSERT_TRUE(prior.ok()) << dumpDiagnostics(prior);
  EXPECT_EQ(prior.policy->groups.size(), 1u);
  auto planned = loadPolicyFiles({path});
  ASSERT_TRUE(planned.ok()) << dumpDiagnostics(planned);
  EXPECT_TRUE(planned.policy->groups.empty());
  auto missing = loadPolicyFiles({dir.file("nope.json") + "#prior"});
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace statewall::rules
