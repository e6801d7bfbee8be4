// ExpressionService on inference/: a checkpoint without a spec file is served
// only with the spec the config names; a spec that does not fit the weights is
// refused naming both files; photos and tensors go through one batcher; the
// byte limit is checked before a photo is decoded; a CUDA device this
// LibTorch cannot use fails Create naming ServerConfig.device. Needs ../shared (MTCNN and
// photos); skips saying so when it is absent.
#include "serving/expression_service.h"

#include <filesystem>

#include <torch/cuda.h>

#include "dmue/model_bundle.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"
#include "serving/server_config.h"
#include "serving/testing/test_model.h"
#include "third_party/shared_data.h"

namespace dmue::serving {
namespace {

const std::vector<std::string> kNames = {"a", "b", "c"};

class ExpressionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DMUE_SHARED_OR_SKIP(pnet, "models/mtcnn/pnet.pt");
    DMUE_SHARED_OR_SKIP(photo, "data/photos/test1.jpg");
    photo_ = photo;
    dir_ = ::dmue::testing::TempPath("expression_service_test");
    absl::StatusOr<std::string> weights = testing::WriteRandomInferenceModel(dir_, 3);
    ASSERT_TRUE(weights.ok()) << weights.status();
    config_.set_model_path(*weights);
    config_.set_detector_dir(pnet.substr(0, pnet.rfind('/')));
    config_.set_precision(ServerConfig::FP32);
    config_.set_batch_delay_us(0);
  }

  std::string WriteSpec(const std::string& name, const ModelSpec& spec) {
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteModelSpec(path, spec).ok());
    return path;
  }

  std::string dir_, photo_;
  ServerConfig config_;
};

TEST_F(ExpressionServiceTest, ACheckpointWithoutSpecNeedsTheUsersSpec) {
  absl::StatusOr<std::unique_ptr<ExpressionService>> refused = ExpressionService::Create(config_, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("random_inference.spec.pbtxt"), std::string::npos) << refused.status();

  config_.set_model_spec(WriteSpec("given.spec.pbtxt", testing::TestSpec(kNames, 72, 64, true)));
  absl::StatusOr<std::unique_ptr<ExpressionService>> service = ExpressionService::Create(config_, nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*service)->metadata().class_names, kNames);
  EXPECT_EQ((*service)->metadata().input_size, 64);
  EXPECT_TRUE((*service)->spec().input().grayscale());

  absl::StatusOr<AnalyzeResult> result =
      (*service)->Analyze(::dmue::testing::ReadFile(photo_), AnalyzeOptions{}, "test1.jpg");
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->faces.size(), 1u);
  const FaceResult& face = result->faces[0];
  ASSERT_EQ(face.probabilities.size(), 3u);
  EXPECT_NEAR(face.probabilities[0] + face.probabilities[1] + face.probabilities[2], 1.0, 1e-5);
  EXPECT_GT(face.score, 0.9f);

  // Tensors of the wrong size are refused; after Shutdown nothing runs.
  absl::StatusOr<std::vector<float>> bad = (*service)->ClassifyTensors(std::vector<float>(5), 1);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  (*service)->Shutdown();
  EXPECT_FALSE((*service)->ClassifyTensors(std::vector<float>(3 * 64 * 64), 1).ok());
}

TEST_F(ExpressionServiceTest, UnusableCudaFailsCreateNamingTheField) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  config_.set_model_spec(WriteSpec("cuda.spec.pbtxt", testing::TestSpec(kNames, 72, 64, true)));
  config_.set_device("cuda:0");
  absl::StatusOr<std::unique_ptr<ExpressionService>> service = ExpressionService::Create(config_, nullptr);
  ASSERT_FALSE(service.ok());
  EXPECT_EQ(service.status().code(), absl::StatusCode::kFailedPrecondition) << service.status();
  EXPECT_NE(service.status().message().find("ServerConfig.device: device cuda:0: "), std::string::npos)
      << service.status();
}

TEST_F(ExpressionServiceTest, ASpecThatDoesNotFitTheWeightsNamesBothFiles) {
  config_.set_model_spec(WriteSpec("five.spec.pbtxt", testing::TestSpec({"1", "2", "3", "4", "5"}, 72, 64, true)));
  absl::StatusOr<std::unique_ptr<ExpressionService>> service = ExpressionService::Create(config_, nullptr);
  ASSERT_FALSE(service.ok());
  EXPECT_NE(service.status().message().find("five.spec.pbtxt"), std::string::npos) << service.status();
  EXPECT_NE(service.status().message().find("random_inference.pth"), std::string::npos) << service.status();
}

TEST_F(ExpressionServiceTest, PhotoLimitsAreTheConfigs) {
  config_.set_model_spec(WriteSpec("given.spec.pbtxt", testing::TestSpec(kNames, 72, 64, true)));
  config_.set_max_request_bytes(1000);
  absl::StatusOr<std::unique_ptr<ExpressionService>> service = ExpressionService::Create(config_, nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  absl::StatusOr<AnalyzeResult> big =
      (*service)->Analyze(::dmue::testing::ReadFile(photo_), AnalyzeOptions{}, "test1.jpg");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("test1.jpg"), std::string::npos) << big.status();
  EXPECT_EQ((*service)->Analyze("", AnalyzeOptions{}, "empty").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dmue::serving
