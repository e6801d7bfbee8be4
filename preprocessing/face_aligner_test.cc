#include "preprocessing/face_aligner.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>

#include <opencv2/imgproc.hpp>

#include "dmue/io/image_decode.h"
#include "dmue/testing/golden.h"
#include "gtest/gtest.h"
#include "preprocessing/mtcnn.h"
#include "preprocessing/similarity_transform.h"
#include "third_party/shared_data.h"

namespace dmue::preprocessing {
namespace {

using Tensors = std::map<std::string, torch::Tensor>;

cv::Mat ReadRgb(const std::string& relative) {
  auto path = SharedPath(relative);
  if (!path.ok()) return cv::Mat();
  auto rgb = io::ReadImageRgb(*path);
  EXPECT_TRUE(rgb.ok()) << rgb.status();
  return rgb.ok() ? *rgb : cv::Mat();
}

Tensors Golden(const std::string& relative) {
  auto golden = testing::LoadGoldenTensors(*SharedPath(relative));
  EXPECT_TRUE(golden.ok()) << golden.status();
  return golden.ok() ? *golden : Tensors();
}

double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size()) return 1e9;
  return cv::norm(a, b, cv::NORM_L1) / static_cast<double>(a.total() * a.channels());
}

class FaceAlignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(2);
    auto dir = SharedPath("models/mtcnn");
    if (!dir.ok()) GTEST_SKIP() << dir.status().message();
    auto mtcnn = Mtcnn::Load(*dir);
    ASSERT_TRUE(mtcnn.ok()) << mtcnn.status();
    mtcnn_ = std::move(*mtcnn);
  }
  std::unique_ptr<Mtcnn> mtcnn_;
  MtcnnLandmarkSource landmarks_;
};

TEST_F(FaceAlignerTest, TemplateFileAgreesWithBuiltInSubset) {
  DMUE_SHARED_OR_SKIP(path, "models/align/template.txt");
  auto points = LoadTemplate(path);
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 98u);
  const int rows[5] = {96, 97, 54, 76, 82};
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*points)[rows[i]], Template5()[i]);
  EXPECT_FALSE(LoadTemplate("/nonexistent/template.txt").ok());
}

