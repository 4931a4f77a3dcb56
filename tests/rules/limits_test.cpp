// Hostile policy input: invalid UTF-8, YAML alias amplification, deep nesting, too many objects
// and files without end. Each fails fast, whole, with an error naming where and which limit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "rules_test_util.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::rules {
namespace {

using testutil::failsWith;
using testutil::loadYamlText;

// A policy of nested anchors: 400 CIDRs, aliased by each of 100 rules, aliased by each of
// `groups` groups: `groups` * 40,000 peers from about 11 KB of text.
std::string aliasBomb(int groups = 100) {
  std::string t = "version: 1\nprefix_lists:\n  p: &p [";
  for (int i = 0; i < 400; ++i)
    t += (i ? ", " : "") + std::to_string(10 + i / 250) + "." + std::to_string(i % 250) + ".0.0/16";
  t += "]\ngroups:\n  base:\n    inbound: &r [";
  for (int i = 0; i < 100; ++i)
    t += std::string(i ? ", " : "") + "{proto: tcp, ports: 443, from: *p}";
  t += "]\n";
  for (int i = 0; i < groups; ++i)
    t += "  g" + std::to_string(i) + ": {inbound: *r}\n";
  return t;
}

TEST(AliasBomb, FailsAtTheAliasThatExceedsTheNodeLimit) {
  const std::string text = aliasBomb();
  ASSERT_LT(text.size(), 16u * 1024);
  LoadResult r = loadYamlText(text);
  // 2,000,000 nodes: base and the first g* groups fit (about 40,500 nodes each), g48 does not.
  EXPECT_TRUE(failsWith(r, "p.yaml:55:18",
                        "the document expands to more than 2000000 YAML nodes (each alias "
                        "counted as the node it names): expected at most 2000000"));
  EXPECT_EQ(testutil::errorCount(r), 1u) << testutil::dumpDiagnostics(r);
}

TEST(AliasBomb, AliasesWithinTheLimitStillLoad) {
  LoadResult r = loadYamlText(aliasBomb(3));
  ASSERT_TRUE(r.ok()) << testutil::dumpDiagnostics(r);
  EXPECT_EQ(r.policy->groups.size(), 4u);
  EXPECT_EQ(r.policy->groups[3].inbound.size(), 100u);
  EXPECT_EQ(r.policy->groups[3].inbound[99].peers.size(), 400u);
}

TEST(AliasBomb, ACycleIsAnError) {
  EXPECT_TRUE(failsWith(loadYamlText("version: 1\ngroups: &g {a: *g}\n"), "p.yaml:2:16",
                        "this alias refers to a node that contains it"));
}

TEST(YamlNesting, TooDeepNamesTheLimit) {
  // yaml-cpp's own guard says only "bad file" (at 2000 levels); ours says what and where.
  const std::string text = "version: 1\ngroups: " + std::string(3000, '[') + std::string(3000, ']');
  EXPECT_TRUE(failsWith(loadYamlText(text), "p.yaml:2:72",
                        "mappings and lists nested more than 64 deep: expected at most 64"));
}

TEST(YamlNesting, DepthThroughAnAliasCounts) {
  std::string deep = std::string(40, '[') + std::string(40, ']');
  EXPECT_TRUE(
      failsWith(loadYamlText("version: 1\nx: &d " + deep + "\ngroups: [[[[ [[[[ " +
                             "[[[[ [[[[ [[[[ [[[[ [[[[ *d ]]]] ]]]] ]]]] ]]]] ]]]] ]]]] ]]]]\n"),
                "p.yaml:3:44", "nested more than 64 deep"));
}

TEST(PolicyLimits, TooManyInterfacesNamesTheFirstOneBeyondTheLimit) {
  // Aliases keep the text small; the interfaces are counted before their addresses are checked.
  std::string t =
      "version: 1\ngroups: {web: {}}\ninterfaces:\n  i0: &i {addresses: [10.0.0.1], "
      "groups: [web]}\n";
  for (size_t i = 1; i < kMaxPolicyInterfaces + 10; ++i)
    t += "  i" + std::to_string(i) + ": *i\n";
  LoadResult r = loadYamlText(t);
  // Interface number kMaxPolicyInterfaces (0-based) is on line 4 + that.
  EXPECT_TRUE(failsWith(r, "p.yaml:" + std::to_string(4 + kMaxPolicyInterfaces) + ":3",
                        "the policy has more than 65534 interfaces: expected at most 65534"));
  EXPECT_EQ(testutil::errorCount(r), 1u) << testutil::dumpDiagnostics(r);
}

TEST(PolicyLimits, TooManyRulesAcrossFiles) {
  // Rules are counted over all files of a policy together: 3 files of 250 groups of 1,000 rules.
  std::vector<SourceText> docs;
  for (int f = 0; f < 3; ++f) {
    std::string doc = "groups:\n  f" + std::to_string(f) + "g0: {outbound: [], inbound: &r [";
    for (int i = 0; i < 1000; ++i)
      doc += std::string(i ? ", " : "") + "{proto: tcp, ports: " + std::to_string(i) +
             ", from: 10.0.0.0/8}";
    doc += "]}\n";
    for (int g = 1; g < 250; ++g)
      doc +=
          "  f" + std::to_string(f) + "g" + std::to_string(g) + ": {outbound: [], inbound: *r}\n";
    docs.push_back({"p" + std::to_string(f) + ".yaml", doc});
  }
  LoadResult r = loadPolicyTexts(docs);
  // Rule 500,001 is the first of file 2's group 0 (line 2).
  EXPECT_TRUE(failsWith(r, "p2.yaml:2:37",
                        "the policy has more than 500000 rules (security-group rules and "
                        "network-ACL entries together): expected at most 500000"));
  EXPECT_EQ(testutil::errorCount(r), 1u) << testutil::dumpDiagnostics(r).substr(0, 2000);
}

TEST(Utf8, ByteFFInADescriptionIsRejectedWithItsPosition) {
  LoadResult r = loadYamlText("version: 1\ngroups:\n  web:\n    description: \"caf\xE9 \xFF\"\n");
  EXPECT_TRUE(failsWith(r, "p.yaml:4:22", "invalid UTF-8 at byte 47 (0xE9): expected UTF-8 text"));
}

TEST(Utf8, InAKeyOrANameToo) {
  EXPECT_TRUE(failsWith(loadYamlText("version: 1\ngroups:\n  w\xC3\x28: {}\n"), "p.yaml:3:4",
                        "invalid UTF-8 at byte 22 (0xC3): expected UTF-8 text"));
}

TEST(Utf8, AnEscapeThatGivesASurrogateIsRejected) {
  // yaml-cpp refuses it itself; the loader would too ("a text that is not UTF-8").
  EXPECT_TRUE(failsWith(loadYamlText("version: 1\ngroups:\n  web: {description: \"a\\uD800b\"}\n"),
                        "p.yaml:3:30", "invalid unicode"));
}

TEST(Utf8, ValidTextLoads) {
  LoadResult r = loadYamlText(
      "version: 1\ngroups:\n  caf\xC3\xA9: {description: \"\xE2\x82\xAC \xF0\x9F\x94\xA5\"}\n");
  ASSERT_TRUE(r.ok()) << testutil::dumpDiagnostics(r);
  EXPECT_EQ(r.policy->groups[0].name, "caf\xC3\xA9");
}

TEST(Utf8, AwsJsonIsCheckedToo) {
  LoadResult r = loadPolicyTexts(
      {SourceText{"sg.json",
                  "{\"SecurityGroups\": [{\"GroupId\": \"sg-1\",\n  \"GroupName\": \"a\xFF\", "
                  "\"IpPermissions\": []}]}"}});
  EXPECT_TRUE(failsWith(r, "sg.json:2:18", "invalid UTF-8 at byte 57 (0xFF)"));
}

// A JSON syntax error inside a multi-byte character: the parser's message quotes the bytes it
// read, cut inside the character; the diagnostic stays UTF-8 (found by fuzz_policy_aws).
TEST(Utf8, JsonSyntaxErrorInsideACharacterGivesAUtf8Message) {
  LoadResult r =
      loadPolicyTexts({SourceText{"sg.json", "{\"SecurityGroups\": [{\xC3\xA9t\xC3\xA9: 1}]}"}});
  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.diagnostics.empty());
  for (const Diagnostic& d : r.diagnostics) {
    EXPECT_EQ(validUtf8Prefix(d.message), d.message.size()) << d.str();
  }
  EXPECT_NE(r.diagnostics[0].message.find("invalid JSON at byte"), std::string::npos)
      << r.diagnostics[0].str();
}

