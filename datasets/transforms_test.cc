#include "datasets/transforms.h"

#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "datasets/image_codec.h"
#include "dmue/testing/golden.h"
#include "gtest/gtest.h"
#include "third_party/shared_data.h"

namespace dmue::datasets {
namespace {

cv::Mat ToMat(const torch::Tensor& hwc_u8) {
  torch::Tensor t = hwc_u8.contiguous();
  return cv::Mat(int(t.size(0)), int(t.size(1)), CV_8UC3, t.data_ptr<uint8_t>()).clone();
}

cv::Mat Gradient(int h, int w) {
  cv::Mat image(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) image.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x * 5), uint8_t(y * 3), uint8_t(x + y));
  return image;
}

class GoldenPreprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = SharedPath("golden/preprocess.pt");
    if (!path.ok()) GTEST_SKIP() << path.status().message();
    auto loaded = dmue::testing::LoadGoldenTensors(*path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    golden_ = *std::move(loaded);
  }
  torch::Tensor Eval(const cv::Mat& rgb, int resize, int crop) {
    torch::Tensor out = torch::empty({3, crop, crop});
    absl::Status status = ApplyTransform(rgb, EvalTransform(resize, crop), nullptr, out.data_ptr<float>());
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }
  std::map<std::string, torch::Tensor> golden_;
};

TEST_F(GoldenPreprocessTest, EvalTransformReproducesReferenceValInput) {
  for (const std::string img : {"test1", "synth"}) {
    cv::Mat lmdb = ToMat(golden_.at(img + ".lmdb_rgb_u8"));
    torch::Tensor ours = Eval(lmdb, 256, 224);
    const torch::Tensor& ref = golden_.at(img + ".lmdb_val_input");
    EXPECT_EQ((ours - ref).abs().max().item<float>(), 0.0f) << img;
  }
}

TEST_F(GoldenPreprocessTest, PilBilinearResizeIsBitExact) {
  cv::Mat decoded = ToMat(golden_.at("synth.decoded_rgb_u8"));
  ASSERT_EQ(decoded.cols, 311);
  cv::Mat ours = ResizePilBilinear(decoded, 256, 256);
  cv::Mat ref = ToMat(golden_.at("synth.pil_resized_rgb_u8"));
  EXPECT_EQ(cv::norm(ours, ref, cv::NORM_INF), 0.0);
  // The inference.py path (PIL resize from the original size) end to end.
  torch::Tensor input = Eval(decoded, 256, 224);
  EXPECT_EQ((input - golden_.at("synth.inference_input")).abs().max().item<float>(), 0.0f);
}

TEST_F(GoldenPreprocessTest, OpenCvCubicResizeMatchesMakeLmdb) {
  cv::Mat decoded = ToMat(golden_.at("synth.decoded_rgb_u8"));
  cv::Mat resized;
  cv::resize(decoded, resized, cv::Size(256, 256), 0, 0, cv::INTER_CUBIC);
  EXPECT_EQ(cv::norm(resized, ToMat(golden_.at("synth.lmdb_rgb_u8")), cv::NORM_INF), 0.0);
}

TEST_F(GoldenPreprocessTest, DecodedTest1MatchesReference) {
  DMUE_SHARED_OR_SKIP(jpg, "golden/test1.jpg");
  auto decoded = ReadImageRgb(jpg);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  cv::Mat ref = ToMat(golden_.at("test1.decoded_rgb_u8"));
  const double max_diff = cv::norm(*decoded, ref, cv::NORM_INF);
  EXPECT_LE(max_diff, 1.0) << "libjpeg decoders disagree by " << max_diff;
  // Full val path from the JPEG: decode -> (cubic 256 = identity) -> eval transform.
  torch::Tensor ours = Eval(*decoded, 256, 224);
  EXPECT_LE((ours - golden_.at("test1.lmdb_val_input")).abs().max().item<float>(), 2.0f / 255.0f * 2.0f);
}

TEST(TransformsTest, EvalShapesAndRange) {
  std::vector<float> out(3 * 64 * 64);
  ASSERT_TRUE(ApplyTransform(Gradient(48, 48), EvalTransform(72, 64), nullptr, out.data()).ok());
  for (float v : out) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 1.0f);
  }
  EXPECT_EQ(CenterCropOffset(72, 64), 4);
  EXPECT_EQ(CenterCropOffset(5, 2), 2);  // round(1.5) = 2
  EXPECT_EQ(CenterCropOffset(3, 2), 0);  // round(0.5) = 0, as Python
  EXPECT_FALSE(ApplyTransform(Gradient(48, 48), EvalTransform(0, 64), nullptr, out.data()).ok());
  TransformOptions bad = EvalTransform(64, 72);
  EXPECT_NE(ValidateTransformOptions(bad).message().find("crop"), std::string::npos);
  bad = TrainTransform();
  bad.flip_p = 2;
  EXPECT_NE(ValidateTransformOptions(bad).message().find("flip_p"), std::string::npos);
}

