#include "dmue/base/status_context.h"

#include <string>

#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(WithContextTest, OkStaysOk) { EXPECT_TRUE(WithContext(absl::OkStatus(), "train_data").ok()); }

TEST(WithContextTest, PrefixesTheMessageAndKeepsTheCode) {
  const absl::Status s = WithContext(absl::NotFoundError("cannot open 'a.lmdb'"), "train_data");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "train_data: cannot open 'a.lmdb'");
}

TEST(WithContextTest, StatusOrPassesTheValueThrough) {
  const absl::StatusOr<std::string> ok = WithContext(absl::StatusOr<std::string>("x"), "data");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "x");
}

TEST(WithContextTest, StatusOrErrorIsPrefixed) {
  const absl::StatusOr<int> failed = WithContext(absl::StatusOr<int>(absl::DataLossError("bad crc")), "val_data");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(failed.status().message(), "val_data: bad crc");
}

}  // namespace
}  // namespace dmue
