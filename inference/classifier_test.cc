// The classifier on random-weights bundles: probabilities of the folded model
// equal the unfolded model's, the bundle's spec (or an override) is used and a
// spec that does not fit the weights is refused naming both files, bad inputs
// and precisions are errors, AUTO reports what it chose; device "cpu" given
// explicitly classifies exactly as the default, a bad device name or a CUDA
// device this LibTorch cannot use fails Load naming the option.
#include "inference/classifier.h"

#include <filesystem>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "dmue/inference_model.h"
#include "dmue/model_bundle.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue::inference {
namespace {

constexpr int kClasses = 5;
constexpr int kSide = 32;

ModelSpec TestSpec(int num_classes = kClasses) {
  ModelSpec spec;
  spec.mutable_model()->set_backbone(ModelConfig::RESNET18);
  spec.mutable_model()->set_num_classes(num_classes);
  for (int c = 0; c < num_classes; ++c) spec.add_class_names("class" + std::to_string(c));
  spec.mutable_input()->set_resize(36);
  spec.mutable_input()->set_crop(kSide);
  return spec;
}

// A bundle <dir>/model.pth + model.spec.pbtxt of seeded random weights.
std::string WriteBundle(const std::string& name, InferenceModel* model_out = nullptr) {
  const std::string dir = ::dmue::testing::TempPath(name);
  std::filesystem::create_directories(dir);
  torch::manual_seed(3);
  InferenceModel model(TestSpec().model());
  model->eval();
  const std::string path = dir + "/model.pth";
  EXPECT_TRUE(WriteModelBundle(path, model, TestSpec()).ok());
  if (model_out != nullptr) *model_out = model;
  return path;
}

ClassifierOptions Fp32(bool channels_last = false) {
  ClassifierOptions options;
  options.precision = PrecisionChoice::kFloat32;
  options.channels_last = channels_last;
  return options;
}

TEST(ClassifierTest, FoldedProbabilitiesEqualTheModelsAndSumToOne) {
  InferenceModel model{nullptr};
  const std::string path = WriteBundle("classifier_equal", &model);
  for (bool channels_last : {false, true}) {
    auto classifier = Classifier::Load(path, "", Fp32(channels_last));
    ASSERT_TRUE(classifier.ok()) << classifier.status();
    EXPECT_EQ((*classifier)->num_classes(), kClasses);
    EXPECT_EQ((*classifier)->input_side(), kSide);
    EXPECT_EQ((*classifier)->spec().class_names(2), "class2");
    torch::manual_seed(1);
    const torch::Tensor images = torch::randn({3, 3, kSide, kSide});
    auto probabilities = (*classifier)->Classify(images.data_ptr<float>(), 3);
    ASSERT_TRUE(probabilities.ok()) << probabilities.status();
    ASSERT_EQ(probabilities->size(), size_t{3 * kClasses});
    torch::NoGradGuard no_grad;
    const torch::Tensor expected = torch::softmax(model->forward(images), 1);
    for (int i = 0; i < 3; ++i) {
      double sum = 0;
      for (int c = 0; c < kClasses; ++c) {
        sum += (*probabilities)[i * kClasses + c];
        EXPECT_NEAR((*probabilities)[i * kClasses + c], expected[i][c].item<float>(), 1e-5);
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST(ClassifierTest, SpecOverrideIsUsedAndAMisfitNamesBothFiles) {
  const std::string path = WriteBundle("classifier_override");
  ModelSpec renamed = TestSpec();
  renamed.set_class_names(0, "renamed");
  const std::string other = ::dmue::testing::TempPath("classifier_override/other.spec.pbtxt");
  ASSERT_TRUE(WriteModelSpec(other, renamed).ok());
  auto classifier = Classifier::Load(path, other, Fp32());
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  EXPECT_EQ((*classifier)->spec().class_names(0), "renamed");

  const std::string misfit = ::dmue::testing::TempPath("classifier_override/misfit.spec.pbtxt");
  ASSERT_TRUE(WriteModelSpec(misfit, TestSpec(kClasses + 2)).ok());
  auto refused = Classifier::Load(path, misfit, Fp32());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("misfit.spec.pbtxt"), std::string::npos) << refused.status();
  EXPECT_NE(refused.status().message().find("model.pth"), std::string::npos) << refused.status();
}

TEST(ClassifierTest, WeightsWithoutASpecAreRefusedNotGuessed) {
  const std::string path = WriteBundle("classifier_nospec");
  std::filesystem::remove(SpecPathFor(path));
  auto classifier = Classifier::Load(path, "", Fp32());
  ASSERT_FALSE(classifier.ok());
  EXPECT_EQ(classifier.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(classifier.status().message().find("model.spec.pbtxt"), std::string::npos) << classifier.status();
}

TEST(ClassifierTest, BadInputsAreErrorsNotExceptions) {
  auto classifier = Classifier::Load(WriteBundle("classifier_bad"), "", Fp32());
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  const std::vector<float> one(3 * kSide * kSide, 0.f);
  EXPECT_EQ((*classifier)->Classify(one.data(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  auto wrong_shape = (*classifier)->Probabilities(torch::zeros({1, 3, kSide + 1, kSide}));
  ASSERT_FALSE(wrong_shape.ok());
  EXPECT_NE(wrong_shape.status().message().find("[B, 3, 32, 32]"), std::string::npos) << wrong_shape.status();
}

TEST(ClassifierTest, AutoChoosesAndSaysSoFixedPrecisionsAreKept) {
  InferenceModel model{nullptr};
  WriteBundle("classifier_auto", &model);
  ClassifierOptions automatic;
  automatic.auto_batch_sizes = {1, 2};
  auto chosen = Classifier::FromModel(model, kClasses, kSide, automatic);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_NE((*chosen)->compute_summary().find("AUTO inference compute"), std::string::npos)
      << (*chosen)->compute_summary();
  ClassifierOptions bf16;
  bf16.precision = PrecisionChoice::kBFloat16;
  auto fixed = Classifier::FromModel(model, kClasses, kSide, bf16);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ((*fixed)->compute().precision, Precision::kBFloat16);
  EXPECT_TRUE((*fixed)->compute().channels_last);
  EXPECT_FALSE(Classifier::FromModel(model, 0, kSide, bf16).ok());
}

TEST(ClassifierDeviceTest, ExplicitCpuClassifiesExactlyAsTheDefault) {
  const std::string path = WriteBundle("classifier_cpu");
  torch::manual_seed(2);
  const torch::Tensor images = torch::randn({2, 3, kSide, kSide});
  for (PrecisionChoice precision : {PrecisionChoice::kFloat32, PrecisionChoice::kBFloat16}) {
    ClassifierOptions by_default;
    by_default.precision = precision;
    ClassifierOptions cpu = by_default;
    cpu.device = "cpu";
    auto a = Classifier::Load(path, "", by_default);
    auto b = Classifier::Load(path, "", cpu);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_TRUE((*b)->compute().device.is_cpu());
    EXPECT_EQ((*a)->compute_summary(), (*b)->compute_summary());
    auto pa = (*a)->Probabilities(images);
    auto pb = (*b)->Probabilities(images);
    ASSERT_TRUE(pa.ok() && pb.ok());
    EXPECT_TRUE(pa->device().is_cpu());
    EXPECT_TRUE(torch::equal(*pa, *pb));
  }
}

TEST(ClassifierDeviceTest, BadOrUnusableDevicesFailLoadNamingTheOption) {
  const std::string path = WriteBundle("classifier_bad_device");
  ClassifierOptions options = Fp32();
  options.device = "gpu";
  auto bad = Classifier::Load(path, "", options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("ClassifierOptions.device: 'gpu'"), std::string::npos) << bad.status();
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  for (PrecisionChoice precision : {PrecisionChoice::kAuto, PrecisionChoice::kFloat32}) {
    options.precision = precision;
    options.device = "cuda:0";
    auto cuda = Classifier::Load(path, "", options);
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition) << cuda.status();
    EXPECT_NE(cuda.status().message().find("ClassifierOptions.device: device cuda:0: "), std::string::npos)
        << cuda.status();
  }
}

TEST(ClassifierTest, ParsePrecisionNamesTheFlag) {
  EXPECT_EQ(*ParsePrecision("AUTO", "--precision"), PrecisionChoice::kAuto);
  EXPECT_EQ(*ParsePrecision("fp32", "--precision"), PrecisionChoice::kFloat32);
  EXPECT_EQ(*ParsePrecision("bf16", "--precision"), PrecisionChoice::kBFloat16);
  auto bad = ParsePrecision("fp16", "--precision");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--precision: 'fp16'"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace dmue::inference
