// The example policies: examples/three-tier.yaml and its AWS JSON twin in examples/aws/ load
// without any diagnostic and give the same policy.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rules/rules_test_util.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using testutil::canonical;
using testutil::dumpDiagnostics;

const std::string kExamples = STATEWALL_EXAMPLES_DIR;

std::vector<std::string> awsFiles() {
  return {kExamples + "/aws/security-groups.json", kExamples + "/aws/network-acls.json",
          kExamples + "/aws/network-interfaces.json", kExamples + "/aws/subnets.json",
          kExamples + "/aws/prefix-lists.json"};
}

TEST(Examples, YamlLoadsCleanly) {
  auto r = loadPolicyFiles({kExamples + "/three-tier.yaml"});
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dumpDiagnostics(r);
}

TEST(Examples, AwsLoadsCleanly) {
  auto r = loadPolicyFiles(awsFiles());
  ASSERT_TRUE(r.ok()) << dumpDiagnostics(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dumpDiagnostics(r);
  EXPECT_EQ(r.policy->files, awsFiles());
}

TEST(Examples, BothFormatsGiveTheSamePolicy) {
  auto yaml = loadPolicyFiles({kExamples + "/three-tier.yaml"});
  auto aws = loadPolicyFiles(awsFiles());
  ASSERT_TRUE(yaml.ok()) << dumpDiagnostics(yaml);
  ASSERT_TRUE(aws.ok()) << dumpDiagnostics(aws);
  EXPECT_EQ(canonical(*yaml.policy), canonical(*aws.policy));

  // The comparison covers what the three tiers are about (guards against an empty canonical form).
  const std::string text = canonical(*aws.policy);
  for (const char* line : {
           "group web inbound[0] tcp 443 from 0.0.0.0/0, ::/0\n",
           "group web inbound[1] tcp 80 from 0.0.0.0/0, ::/0\n",
           "group web inbound[2] tcp 22 from pl:office\n",
           "group web inbound[3] icmp type 8 code any from 0.0.0.0/0\n",
           "group web outbound[0] all to 0.0.0.0/0, ::/0\n",
           "group app inbound[0] tcp 8080 from sg:web\n",
           "group db inbound[0] tcp 5432 from sg:app\n",
           "group db inbound[1] all from sg:db\n",
           "group db inbound-rules=2 outbound-rules=0\n",
           "acl public-acl inbound[0] 90 deny all from 192.0.2.0/24\n",
           "acl public-acl inbound[6] 130 allow tcp 1024-65535 from 0.0.0.0/0\n",
           "subnet public-subnet acl=public-acl: 10.0.1.0/24 2001:db8:1::/64\n",
           "interface web-1: 10.0.1.10 2001:db8:1::10 groups web\n",
           "interface db-2: 10.0.3.11 groups db\n",
           "prefix-list office: 203.0.113.0/24\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

TEST(Examples, AwsFilesInAnyOrder) {
  auto files = awsFiles();
  auto forward = loadPolicyFiles(files);
  std::reverse(files.begin(), files.end());
  auto backward = loadPolicyFiles(files);
  ASSERT_TRUE(forward.ok()) << dumpDiagnostics(forward);
  ASSERT_TRUE(backward.ok()) << dumpDiagnostics(backward);
  EXPECT_EQ(canonical(*forward.policy), canonical(*backward.policy));
}

TEST(Examples, CanonicalFormSeesADifference) {
  // The equivalence check would notice one changed port in the AWS files.
  std::ifstream in(kExamples + "/aws/security-groups.json");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string sg = buf.str();
  auto pos = sg.find("\"FromPort\": 8080");
  ASSERT_NE(pos, std::string::npos);
  sg.replace(pos, 16, "\"FromPort\": 8081");
  auto pos2 = sg.find("\"ToPort\": 8080");
  ASSERT_NE(pos2, std::string::npos);
  sg.replace(pos2, 14, "\"ToPort\": 8081");
  testutil::TempDir dir;
  auto files = awsFiles();
  files[0] = dir.write("security-groups.json", sg);
  auto changed = loadPolicyFiles(files);
  auto yaml = loadPolicyFiles({kExamples + "/three-tier.yaml"});
  ASSERT_TRUE(changed.ok()) << dumpDiagnostics(changed);
  ASSERT_TRUE(yaml.ok());
  EXPECT_NE(canonical(*changed.policy), canonical(*yaml.policy));
}

TEST(Examples, AwsWithoutPrefixListsNamesTheMissingId) {
  auto files = awsFiles();
  files.pop_back();  // prefix-lists.json
  auto r = loadPolicyFiles(files);
  EXPECT_TRUE(testutil::failsWith(
      r, files[0] + ": SecurityGroups[0].IpPermissions[2].PrefixListIds[0].PrefixListId",
      "unknown prefix list 'pl-0a1b2c3d4e5f60001'"));
}

TEST(Examples, LoadedFromCopiesInATempDir) {
  // Format detection looks at content, not at the file name.
  testutil::TempDir dir;
  std::vector<std::string> copies;
  int n = 0;
  for (const auto& f : awsFiles()) {
    auto to = dir.file("doc" + std::to_string(n++) + ".txt");
    std::filesystem::copy_file(f, to);
    copies.push_back(to);
  }
  auto yaml_copy = dir.file("policy.conf");
  std::filesystem::copy_file(kExamples + "/three-tier.yaml", yaml_copy);
  auto aws = loadPolicyFiles(copies);
  auto yaml = loadPolicyFiles({yaml_copy});
  ASSERT_TRUE(aws.ok()) << dumpDiagnostics(aws);
  ASSERT_TRUE(yaml.ok()) << dumpDiagnostics(yaml);
  EXPECT_EQ(canonical(*yaml.policy), canonical(*aws.policy));
}

}  // namespace
}  // namespace statewall::rules