TEST(TransformsTest, TrainTransformIsDeterministicAndAugments) {
  const cv::Mat image = Gradient(48, 48);
  const TransformOptions options = TrainTransform(72, 64);
  const size_t n = 3 * 64 * 64;
  std::vector<float> eval(n);
  ASSERT_TRUE(ApplyTransform(image, EvalTransform(72, 64), nullptr, eval.data()).ok());
  int differs_from_eval = 0, erased = 0, distinct = 0;
  std::vector<float> previous(n);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::vector<float> a(n), b(n);
    std::mt19937_64 rng_a(seed), rng_b(seed);
    ASSERT_TRUE(ApplyTransform(image, options, &rng_a, a.data()).ok());
    ASSERT_TRUE(ApplyTransform(image, options, &rng_b, b.data()).ok());
    EXPECT_EQ(a, b);
    differs_from_eval += a != eval;
    distinct += a != previous;
    previous = a;
    int zeros = 0;
    for (float v : a) {
      ASSERT_GE(v, -1.0f);
      ASSERT_LE(v, 1.0f);
      zeros += v == 0.0f;
    }
    // 0 is not a normalised value of any uint8 (127 -> -0.0039, 128 -> 0.0039).
    erased += zeros > 0;
  }
  EXPECT_GT(differs_from_eval, 190);
  EXPECT_GT(distinct, 190);
  EXPECT_GT(erased, 70);  // p = 0.5 (minus failed attempts)
  EXPECT_LT(erased, 130);
}

TEST(TransformsTest, FlipAndNoiseProbabilities) {
  // A left/right asymmetric image, no resize/crop jitter: flips are visible.
  const cv::Mat image = Gradient(32, 32);
  TransformOptions options = TrainTransform(32, 32);
  options.erase_p = 0;
  options.noise_p = 0;
  std::vector<float> plain(3 * 32 * 32);
  ASSERT_TRUE(ApplyTransform(image, EvalTransform(32, 32), nullptr, plain.data()).ok());
  int flips = 0;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    std::vector<float> out(plain.size());
    std::mt19937_64 rng(seed);
    ASSERT_TRUE(ApplyTransform(image, options, &rng, out.data()).ok());
    flips += out != plain;
  }
  EXPECT_NEAR(flips / 1000.0, 0.5, 0.06);
  options.flip_p = 0;
  options.noise_p = 0.25f;
  int noisy = 0;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    std::vector<float> out(plain.size());
    std::mt19937_64 rng(seed);
    ASSERT_TRUE(ApplyTransform(image, options, &rng, out.data()).ok());
    noisy += out != plain;
  }
  EXPECT_NEAR(noisy / 1000.0, 0.25, 0.05);
  // Noise statistics: std sqrt(30) before clipping.
  cv::Mat flat(64, 64, CV_8UC3, cv::Scalar(128, 128, 128));
  std::mt19937_64 rng(3);
  cv::Mat noisy_image = AddGaussianNoise(flat, std::sqrt(30.0), &rng);
  cv::Scalar mean, stddev;
  cv::meanStdDev(noisy_image.reshape(1), mean, stddev);
  EXPECT_NEAR(mean[0], 128.0, 0.3);
  EXPECT_NEAR(stddev[0], std::sqrt(30.0), 0.2);
}

TEST(TransformsTest, RandomErasingAreaWithinScale) {
  TransformOptions options = TrainTransform(224, 224);
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> buffer(3 * 224 * 224, 1.0f);
    if (!RandomErase(buffer.data(), 3, 224, 224, options, &rng)) continue;
    int zeros = 0;
    for (size_t i = 0; i < 224 * 224; ++i) zeros += buffer[i] == 0.0f;
    const double fraction = zeros / (224.0 * 224.0);
    EXPECT_GE(fraction, 0.015);
    EXPECT_LE(fraction, 0.27);
  }
}

TransformOptions PlainTrain(int size) {
  TransformOptions o = TrainTransform(0, size);
  o.noise_p = 0;
  o.random_crop = false;
  o.flip_p = 0;
  o.erase_p = 0;
  return o;
}

std::vector<float> Apply(const cv::Mat& rgb, const TransformOptions& o, uint64_t seed) {
  std::vector<float> out(3 * o.crop * o.crop);
  std::mt19937_64 rng(seed);
  EXPECT_TRUE(ApplyTransform(rgb, o, &rng, out.data()).ok());
  return out;
}

TEST(AffineTest, IdentityParametersLeaveTheImage) {
  const cv::Mat image = Gradient(48, 48);
  TransformOptions o = PlainTrain(48);
  const std::vector<float> plain = Apply(image, o, 1);
  o.affine_p = 1;  // rotation 0, scale 1, shear 0, translate 0
  EXPECT_EQ(Apply(image, o, 1), plain);
}

