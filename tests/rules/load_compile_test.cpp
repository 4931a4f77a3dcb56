// rules::loadAndCompile(): the one load-then-compile step every front end uses.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "statewall/rules/load_compile.hpp"

namespace statewall::rules {
namespace {

const char* kPolicy =
    "version: 1\n"
    "groups:\n"
    "  web:\n"
    "    inbound:\n"
    "      - {proto: tcp, ports: 443, from: 0.0.0.0/0}\n"
    "interfaces:\n"
    "  web-1: {addresses: [10.0.1.10], groups: [web]}\n";

TEST(LoadAndCompile, ValidTextCompiles) {
  LoadCompileResult r = loadAndCompile(std::vector<SourceText>{{"p.yaml", kPolicy}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.loaded);
  EXPECT_FALSE(hasErrors(r.diagnostics));
  EXPECT_EQ(r.policy->ifaceCount(), 1u);
  EXPECT_EQ(r.policy->iface(0).name, "web-1");
}

TEST(LoadAndCompile, LoadErrorStopsBeforeCompiling) {
  LoadCompileResult r =
      loadAndCompile(std::vector<SourceText>{{"bad.yaml", "groups:\n  web:\n    inbound: 7\n"}});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.loaded);
  ASSERT_TRUE(hasErrors(r.diagnostics));
  EXPECT_EQ(r.diagnostics.front().loc.file, "bad.yaml");
}

TEST(LoadAndCompile, FilesAndTextsGiveTheSamePolicy) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("statewall-load-compile-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "p.yaml").string();
  std::ofstream(path) << kPolicy;
  LoadCompileResult f = loadAndCompile(std::vector<std::string>{path});
  LoadCompileResult t = loadAndCompile(std::vector<SourceText>{{path, kPolicy}});
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(f.policy->ruleCount(), t.policy->ruleCount());
  EXPECT_EQ(f.policy->rule(0).text, t.policy->rule(0).text);
  EXPECT_EQ(f.policy->rule(0).loc.str(), t.policy->rule(0).loc.str());
}

TEST(LoadAndCompile, MissingFileIsALoadError) {
  LoadCompileResult r = loadAndCompile(std::vector<std::string>{"/nonexistent/statewall.yaml"});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.loaded);
  EXPECT_TRUE(hasErrors(r.diagnostics));
}

}  // namespace
}  // namespace statewall::rules
