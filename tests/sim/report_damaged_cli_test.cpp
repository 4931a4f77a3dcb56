// `statewall report` on a trace whose last record is cut off: the page is still written, of the
// packets before the damage, with the warning on stderr and on the page; exit 2 as replay's.
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

TEST(ReportCli, CutOffLastRecordStillWritesThePage) {
  TempDir tmp;
  auto bytes = testing::readBytes(kExamples + "/three-tier.pcap");
  bytes.resize(bytes.size() - 20);
  testing::writeBytes(tmp.file("cut.pcap"), bytes);
  const std::string html = tmp.file("r.html");
  const CommandResult r = runStatewall(
      {"report", "--policy", kExamples + "/three-tier.yaml", tmp.file("cut.pcap"), "--html", html});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("warning: " + tmp.file("cut.pcap") + ": byte offset"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("123 packets before"), std::string::npos) << r.err;
  const std::string page = readText(html);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("123 packets"), std::string::npos);
  EXPECT_NE(page.find("Incomplete:"), std::string::npos);
}

}  // namespace
}  // namespace statewall::sim
