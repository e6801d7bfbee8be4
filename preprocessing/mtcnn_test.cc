#include "preprocessing/mtcnn.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "dmue/io/image_decode.h"
#include "dmue/testing/golden.h"
#include "gtest/gtest.h"
#include "preprocessing/mtcnn_internal.h"
#include "third_party/shared_data.h"

namespace dmue::preprocessing {
namespace {

using Tensors = std::map<std::string, torch::Tensor>;

const char* const kPhotos[] = {
    "test1.jpg",           "face_sdk_test1.jpg",        "face_sdk_test2.jpg",
    "face_sdk_test3_mask.jpg", "face_sdk_test1_cropped.jpg", "fma3d_mask-sample.jpg",
    "facex_sample_non_mask.jpg", "facex_arch.jpg",      "fma3d_mask-data_0_noface.png",
    "facex_logo_noface.png"};

const char* const kCountNames[] = {"num_scales",
                                   "pnet_candidates_over_threshold",
                                   "after_per_scale_nms_0.5",
                                   "after_pnet_nms_0.7",
                                   "rnet_inputs",
                                   "rnet_over_threshold",
                                   "after_rnet_nms_0.7",
                                   "onet_inputs",
                                   "onet_over_threshold",
                                   "after_onet_min_nms_0.7"};

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// stage_counts of `image` from images.json (a fixed, simple layout).
std::vector<int64_t> StageCounts(const std::string& json, const std::string& image) {
  std::vector<int64_t> counts;
  size_t at = json.find("\"" + image + "\": {");
  if (at == std::string::npos) return counts;
  at = json.find("\"stage_counts\": {", at);
  const size_t end = json.find('}', at);
  for (const char* name : kCountNames) {
    const std::string key = std::string("\"") + name + "\": ";
    const size_t k = json.find(key, at);
    if (k == std::string::npos || k > end) return {};
    counts.push_back(std::stoll(json.substr(k + key.size(), 12)));
  }
  return counts;
}

std::unique_ptr<Mtcnn> LoadDetector(const MtcnnOptions& options = {}) {
  auto dir = SharedPath("models/mtcnn");
  if (!dir.ok()) return nullptr;
  auto mtcnn = Mtcnn::Load(*dir, options);
  EXPECT_TRUE(mtcnn.ok()) << mtcnn.status();
  return mtcnn.ok() ? std::move(*mtcnn) : nullptr;
}

cv::Mat ReadRgb(const std::string& path) {
  auto rgb = io::ReadImageRgb(path);
  EXPECT_TRUE(rgb.ok()) << rgb.status();
  return rgb.ok() ? *rgb : cv::Mat();
}

torch::Tensor BoxesTensor(const std::vector<std::array<float, 5>>& boxes) {
  torch::Tensor t = torch::zeros({static_cast<int64_t>(boxes.size()), 5});
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (int j = 0; j < 5; ++j) t[i][j] = boxes[i][j];
  }
  return t;
}

double MaxAbs(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

class MtcnnTest : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(2); }
};

TEST_F(MtcnnTest, NetsMatchGolden) {
  DMUE_SHARED_OR_SKIP(path, "golden/mtcnn/nets.pt");
  auto golden = testing::LoadGoldenTensors(path);
  ASSERT_TRUE(golden.ok()) << golden.status();
  Tensors& g = *golden;
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  torch::InferenceMode guard;
  const MtcnnImpl& nets = mtcnn->impl();
  auto [preg, pprob] = nets.Pnet(g["pnet_input"]);
  EXPECT_LT(MaxAbs(preg, g["pnet_reg"]), 1e-5);
  EXPECT_LT(MaxAbs(pprob, g["pnet_prob"]), 1e-5);
  auto [rreg, rprob] = nets.Rnet(g["rnet_input"]);
  EXPECT_LT(MaxAbs(rreg, g["rnet_reg"]), 1e-5);
  EXPECT_LT(MaxAbs(rprob, g["rnet_prob"]), 1e-5);
  auto [oreg, olm, oprob] = nets.Onet(g["onet_input"]);
  EXPECT_LT(MaxAbs(oreg, g["onet_reg"]), 1e-5);
  EXPECT_LT(MaxAbs(olm, g["onet_landmarks"]), 1e-5);
  EXPECT_LT(MaxAbs(oprob, g["onet_prob"]), 1e-5);
}