TEST(AffineTest, WarpsAreSeededAndMoveTheContent) {
  const cv::Mat image = Gradient(48, 48);
  TransformOptions o = PlainTrain(48);
  o.affine_p = 1;
  o.rotation_deg = 20;
  o.scale_min = 0.85f;
  o.scale_max = 1.15f;
  o.shear_deg = 10;
  o.translate = 0.1f;
  const std::vector<float> a = Apply(image, o, 7), b = Apply(image, o, 7), c = Apply(image, o, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, Apply(image, PlainTrain(48), 7));
}

TEST(AffineTest, PureShiftMovesByTheDrawnOffset) {
  // A single bright pixel at the centre, shifted by at most translate * 48 =
  // 4.8 pixels in x and y; mirrored borders keep the rest black.
  cv::Mat image(48, 48, CV_8UC3, cv::Scalar(0, 0, 0));
  image.at<cv::Vec3b>(24, 24) = cv::Vec3b(255, 255, 255);
  TransformOptions o = PlainTrain(48);
  o.affine_p = 1;
  o.translate = 0.1f;
  o.mean = 0;
  o.std = 1;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const cv::Mat warped = RandomAffine(image, o, &rng);
    cv::Point at;
    double peak = 0;
    cv::Mat grey;
    cv::extractChannel(warped, grey, 0);
    cv::minMaxLoc(grey, nullptr, &peak, nullptr, &at);
    EXPECT_GT(peak, 40) << seed;
    EXPECT_LE(std::abs(at.x - 24), 5) << seed;
    EXPECT_LE(std::abs(at.y - 24), 5) << seed;
  }
}

TEST(AffineTest, DisabledAffineDrawsNothing) {
  // Configs without affine keep their random streams (reproducible runs).
  const cv::Mat image = Gradient(64, 64);
  TransformOptions with_zero = TrainTransform(0, 56);
  TransformOptions untouched = with_zero;
  with_zero.rotation_deg = 30;  // ranges set, but affine_p 0
  EXPECT_EQ(Apply(image, with_zero, 5), Apply(image, untouched, 5));
}

TEST(GrayscaleTest, ChannelsBecomeEqualLuma) {
  const cv::Mat image = Gradient(16, 16);
  TransformOptions o = EvalTransform(0, 16);
  o.grayscale = true;
  std::vector<float> out(3 * 16 * 16);
  ASSERT_TRUE(ApplyTransform(image, o, nullptr, out.data()).ok());
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(out[i], out[256 + i]);
    EXPECT_EQ(out[i], out[512 + i]);
  }
  EXPECT_EQ(cv::norm(image, Gradient(16, 16), cv::NORM_INF), 0) << "the input image was modified";
  const cv::Vec3b p = image.at<cv::Vec3b>(3, 5);
  const float luma = std::round(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
  EXPECT_NEAR(out[3 * 16 + 5], (luma / 255.0f - 0.5f) / 0.5f, 1.0f / 127.0f);
}

TEST(AffineTest, OptionsAreValidatedByName) {
  TransformOptions o = PlainTrain(48);
  o.affine_p = 1.5f;
  EXPECT_NE(ValidateTransformOptions(o).message().find("affine_p"), std::string::npos);
  o = PlainTrain(48);
  o.scale_min = 1.2f;
  o.scale_max = 1.1f;
  EXPECT_NE(ValidateTransformOptions(o).message().find("scale_min"), std::string::npos);
  o = PlainTrain(48);
  o.shear_deg = 85;
  EXPECT_NE(ValidateTransformOptions(o).message().find("shear_deg"), std::string::npos);
  o = PlainTrain(48);
  o.translate = 0.7f;
  EXPECT_NE(ValidateTransformOptions(o).message().find("translate"), std::string::npos);
}

TEST(NativeSizeTest, ResizeZeroKeepsFer2013Faces) {
  // FER2013 / FERPlus faces are 48x48: resize 0 + crop 48 feeds them as they
  // are, without upsampling (the pixels are the normalised input values).
  const cv::Mat face = Gradient(48, 48);
  TransformOptions o = PlainTrain(48);
  ASSERT_TRUE(ValidateTransformOptions(o).ok());
  const std::vector<float> out = Apply(face, o, 3);
  ASSERT_EQ(out.size(), 3u * 48 * 48);
  const cv::Vec3b p = face.at<cv::Vec3b>(10, 20);
  EXPECT_FLOAT_EQ(out[10 * 48 + 20], (p[0] / 255.0f - 0.5f) / 0.5f);
  EXPECT_FLOAT_EQ(out[48 * 48 + 10 * 48 + 20], (p[1] / 255.0f - 0.5f) / 0.5f);
}

}  // namespace
}  // namespace dmue::datasets
