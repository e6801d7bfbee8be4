#include "training/trainer_config.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace dmue::training {
namespace {

TEST(TrainerConfigTest, ShippedConfigsAreValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator("training/configs")) {
    absl::StatusOr<TrainerConfig> config = LoadTrainerConfig(entry.path().string());
    EXPECT_TRUE(config.ok()) << entry.path() << ": " << config.status();
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(TrainerConfigTest, DefaultsFollowTheReference) {
  TrainerConfig config;
  EXPECT_DOUBLE_EQ(config.w(), 0.5);
  EXPECT_DOUBLE_EQ(config.temperature(), 1.2);
  EXPECT_DOUBLE_EQ(config.gamma(), 1000);
  EXPECT_DOUBLE_EQ(config.ramp_a(), 6);
  EXPECT_DOUBLE_EQ(config.weight_decay(), 1e-4);
  EXPECT_EQ(config.max_epoch(), 36);
  EXPECT_DOUBLE_EQ(LrAt(Lr1(config), 0), 1e-4);
  EXPECT_DOUBLE_EQ(LrAt(Lr2(config), 4), 5e-4);
}

TEST(TrainerConfigTest, MissingDataIsNamed) {
  TrainerConfig config;
  absl::Status status = ValidateTrainerConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("train_data"), std::string::npos) << status;
}

TEST(TrainerConfigTest, BadLrScheduleIsNamed) {
  TrainerConfig config;
  config.mutable_train_data()->set_lmdb_path("x");
  config.mutable_train_data()->set_list_path("y");
  auto* step = config.add_lr1();
  step->set_until_epoch(5);
  step->set_lr(-1);
  absl::Status status = ValidateTrainerConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("lr1"), std::string::npos) << status;
}

}  // namespace
}  // namespace dmue::training