TEST_F(MtcnnTest, StagesOfTest1MatchGolden) {
  DMUE_SHARED_OR_SKIP(path, "golden/mtcnn/stages_test1.pt");
  DMUE_SHARED_OR_SKIP(image_path, "golden/mtcnn/images/test1.jpg");
  auto golden = testing::LoadGoldenTensors(path);
  ASSERT_TRUE(golden.ok()) << golden.status();
  Tensors& g = *golden;
  cv::Mat rgb = ReadRgb(image_path);
  ASSERT_FALSE(rgb.empty());
  torch::Tensor image = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
  ASSERT_TRUE(torch::equal(image, g["image"])) << "decoded pixels differ from PIL's";

  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  MtcnnTrace trace;
  auto faces = mtcnn->Detect(rgb, &trace);
  ASSERT_TRUE(faces.ok()) << faces.status();

  // Pyramid: scales, sizes and the normalised levels, bit for bit.
  torch::Tensor scales = g["scales"];
  ASSERT_EQ(static_cast<int64_t>(trace.scales.size()), scales.size(0));
  for (size_t k = 0; k < trace.scales.size(); ++k) {
    EXPECT_EQ(trace.scales[k], scales[k].item<double>()) << k;
    EXPECT_EQ(trace.pyramid_hw[k][0], g["pyramid_hw"][k][0].item<int64_t>());
    EXPECT_EQ(trace.pyramid_hw[k][1], g["pyramid_hw"][k][1].item<int64_t>());
    const int hs = static_cast<int>(trace.pyramid_hw[k][0]);
    const int ws = static_cast<int>(trace.pyramid_hw[k][1]);
    torch::Tensor level = torch::empty({1, hs, ws, 3});
    AreaResampleNormalized(rgb, 0, rgb.rows, 0, rgb.cols, hs, ws, level.data_ptr<float>());
    EXPECT_TRUE(torch::equal(level.permute({0, 3, 1, 2}),
                             g["pnet_input_" + std::to_string(k)]))
        << "pyramid level " << k;
  }

  // R-Net crops from the golden stage-1 boxes, bit for bit.
  torch::Tensor s1 = g["stage1_boxes"];
  torch::Tensor rnet_in = g["rnet_input"];
  ASSERT_EQ(s1.size(0), rnet_in.size(0));
  for (int64_t i = 0; i < s1.size(0); ++i) {
    int x = static_cast<int>(std::trunc(s1[i][0].item<float>()));
    int y = static_cast<int>(std::trunc(s1[i][1].item<float>()));
    int ex = static_cast<int>(std::trunc(s1[i][2].item<float>()));
    int ey = static_cast<int>(std::trunc(s1[i][3].item<float>()));
    x = std::max(x, 1);
    y = std::max(y, 1);
    ex = std::min(ex, rgb.cols);
    ey = std::min(ey, rgb.rows);
    torch::Tensor crop = torch::empty({1, 24, 24, 3});
    AreaResampleNormalized(rgb, y - 1, ey, x - 1, ex, 24, 24, crop.data_ptr<float>());
    EXPECT_TRUE(torch::equal(crop.permute({0, 3, 1, 2})[0], rnet_in[i])) << "crop " << i;
  }

  // Stage outputs.
  torch::Tensor cands = torch::zeros({static_cast<int64_t>(trace.stage1_candidates.size()), 9});
  for (size_t i = 0; i < trace.stage1_candidates.size(); ++i) {
    for (int j = 0; j < 9; ++j) cands[i][j] = trace.stage1_candidates[i][j];
  }
  ASSERT_EQ(cands.sizes(), g["stage1_candidates"].sizes());
  EXPECT_LT(MaxAbs(cands, g["stage1_candidates"]), 1e-5);
  for (size_t i = 0; i < trace.stage1_candidate_scale_index.size(); ++i) {
    EXPECT_EQ(trace.stage1_candidate_scale_index[i],
              g["stage1_candidates_scale_index"][i].item<int64_t>());
  }
  torch::Tensor got1 = BoxesTensor(trace.stage1_boxes);
  ASSERT_EQ(got1.sizes(), g["stage1_boxes"].sizes());
  EXPECT_LT(MaxAbs(got1, g["stage1_boxes"]), 1e-3);
  torch::Tensor got2 = BoxesTensor(trace.stage2_boxes);
  ASSERT_EQ(got2.sizes(), g["stage2_boxes"].sizes());
  EXPECT_LT(MaxAbs(got2, g["stage2_boxes"]), 1e-3);
  torch::Tensor gotf = BoxesTensor(trace.final_boxes);
  ASSERT_EQ(gotf.sizes(), g["final_boxes"].sizes());
  EXPECT_LT(MaxAbs(gotf.narrow(1, 0, 4), g["final_boxes"].narrow(1, 0, 4)), 1e-3);
  EXPECT_LT(MaxAbs(gotf.select(1, 4), g["final_boxes"].select(1, 4)), 1e-5);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(trace.counts[k], g["counts"][k].item<int64_t>()) << kCountNames[k];
  }
}

