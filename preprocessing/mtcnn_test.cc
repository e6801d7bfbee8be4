#include "preprocessing/mtcnn.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>
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

// The reference's stage_counts names (images.json; stages_test1.pt "counts"
// holds them in this order) and our fields.
struct NamedCount {
  const char* name;
  int64_t MtcnnStageCounts::*field;
};
const NamedCount kCounts[] = {
    {"num_scales", &MtcnnStageCounts::num_scales},
    {"pnet_candidates_over_threshold", &MtcnnStageCounts::pnet_candidates_over_threshold},
    {"after_per_scale_nms_0.5", &MtcnnStageCounts::after_per_scale_nms},
    {"after_pnet_nms_0.7", &MtcnnStageCounts::after_pnet_nms},
    {"rnet_inputs", &MtcnnStageCounts::rnet_inputs},
    {"rnet_over_threshold", &MtcnnStageCounts::rnet_over_threshold},
    {"after_rnet_nms_0.7", &MtcnnStageCounts::after_rnet_nms},
    {"onet_inputs", &MtcnnStageCounts::onet_inputs},
    {"onet_over_threshold", &MtcnnStageCounts::onet_over_threshold},
    {"after_onet_min_nms_0.7", &MtcnnStageCounts::after_onet_nms},
};

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
  for (const NamedCount& count : kCounts) {
    const std::string key = std::string("\"") + count.name + "\": ";
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
  ASSERT_EQ(g["counts"].size(0), 10);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(trace.counts.*kCounts[k].field, g["counts"][k].item<int64_t>()) << kCounts[k].name;
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
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(trace.counts.*kCounts[k].field, counts[k]) << kCounts[k].name;
  }
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
  // A region is given in input pixels and scaled with the image.
  auto in_region = small_det->DetectInRegion(big, cv::Rect2d(0, 0, big.cols, big.rows));
  ASSERT_TRUE(in_region.ok()) << in_region.status();
  ASSERT_EQ(in_region->size(), faces->size());
  for (size_t i = 0; i < faces->size(); ++i) EXPECT_EQ((*in_region)[i].box, (*faces)[i].box);
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

