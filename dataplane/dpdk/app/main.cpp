// statewalld: the inline appliance. Everything lives in the statewall_dataplane_dpdk library.
#include "statewall/dpdk/appliance.hpp"

int main(int argc, char** argv) {
  return statewall::dpdk::runStatewalld(argc, argv);
}
