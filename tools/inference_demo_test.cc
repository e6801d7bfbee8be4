#include "tools/inference_demo_lib.h"

#include <fstream>

#include "datasets/transforms.h"
#include "dmue/dmue_model.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"
#include "dmue/testing/golden.h"
#include "gtest/gtest.h"
#include "third_party/shared_data.h"

namespace dmue::tools {
namespace {

TEST(InferenceDemoTest, Test1MatchesTheReferencePathThroughAnExportedModel) {
  DMUE_SHARED_OR_SKIP(image, "golden/test1.jpg");
  DMUE_SHARED_OR_SKIP(preprocess, "golden/preprocess.pt");
  torch::manual_seed(0);
  ModelConfig config;
  DmueModel multi(config);
  const std::string path = ::testing::TempDir() + "/target.pth";
  ASSERT_TRUE(ExportInferenceWeights(ModuleStateDict(*multi), 8, path).ok());
  absl::StatusOr<InferenceModel> model = LoadInferenceModel(path, config);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<Prediction> prediction = ClassifyImageFile(*model, image);
  ASSERT_TRUE(prediction.ok()) << prediction.status();
  ASSERT_EQ(prediction->probabilities.size(), 8u);
  double sum = 0;
  for (float p : prediction->probabilities) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-5);

  // The same model on the reference's own preprocessed tensor gives the same
  // probabilities (JPEG decoders may differ by a grey level).
  auto golden = testing::LoadGoldenTensors(preprocess);
  ASSERT_TRUE(golden.ok());
  torch::NoGradGuard no_grad;
  torch::Tensor reference = torch::softmax((*model)->forward(golden->at("test1.inference_input").unsqueeze(0)), 1)[0];
  for (int c = 0; c < 8; ++c) EXPECT_NEAR(prediction->probabilities[c], reference[c].item<float>(), 1e-3);
  EXPECT_EQ(prediction->label, reference.argmax().item<int64_t>());
}

TEST(InferenceDemoTest, UnreadableImageIsAClearError) {
  torch::manual_seed(0);
  ModelConfig config;
  InferenceModel model(config);
  const std::string bad = ::testing::TempDir() + "/not_an_image.jpg";
  std::ofstream(bad) << "definitely not a jpeg";
  absl::StatusOr<Prediction> prediction = ClassifyImageFile(model, bad);
  ASSERT_FALSE(prediction.ok());
  EXPECT_NE(prediction.status().message().find("not_an_image.jpg"), std::string::npos) << prediction.status();
}

}  // namespace
}  // namespace dmue::tools
