// STATEWALL_CHECK, STATEWALL_DCHECK and STATEWALL_FAIL (base/include/statewall/base/check.hpp):
// a failed check names its file and line, the condition and the message, and aborts; a check
// that holds costs nothing visible; DCHECK is compiled out (its condition not evaluated) where
// NDEBUG is defined.
#include "statewall/base/check.hpp"

#include <gtest/gtest.h>

#include "statewall/dataplane/conn_table.hpp"
#include "statewall/dataplane/flow_key.hpp"
#include "statewall/dataplane/packet_builder.hpp"

namespace statewall::base {
namespace {

int g_evaluated = 0;
bool holds() {
  ++g_evaluated;
  return true;
}
bool fails() {
  ++g_evaluated;
  return false;
}

TEST(Check, HoldingCheckEvaluatesItsConditionOnce) {
  g_evaluated = 0;
  STATEWALL_CHECK(holds(), "never printed");
  EXPECT_EQ(g_evaluated, 1);
}

TEST(CheckDeathTest, FailedCheckPrintsWhereWhatAndWhyThenAborts) {
  const int value = 3;
  EXPECT_DEATH(STATEWALL_CHECK(value == 4, "the value must be four"),
               "statewall: .*check_test\\.cpp:[0-9]+: check failed: value == 4: the value must be "
               "four");
}

TEST(CheckDeathTest, FailPrintsWhereAndWhyThenAborts) {
  EXPECT_DEATH(STATEWALL_FAIL("an impossible state"),
               "statewall: .*check_test\\.cpp:[0-9]+: fatal: an impossible state");
}

#ifdef NDEBUG
TEST(Check, DcheckIsCompiledOutInRelease) {
  g_evaluated = 0;
  STATEWALL_DCHECK(fails(), "not evaluated");
  EXPECT_EQ(g_evaluated, 0);
}
#else
TEST(CheckDeathTest, DcheckChecksInDebug) {
  EXPECT_DEATH(STATEWALL_DCHECK(fails(), "debug only"), "check failed: fails\\(\\): debug only");
}
#endif

// The dataplane's fatal paths go through the same check: the connection table's and the packet
// builder's (a test fixture's misuse) name the file and line.
TEST(CheckDeathTest, DataplaneStopsThroughCheckFailed) {
  struct Value {
    uint64_t x;
  };
  EXPECT_DEATH((dataplane::ConnTable<dataplane::FlowKey4, Value>(size_t{1} << 40, nullptr)),
               "statewall: .*conn_table\\.cpp:[0-9]+: fatal: capacity too large");
  EXPECT_DEATH(dataplane::ipAddr("10.0.0.300"),
               "statewall: .*packet_builder\\.cpp:[0-9]+: fatal: bad IP address: 10.0.0.300");
}

}  // namespace
}  // namespace statewall::base
