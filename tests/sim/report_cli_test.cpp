// `statewall report` as a command: writes the page, exit codes for bad input.
#include <unistd.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/run_command.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using statewall::testing::CommandResult;
using statewall::testing::runStatewall;
using testing::readText;
using testing::TempDir;

const std::string kExamples = STATEWALL_EXAMPLES_DIR;
const std::string kPolicy = kExamples + "/three-tier.yaml";
const std::string kTrace = kExamples + "/three-tier.pcap";

TEST(ReportCli, WritesThePage) {
  TempDir tmp;
  const std::string html = tmp.file("r.html");
  const CommandResult r = runStatewall(
      {"report", "--policy", kPolicy, kTrace, "--html", html, "--title", "Three tiers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string page = readText(html);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<title>Three tiers</title>"), std::string::npos);
  EXPECT_NE(page.find("124 packets"), std::string::npos);
  // No source path on the page: a reader has no use for the engine's file names.
  EXPECT_EQ(page.find("dataplane/"), std::string::npos);
  EXPECT_EQ(page.find("tcp_tracker"), std::string::npos);
  // Where the page uses the glossary's terms, it says where they are explained.
  EXPECT_NE(page.find("<code>docs/glossary.md#zeek-conn_state</code>"), std::string::npos);
  EXPECT_NE(page.find("<code>docs/glossary.md#tcp-states</code>"), std::string::npos);
  EXPECT_NE(page.find("<code>docs/glossary.md#tracked</code>"), std::string::npos);
  EXPECT_NE(r.err.find("wrote " + html), std::string::npos);
}

// Each reason's row carries its own words and colour: allow-exempt is not described as deny-sg, and
// deny-malformed is not left blank (the page once took both from arrays one entry short).
TEST(ReportCli, EveryReasonRowHasItsOwnMeaningAndColour) {
  TempDir tmp;
  const std::string html = tmp.file("r.html");
  const CommandResult r = runStatewall({"report", "--policy", kPolicy, kTrace, "--html", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string page = readText(html);
  auto row = [&](const std::string& code) {
    const size_t at = page.find("<tr data-reason=\"" + code + "\"");
    EXPECT_NE(at, std::string::npos) << code;
    return at == std::string::npos ? std::string() : page.substr(at, page.find("</tr>", at) - at);
  };
  EXPECT_NE(row("allow-exempt").find("security groups do not filter"), std::string::npos)
      << row("allow-exempt");
  EXPECT_EQ(row("allow-exempt").find("no security-group rule"), std::string::npos);
  EXPECT_NE(row("deny-sg").find("no security-group rule"), std::string::npos) << row("deny-sg");
  EXPECT_NE(row("deny-malformed").find("title=\"cannot be parsed\""), std::string::npos)
      << row("deny-malformed");
  std::set<std::string> colours;
  for (const char* code : {"allow-rule", "allow-tracked", "allow-related", "allow-untracked",
                           "allow-unprotected", "allow-exempt", "deny-sg", "deny-acl",
                           "deny-invalid", "deny-table-full", "deny-malformed"}) {
    const std::string tr = row(code);
    const size_t bg = tr.find("background:#");
    ASSERT_NE(bg, std::string::npos) << code << ": " << tr;
    colours.insert(tr.substr(bg, 18));
  }
  EXPECT_EQ(colours.size(), 11u);
}

TEST(ReportCli, BadInputIsAUsageError) {
  TempDir tmp;
  // A missing trace: exit 2, the reason named, no page left behind.
  CommandResult r = runStatewall(
      {"report", "--policy", kPolicy, tmp.file("none.pcap"), "--html", tmp.file("r.html")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("none.pcap"), std::string::npos) << r.err;
  EXPECT_NE(::access(tmp.file("r.html").c_str(), F_OK), 0);
  // An output that cannot be created.
  r = runStatewall({"report", "--policy", kPolicy, kTrace, "--html", tmp.file("no/such/dir.html")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no/such/dir.html"), std::string::npos) << r.err;
  // A policy with errors: its diagnostics and one line saying nothing was written.
  testing::writeText(tmp.file("bad.yaml"),
                     "version: 1\ngroups: {web: {inbound: [{proto: tcp, ports: 99999}]}}\n");
  r = runStatewall(
      {"report", "--policy", tmp.file("bad.yaml"), kTrace, "--html", tmp.file("r.html")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("statewall report: the policy has errors; no report"), std::string::npos)
      << r.err;
  // No --html.
  EXPECT_EQ(runStatewall({"report", "--policy", kPolicy, kTrace}).exit_code, 2);
}

}  // namespace
}  // namespace statewall::sim
