#include "training/checkpoint.h"

#include <fstream>

#include "dmue/optimizer.h"
#include "dmue/state_dict.h"
#include "dmue/train_step.h"
#include "gtest/gtest.h"

namespace dmue::training {
namespace {

ModelConfig Config() {
  ModelConfig config;
  config.set_num_classes(3);
  config.set_dropout(0.0f);
  return config;
}

torch::Tensor Labels() { return torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong); }

void Step(DmueModel& model, torch::optim::Adam& adam, const torch::Tensor& images) {
  StepSettings settings;
  settings.compute.channels_last = false;
  ASSERT_TRUE(TrainStep(model, adam, images, Labels(), settings).ok());
}

TEST(CheckpointTest, ResumeContinuesExactly) {
  torch::manual_seed(0);
  const torch::Tensor images = torch::randn({6, 3, 64, 64});
  DmueModel model(Config());
  auto adam = MakeReferenceAdam(model, OptimizerSettings{});
  Step(model, *adam, images);
  TrainingState state;
  state.epoch = 2;
  state.batch_in_epoch = 5;
  state.global_step = 1;
  state.best_accuracy = 0.25;
  state.sampler_state = std::string("\x01\x00\xff", 3);
  state.config_text = "batch_size: 6";
  const std::string path = ::testing::TempDir() + "/ckpt.pth";
  ASSERT_TRUE(SaveTrainingCheckpoint(path, model, *adam, state).ok());

  torch::manual_seed(123);
  DmueModel restored(Config());
  auto restored_adam = MakeReferenceAdam(restored, OptimizerSettings{});
  absl::StatusOr<TrainingState> loaded = LoadTrainingCheckpoint(path, restored, *restored_adam);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->epoch, 2);
  EXPECT_EQ(loaded->batch_in_epoch, 5);
  EXPECT_EQ(loaded->global_step, 1);
  EXPECT_DOUBLE_EQ(loaded->best_accuracy, 0.25);
  EXPECT_EQ(loaded->sampler_state, state.sampler_state);
  EXPECT_EQ(loaded->config_text, "batch_size: 6");

  // One more step on both: the parameters stay identical.
  Step(model, *adam, images);
  Step(restored, *restored_adam, images);
  const NamedTensors a = ModuleStateDict(*model), b = ModuleStateDict(*restored);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(CheckpointTest, InterruptedSaveKeepsThePreviousFile) {
  torch::manual_seed(0);
  DmueModel model(Config());
  auto adam = MakeReferenceAdam(model, OptimizerSettings{});
  const std::string path = ::testing::TempDir() + "/keep.pth";
  ASSERT_TRUE(SaveTrainingCheckpoint(path, model, *adam, TrainingState{}).ok());
  // A stale temp file from a crashed save must not matter.
  std::ofstream(path + ".tmp") << "garbage";
  DmueModel other(Config());
  auto other_adam = MakeReferenceAdam(other, OptimizerSettings{});
  EXPECT_TRUE(LoadTrainingCheckpoint(path, other, *other_adam).ok());
}

TEST(CheckpointTest, RejectsPlainStateDictsAndOtherModels) {
  torch::manual_seed(0);
  DmueModel model(Config());
  auto adam = MakeReferenceAdam(model, OptimizerSettings{});
  const std::string path = ::testing::TempDir() + "/three.pth";
  ASSERT_TRUE(SaveTrainingCheckpoint(path, model, *adam, TrainingState{}).ok());
  ModelConfig four = Config();
  four.set_num_classes(4);
  DmueModel bigger(four);
  auto bigger_adam = MakeReferenceAdam(bigger, OptimizerSettings{});
  absl::StatusOr<TrainingState> loaded = LoadTrainingCheckpoint(path, bigger, *bigger_adam);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("three.pth"), std::string::npos) << loaded.status();
  std::ofstream(::testing::TempDir() + "/junk.pth") << "junk";
  EXPECT_FALSE(LoadTrainingCheckpoint(::testing::TempDir() + "/junk.pth", model, *adam).ok());
}

}  // namespace
}  // namespace dmue::training
