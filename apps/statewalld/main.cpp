// statewalld: the inline appliance. The daemon is composed in statewalld.cpp (statewalld_daemon):
// the appliance (statewall_dataplane_dpdk) and the control server (statewall_control).
#include <cstdio>
#include <exception>
#include <new>

#include "statewalld.hpp"

int main(int argc, char** argv) {
  // runStatewalld() reports bad input itself; an exception that reaches here is a bug or a
  // limit of the machine: a clear message and exit 2, never an abort.
  try {
    return statewall::dpdk::runStatewalld(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "statewalld: internal error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "statewalld: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "statewalld: internal error: unknown exception\n");
  }
  return 2;
}
