// `statewall report` as a command: writes the page, exit codes for bad input. Needs the
// `report` subcommand registered in sim/cli/main.cpp.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using testing::readText;
using testing::TempDir;

const std::string kBinary = std::string(STATEWALL_BINARY_DIR) + "/sim/statewall";
const std::string kExamples = STATEWALL_EXAMPLES_DIR;

int run(const std::string& args, const TempDir& tmp) {
  const std::string cmd =
      "'" + kBinary + "' " + args + " > '" + tmp.file("out") + "' 2> '" + tmp.file("err") + "'";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ReportCli, WritesThePage) {
  TempDir tmp;
  const std::string html = tmp.file("r.html");
  ASSERT_EQ(run("report --policy '" + kExamples + "/three-tier.yaml' '" + kExamples +
                    "/three-tier.pcap' --html '" + html + "' --title 'Three tiers'",
                tmp),
            0)
      << readText(tmp.file("err"));
  const std::string page = readText(html);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<title>Three tiers</title>"), std::string::npos);
  EXPECT_NE(page.find("124 packets"), std::string::npos);
  EXPECT_NE(readText(tmp.file("err")).find("wrote " + html), std::string::npos);
}

TEST(ReportCli, BadInputIsAUsageError) {
  TempDir tmp;
  const std::string policy = "--policy '" + kExamples + "/three-tier.yaml' ";
  // A missing trace: exit 2, the reason named, no page left behind.
  EXPECT_EQ(run("report " + policy + "'" + tmp.file("none.pcap") + "' --html '" +
                    tmp.file("r.html") + "'",
                tmp),
            2);
  EXPECT_NE(readText(tmp.file("err")).find("none.pcap"), std::string::npos);
  EXPECT_NE(::access(tmp.file("r.html").c_str(), F_OK), 0);
  // An output that cannot be created.
  EXPECT_EQ(run("report " + policy + "'" + kExamples + "/three-tier.pcap' --html '" +
                    tmp.file("no/such/dir.html") + "'",
                tmp),
            2);
  // A policy with errors.
  testing::writeText(tmp.file("bad.yaml"),
                     "version: 1\ngroups: {web: {inbound: [{proto: tcp, ports: 99999}]}}\n");
  EXPECT_EQ(run("report --policy '" + tmp.file("bad.yaml") + "' '" + kExamples +
                    "/three-tier.pcap' --html '" + tmp.file("r.html") + "'",
                tmp),
            2);
  // No --html.
  EXPECT_EQ(run("report " + policy + "'" + kExamples + "/three-tier.pcap'", tmp), 2);
}

}  // namespace
}  // namespace statewall::sim