void ExpectMatchesGolden(const Mtcnn& mtcnn, const std::string& name) {
  SCOPED_TRACE(name);
  auto image_path = SharedPath("golden/mtcnn/images/" + name);
  ASSERT_TRUE(image_path.ok());
  const std::string stem = name.substr(0, name.rfind('.'));
  auto golden = testing::LoadGoldenTensors(*SharedPath("golden/mtcnn/detections/" + stem + ".pt"));
  ASSERT_TRUE(golden.ok()) << golden.status();
  Tensors& g = *golden;
  cv::Mat rgb = ReadRgb(*image_path);
  ASSERT_EQ(rgb.rows, g["image_hw"][0].item<int64_t>());
  MtcnnTrace trace;
  auto faces = mtcnn.Detect(rgb, &trace);
  ASSERT_TRUE(faces.ok()) << faces.status();
  const int64_t n = g["boxes"].size(0);
  ASSERT_EQ(static_cast<int64_t>(faces->size()), n);
  double box_err = 0, prob_err = 0, lm_err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const FaceDetection& f = (*faces)[i];
    for (int j = 0; j < 4; ++j) {
      box_err = std::max(box_err, std::abs(f.box[j] - g["boxes"][i][j].item<double>()));
    }
    prob_err = std::max(prob_err, std::abs(f.prob - g["probs"][i].item<double>()));
    for (int k = 0; k < 5; ++k) {
      for (int j = 0; j < 2; ++j) {
        lm_err = std::max(lm_err,
                          std::abs(f.landmarks[k][j] - g["landmarks"][i][k][j].item<double>()));
      }
    }
  }
  EXPECT_LE(box_err, 1e-3);
  EXPECT_LE(prob_err, 1e-5);
  EXPECT_LE(lm_err, 1e-3);
  std::cout << name << ": " << n << " faces, max |box| err " << box_err << ", |prob| "
            << prob_err << ", |landmark| " << lm_err << "\n";
  const std::vector<int64_t> counts =
      StageCounts(ReadText(*SharedPath("golden/mtcnn/images.json")), name);
  ASSERT_EQ(counts.size(), 10u);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(trace.counts[k], counts[k]) << kCountNames[k];
}

TEST_F(MtcnnTest, EveryGoldenPhotoMatches) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/images");
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  for (const char* name : kPhotos) ExpectMatchesGolden(*mtcnn, name);
}

TEST_F(MtcnnTest, EveryGoldenPhotoMatchesInCompatMode) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/images");
  MtcnnOptions options;
  options.compat = true;
  auto mtcnn = LoadDetector(options);
  ASSERT_NE(mtcnn, nullptr);
  for (const char* name : kPhotos) ExpectMatchesGolden(*mtcnn, name);
}

TEST_F(MtcnnTest, TinyImagesAndBadInputs) {
  DMUE_SHARED_OR_SKIP(dir, "models/mtcnn");
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  cv::Mat tiny(15, 40, CV_8UC3, cv::Scalar(120, 80, 60));
  auto none = mtcnn->Detect(tiny);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  MtcnnOptions compat;
  compat.compat = true;
  auto strict = LoadDetector(compat);
  EXPECT_EQ(strict->Detect(tiny).status().code(), absl::StatusCode::kFailedPrecondition);

  cv::Mat gray(100, 100, CV_8UC1, cv::Scalar(10));
  EXPECT_EQ(mtcnn->Detect(gray).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mtcnn->Detect(cv::Mat()).status().code(), absl::StatusCode::kInvalidArgument);
  cv::Mat blank(300, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  auto empty = mtcnn->Detect(blank);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(MtcnnTest, LargeInputIsDownscaledAndMappedBack) {
  DMUE_SHARED_OR_SKIP(image_path, "golden/mtcnn/images/face_sdk_test2.jpg");
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  cv::Mat rgb = ReadRgb(image_path);
  auto ref = mtcnn->Detect(rgb);
  ASSERT_TRUE(ref.ok());
  cv::Mat big;
  cv::resize(rgb, big, cv::Size(), 3.0, 3.0, cv::INTER_CUBIC);
  MtcnnOptions limited;
  limited.max_input_side = 900;
  auto small_det = LoadDetector(limited);
  MtcnnTrace trace;
  auto faces = small_det->Detect(big, &trace);
  ASSERT_TRUE(faces.ok()) << faces.status();
  EXPECT_LT(trace.input_scale, 0.37);
  ASSERT_EQ(faces->size(), ref->size());
  for (size_t i = 0; i < faces->size(); ++i) {
    for (int k = 0; k < 5; ++k) {
      // Landmarks of the 3x image, in its pixels, near 3x the originals.
      EXPECT_NEAR((*faces)[i].landmarks[k][0], ((*ref)[i].landmarks[k][0] + 0.5) * 3 - 0.5, 30);
      EXPECT_NEAR((*faces)[i].landmarks[k][1], ((*ref)[i].landmarks[k][1] + 0.5) * 3 - 0.5, 30);
    }
  }
}

TEST_F(MtcnnTest, MostProbableOrder) {
  DMUE_SHARED_OR_SKIP(image_path, "golden/mtcnn/images/facex_sample_non_mask.jpg");
  MtcnnOptions options;
  options.order = FaceOrder::kMostProbableFirst;
  auto mtcnn = LoadDetector(options);
  ASSERT_NE(mtcnn, nullptr);
  auto faces = mtcnn->Detect(ReadRgb(image_path));
  ASSERT_TRUE(faces.ok());
  ASSERT_EQ(faces->size(), 16u);
  for (size_t i = 1; i < faces->size(); ++i) {
    EXPECT_GE((*faces)[i - 1].prob, (*faces)[i].prob);
  }
}

}  // namespace
}  // namespace dmue::preprocessing