// P-Net is fully convolutional: on a window of a pyramid level as
// PnetLevelWindow chooses it, every output cell equals the whole level's cell
// shifted by (row0 / 2, col0 / 2) bit for bit, the resampled window equals
// that part of the whole level, and every cell whose input footprint touches
// the region is inside the window.
TEST_F(MtcnnTest, PnetOnALevelWindowEqualsTheWholeLevel) {
  DMUE_SHARED_OR_SKIP(image_path, "golden/mtcnn/align/test1_warped_800.png");
  cv::Mat rgb = ReadRgb(image_path);
  ASSERT_FALSE(rgb.empty());
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  const MtcnnImpl& nets = mtcnn->impl();
  torch::InferenceMode guard;
  const int H = rgb.rows, W = rgb.cols;
  const cv::Rect2d regions[] = {{250, 260, 300, 330},  {0, 0, 100, 70},   {701.5, 333.3, 99, 467},
                                {390.2, 17.9, 3, 5.5}, {-50, 700, 120, 200}, {0, 0, 800, 800},
                                {900, 10, 50, 50},   {123.4, 77.7, 431, 389},
                                {1, 3, 797, 795},    {333, 0, 467, 800}};
  const std::vector<double> scales = PyramidScales(H, W, 20, 0.709);
  int cropped = 0;
  for (size_t k = 0; k < scales.size(); ++k) {
    SCOPED_TRACE("level " + std::to_string(k));
    const int hs = static_cast<int>(H * scales[k] + 1);
    const int ws = static_cast<int>(W * scales[k] + 1);
    torch::Tensor level = torch::empty({1, hs, ws, 3});
    AreaResampleNormalized(rgb, 0, H, 0, W, hs, ws, level.data_ptr<float>());
    auto [reg, prob] = nets.Pnet(level.permute({0, 3, 1, 2}));  // Channels last, as Detect.
    const int64_t oh = prob.size(2), ow = prob.size(3);
    for (const cv::Rect2d& region : regions) {
      SCOPED_TRACE(::testing::Message() << "region " << region);
      const LevelWindow w = PnetLevelWindow(H, W, hs, ws, region);
      ASSERT_GE(w.row0, 0);
      ASSERT_GE(w.col0, 0);
      ASSERT_LE(w.row1, hs);
      ASSERT_LE(w.col1, ws);
      EXPECT_EQ(w.row0 % 2, 0);
      EXPECT_EQ(w.col0 % 2, 0);
      EXPECT_TRUE(w.row1 == hs || (w.row1 - w.row0) % 2 == 0);
      EXPECT_TRUE(w.col1 == ws || (w.col1 - w.col0) % 2 == 0);
      // Whole-level cells whose 12x12 window's input footprint intersects
      // the region (level pixel j averages input [floor(j*In/Out),
      // ceil((j+1)*In/Out))) must be cells of the window.
      auto touches = [](int64_t cell, int in, int out, double a0, double a1) {
        const double lo = std::floor(2.0 * cell * in / out);
        const double hi = std::ceil((2.0 * cell + 12) * in / out);
        return lo < a1 && hi > a0;
      };
      const int64_t wr = w.empty() ? 0 : (w.row1 - w.row0 - 10 + 1) / 2;
      const int64_t wc = w.empty() ? 0 : (w.col1 - w.col0 - 10 + 1) / 2;
      for (int64_t r = 0; r < oh; ++r) {
        if (!touches(r, H, hs, region.y, region.y + region.height)) continue;
        for (int64_t c = 0; c < ow; ++c) {
          if (!touches(c, W, ws, region.x, region.x + region.width)) continue;
          ASSERT_FALSE(w.empty()) << "cell " << r << "," << c;
          EXPECT_TRUE(r >= w.row0 / 2 && r < w.row0 / 2 + wr && c >= w.col0 / 2 &&
                      c < w.col0 / 2 + wc)
              << "cell " << r << "," << c << " outside the window";
        }
      }
      if (w.empty()) continue;
      const int rows = w.row1 - w.row0, cols = w.col1 - w.col0;
      // Detect runs the whole level where the window would not be exact.
      if (!nets.PnetWindowIsExact(rows, cols, hs, ws)) continue;
      if (rows < hs || cols < ws) ++cropped;
      torch::Tensor win = torch::empty({1, rows, cols, 3});
      AreaResampleWindowNormalized(rgb, 0, H, 0, W, hs, ws, w.row0, w.row1, w.col0, w.col1,
                                   win.data_ptr<float>());
      ASSERT_TRUE(torch::equal(win, level.narrow(1, w.row0, rows).narrow(2, w.col0, cols)));
      auto [wreg, wprob] = nets.PnetOnWindow(win.permute({0, 3, 1, 2}), w, hs, ws);
      const int64_t woh = wprob.size(2), wow = wprob.size(3);
      ASSERT_LE(w.row0 / 2 + woh, oh);
      ASSERT_LE(w.col0 / 2 + wow, ow);
      EXPECT_TRUE(torch::equal(wprob, prob.narrow(2, w.row0 / 2, woh).narrow(3, w.col0 / 2, wow)));
      EXPECT_TRUE(torch::equal(wreg, reg.narrow(2, w.row0 / 2, woh).narrow(3, w.col0 / 2, wow)));
    }
  }
  EXPECT_GT(cropped, 12);
}

bool SameFace(const FaceDetection& a, const FaceDetection& b, double tol) {
  for (int j = 0; j < 4; ++j) {
    if (std::abs(a.box[j] - b.box[j]) > tol) return false;
  }
  for (int k = 0; k < 5; ++k) {
    for (int j = 0; j < 2; ++j) {
      if (std::abs(a.landmarks[k][j] - b.landmarks[k][j]) > tol) return false;
    }
  }
  return std::abs(a.prob - b.prob) <= 1e-6;
}