void CheckCropAlign(const Mtcnn& mtcnn, const LandmarkSource& lm, const std::string& stem,
                    bool compat) {
  SCOPED_TRACE(stem + (compat ? " compat" : " default"));
  const cv::Mat photo = ReadRgb("golden/mtcnn/images/" + stem + ".jpg");
  ASSERT_FALSE(photo.empty());
  Tensors g = Golden("golden/mtcnn/align/" + stem + "_align.pt");
  AlignOptions options;
  options.compat = compat;
  options.keep_intermediates = true;
  FaceAligner aligner(&mtcnn, &lm, options);
  auto result = aligner.CropAlign(photo);
  ASSERT_TRUE(result.ok()) << result.status();

  // Landmarks and matrix.
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(result->landmarks_src[k].x, g["landmarks_src"][k][0].item<double>(), 1e-3);
    EXPECT_NEAR(result->landmarks_src[k].y, g["landmarks_src"][k][1].item<double>(), 1e-3);
  }
  double matrix_err = 0;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      matrix_err = std::max(matrix_err,
                            std::abs(result->matrix(i, j) - g["matrix"][i][j].item<double>()));
    }
  }
  EXPECT_LE(matrix_err, 1e-4);

  // The 800x800 warp.
  const cv::Mat warped_golden = ReadRgb("golden/mtcnn/align/" + stem + "_warped_800.png");
  const double warp_diff = MeanAbsDiff(result->warped, warped_golden);
  const double warp_max = cv::norm(result->warped, warped_golden, cv::NORM_INF);
  EXPECT_LE(warp_diff, 1.0);
  if (compat) EXPECT_LE(warp_max, 1);

  // The second detection, the clamp and the crop rectangle.
  double box_err = 0;
  for (int j = 0; j < 4; ++j) {
    box_err = std::max(box_err,
                       std::abs(result->face.box[j] - g["second_box_raw"][j].item<double>()));
  }
  // The default mode rounds the warp instead of truncating (a fixed bug):
  // MTCNN's second pass then moves by up to ~2 px, so only compat mode is held
  // to the golden detections and crops.
  // In compat mode the residual (< 0.01 px) comes from the warp differing
  // from the golden one by one grey level at a few pixels, because our
  // landmarks differ from the reference's by ~3e-5 px (OpenBLAS here vs the
  // reference's netlib BLAS in the dense layers).
  if (compat) EXPECT_LE(box_err, 0.02);
  if (compat) {
    for (int j = 0; j < 4; ++j) {
      EXPECT_NEAR(result->box_clamped[j], g["second_box_clamped"][j].item<double>(), 0.02);
    }
    EXPECT_NEAR(result->face.prob, g["second_prob"].item<double>(), 1e-5);
    EXPECT_EQ(result->rect.row0, g["crop_rect_rows_cols"][0].item<int64_t>());
    EXPECT_EQ(result->rect.row1, g["crop_rect_rows_cols"][1].item<int64_t>());
    EXPECT_EQ(result->rect.col0, g["crop_rect_rows_cols"][2].item<int64_t>());
    EXPECT_EQ(result->rect.col1, g["crop_rect_rows_cols"][3].item<int64_t>());
    EXPECT_EQ(result->pads_h_w[0], g["pads_h_w"][0].item<int64_t>());
    EXPECT_EQ(result->pads_h_w[1], g["pads_h_w"][1].item<int64_t>());
  }
  const cv::Mat raw_golden = ReadRgb("golden/mtcnn/align/" + stem + "_aligned_crop_raw.png");
  const cv::Mat final_golden = ReadRgb("golden/mtcnn/align/" + stem + "_aligned_256.png");
  const double final_diff = MeanAbsDiff(result->crop, final_golden);
  EXPECT_EQ(result->crop.size(), cv::Size(256, 256));
  if (compat) EXPECT_LE(final_diff, 1.0);
  if (compat) EXPECT_LE(MeanAbsDiff(result->raw_crop, raw_golden), 1.0);
  std::cout << stem << (compat ? " compat" : " default") << ": matrix err " << matrix_err
            << ", warp mean |diff| " << warp_diff << " (max " << warp_max << "), box err "
            << box_err << ", final 256x256 mean |diff| " << final_diff << "\n";
}

// The similarity fit and the warp alone, from the reference's own landmarks:
// matrix to 1e-9 and the 800x800 warp bit for bit.
TEST_F(FaceAlignerTest, SimilarityAndWarpAreExactOnGoldenLandmarks) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/align");
  for (const std::string stem : {"test1", "face_sdk_test2"}) {
    SCOPED_TRACE(stem);
    Tensors g = Golden("golden/mtcnn/align/" + stem + "_align.pt");
    std::vector<cv::Point2d> src, dst;
    for (int k = 0; k < 5; ++k) {
      src.emplace_back(g["landmarks_src"][k][0].item<float>(), g["landmarks_src"][k][1].item<float>());
      dst.emplace_back(g["template5"][k][0].item<double>(), g["template5"][k][1].item<double>());
      EXPECT_EQ(dst.back(), Template5()[k]);
    }
    auto m = EstimateSimilarity(src, dst);
    ASSERT_TRUE(m.ok()) << m.status();
    cv::Matx33d golden_m;
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        golden_m(i, j) = g["matrix"][i][j].item<double>();
        EXPECT_NEAR((*m)(i, j), golden_m(i, j), 1e-9) << i << "," << j;
      }
    }
    const cv::Mat photo = ReadRgb("golden/mtcnn/images/" + stem + ".jpg");
    auto warped = WarpSimilarity(photo, golden_m, cv::Size(800, 800),
                                 WarpRounding::kTruncateLikeReference);
    ASSERT_TRUE(warped.ok());
    const cv::Mat golden_warp = ReadRgb("golden/mtcnn/align/" + stem + "_warped_800.png");
    cv::Mat diff;
    cv::absdiff(*warped, golden_warp, diff);
    EXPECT_EQ(cv::countNonZero(diff.reshape(1)), 0);
  }
}

