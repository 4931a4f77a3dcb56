// A GoogleTest fixture for the tests that drive the built `statewall` binary: a fresh temporary
// directory per test (removed afterwards), files written into it, the examples' paths, and
// run() for `statewall ARGS...`.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/run_command.hpp"
#include "common/temp_dir.hpp"

namespace statewall::testing {

class CliTest : public ::testing::Test {
 protected:
  static CommandResult run(const std::vector<std::string>& args, const std::string& input = "") {
    return runStatewall(args, input);
  }

  // Writes `text` to DIR/name and returns the path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  static std::string readFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  static std::string example(const std::string& name) {
    return std::string(STATEWALL_EXAMPLES_DIR) + "/" + name;
  }

  // examples/aws: the AWS describe-* documents of the example policy.
  static std::vector<std::string> awsFiles() {
    std::vector<std::string> files;
    for (const char* f : {"security-groups.json", "network-acls.json", "network-interfaces.json",
                          "subnets.json", "prefix-lists.json"})
      files.push_back(example(std::string("aws/") + f));
    return files;
  }

  TempDir tmp_{"statewall-cli-test"};
  const std::string& dir_ = tmp_.path();
};

}  // namespace statewall::testing
