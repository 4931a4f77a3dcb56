// statewalld's option parser as main() calls it, for the tests of its options.
#pragma once

#include <string>
#include <vector>

#include "statewall/dpdk/options.hpp"

namespace statewall::dpdk_test {

// parseOptions() on `args` (what follows the EAL's `--`), after the program name.
inline dpdk::ParseResult parseStatewalld(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"statewalld"};
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return dpdk::parseOptions(static_cast<int>(argv.size()), argv.data());
}

}  // namespace statewall::dpdk_test