TEST_F(FaceAlignerTest, CropAlignMatchesGolden) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/align");
  for (const char* stem : {"test1", "face_sdk_test2"}) {
    CheckCropAlign(*mtcnn_, landmarks_, stem, /*compat=*/true);
    CheckCropAlign(*mtcnn_, landmarks_, stem, /*compat=*/false);
  }
}

struct MsraCase {
  std::string input;
  std::string stem;
};

TEST_F(FaceAlignerTest, CropMsraMatchesGoldenInCompatMode) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/align");
  const MsraCase cases[] = {
      {"golden/mtcnn/images/test1.jpg", "test1"},
      {"golden/mtcnn/images/face_sdk_test1_cropped.jpg", "face_sdk_test1_cropped"},
      {"golden/mtcnn/align/inputs/face_sdk_test1_left300.png", "face_sdk_test1_left300"},
  };
  AlignOptions options;
  options.compat = true;
  FaceAligner aligner(mtcnn_.get(), nullptr, options);
  for (const MsraCase& c : cases) {
    SCOPED_TRACE(c.stem);
    const cv::Mat photo = ReadRgb(c.input);
    ASSERT_FALSE(photo.empty());
    Tensors g = Golden("golden/mtcnn/align/" + c.stem + "_msra.pt");
    auto result = aligner.CropMsra(photo);
    ASSERT_TRUE(result.ok()) << result.status();
    for (int j = 0; j < 4; ++j) {
      EXPECT_NEAR(result->face.box[j], g["box_raw"][j].item<double>(), 1e-3);
      EXPECT_NEAR(result->box_clamped[j], g["box_clamped"][j].item<double>(), 1e-3);
      EXPECT_EQ((&result->rect.row0)[j], g["crop_rect_rows_cols"][j].item<int64_t>());
    }
    EXPECT_EQ(result->pads_h_w[0], g["pads_h_w"][0].item<int64_t>());
    EXPECT_EQ(result->pads_h_w[1], g["pads_h_w"][1].item<int64_t>());
    const cv::Mat golden = ReadRgb("golden/mtcnn/align/" + c.stem + "_msra_crop.png");
    ASSERT_EQ(result->crop.size(), golden.size());
    EXPECT_EQ(cv::norm(result->crop, golden, cv::NORM_INF), 0);
  }
}

TEST_F(FaceAlignerTest, CropMsraDefaultFixesTheClampBugs) {
  DMUE_SHARED_OR_SKIP(path, "golden/mtcnn/align/inputs/face_sdk_test1_left300.png");
  const cv::Mat photo = ReadRgb("golden/mtcnn/align/inputs/face_sdk_test1_left300.png");
  FaceAligner aligner(mtcnn_.get(), nullptr, AlignOptions());
  auto result = aligner.CropMsra(photo);
  ASSERT_TRUE(result.ok()) << result.status();
  // x2 411.4 is clamped to the width (300), y2 397.6 < H = 418 is kept: the
  // mouth is no longer cut off.
  EXPECT_FLOAT_EQ(result->box_clamped[2], 300.0f);
  EXPECT_NEAR(result->box_clamped[3], 397.646f, 1e-3);
  EXPECT_EQ(result->rect.col1, 300);  // Not 299.
  EXPECT_GT(result->rect.row1, 314);
  EXPECT_EQ(result->crop.cols, result->rect.width());
}

