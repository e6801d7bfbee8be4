#include "dmue/base/field_error.h"

#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(FieldErrorTest, NamesMessageAndField) {
  const absl::Status s = FieldError("ModelConfig", "num_classes", "must be >= 2, got 1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "ModelConfig.num_classes: must be >= 2, got 1");
}

TEST(FieldErrorTest, BoundNameGivesTheSameError) {
  constexpr FieldErrors kFieldError("CropConfig");
  EXPECT_EQ(kFieldError("margin", "must be >= 0"), FieldError("CropConfig", "margin", "must be >= 0"));
}

TEST(FieldErrorTest, NestedPrefixesTheInnerErrorAndKeepsOk) {
  constexpr FieldErrors kFieldError("TrainerConfig");
  EXPECT_TRUE(kFieldError.Nested("model", absl::OkStatus()).ok());
  const absl::Status inner = FieldError("ModelConfig", "dropout", "must be in [0, 1), got 2");
  const absl::Status outer = kFieldError.Nested("model", inner);
  EXPECT_EQ(outer.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(outer.message(), "TrainerConfig.model: ModelConfig.dropout: must be in [0, 1), got 2");
  // Any inner code is reported as a bad field of the outer message.
  EXPECT_EQ(kFieldError.Nested("data", absl::NotFoundError("x")).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dmue
