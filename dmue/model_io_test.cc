#include "dmue/model_io.h"

#include <fstream>

#include "dmue/io/torch_checkpoint.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

ModelConfig SmallConfig(int classes) {
  ModelConfig config;
  config.set_num_classes(classes);
  return config;
}

// `state` ready to write, its names prefixed (as DataParallel's "module.").
StateDict Prefixed(StateDict state, const std::string& prefix) {
  for (auto& [name, t] : state) name = prefix + name;
  return ForSaving(std::move(state));
}

TEST(ModelIoTest, MultiBranchSnapshotLoadsAsInferenceModelAndExportRoundTrips) {
  torch::manual_seed(3);
  DmueModel model(SmallConfig(7));
  model->eval();
  // A DataParallel-style snapshot, as the reference's train.py writes.
  const std::string snapshot = ::testing::TempDir() + "/snapshot.pth";
  ASSERT_TRUE(io::WriteStateDict(snapshot, Prefixed(ModuleStateDict(*model), "module.")).ok());

  absl::StatusOr<InferenceModel> inference = LoadInferenceModel(snapshot, SmallConfig(7));
  ASSERT_TRUE(inference.ok()) << inference.status();
  torch::NoGradGuard no_grad;
  const torch::Tensor images = torch::randn({2, 3, 64, 64});
  EXPECT_TRUE(torch::equal((*inference)->forward(images), model->ForwardEval(images)));

  const std::string target = ::testing::TempDir() + "/target.pth";
  ASSERT_TRUE(ExportInferenceWeights(ModuleStateDict(*model), 7, target).ok());
  absl::StatusOr<InferenceModel> reloaded = LoadInferenceModel(target, SmallConfig(7));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(torch::equal((*reloaded)->forward(images), model->ForwardEval(images)));

  DmueModel copy(SmallConfig(7));
  ASSERT_TRUE(LoadDmueWeights(snapshot, copy).ok());
  copy->eval();
  EXPECT_TRUE(torch::equal(copy->ForwardEval(images), model->ForwardEval(images)));
}

TEST(ModelIoTest, WrongClassCountOrBackboneIsAClearError) {
  torch::manual_seed(3);
  DmueModel model(SmallConfig(7));
  const std::string snapshot = ::testing::TempDir() + "/snapshot7.pth";
  ASSERT_TRUE(io::WriteStateDict(snapshot, ModuleStateDictForSaving(*model)).ok());
  absl::StatusOr<InferenceModel> wrong = LoadInferenceModel(snapshot, SmallConfig(8));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("snapshot7.pth"), std::string::npos) << wrong.status();

  ModelConfig ibn = SmallConfig(7);
  ibn.set_backbone(ModelConfig::RESNET50_IBN);
  absl::StatusOr<InferenceModel> other = LoadInferenceModel(snapshot, ibn);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("RESNET50_IBN"), std::string::npos) << other.status();
}

TEST(ModelIoTest, CorruptAndMissingFilesAreClearErrors) {
  const std::string corrupt = ::testing::TempDir() + "/corrupt.pth";
  std::ofstream(corrupt) << "not a checkpoint at all";
  absl::StatusOr<InferenceModel> bad = LoadInferenceModel(corrupt, SmallConfig(8));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("corrupt.pth"), std::string::npos) << bad.status();
  absl::StatusOr<InferenceModel> missing = LoadInferenceModel("/no/such/file.pth", SmallConfig(8));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/no/such/file.pth"), std::string::npos);
}

}  // namespace
}  // namespace dmue