TEST_F(FaceAlignerTest, ClampHelpers) {
  // Compat: x2 in (W-1, W] stays, x2 > W becomes W-1.
  auto b = ClampBox({-3.f, -1.f, 100.5f, 50.f}, 100, 40, true, false);
  EXPECT_EQ(b[0], 0.f);
  EXPECT_EQ(b[1], 0.f);
  EXPECT_EQ(b[2], 99.f);
  EXPECT_EQ(b[3], 39.f);
  b = ClampBox({0.f, 0.f, 99.5f, 39.5f}, 100, 40, true, false);
  EXPECT_EQ(b[2], 99.5f);
  b = ClampBox({-3.f, -1.f, 100.5f, 50.f}, 100, 40, false, false);
  EXPECT_EQ(b[2], 100.f);
  EXPECT_EQ(b[3], 40.f);
  std::array<int, 2> pads;
  CropRect r = EnlargedCropRect({23.99f, 10.6f, 238.4f, 249.26f}, 256, 256, 256, 224, true, &pads);
  EXPECT_EQ(pads[0], 17);
  EXPECT_EQ(pads[1], 15);
  EXPECT_EQ(r.row0, 0);
  EXPECT_EQ(r.row1, 255);
  EXPECT_EQ(r.col0, 8);
  EXPECT_EQ(r.col1, 253);
  r = EnlargedCropRect({23.99f, 10.6f, 238.4f, 249.26f}, 256, 256, 256, 224, false, &pads);
  EXPECT_EQ(r.row1, 256);
}

// A landmark source that returns fixed points (the interface a 98-point model
// plugs into), fitted to a 3-point template.
class FakeLandmarks : public LandmarkSource {
 public:
  absl::StatusOr<std::vector<cv::Point2d>> Landmarks(const cv::Mat&,
                                                     const FaceDetection& face) const override {
    ++calls;
    // Eye centres and the mouth centre from MTCNN's points.
    const auto& l = face.landmarks;
    return std::vector<cv::Point2d>{{l[0][0], l[0][1]},
                                    {l[1][0], l[1][1]},
                                    {(l[3][0] + l[4][0]) / 2, (l[3][1] + l[4][1]) / 2}};
  }
  const std::vector<cv::Point2d>& Template() const override { return template_; }
  std::string Name() const override { return "fake3"; }
  mutable int calls = 0;

 private:
  std::vector<cv::Point2d> template_ = {{314, 364}, {484, 364}, {395, 524}};
};

TEST_F(FaceAlignerTest, PluggableLandmarkSource) {
  const cv::Mat photo = ReadRgb("golden/mtcnn/images/face_sdk_test2.jpg");
  if (photo.empty()) GTEST_SKIP();
  FakeLandmarks fake;
  FaceAligner aligner(mtcnn_.get(), &fake, AlignOptions());
  auto result = aligner.CropAlign(photo);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(fake.calls, 1);
  EXPECT_EQ(result->landmarks_src.size(), 3u);
  EXPECT_EQ(result->crop.size(), cv::Size(256, 256));
  // The eyes land on the template's eye points.
  const cv::Point2d eye = ApplyTransform(result->matrix, result->landmarks_src[0]);
  EXPECT_NEAR(eye.x, 314, 8);
  EXPECT_NEAR(eye.y, 364, 8);
}

