#include "training/checkpoint.h"

#include <fstream>
#include <functional>

#include "dmue/io/torch_checkpoint.h"
#include "dmue/optimizer.h"
#include "dmue/state_dict.h"
#include "dmue/testing/model_configs.h"
#include "dmue/train_step.h"
#include "gtest/gtest.h"

namespace dmue::training {
namespace {

ModelConfig Config() { return testing::DeterministicModelConfig(); }

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
  const StateDict a = ModuleStateDict(*model), b = ModuleStateDict(*restored);
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

OptimizerSettings Sgd() {
  OptimizerSettings settings;
  settings.kind = OptimizerSettings::Kind::kSgd;
  settings.lr1 = settings.lr2 = 0.05;
  settings.nesterov = true;
  return settings;
}

// A cross-entropy step to soft (vote-like) targets, as vote training does.
void SoftStep(DmueModel& model, torch::optim::Optimizer& sgd, const torch::Tensor& images) {
  StepSettings settings;
  settings.loss = StepLoss::kCrossEntropy;
  settings.label_smoothing = 0.1;
  settings.compute.channels_last = false;
  const torch::Tensor soft = torch::softmax(torch::arange(18, torch::kFloat32).reshape({6, 3}), 1);
  ASSERT_TRUE(TrainStep(model, sgd, images, Labels(), settings, soft).ok());
}

TEST(CheckpointTest, SgdResumeContinuesExactly) {
  torch::manual_seed(0);
  const torch::Tensor images = torch::randn({6, 3, 64, 64});
  DmueModel model(Config());
  auto sgd = MakeOptimizer(model, Sgd());
  SoftStep(model, *sgd, images);
  SetLearningRates(*sgd, 0.02, 0.002);
  TrainingState state;
  state.model_spec_text = "class_names: \"a\"";
  const std::string path = ::testing::TempDir() + "/sgd.pth";
  ASSERT_TRUE(SaveTrainingCheckpoint(path, model, *sgd, state).ok());

  torch::manual_seed(9);
  DmueModel restored(Config());
  auto restored_sgd = MakeOptimizer(restored, Sgd());
  absl::StatusOr<TrainingState> loaded = LoadTrainingCheckpoint(path, restored, *restored_sgd);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->model_spec_text, state.model_spec_text);
  EXPECT_DOUBLE_EQ(restored_sgd->param_groups()[0].options().get_lr(), 0.02);
  EXPECT_DOUBLE_EQ(restored_sgd->param_groups()[1].options().get_lr(), 0.002);
  // Momentum buffers restored: the next steps stay identical.
  SoftStep(model, *sgd, images);
  SoftStep(restored, *restored_sgd, images);
  const StateDict a = ModuleStateDict(*model), b = ModuleStateDict(*restored);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}

TEST(CheckpointTest, OtherOptimizerKindIsRefused) {
  torch::manual_seed(0);
  DmueModel model(Config());
  auto sgd = MakeOptimizer(model, Sgd());
  const std::string path = ::testing::TempDir() + "/kind.pth";
  ASSERT_TRUE(SaveTrainingCheckpoint(path, model, *sgd, TrainingState{}).ok());
  auto adam = MakeReferenceAdam(model, OptimizerSettings{});
  absl::StatusOr<TrainingState> loaded = LoadTrainingCheckpoint(path, model, *adam);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("TrainerConfig.optimizer"), std::string::npos) << loaded.status();
}

// Values of the wrong type (a learning rate stored as an int, a step count as
// a string) are refused with an error, never an abort.
TEST(CheckpointTest, WrongTypedValuesAreRefused) {
  torch::manual_seed(0);
  const torch::Tensor images = torch::randn({6, 3, 64, 64});
  DmueModel model(Config());
  auto adam = MakeReferenceAdam(model, OptimizerSettings{});
  Step(model, *adam, images);
  const std::string path = ::testing::TempDir() + "/typed.pth";
  ASSERT_TRUE(SaveTrainingCheckpoint(path, model, *adam, TrainingState{}).ok());
  using Edit = std::function<void(io::Value&)>;
  const std::vector<std::pair<std::string, Edit>> edits = {
      {"learning_rates[0]",
       [](io::Value& root) { root.mutable_dict().Set(io::Value::String("learning_rates"),
                                                     io::Value::MakeList({io::Value::Int(1), io::Value::Int(1)})); }},
      {"step", [](io::Value& root) {
         io::Value states = *root.Get("optimizer_state");
         for (io::Value& entry : states.mutable_items()) {
           if (entry.is_dict()) entry.mutable_dict().Set(io::Value::String("step"), io::Value::String("1"));
         }
       }},
      {"training.best_accuracy", [](io::Value& root) {
         io::Value training = *root.Get("training");
         training.mutable_dict().Set(io::Value::String("best_accuracy"), io::Value::String("x"));
       }},
      {"training.epoch", [](io::Value& root) {
         io::Value training = *root.Get("training");
         training.mutable_dict().Set(io::Value::String("epoch"), io::Value::Double(1.5));
       }},
  };
  for (const auto& [what, edit] : edits) {
    absl::StatusOr<io::Value> root = io::ReadCheckpoint(path);
    ASSERT_TRUE(root.ok()) << root.status();
    edit(*root);
    const std::string edited = ::testing::TempDir() + "/typed_edited.pth";
    ASSERT_TRUE(io::WriteCheckpoint(edited, *root).ok());
    DmueModel other(Config());
    auto other_adam = MakeReferenceAdam(other, OptimizerSettings{});
    absl::StatusOr<TrainingState> loaded = LoadTrainingCheckpoint(edited, other, *other_adam);
    ASSERT_FALSE(loaded.ok()) << what;
    EXPECT_NE(loaded.status().message().find(what), std::string::npos) << what << ": " << loaded.status();
  }
}

}  // namespace
}  // namespace dmue::training
