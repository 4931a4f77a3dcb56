// Status and Expected<T> (base/include/statewall/base/status.hpp): success and failure carry what
// callers show; a failure's `where` is kept apart and joined by text(); reading the value of a
// failed Expected is a bug that stops the process.
#include "statewall/base/status.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace statewall::base {
namespace {

TEST(Status, SuccessHasNoMessage) {
  const Status s = Status::success();
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.text(), "");
  EXPECT_TRUE(Status().ok());
}

TEST(Status, FailureCarriesItsMessageAndOptionallyWhere) {
  const Status s = Status::failure("cannot read file: it is a directory");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "cannot read file: it is a directory");
  EXPECT_EQ(s.where(), "");
  EXPECT_EQ(s.text(), "cannot read file: it is a directory");

  const Status at = Status::failureAt("policy.yaml", "cannot read file: No such file");
  EXPECT_FALSE(at.ok());
  EXPECT_EQ(at.where(), "policy.yaml");
  EXPECT_EQ(at.message(), "cannot read file: No such file");
  EXPECT_EQ(at.text(), "policy.yaml: cannot read file: No such file");
}

Expected<int> half(int v) {
  if (v % 2 != 0) return Status::failure("odd: " + std::to_string(v));
  return v / 2;
}

TEST(Expected, HoldsAValueOrTheFailure) {
  const Expected<int> a = half(8);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(static_cast<bool>(a));
  EXPECT_EQ(*a, 4);
  EXPECT_TRUE(a.status().ok());
  EXPECT_EQ(a.message(), "");

  const Expected<int> b = half(7);
  EXPECT_FALSE(b.ok());
  EXPECT_FALSE(static_cast<bool>(b));
  EXPECT_EQ(b.message(), "odd: 7");
  EXPECT_EQ(b.value_or(-1), -1);
}

TEST(Expected, MovesItsValueOut) {
  Expected<std::unique_ptr<int>> p = std::make_unique<int>(5);
  ASSERT_TRUE(p.ok());
  std::unique_ptr<int> q = std::move(p).value();
  EXPECT_EQ(*q, 5);

  Expected<std::string> s = "text";  // converting construction
  EXPECT_EQ(s->size(), 4u);
}

TEST(ExpectedDeathTest, ValueOfAFailureStops) {
  const Expected<int> b = half(3);
  EXPECT_DEATH((void)b.value(), "value\\(\\) of a failed Expected");
}

TEST(ExpectedDeathTest, MadeFromASuccessStops) {
  EXPECT_DEATH((void)Expected<int>(Status::success()), "has no value");
}

}  // namespace
}  // namespace statewall::base
