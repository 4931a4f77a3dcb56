// statewalld's daemon composition (apps/statewalld/statewalld.cpp): EAL, options, policy, the
// Appliance (statewall_dataplane_dpdk), the control server (statewall_control), signals and the
// service manager. Its own library so that statewalld and the tests' statewalld-test-hooks are
// each a main() around it, and so that the appliance library does not depend on control.
#pragma once

namespace statewall::dpdk {

// What the executable that calls runStatewalld() allows. statewalld itself passes the defaults.
struct RunOptions {
  // Honour the test hooks' environment variables (docs/deploy.md, "Test hooks"):
  // STATEWALLD_TEST_STALL_FILE=PATH stalls the forwarding lcore whose id the file holds
  // (Appliance::stallLcoreForTest) while the file exists. Only the test build's
  // statewalld-test-hooks sets it; statewalld ignores the variables.
  bool test_hooks = false;
};

// The whole of statewalld: EAL init, options, policy loading, run until SIGINT/SIGTERM (or idle),
// final report. Returns the process exit code: 0 ok, 1 the mbuf pool was not full at exit,
// 2 usage, policy or setup error.
int runStatewalld(int argc, char** argv, const RunOptions& run_options = {});

}  // namespace statewall::dpdk