// yaml-cpp's message quotes the first byte of an unknown escape, which may start a character.
TEST(Utf8, YamlSyntaxErrorQuotingPartOfACharacterGivesAUtf8Message) {
  LoadResult r = loadYamlText("version: 1\ngroups:\n  a: {description: \"x\\\xF0\x9F\x94\xA5\"}\n");
  ASSERT_FALSE(r.ok());
  for (const Diagnostic& d : r.diagnostics) {
    EXPECT_EQ(validUtf8Prefix(d.message), d.message.size()) << d.str();
  }
}

TEST(Utf8, ReplaceInvalidUtf8KeepsTextAndMarksEachBadByte) {
  EXPECT_EQ(replaceInvalidUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(replaceInvalidUtf8("a\xC3"), "a\xEF\xBF\xBD");
  EXPECT_EQ(replaceInvalidUtf8("\xFF\xFEz"), "\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(replaceInvalidUtf8(""), "");
}

TEST(Utf8, OverlongAndOutOfRangeFormsAreInvalid) {
  EXPECT_EQ(validUtf8Prefix("ab\xC0\x80"), 2u);        // overlong NUL
  EXPECT_EQ(validUtf8Prefix("\xE0\x80\x80"), 0u);      // overlong
  EXPECT_EQ(validUtf8Prefix("x\xED\xA0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(validUtf8Prefix("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(validUtf8Prefix("\xE2\x82"), 0u);          // cut short
  EXPECT_EQ(validUtf8Prefix("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
  EXPECT_EQ(validUtf8Prefix("\xEF\xBB\xBFok"), 5u);    // a byte-order mark is text
}

TEST(FileSize, DevZeroIsRefusedWithTheLimit) {
  LoadResult r = loadPolicyFiles({"/dev/zero"});
  EXPECT_TRUE(
      failsWith(r, "/dev/zero", "the file is larger than the limit of 33554432 bytes (32 MiB)"));
}

TEST(FileSize, ReadFileCappedStopsAtTheCap) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("statewall_limits_" +
                     std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".txt");
  std::ofstream(path) << "0123456789";
  EXPECT_EQ(readFileCapped(path, 10).value_or("none"), "0123456789");
  auto big = readFileCapped(path, 9);
  EXPECT_FALSE(big);
  EXPECT_NE(big.message().find("larger than the limit of 9 bytes"), std::string::npos)
      << big.message();
  EXPECT_EQ(big.status().where(), path.string());
  std::filesystem::remove(path);
  auto gone = readFileCapped(path, 9);
  EXPECT_FALSE(gone);
  EXPECT_NE(gone.message().find("cannot read file: No such file"), std::string::npos)
      << gone.message();
}

}  // namespace
}  // namespace statewall::rules
