#include "training/trainer_config.h"

#include <filesystem>
#include <functional>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace dmue::training {
namespace {

TEST(TrainerConfigTest, ShippedConfigsAreValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator("training/configs")) {
    // *_distill.pbtxt are PretrainConfigs (descriptor_distill_test checks them).
    if (absl::EndsWith(entry.path().filename().string(), "_distill.pbtxt")) continue;
    absl::StatusOr<TrainerConfig> config = LoadTrainerConfig(entry.path().string());
    EXPECT_TRUE(config.ok()) << entry.path() << ": " << config.status();
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(TrainerConfigTest, OverridesMergeOverTheFileAndAreValidated) {
  absl::StatusOr<TrainerConfig> config = LoadTrainerConfig(
      "training/configs/ferplus_ce.pbtxt",
      "max_epoch: 10 train_data { label_noise_rate: 0.3 min_per_class: 2 }");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_epoch(), 10);
  EXPECT_FLOAT_EQ(config->train_data().label_noise_rate(), 0.3f);
  EXPECT_EQ(config->train_data().batch_size(), 128);  // untouched fields stay
  absl::StatusOr<TrainerConfig> bad =
      LoadTrainerConfig("training/configs/ferplus_ce.pbtxt", "train_data { label_noise_rate: 1.5 }");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("overrides"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("label_noise_rate"), std::string::npos) << bad.status();
  absl::StatusOr<TrainerConfig> typo = LoadTrainerConfig("training/configs/ferplus_ce.pbtxt", "max_epochs: 3");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("max_epochs"), std::string::npos) << typo.status();
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

TrainerConfig MinimalConfig() {
  TrainerConfig config;
  config.mutable_train_data()->set_lmdb_path("x");
  config.mutable_train_data()->set_list_path("y");
  config.set_loss(TrainerConfig::CROSS_ENTROPY);
  config.set_max_epoch(10);
  return config;
}

TEST(TrainerConfigTest, NewOptionsAreValidatedByName) {
  struct Case {
    std::function<void(TrainerConfig&)> edit;
    const char* field;
  };
  const std::vector<Case> cases = {
      {[](TrainerConfig& c) { c.set_momentum(1.0); }, "TrainerConfig.momentum"},
      {[](TrainerConfig& c) { c.set_nesterov(true); }, "TrainerConfig.nesterov"},  // with Adam
      {[](TrainerConfig& c) {
         c.set_optimizer(TrainerConfig::SGD);
         c.set_nesterov(true);
         c.set_momentum(0);
       },
       "TrainerConfig.nesterov"},
      {[](TrainerConfig& c) { c.set_label_smoothing(1.0); }, "TrainerConfig.label_smoothing"},
      {[](TrainerConfig& c) { c.set_snapshot_every_epochs(-1); }, "TrainerConfig.snapshot_every_epochs"},
      {[](TrainerConfig& c) { c.mutable_lr_schedule()->set_kind(LrSchedule::KIND_UNSPECIFIED); },
       "TrainerConfig.lr_schedule.kind"},
      {[](TrainerConfig& c) {
         c.mutable_lr_schedule()->set_kind(LrSchedule::COSINE);
         c.mutable_lr_schedule()->set_warmup_epochs(10);
       },
       "TrainerConfig.lr_schedule.warmup_epochs"},
      {[](TrainerConfig& c) {
         c.mutable_lr_schedule()->set_kind(LrSchedule::COSINE);
         c.mutable_lr_schedule()->set_classifier_lr_scale(0);
       },
       "TrainerConfig.lr_schedule.classifier_lr_scale"},
      {[](TrainerConfig& c) {
         c.mutable_lr_schedule()->set_kind(LrSchedule::STEP);
         c.mutable_lr_schedule()->add_step_milestones(5);
         c.mutable_lr_schedule()->add_step_milestones(3);
       },
       "TrainerConfig.lr_schedule.step_milestones"},
      {[](TrainerConfig& c) { c.mutable_train_data()->mutable_augmentation()->set_affine_p(2); },
       "augmentation.affine_p"},
      {[](TrainerConfig& c) { c.mutable_train_data()->mutable_augmentation()->set_scale_min(0); },
       "augmentation.scale_min"},
      {[](TrainerConfig& c) { c.mutable_train_data()->mutable_augmentation()->set_shear_deg(90); },
       "augmentation.shear_deg"},
      {[](TrainerConfig& c) { c.mutable_train_data()->mutable_augmentation()->set_translate(0.9f); },
       "augmentation.translate"},
      {[](TrainerConfig& c) { c.mutable_train_data()->mutable_augmentation()->set_rotation_deg(-1); },
       "augmentation.rotation_deg"},
      {[](TrainerConfig& c) { c.set_precision(TrainerConfig::PRECISION_UNSPECIFIED); }, "TrainerConfig.precision"},
      {[](TrainerConfig& c) { c.set_device("gpu"); }, "TrainerConfig.device: 'gpu' is not a device"},
      {[](TrainerConfig& c) { c.set_device("cuda:x"); }, "TrainerConfig.device: 'cuda:x' is not a device"},
  };
  ASSERT_TRUE(ValidateTrainerConfig(MinimalConfig()).ok()) << ValidateTrainerConfig(MinimalConfig());
  // Validation checks the name only: whether this LibTorch can use the
  // device is Trainer::Create's question.
  for (const char* device : {"cpu", "cuda", "cuda:1"}) {
    TrainerConfig config = MinimalConfig();
    config.set_device(device);
    EXPECT_TRUE(ValidateTrainerConfig(config).ok()) << device << ": " << ValidateTrainerConfig(config);
  }
  for (const Case& c : cases) {
    TrainerConfig config = MinimalConfig();
    c.edit(config);
    const absl::Status status = ValidateTrainerConfig(config);
    EXPECT_FALSE(status.ok()) << c.field;
    EXPECT_NE(status.message().find(c.field), std::string::npos) << status;
  }
}

TEST(TrainerConfigTest, CosineRatesPerStepWithClassifierScale) {
  TrainerConfig config = MinimalConfig();
  LrSchedule* schedule = config.mutable_lr_schedule();
  schedule->set_kind(LrSchedule::COSINE);
  schedule->set_base_lr(0.1);
  schedule->set_classifier_lr_scale(0.1);
  schedule->set_warmup_epochs(1);
  ASSERT_TRUE(ValidateTrainerConfig(config).ok());
  EXPECT_DOUBLE_EQ(LearningRatesAt(config, 0.5).base, 0.05);
  EXPECT_DOUBLE_EQ(LearningRatesAt(config, 0.5).classifier, 0.005);
  EXPECT_NEAR(LearningRatesAt(config, 5.5).base, 0.05, 1e-12);  // half way from 1 to 10
  EXPECT_NEAR(LearningRatesAt(config, 10).base, 0.0, 1e-12);
  // Without a schedule: the reference's per-epoch lr1 / lr2.
  TrainerConfig reference = MinimalConfig();
  EXPECT_DOUBLE_EQ(LearningRatesAt(reference, 4.7).base, LrAt(Lr1(reference), 4));
  EXPECT_DOUBLE_EQ(LearningRatesAt(reference, 4.7).classifier, LrAt(Lr2(reference), 4));
}

TEST(TrainerConfigTest, InferenceSpecCarriesTheEvalContract) {
  TrainerConfig config = MinimalConfig();
  config.mutable_model()->set_num_classes(3);
  config.mutable_train_data()->set_num_classes(3);
  config.add_class_names("a");
  config.add_class_names("b");
  config.add_class_names("c");
  datasets::DatasetConfig* val = config.mutable_val_data();
  val->set_resize(72);
  val->set_crop(64);
  val->set_normalize_mean(0.4f);
  val->set_normalize_std(0.2f);
  val->set_grayscale(true);
  const ModelSpec spec = InferenceSpec(config);
  EXPECT_EQ(spec.model().num_classes(), 3);
  ASSERT_EQ(spec.class_names_size(), 3);
  EXPECT_EQ(spec.class_names(2), "c");
  EXPECT_EQ(spec.input().resize(), 72);
  EXPECT_EQ(spec.input().crop(), 64);
  EXPECT_FLOAT_EQ(spec.input().mean(), 0.4f);
  EXPECT_FLOAT_EQ(spec.input().std(), 0.2f);
  EXPECT_TRUE(spec.input().grayscale());
  EXPECT_NE(spec.training_config().find("class_names"), std::string::npos);
}

}  // namespace
}  // namespace dmue::training
