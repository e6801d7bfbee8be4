#include "dmue/base/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace dmue {
namespace {

int calls = 0;

absl::Status Fails(const std::string& what) {
  ++calls;
  return absl::InvalidArgumentError(what);
}
absl::Status Succeeds() {
  ++calls;
  return absl::OkStatus();
}
absl::StatusOr<std::unique_ptr<int>> MakeInt(bool ok, int value) {
  ++calls;
  if (!ok) return absl::NotFoundError("no int");
  return std::make_unique<int>(value);
}

absl::Status ReturnIfError(bool fail) {
  RETURN_IF_ERROR(Succeeds());
  if (fail) RETURN_IF_ERROR(Fails("first"));
  RETURN_IF_ERROR(MakeInt(!fail, 1));
  return absl::OkStatus();
}

absl::StatusOr<int> AssignOrReturn(bool ok) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> a, MakeInt(true, 2));
  ASSIGN_OR_RETURN(auto b, MakeInt(ok, 3));  // two on one function: unique temporaries
  int c = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<int> c_ptr, MakeInt(true, 4));
  c = *c_ptr;
  return *a + *b + c;
}

TEST(StatusMacros, ReturnIfErrorPassesTheFirstErrorThrough) {
  calls = 0;
  EXPECT_TRUE(ReturnIfError(false).ok());
  EXPECT_EQ(calls, 2);
  calls = 0;
  const absl::Status s = ReturnIfError(true);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "first");
  EXPECT_EQ(calls, 2) << "stops at the failing call, evaluates each once";
}

TEST(StatusMacros, AssignOrReturnMovesTheValueOrReturnsTheStatus) {
  calls = 0;
  absl::StatusOr<int> sum = AssignOrReturn(true);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, 9);
  EXPECT_EQ(calls, 3);
  sum = AssignOrReturn(false);
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sum.status().message(), "no int");
}

}  // namespace
}  // namespace dmue