TEST_F(FaceAlignerTest, NoFaceIsNotFound) {
  const cv::Mat photo = ReadRgb("golden/mtcnn/images/facex_logo_noface.png");
  if (photo.empty()) GTEST_SKIP();
  FaceAligner aligner(mtcnn_.get(), &landmarks_, AlignOptions());
  EXPECT_EQ(aligner.CropAlign(photo).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(aligner.CropMsra(photo).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(aligner.CropMsra(cv::Mat()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FaceAlignerTest, MostConfidentSelection) {
  const cv::Mat photo = ReadRgb("golden/mtcnn/images/facex_sample_non_mask.jpg");
  if (photo.empty()) GTEST_SKIP();
  AlignOptions options;
  options.selection = FaceSelection::kMostConfident;
  FaceAligner aligner(mtcnn_.get(), nullptr, options);
  auto result = aligner.CropMsra(photo);
  ASSERT_TRUE(result.ok()) << result.status();
  auto faces = mtcnn_->Detect(photo);
  ASSERT_TRUE(faces.ok());
  for (const auto& f : *faces) EXPECT_LE(f.prob, result->face.prob);
  EXPECT_EQ(result->num_faces, 16);
}

// The second detection in a region around the expected face
// (AlignOptions::second_detection_region, the default) gives the same
// detection and crop as the whole-canvas detection: for the face CropAlign
// picks on every golden and test photo, in both modes, and for every face of
// two multi-face photos (CropAlignFace).
const char* const kAllPhotos[] = {
    "golden/mtcnn/images/test1.jpg",
    "golden/mtcnn/images/face_sdk_test1.jpg",
    "golden/mtcnn/images/face_sdk_test2.jpg",
    "golden/mtcnn/images/face_sdk_test3_mask.jpg",
    "golden/mtcnn/images/face_sdk_test1_cropped.jpg",
    "golden/mtcnn/images/fma3d_mask-sample.jpg",
    "golden/mtcnn/images/facex_sample_non_mask.jpg",
    "golden/mtcnn/images/facex_arch.jpg",
    "golden/mtcnn/align/inputs/face_sdk_test1_left300.png",
    "data/photos/face_sdk_test4_mask.jpg",
    "data/photos/onnx_11-FaceId-0_align.jpg",
    "data/photos/onnx_12-FaceId-0_align.jpg",
};

void ExpectSameAlignment(const AlignResult& a, const AlignResult& b) {
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(a.face.box[j], b.face.box[j], 1e-4) << j;
  EXPECT_NEAR(a.face.prob, b.face.prob, 1e-6);
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(a.face.landmarks[k][0], b.face.landmarks[k][0], 1e-4);
    EXPECT_NEAR(a.face.landmarks[k][1], b.face.landmarks[k][1], 1e-4);
  }
  EXPECT_EQ(a.rect.row0, b.rect.row0);
  EXPECT_EQ(a.rect.row1, b.rect.row1);
  EXPECT_EQ(a.rect.col0, b.rect.col0);
  EXPECT_EQ(a.rect.col1, b.rect.col1);
  ASSERT_EQ(a.crop.size(), b.crop.size());
  EXPECT_EQ(cv::norm(a.crop, b.crop, cv::NORM_INF), 0);
}

TEST_F(FaceAlignerTest, SecondDetectionRegionKeepsEveryCrop) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/images");
  int faces_checked = 0;
  for (const char* photo_path : kAllPhotos) {
    SCOPED_TRACE(photo_path);
    if (!SharedPath(photo_path).ok()) continue;
    const cv::Mat photo = ReadRgb(photo_path);
    ASSERT_FALSE(photo.empty());
    auto faces = mtcnn_->Detect(photo);
    ASSERT_TRUE(faces.ok()) << faces.status();
    ASSERT_FALSE(faces->empty());
    for (bool compat : {false, true}) {
      SCOPED_TRACE(compat ? "compat" : "default");
      AlignOptions options;
      options.compat = compat;
      FaceAligner region(mtcnn_.get(), &landmarks_, options);
      ASSERT_TRUE(options.second_detection_region);  // The default.
      options.second_detection_region = false;
      FaceAligner whole(mtcnn_.get(), &landmarks_, options);
      auto a = region.CropAlign(photo);
      auto b = whole.CropAlign(photo);
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(b.ok()) << b.status();
      EXPECT_EQ(a->num_faces, b->num_faces);
      ExpectSameAlignment(*a, *b);
      // Every face of two multi-face photos (all faces of all photos, in both
      // modes, were checked the same way when the region was introduced;
      // README.md).
      const std::string path = photo_path;
      if (compat || (path.find("face_sdk_test1.jpg") == std::string::npos &&
                     path.find("fma3d_mask-sample.jpg") == std::string::npos)) {
        continue;
      }
      for (size_t i = 0; i < faces->size(); ++i) {
        SCOPED_TRACE("face " + std::to_string(i));
        auto fa = region.CropAlignFace(photo, (*faces)[i]);
        auto fb = whole.CropAlignFace(photo, (*faces)[i]);
        ASSERT_TRUE(fa.ok()) << fa.status();
        ASSERT_TRUE(fb.ok()) << fb.status();
        ExpectSameAlignment(*fa, *fb);
        ++faces_checked;
      }
    }
  }
  EXPECT_EQ(faces_checked, 12);
}

// CropAlign = Detect + SelectFace + CropAlignFace.
TEST_F(FaceAlignerTest, CropAlignIsCropAlignFaceOfTheSelectedFace) {
  const cv::Mat photo = ReadRgb("golden/mtcnn/images/face_sdk_test2.jpg");
  if (photo.empty()) GTEST_SKIP();
  AlignOptions options;
  options.keep_intermediates = true;
  FaceAligner aligner(mtcnn_.get(), &landmarks_, options);
  auto all = aligner.CropAlign(photo);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->num_faces, 2);
  auto faces = mtcnn_->Detect(photo);
  ASSERT_TRUE(faces.ok());
  // face_sdk_test2's largest face is the detector's first.
  auto one = aligner.CropAlignFace(photo, (*faces)[0]);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->num_faces, 0);
  EXPECT_EQ(one->first_face.box, all->first_face.box);
  EXPECT_EQ(one->matrix, all->matrix);
  EXPECT_EQ(cv::norm(one->warped, all->warped, cv::NORM_INF), 0);
  ExpectSameAlignment(*one, *all);
  // The other face gives another crop.
  auto other = aligner.CropAlignFace(photo, (*faces)[1]);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_GT(MeanAbsDiff(other->crop, all->crop), 5.0);

  options.region_margin = -1;
  FaceAligner bad(mtcnn_.get(), &landmarks_, options);
  EXPECT_EQ(bad.CropAlignFace(photo, (*faces)[0]).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FaceAligner(mtcnn_.get(), nullptr, AlignOptions())
                .CropAlignFace(photo, (*faces)[0])
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FaceAlignerTest, ExpectedFaceRegionMapsTheBoxCorners) {
  // A 90-degree rotation by 2x about the origin, then a shift of (100, 50):
  // (x, y) -> (100 - 2y, 50 + 2x).
  const cv::Matx33d m(0, -2, 100, 2, 0, 50, 0, 0, 1);
  const cv::Rect2d r = ExpectedFaceRegion({10, 20, 30, 60}, m, 0.25);
  // Corners map to x in [100 - 120, 100 - 40] = [-20, 60], y in [70, 110].
  EXPECT_DOUBLE_EQ(r.x, -20 - 20);
  EXPECT_DOUBLE_EQ(r.width, 80 + 40);
  EXPECT_DOUBLE_EQ(r.y, 70 - 10);
  EXPECT_DOUBLE_EQ(r.height, 40 + 20);
}

TEST_F(FaceAlignerTest, PredictedCanvasBoxMapsTheCentreAndScalesTheSides) {
  // (x, y) -> (100 - 2y, 50 + 2x): centre (20, 40) -> (20, 90), sides x2.
  const cv::Matx33d m(0, -2, 100, 2, 0, 50, 0, 0, 1);
  const std::array<float, 4> box = PredictedCanvasBox({10, 20, 30, 60}, m);
  EXPECT_FLOAT_EQ(box[0], 20 - 20);
  EXPECT_FLOAT_EQ(box[2], 20 + 20);
  EXPECT_FLOAT_EQ(box[1], 90 - 40);
  EXPECT_FLOAT_EQ(box[3], 90 + 40);
}

double Iou(const std::array<float, 4>& a, const std::array<float, 4>& b) {
  const double w = std::max(0.0f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double h = std::max(0.0f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return w * h / (area_a + area_b - w * h);
}

// The fast flow against the exact one on every face of every golden photo:
// its predicted box against the second detection's, and the crops.
TEST_F(FaceAlignerTest, FastFlowCropsNearTheExactFlow) {
  DMUE_SHARED_OR_SKIP(dir, "golden/mtcnn/images");
  AlignOptions options;
  FaceAligner exact(mtcnn_.get(), &landmarks_, options);
  options.flow = CropFlow::kFast;
  FaceAligner fast(mtcnn_.get(), &landmarks_, options);
  std::vector<double> ious, diffs;
  for (const char* photo_path : kAllPhotos) {
    if (!SharedPath(photo_path).ok()) continue;
    const cv::Mat photo = ReadRgb(photo_path);
    auto faces = mtcnn_->Detect(photo);
    ASSERT_TRUE(faces.ok()) << faces.status();
    for (size_t i = 0; i < faces->size(); ++i) {
      SCOPED_TRACE(std::string(photo_path) + " face " + std::to_string(i));
      auto e = exact.CropAlignFace(photo, (*faces)[i]);
      if (!e.ok()) continue;  // the exact flow's second detection missed it
      auto f = fast.CropAlignFace(photo, (*faces)[i]);
      ASSERT_TRUE(f.ok()) << f.status();
      ASSERT_EQ(f->crop.size(), cv::Size(256, 256));
      ASSERT_EQ(f->crop.type(), CV_8UC3);
      EXPECT_EQ(f->matrix, e->matrix);
      ious.push_back(Iou(f->face.box, e->face.box));
      diffs.push_back(MeanAbsDiff(f->crop, e->crop));
      std::cout << photo_path << " face " << i << ": IoU " << ious.back() << ", crop mean |diff| "
                << diffs.back() << "\n";
    }
  }
  ASSERT_GE(ious.size(), 10u);
  std::sort(ious.begin(), ious.end());
  std::sort(diffs.begin(), diffs.end());
  std::cout << ious.size() << " faces: IoU min " << ious.front() << " median " << ious[ious.size() / 2]
            << "; crop mean |diff| median " << diffs[diffs.size() / 2] << " max " << diffs.back() << "\n";
  // Measured on 49 faces (2026-12-02): median IoU 0.91, 47 of them >= 0.82;
  // the two below are faces cut by the photo's edge, where the exact flow's
  // canvas holds black borders.
  EXPECT_GE(ious[ious.size() / 2], 0.88);
  const auto close = std::count_if(ious.begin(), ious.end(), [](double iou) { return iou >= 0.8; });
  EXPECT_GE(close, static_cast<int64_t>(0.9 * ious.size()));
}

// A photo much finer than the crop is area-downscaled before the warp: the
// same face at 4x the resolution, with pixel noise finer than the crop can
// show, gives nearly the same fast crop (area averaging removes the noise; a
// plain bilinear warp would sample it).
TEST_F(FaceAlignerTest, FastFlowIsNearlyResolutionIndependent) {
  const cv::Mat photo = ReadRgb("golden/mtcnn/images/test1.jpg");
  if (photo.empty()) GTEST_SKIP();
  auto faces = mtcnn_->Detect(photo);
  ASSERT_TRUE(faces.ok() && !faces->empty());
  AlignOptions options;
  options.flow = CropFlow::kFast;
  FaceAligner fast(mtcnn_.get(), &landmarks_, options);
  auto crop = fast.CropAlignFace(photo, (*faces)[0]);
  ASSERT_TRUE(crop.ok()) << crop.status();

  cv::Mat fine;
  cv::resize(photo, fine, cv::Size(), 4, 4, cv::INTER_NEAREST);
  cv::Mat noise(fine.size(), CV_16SC3);
  cv::randu(noise, cv::Scalar::all(-60), cv::Scalar::all(61));
  cv::Mat noisy;
  fine.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(fine, CV_8UC3);  // saturates
  FaceDetection scaled = (*faces)[0];
  for (float& v : scaled.box) v *= 4;
  for (auto& p : scaled.landmarks) p = {p[0] * 4 + 1.5f, p[1] * 4 + 1.5f};  // pixel centres
  auto fine_crop = fast.CropAlignFace(fine, scaled);
  ASSERT_TRUE(fine_crop.ok()) << fine_crop.status();
  // Measured: 4.5 grey levels; 18.2 without the area downscale.
  EXPECT_LT(MeanAbsDiff(crop->crop, fine_crop->crop), 8.0);
}

}  // namespace
}  // namespace dmue::preprocessing