// Each face of multi-face photos, searched for in a region around its box,
// comes out as Detect() finds it; the whole image as the region is Detect().
TEST_F(MtcnnTest, DetectInRegionFindsTheFacesInsideAsDetectDoes) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/images");
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  for (const char* name : {"face_sdk_test1.jpg", "face_sdk_test1_cropped.jpg",
                           "fma3d_mask-sample.jpg", "facex_sample_non_mask.jpg"}) {
    SCOPED_TRACE(name);
    cv::Mat rgb = ReadRgb(*SharedPath(std::string("golden/mtcnn/images/") + name));
    MtcnnTrace full_trace;
    auto faces = mtcnn->Detect(rgb, &full_trace);
    ASSERT_TRUE(faces.ok()) << faces.status();
    ASSERT_FALSE(faces->empty());

    MtcnnTrace trace;
    auto all = mtcnn->DetectInRegion(rgb, cv::Rect2d(0, 0, rgb.cols, rgb.rows), &trace);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(all->size(), faces->size());
    for (size_t i = 0; i < faces->size(); ++i) EXPECT_TRUE(SameFace((*all)[i], (*faces)[i], 0));
    EXPECT_EQ(trace.counts, full_trace.counts);
    for (size_t k = 0; k < trace.pnet_windows.size(); ++k) {
      const std::array<int64_t, 4> whole = {0, trace.pyramid_hw[k][0], 0, trace.pyramid_hw[k][1]};
      EXPECT_EQ(trace.pnet_windows[k], whole);
    }

    int cropped_levels = 0;
    for (size_t i = 0; i < faces->size(); ++i) {
      const FaceDetection& f = (*faces)[i];
      const double w = f.box[2] - f.box[0], h = f.box[3] - f.box[1];
      const cv::Rect2d region(f.box[0] - w / 2, f.box[1] - h / 2, 2 * w, 2 * h);
      auto got = mtcnn->DetectInRegion(rgb, region, &trace);
      ASSERT_TRUE(got.ok()) << got.status();
      bool found = false;
      for (const FaceDetection& g : *got) found = found || SameFace(g, f, 1e-4);
      EXPECT_TRUE(found) << "face " << i;
      EXPECT_LE(got->size(), faces->size());
      for (size_t k = 0; k < trace.pnet_windows.size(); ++k) {
        const auto& win = trace.pnet_windows[k];
        if (win[1] - win[0] < trace.pyramid_hw[k][0] || win[3] - win[2] < trace.pyramid_hw[k][1]) {
          ++cropped_levels;
        }
      }
    }
    // P-Net saw only parts of some levels (small regions fall back to whole
    // levels where a window would not be computed exactly).
    if (rgb.cols > 200) EXPECT_GT(cropped_levels, 0);
  }
}

TEST_F(MtcnnTest, DetectInRegionDoesNotSearchElsewhere) {
  DMUE_SHARED_OR_SKIP(image_path, "golden/mtcnn/images/face_sdk_test1.jpg");
  auto mtcnn = LoadDetector();
  ASSERT_NE(mtcnn, nullptr);
  // The two portraits of face_sdk_test1 pulled 600 px apart (P-Net's largest
  // windows here are ~420 px): searching the left face's box finds only it.
  const cv::Mat photo = ReadRgb(image_path);
  cv::Mat rgb;
  cv::hconcat(std::vector<cv::Mat>{photo.colRange(0, 409),
                                   cv::Mat(photo.rows, 600, CV_8UC3, cv::Scalar(0, 0, 0)),
                                   photo.colRange(409, photo.cols)},
              rgb);
  auto faces = mtcnn->Detect(rgb);
  ASSERT_TRUE(faces.ok());
  ASSERT_EQ(faces->size(), 2u);
  const FaceDetection& left = (*faces)[0].box[0] < (*faces)[1].box[0] ? (*faces)[0] : (*faces)[1];
  auto got = mtcnn->DetectInRegion(
      rgb, cv::Rect2d(left.box[0], left.box[1], left.box[2] - left.box[0], left.box[3] - left.box[1]));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_TRUE(SameFace((*got)[0], left, 1e-4));

  // Outside the image: nothing searched, no error.
  MtcnnTrace trace;
  auto none = mtcnn->DetectInRegion(rgb, cv::Rect2d(-500, -500, 100, 100), &trace);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(trace.counts.pnet_candidates_over_threshold, 0);
  for (const auto& w : trace.pnet_windows) EXPECT_LT(w[1] - w[0], 12);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(mtcnn->DetectInRegion(rgb, cv::Rect2d(nan, 0, 10, 10)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mtcnn->DetectInRegion(rgb, cv::Rect2d(0, 0, -10, 10)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dmue::preprocessing
