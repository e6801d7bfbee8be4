// Face preprocessing from the spec's InputSpec: the eval transform's fields,
// channel order, grey; and the reference's inference.py path on its golden
// test1.jpg (the test that came with tools/inference_demo).
#include "inference/face_input.h"

#include <filesystem>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "datasets/transforms.h"
#include "dmue/dmue_model.h"
#include "dmue/io/image_decode.h"
#include "dmue/model_bundle.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"
#include "dmue/testing/files.h"
#include "dmue/testing/golden.h"
#include "gtest/gtest.h"
#include "inference/classifier.h"
#include "third_party/shared_data.h"

namespace dmue::inference {
namespace {

InputSpec Input(int resize, int crop) {
  InputSpec input;
  input.set_resize(resize);
  input.set_crop(crop);
  return input;
}

cv::Mat Gradient() {
  cv::Mat rgb(40, 50, CV_8UC3);
  for (int r = 0; r < rgb.rows; ++r) {
    for (int c = 0; c < rgb.cols; ++c) rgb.at<cv::Vec3b>(r, c) = cv::Vec3b(r * 5, c * 4, (r * c) % 255);
  }
  return rgb;
}

std::vector<float> Preprocessed(const cv::Mat& rgb, const InputSpec& input) {
  std::vector<float> out(FaceInputSize(input));
  EXPECT_TRUE(PreprocessFace(rgb, input, out.data()).ok());
  return out;
}

TEST(FaceInputTest, TransformIsTheSpecsEvalTransform) {
  InputSpec input = Input(72, 64);
  input.set_mean(0.4f);
  input.set_std(0.2f);
  input.set_grayscale(true);
  const datasets::TransformOptions transform = EvalTransformFor(input);
  EXPECT_FALSE(transform.train);
  EXPECT_EQ(transform.resize, 72);
  EXPECT_EQ(transform.crop, 64);
  EXPECT_FLOAT_EQ(transform.mean, 0.4f);
  EXPECT_FLOAT_EQ(transform.std, 0.2f);
  EXPECT_TRUE(transform.grayscale);
  EXPECT_EQ(FaceInputSize(input), 3 * 64 * 64);

  std::vector<float> expected(FaceInputSize(input));
  ASSERT_TRUE(datasets::ApplyTransform(Gradient(), transform, nullptr, expected.data()).ok());
  EXPECT_EQ(Preprocessed(Gradient(), input), expected);
}

TEST(FaceInputTest, BgrModelsGetSwappedChannelsGreyOnesDoNot) {
  InputSpec rgb = Input(0, 32);
  InputSpec bgr = rgb;
  bgr.set_channel_order(InputSpec::BGR);
  const std::vector<float> a = Preprocessed(Gradient(), rgb);
  const std::vector<float> b = Preprocessed(Gradient(), bgr);
  const size_t plane = 32 * 32;
  for (size_t i = 0; i < plane; ++i) {
    EXPECT_EQ(a[i], b[2 * plane + i]);
    EXPECT_EQ(a[plane + i], b[plane + i]);
    EXPECT_EQ(a[2 * plane + i], b[i]);
  }
  rgb.set_grayscale(true);
  bgr.set_grayscale(true);
  EXPECT_EQ(Preprocessed(Gradient(), rgb), Preprocessed(Gradient(), bgr));
}

TEST(FaceInputTest, CropLargerThanTheResizeIsAnError) {
  std::vector<float> out(FaceInputSize(Input(32, 64)));
  EXPECT_FALSE(PreprocessFace(Gradient(), Input(32, 64), out.data()).ok());
}

// The reference's inference.py: Resize(256) -> CenterCrop(224) -> normalise
// -> the exported main branch -> softmax. JPEG decoders may differ by a grey
// level, hence 1e-3.
TEST(FaceInputTest, Test1MatchesTheReferencePathThroughAnExportedModel) {
  DMUE_SHARED_OR_SKIP(image, "golden/test1.jpg");
  DMUE_SHARED_OR_SKIP(preprocess, "golden/preprocess.pt");
  torch::manual_seed(0);
  ModelConfig config;
  DmueModel multi(config);
  const std::string dir = ::dmue::testing::TempPath("face_input_reference");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/target.pth";
  ASSERT_TRUE(ExportInferenceWeights(ModuleStateDict(*multi), 8, path).ok());
  ModelSpec spec;
  spec.mutable_model()->set_num_classes(8);
  for (const char* name : {"Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"}) {
    spec.add_class_names(name);
  }
  *spec.mutable_input() = Input(256, 224);
  const std::string spec_path = dir + "/given.spec.pbtxt";  // the user's spec for a spec-less checkpoint
  ASSERT_TRUE(WriteModelSpec(spec_path, spec).ok());
  ClassifierOptions fp32;
  fp32.precision = PrecisionChoice::kFloat32;
  auto classifier = Classifier::Load(path, spec_path, fp32);
  ASSERT_TRUE(classifier.ok()) << classifier.status();

  absl::StatusOr<cv::Mat> rgb = io::ReadImageRgb(image);
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  std::vector<float> input(FaceInputSize(spec.input()));
  ASSERT_TRUE(PreprocessFace(*rgb, spec.input(), input.data()).ok());
  auto probabilities = (*classifier)->Classify(input.data(), 1);
  ASSERT_TRUE(probabilities.ok()) << probabilities.status();

  auto golden = ::dmue::testing::LoadGoldenTensors(preprocess);
  ASSERT_TRUE(golden.ok());
  const torch::Tensor reference_input = golden->at("test1.inference_input");
  const torch::Tensor ours = torch::from_blob(input.data(), reference_input.sizes(), torch::kFloat32);
  EXPECT_LT((ours - reference_input).abs().max().item<float>(), 0.02f);  // a grey level or two
  auto reference = (*classifier)->Probabilities(reference_input.unsqueeze(0));
  ASSERT_TRUE(reference.ok()) << reference.status();
  for (int c = 0; c < 8; ++c) EXPECT_NEAR((*probabilities)[c], (*reference)[0][c].item<float>(), 1e-3);
  EXPECT_EQ(std::max_element(probabilities->begin(), probabilities->end()) - probabilities->begin(),
            (*reference)[0].argmax().item<int64_t>());
}

}  // namespace
}  // namespace dmue::inference
