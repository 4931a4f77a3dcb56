// statewalld-test-hooks: statewalld with its test hooks honoured (RunOptions::test_hooks), built
// only with the tests. The installed statewalld never honours them.
#include <cstdio>
#include <exception>

#include "statewalld.hpp"

int main(int argc, char** argv) {
  statewall::dpdk::RunOptions options;
  options.test_hooks = true;
  try {
    return statewall::dpdk::runStatewalld(argc, argv, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "statewalld-test-hooks: internal error: %s\n", e.what());
  }
  return 2;
}
