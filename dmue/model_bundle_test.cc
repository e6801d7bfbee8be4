#include "dmue/model_bundle.h"

#include <filesystem>

#include <torch/torch.h>

#include "dmue/state_dict.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

ModelSpec SmallSpec() {
  ModelSpec spec;
  spec.mutable_model()->set_backbone(ModelConfig::RESNET18);
  spec.mutable_model()->set_num_classes(3);
  for (const char* name : {"a", "b", "c"}) spec.add_class_names(name);
  spec.mutable_input()->set_resize(40);
  spec.mutable_input()->set_crop(32);
  spec.mutable_input()->set_grayscale(true);
  return spec;
}

TEST(ModelBundleTest, SpecPathReplacesTheExtension) {
  EXPECT_EQ(SpecPathFor("/a/b/model.pth"), "/a/b/model.spec.pbtxt");
  EXPECT_EQ(SpecPathFor("best_inference.pth"), "best_inference.spec.pbtxt");
}

TEST(ModelBundleTest, ValidationNamesTheField) {
  ModelSpec spec = SmallSpec();
  EXPECT_TRUE(ValidateModelSpec(spec).ok());
  spec.add_class_names("d");
  EXPECT_NE(ValidateModelSpec(spec).message().find("ModelSpec.class_names"), std::string::npos);
  spec = SmallSpec();
  spec.mutable_input()->set_resize(16);
  EXPECT_NE(ValidateModelSpec(spec).message().find("ModelSpec.input.resize"), std::string::npos);
  spec = SmallSpec();
  spec.mutable_input()->clear_crop();
  EXPECT_NE(ValidateModelSpec(spec).message().find("ModelSpec.input.crop"), std::string::npos);
  spec = SmallSpec();
  spec.clear_model();
  EXPECT_NE(ValidateModelSpec(spec).message().find("ModelSpec.model"), std::string::npos);
}

TEST(ModelBundleTest, HalfStorageRoundTripRestoresFloat32) {
  torch::manual_seed(3);
  const ModelSpec spec = SmallSpec();
  InferenceModel model(spec.model());
  model->eval();
  const std::string path = testing::TempPath("bundle_half/model.pth");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(WriteModelBundle(path, model, spec, /*half_storage=*/true).ok());
  absl::StatusOr<ModelBundle> bundle = LoadModelBundle(path);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->spec.class_names(2), "c");
  EXPECT_TRUE(bundle->spec.input().grayscale());
  for (const auto& [name, t] : ModuleStateDict(*bundle->model)) {
    if (t.is_floating_point()) EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  const torch::Tensor a = model->forward(x), b = bundle->model->forward(x);
  // fp16 storage: weights rounded to 11 significant bits.
  EXPECT_LT((a - b).abs().max().item<double>(), 2e-2 * a.abs().max().item<double>() + 1e-3);
}

TEST(ModelBundleTest, MissingSpecIsRefusedNotGuessed) {
  torch::manual_seed(0);
  const ModelSpec spec = SmallSpec();
  InferenceModel model(spec.model());
  const std::string path = testing::TempPath("bundle_nospec/model.pth");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(WriteModelBundle(path, model, spec).ok());
  std::filesystem::remove(SpecPathFor(path));
  absl::StatusOr<ModelBundle> bundle = LoadModelBundle(path);
  ASSERT_FALSE(bundle.ok());
  EXPECT_NE(bundle.status().message().find("has no model spec"), std::string::npos) << bundle.status();
  // With a spec the caller names, it loads.
  const std::string given = testing::TempPath("bundle_nospec/given.pbtxt");
  ASSERT_TRUE(WriteModelSpec(given, spec).ok());
  EXPECT_TRUE(LoadModelBundle(path, given).ok());
}

TEST(ModelBundleTest, SpecThatDoesNotFitTheWeightsNamesBothFiles) {
  torch::manual_seed(0);
  const ModelSpec spec = SmallSpec();
  InferenceModel model(spec.model());
  const std::string path = testing::TempPath("bundle_misfit/model.pth");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(WriteModelBundle(path, model, spec).ok());
  ModelSpec other = spec;
  other.mutable_model()->set_num_classes(4);
  other.add_class_names("d");
  const std::string other_path = testing::TempPath("bundle_misfit/four.pbtxt");
  ASSERT_TRUE(WriteModelSpec(other_path, other).ok());
  absl::StatusOr<ModelBundle> bundle = LoadModelBundle(path, other_path);
  ASSERT_FALSE(bundle.ok());
  EXPECT_NE(bundle.status().message().find(other_path), std::string::npos) << bundle.status();
  EXPECT_NE(bundle.status().message().find(path), std::string::npos) << bundle.status();
}

}  // namespace
}  // namespace dmue
