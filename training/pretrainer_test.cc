#include "training/pretrainer.h"

#include <filesystem>
#include <random>

#include <torch/cuda.h>

#include "datasets/testing/synthetic_lmdb.h"
#include "dmue/dmue_model.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"
#include "gtest/gtest.h"
#include "training/mv_softmax.h"

namespace dmue::training {
namespace {

// TEST_TMPDIR is shared by concurrent runs of a test (--runs_per_test) and
// pids repeat inside the sandbox's PID namespace: use a random folder.
std::string UniqueTempDir() {
  static const std::string dir = ::testing::TempDir() + "/run" + std::to_string(std::random_device{}());
  return dir;
}

TEST(MvSoftmaxTest, AmMarginAndHardExampleReweighting) {
  MvSoftmaxOptions options;  // AM, margin 0.35, mask 1.12, scale 32
  MvSoftmax head(2, 3, options);
  {
    torch::NoGradGuard no_grad;
    head->named_parameters()["weight"].copy_(torch::tensor({{1.0f, 0.0f, 0.6f}, {0.0f, 1.0f, 0.8f}}));
  }
  // cos = x . w_col: sample 0 -> [0.9, 0.1, 0.62]; label 0: gt 0.9 -> 0.55; 0.62 > 0.55 is hard.
  const torch::Tensor logits = head(torch::tensor({{0.9f, 0.1f}}), torch::tensor({0}, torch::kLong));
  const torch::Tensor expected =
      torch::tensor({{0.9f - 0.35f, 0.1f, 1.12f * 0.62f + 0.12f}}) * 32.0f;
  EXPECT_TRUE(torch::allclose(logits, expected, 1e-5, 1e-5)) << logits << expected;
}

TEST(MvSoftmaxTest, ArcMarginOnTheGroundTruth) {
  MvSoftmaxOptions options;
  options.is_am = false;
  MvSoftmax head(2, 2, options);
  {
    torch::NoGradGuard no_grad;
    head->named_parameters()["weight"].copy_(torch::eye(2));
  }
  const torch::Tensor logits = head(torch::tensor({{0.8f, 0.1f}}), torch::tensor({0}, torch::kLong));
  const double gt_m = 0.8 * std::cos(0.35) - std::sqrt(1 - 0.64) * std::sin(0.35);
  EXPECT_NEAR(logits[0][0].item<double>(), 32 * gt_m, 1e-4);
  EXPECT_NEAR(logits[0][1].item<double>(), 32 * 0.1, 1e-4);  // 0.1 < cos(theta+m): not hard
}

std::string MakeIdentityData() {
  const std::string dir = UniqueTempDir() + "/identities";
  EXPECT_TRUE(datasets::testing::WriteSyntheticLmdb(dir, 3, 32, {{"train", 48}}, 5).ok());
  return dir;
}

TEST(PretrainerTest, TrainsAndLoadsIntoDmueWithTheMsraMapping) {
  const std::string data = MakeIdentityData();
  PretrainConfig config;
  config.set_num_identities(3);
  auto* d = config.mutable_data();
  d->set_lmdb_path(data + "/lmdb");
  d->set_list_path(data + "/train.txt");
  d->set_num_classes(3);
  d->set_resize(36);
  d->set_crop(32);
  d->set_batch_size(8);
  d->set_num_workers(1);
  d->set_sampler(datasets::DatasetConfig::SHUFFLED);
  config.set_lr(0.01);
  config.set_epochs(2);
  config.set_log_every_batches(3);
  config.set_num_threads(1);
  config.set_output_dir(UniqueTempDir() + "/pretrain_run");
  absl::StatusOr<PretrainSummary> summary = RunPretraining(config);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->steps, 12);
  EXPECT_TRUE(std::isfinite(summary->last_loss));
  ASSERT_TRUE(std::filesystem::exists(summary->last_checkpoint));

  ModelConfig dmue_config;
  dmue_config.set_num_classes(3);
  DmueModel model(dmue_config);
  ASSERT_TRUE(LoadMsraPretrained(summary->last_checkpoint, model).ok());
  auto weights = ReadWeights(summary->last_checkpoint);
  ASSERT_TRUE(weights.ok());
  std::map<std::string, torch::Tensor> pre(weights->begin(), weights->end());
  const StateDict state = ModuleStateDict(*model);
  std::map<std::string, torch::Tensor> ours(state.begin(), state.end());
  EXPECT_TRUE(torch::equal(ours["base.conv1.weight"], pre["feat_net.conv1.weight"]));
  for (int b = 0; b <= 3; ++b) {
    EXPECT_TRUE(torch::equal(ours["base.layer4_" + std::to_string(b) + ".1.conv2.weight"],
                             pre["feat_net.layer4.1.conv2.weight"]));
  }
}

TEST(PretrainerTest, ConfigErrorsNameTheField) {
  PretrainConfig config;
  absl::Status status = ValidatePretrainConfig(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("PretrainConfig.data"), std::string::npos) << status;
}

TEST(PretrainerTest, BadOrUnusableDevicesAreRefused) {
  PretrainConfig config;
  config.set_num_identities(3);
  config.mutable_data()->set_lmdb_path("/unused");
  config.mutable_data()->set_list_path("/unused.txt");
  config.mutable_data()->set_num_classes(3);
  config.set_output_dir(UniqueTempDir() + "/pretrain_device");
  ASSERT_TRUE(ValidatePretrainConfig(config).ok()) << ValidatePretrainConfig(config);
  config.set_device("tpu");
  absl::Status status = ValidatePretrainConfig(config);
  EXPECT_NE(status.message().find("PretrainConfig.device: 'tpu' is not a device"), std::string::npos) << status;
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  config.set_device("cuda:0");
  absl::StatusOr<PretrainSummary> summary = RunPretraining(config);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kFailedPrecondition) << summary.status();
  EXPECT_NE(summary.status().message().find("PretrainConfig.device: device cuda:0: "), std::string::npos)
      << summary.status();
  EXPECT_FALSE(std::filesystem::exists(config.output_dir()));
}

}  // namespace
}  // namespace dmue::training
