// Each stage of mtcnn_stages.h on its own, on hand-made inputs whose results
// follow from the reference's formulas (golden-photo checks of the whole
// pipeline are in mtcnn_test.cc).
#include "preprocessing/mtcnn_stages.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "preprocessing/mtcnn_internal.h"
#include "third_party/shared_data.h"

namespace dmue::preprocessing {
namespace {

void ExpectBox(const Box& b, float x1, float y1, float x2, float y2, float score) {
  EXPECT_EQ(b.x1, x1);
  EXPECT_EQ(b.y1, y1);
  EXPECT_EQ(b.x2, x2);
  EXPECT_EQ(b.y2, y2);
  EXPECT_EQ(b.score, score);
}

// ---- Pyramid ---------------------------------------------------------------

TEST(PyramidLevelsTest, ScalesAndSizesAsTheReference) {
  const std::vector<PyramidLevel> levels = PyramidLevels(256, 200, 20, 0.709);
  const std::vector<double> scales = PyramidScales(256, 200, 20, 0.709);
  ASSERT_EQ(levels.size(), scales.size());
  ASSERT_EQ(levels.size(), 7u);  // 200 * 0.6 * 0.709^k >= 12 for k <= 6.
  double s = 0.6;
  for (size_t k = 0; k < levels.size(); ++k) {
    EXPECT_EQ(levels[k].scale, s) << k;
    EXPECT_EQ(levels[k].rows, static_cast<int>(256 * s + 1)) << k;
    EXPECT_EQ(levels[k].cols, static_cast<int>(200 * s + 1)) << k;
    s *= 0.709;
  }
  EXPECT_EQ(levels[0].rows, 154);
  EXPECT_EQ(levels[0].cols, 121);
}

TEST(PyramidLevelsTest, ShorterSideBelowMinFaceSizeHasNoLevel) {
  EXPECT_TRUE(PyramidLevels(19, 400, 20, 0.709).empty());
  EXPECT_EQ(PyramidLevels(20, 400, 20, 0.709).size(), 1u);
  EXPECT_EQ(PyramidLevels(400, 40, 40, 0.5).size(), 1u);
}

// ---- P-Net proposals -------------------------------------------------------

// A 3 x 4 heat map and its offsets: reg channel q at (r, c) = q + 0.1 * (4r + c).
struct HeatMap {
  at::Tensor prob = at::zeros({3, 4});
  at::Tensor reg = at::empty({4, 3, 4});
  HeatMap() {
    for (int q = 0; q < 4; ++q) {
      for (int r = 0; r < 3; ++r) {
        for (int c = 0; c < 4; ++c) reg[q][r][c] = q + 0.1f * (4 * r + c);
      }
    }
  }
};

PnetPlacement WholeLevel(int rows, int cols) {
  PnetPlacement p;
  p.searched = p.run = LevelWindow{0, rows, 0, cols};
  p.level_rows = rows;
  p.level_cols = cols;
  return p;
}

TEST(PnetProposalsTest, CellsAtOrOverThresholdInRowMajorOrder) {
  HeatMap map;
  map.prob[2][1] = 0.9f;
  map.prob[0][3] = 0.6f;  // >= passes.
  map.prob[1][0] = std::nextafter(0.6f, 0.0f);
  map.prob[1][2] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Proposal> got = PnetProposals(map.prob, map.reg, 0.5, 0.6f, WholeLevel(16, 18));
  ASSERT_EQ(got.size(), 2u);
  // Cell (row 0, col 3): x = floor((2*3 + 1) / 0.5) = 14, x2 = floor(18 / 0.5).
  ExpectBox(got[0].box, 14, 2, 36, 24, 0.6f);
  ExpectBox(got[1].box, 6, 10, 28, 32, 0.9f);
  for (int q = 0; q < 4; ++q) {
    EXPECT_EQ(got[0].reg[q], q + 0.1f * 3) << q;
    EXPECT_EQ(got[1].reg[q], q + 0.1f * 9) << q;
  }
}

TEST(PnetProposalsTest, WindowCellsAreShiftedAndKeptToTheSearchedPart) {
  HeatMap map;
  map.prob.fill_(0.95f);
  // P-Net ran on level rows [4, ...) x cols [2, ...) of a 40 x 40 level: map
  // cell (r, c) is level cell (r + 2, c + 1). Searched: rows [4, 18) (cells
  // whose 12-pixel window fits: level rows 2 and 3, not 4) and cols [2, 40)
  // (to the level's end: every cell).
  PnetPlacement p = WholeLevel(40, 40);
  p.run = LevelWindow{4, 40, 2, 40};
  p.searched = LevelWindow{4, 18, 2, 40};
  const std::vector<Proposal> got = PnetProposals(map.prob, map.reg, 1.0, 0.6f, p);
  ASSERT_EQ(got.size(), 8u);                   // Map rows 0 and 1, all 4 columns.
  ExpectBox(got[0].box, 3, 5, 14, 16, 0.95f);  // Level cell (2, 1).
  ExpectBox(got[7].box, 9, 7, 20, 18, 0.95f);  // Level cell (3, 4).
  EXPECT_EQ(got[7].reg[0], 0.1f * 7);
}

TEST(RegressProposalsTest, InlineRegressionWithWidthX2MinusX1ThenSquare) {
  Proposal q;
  q.box = {0, 0, 10, 20, 0.7f};
  q.reg = {0.1f, 0.0f, 0.0f, -0.1f};
  const std::vector<Box> got = RegressProposals({q});
  ASSERT_EQ(got.size(), 1u);
  // Regressed: (1, 0, 10, 18); squared to side 18 around (5.5, 9).
  ExpectBox(got[0], -3.5f, 0, 14.5f, 18, 0.7f);
}

// ---- NMS -------------------------------------------------------------------

TEST(NmsTorchvisionTest, SuppressesOverlapAboveThresholdHighestScoreFirst) {
  const std::vector<Box> boxes = {
      {0, 0, 10, 10, 0.9f},     // 0
      {1, 1, 11, 11, 0.8f},     // 1: IoU with 0 = 81 / 119 = 0.68.
      {50, 50, 60, 60, 0.95f},  // 2: alone.
      {0, 0, 10, 5, 0.7f},      // 3: IoU with 0 = 0.5 exactly: kept (not > 0.5).
  };
  EXPECT_EQ(NmsTorchvision(boxes, 0.5), (std::vector<int>{2, 0, 3}));
  EXPECT_EQ(NmsTorchvision(boxes, 0.7), (std::vector<int>{2, 0, 1, 3}));
  EXPECT_TRUE(NmsTorchvision({}, 0.5).empty());
}

TEST(NmsTorchvisionTest, EqualScoresKeepInputOrder) {
  const std::vector<Box> boxes = {{0, 0, 1, 1, 0.5f}, {5, 5, 6, 6, 0.5f}, {9, 9, 10, 10, 0.5f}};
  EXPECT_EQ(NmsTorchvision(boxes, 0.5), (std::vector<int>{0, 1, 2}));
}

TEST(NmsNumpyMinTest, OverlapOverTheSmallerBoxWithPlusOneAreas) {
  const std::vector<Box> boxes = {
      {0, 0, 9, 9, 0.9f},      // 0: area 100 (+1 widths).
      {2, 2, 5, 5, 0.95f},     // 1: inside 0: overlap 16 / 16 = 1.
      {30, 30, 39, 39, 0.8f},  // 2: alone.
  };
  // 1 wins (highest), 0 goes although its IoU with 1 is only 0.16.
  EXPECT_EQ(NmsNumpyMin(boxes, 0.7f), (std::vector<int>{1, 2}));
  EXPECT_EQ(NmsTorchvision(boxes, 0.7), (std::vector<int>{1, 0, 2}));
  // Overlap exactly at the threshold is kept: [0, 9] and [5, 14] share 5 of 10 columns.
  EXPECT_EQ(NmsNumpyMin({{0, 0, 9, 9, 0.9f}, {5, 0, 14, 9, 0.8f}}, 0.5f), (std::vector<int>{0, 1}));
}

TEST(NpArgsortTest, AscendingPermutationNanLastSmallArraysStable) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(NpArgsort({3, 1, nan, 1, 2}), (std::vector<int64_t>{1, 3, 4, 0, 2}));
  // 40 keys with many ties (introsort path): a permutation, keys ascending.
  std::vector<float> keys;
  for (int i = 0; i < 40; ++i) keys.push_back(static_cast<float>((i * 7) % 5));
  const std::vector<int64_t> idx = NpArgsort(keys);
  ASSERT_EQ(idx.size(), keys.size());
  std::vector<bool> seen(keys.size(), false);
  for (size_t i = 0; i < idx.size(); ++i) {
    ASSERT_FALSE(seen[idx[i]]);
    seen[idx[i]] = true;
    if (i > 0) EXPECT_LE(keys[idx[i - 1]], keys[idx[i]]);
  }
}

// ---- Geometry --------------------------------------------------------------

TEST(BoxGeometryTest, SquareBbregCropRectLandmarks) {
  Box b{10, 20, 30, 60, 0.5f};
  Square(b);  // Side 40 around (20, 40).
  ExpectBox(b, 0, 20, 40, 60, 0.5f);

  Box r{10, 20, 29, 59, 0.5f};  // 20 x 40 with +1 widths.
  const float reg[4] = {0.5f, -0.25f, 0.1f, 0.0f};
  Bbreg(r, reg);
  ExpectBox(r, 20, 10, 29 + 0.1f * 20, 59, 0.5f);

  const CropRect c = CropRectOf({-3.7f, 0.5f, 300.9f, 120.2f, 0}, 256, 100);
  EXPECT_EQ(c.x, 1);  // trunc(-3.7) = -3, clamped to 1.
  EXPECT_EQ(c.y, 1);
  EXPECT_EQ(c.ex, 256);
  EXPECT_EQ(c.ey, 100);
  EXPECT_FALSE(c.empty());
  const CropRect inside = CropRectOf({5.9f, 7.2f, 9.99f, 8.0f, 0}, 256, 100);
  EXPECT_EQ(inside.x, 5);
  EXPECT_EQ(inside.y, 7);
  EXPECT_EQ(inside.ex, 9);
  EXPECT_EQ(inside.ey, 8);
  EXPECT_TRUE(CropRectOf({-20, 5, -5, 30, 0}, 256, 100).empty());
  EXPECT_TRUE(CropRectOf({0.2f, 0.2f, 0.9f, 0.9f, 0}, 256, 100).empty());

  const float rel[10] = {0, 0.5f, 1, 0.25f, 0.75f, 0, 0.5f, 1, 0.25f, 0.75f};
  const auto points = LandmarksInImage({10, 20, 29, 59, 0.9f}, rel);  // 20 x 40.
  EXPECT_EQ(points[0][0], 9);                                         // 20 * 0 + 10 - 1.
  EXPECT_EQ(points[0][1], 19);                                        // 40 * 0 + 20 - 1.
  EXPECT_EQ(points[1][0], 19);
  EXPECT_EQ(points[1][1], 39);
  EXPECT_EQ(points[2][0], 29);
  EXPECT_EQ(points[2][1], 59);
  EXPECT_EQ(points[4][0], 24);
  EXPECT_EQ(points[4][1], 49);
}

// ---- Ordering and mapping back ---------------------------------------------

FaceDetection Face(float x1, float y1, float x2, float y2, float prob) {
  FaceDetection f;
  f.box = {x1, y1, x2, y2};
  f.prob = prob;
  return f;
}

TEST(OrderFacesTest, LargestFirstOrMostProbableFirst) {
  const std::vector<FaceDetection> faces = {Face(0, 0, 10, 10, 0.99f), Face(0, 0, 30, 30, 0.9f),
                                            Face(0, 0, 20, 20, 0.99f)};
  auto order = [](const std::vector<FaceDetection>& got) {
    std::vector<float> x2;
    for (const FaceDetection& f : got) x2.push_back(f.box[2]);
    return x2;
  };
  EXPECT_EQ(order(OrderFaces(faces, FaceOrder::kLargestFirst)), (std::vector<float>{30, 20, 10}));
  EXPECT_EQ(order(OrderFaces(faces, FaceOrder::kMostProbableFirst)),
            (std::vector<float>{20, 10, 30}));
  EXPECT_TRUE(OrderFaces({}, FaceOrder::kLargestFirst).empty());
}

TEST(MapToInputTest, BoxesAsOneBasedIndicesLandmarksAsCentres) {
  std::vector<FaceDetection> faces = {Face(1, 1, 10, 20, 0.9f)};
  faces[0].landmarks[0] = {0, 0};
  faces[0].landmarks[4] = {9.5f, 19.5f};
  std::vector<FaceDetection> same = faces;
  MapToInput(100, 50, 100, 50, same);
  EXPECT_EQ(same[0].box, faces[0].box);

  MapToInput(200, 150, 100, 50, faces);  // x2, y3.
  EXPECT_EQ(faces[0].box, (std::array<float, 4>{1.5f, 2, 19.5f, 59}));
  EXPECT_EQ(faces[0].landmarks[0], (std::array<float, 2>{0.5f, 1}));
  EXPECT_EQ(faces[0].landmarks[4], (std::array<float, 2>{19.5f, 59.5f}));
  EXPECT_EQ(faces[0].prob, 0.9f);
}

// ---- Refine loop -----------------------------------------------------------

// A stand-in for R-Net / O-Net: scores, offsets and landmarks per crop (in
// crop order across batches); remembers the batches it saw.
class FakeNet {
 public:
  struct Output {
    float score;
    std::array<float, 4> reg;
  };
  FakeNet(std::vector<Output> outputs, bool landmarks)
      : outputs_(std::move(outputs)), landmarks_(landmarks) {}

  RefineNet AsNet() {
    return [this](const at::Tensor& crops) {
      batches.push_back(crops.clone());
      const int64_t n = crops.size(0);
      RefineNetOutput out{at::empty({n, 4}), at::empty({n, 2}), at::Tensor()};
      if (landmarks_) out.landmarks = at::empty({n, 10});
      for (int64_t i = 0; i < n; ++i, ++next_) {
        const Output& o = outputs_.at(next_);
        out.prob[i][0] = 1 - o.score;
        out.prob[i][1] = o.score;
        for (int q = 0; q < 4; ++q) out.reg[i][q] = o.reg[q];
        if (landmarks_) {
          for (int k = 0; k < 10; ++k) out.landmarks[i][k] = 0.1f * k;
        }
      }
      return out;
    };
  }

  std::vector<at::Tensor> batches;

 private:
  std::vector<Output> outputs_;
  bool landmarks_;
  size_t next_ = 0;
};

cv::Mat Gradient(int rows, int cols) {
  cv::Mat rgb(rows, cols, CV_8UC3);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) rgb.at<cv::Vec3b>(r, c) = cv::Vec3b(3 * c, 5 * r, (r * c) % 256);
  }
  return rgb;
}

class RefineTest : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(2); }

  MtcnnOptions options_;
  c10::InferenceMode guard_;
  const cv::Mat rgb_ = Gradient(48, 64);
  // 0 and 2 overlap (IoU 0.81), 1 lies outside the image, 3 stands apart.
  const std::vector<Box> boxes_ = {{1, 1, 20, 20, 0.6f},
                                   {-40, -40, -30, -30, 0.6f},
                                   {2, 2, 21, 21, 0.6f},
                                   {30, 10, 50, 30, 0.6f}};
};

TEST_F(RefineTest, RnetCropsFiltersSuppressesRegressesAndSquares) {
  options_.batch_size = 2;
  // Crops 0, 2, 3 (1 has none): 0 and 2 pass, 3 does not (0.7 is not > 0.7).
  FakeNet net({{0.9f, {0.1f, 0, 0, 0}}, {0.75f, {0, 0, 0, 0}}, {0.7f, {0, 0, 0, 0}}}, false);
  RefineCounts counts;
  auto got = Refine(rgb_, boxes_, RnetStage(options_), net.AsNet(), &counts);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(counts.inputs, 3);
  EXPECT_EQ(counts.over_threshold, 2);
  EXPECT_EQ(counts.after_nms, 1);
  ASSERT_EQ(got->size(), 1u);
  // Box 0 with R-Net's score, bbreg'd (x1 += 0.1 * 20), squared (side 19).
  Box expected{1 + 0.1f * 20, 1, 20, 20, 0.9f};
  Square(expected);
  ExpectBox((*got)[0].box, expected.x1, expected.y1, expected.x2, expected.y2, 0.9f);

  // Two batches of 24 x 24 channels-last crops, each the area resampling of
  // its box's clamped crop.
  ASSERT_EQ(net.batches.size(), 2u);
  EXPECT_EQ(net.batches[0].sizes(), (at::IntArrayRef{2, 3, 24, 24}));
  EXPECT_EQ(net.batches[1].sizes(), (at::IntArrayRef{1, 3, 24, 24}));
  EXPECT_TRUE(net.batches[0].is_contiguous(at::MemoryFormat::ChannelsLast));
  const int crop_of[3] = {0, 2, 3};
  for (int k = 0; k < 3; ++k) {
    const CropRect r = CropRectOf(boxes_[crop_of[k]], rgb_.cols, rgb_.rows);
    at::Tensor want = at::empty({24, 24, 3});
    AreaResampleNormalized(rgb_, r.y - 1, r.ey, r.x - 1, r.ex, 24, 24, want.data_ptr<float>());
    const at::Tensor seen = net.batches[k / 2][k % 2].permute({1, 2, 0});
    EXPECT_TRUE(at::equal(seen, want)) << "crop " << k;
  }
}

TEST_F(RefineTest, OnetDecodesLandmarksBeforeRegressionAndSuppressesRegressedBoxes) {
  // Box 3 regressed onto box 0's place: O-Net's Min-NMS compares regressed
  // boxes and drops it; R-Net's NMS compares the boxes it judged and keeps it.
  const float w = 21;  // Box 3's width with +1.
  const std::array<float, 4> onto0 = {-29 / w, -9 / w, -30 / w, -10 / w};
  const std::vector<FakeNet::Output> outputs = {
      {0.9f, {0, 0, 0, 0}}, {0.1f, {0, 0, 0, 0}}, {0.8f, onto0}};
  FakeNet onet(outputs, true);
  RefineCounts counts;
  auto got = Refine(rgb_, boxes_, OnetStage(options_), onet.AsNet(), &counts);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(counts.inputs, 3);
  EXPECT_EQ(counts.over_threshold, 2);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(counts.after_nms, 1);
  EXPECT_EQ(onet.batches.at(0).size(2), 48);
  ExpectBox((*got)[0].box, 1, 1, 20, 20, 0.9f);  // Zero offsets, not squared.
  float rel[10];                                 // As FakeNet makes them.
  for (int k = 0; k < 10; ++k) rel[k] = 0.1f * k;
  EXPECT_EQ((*got)[0].landmarks, LandmarksInImage(boxes_[0], rel));

  FakeNet rnet(outputs, false);
  got = Refine(rgb_, boxes_, RnetStage(options_), rnet.AsNet(), &counts);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(counts.after_nms, 2);
}

TEST_F(RefineTest, EmptyCropDropsItsBoxOrFailsInCompatMode) {
  FakeNet net({{0.9f, {0, 0, 0, 0}}, {0.9f, {0, 0, 0, 0}}, {0.9f, {0, 0, 0, 0}}}, false);
  options_.compat = true;
  auto got = Refine(rgb_, boxes_, RnetStage(options_), net.AsNet(), nullptr);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(got.status().message());
  EXPECT_NE(message.find("R-Net"), std::string::npos) << message;
  EXPECT_NE(message.find("64x48"), std::string::npos) << message;
  EXPECT_TRUE(net.batches.empty());

  auto none = Refine(rgb_, {}, OnetStage(options_), net.AsNet(), nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// ---- Where P-Net looks on a level ------------------------------------------

TEST(PlaceOnLevelTest, WholeLevelWithoutRegionWholeLevelRunWhenAWindowIsNotExact) {
  DMUE_SHARED_OR_SKIP(dir, "models/mtcnn");
  auto mtcnn = Mtcnn::Load(dir);
  ASSERT_TRUE(mtcnn.ok()) << mtcnn.status();
  const MtcnnImpl& impl = (*mtcnn)->impl();
  const PyramidLevel level{0.6, 481, 481};  // An 800 x 800 canvas.
  const PnetPlacement whole = impl.PlaceOnLevel(800, 800, level, nullptr);
  EXPECT_EQ(whole.level_rows, 481);
  EXPECT_EQ(whole.level_cols, 481);
  for (const LevelWindow& w : {whole.searched, whole.run}) {
    EXPECT_EQ(w.row0, 0);
    EXPECT_EQ(w.row1, 481);
    EXPECT_EQ(w.col0, 0);
    EXPECT_EQ(w.col1, 481);
  }
  int cropped_runs = 0, fallbacks = 0;
  for (const cv::Rect2d& region : {cv::Rect2d(250, 260, 300, 330), cv::Rect2d(390, 18, 3, 5)}) {
    const PnetPlacement p = impl.PlaceOnLevel(800, 800, level, &region);
    const LevelWindow expected = PnetLevelWindow(800, 800, 481, 481, region);
    EXPECT_EQ(p.searched.row0, expected.row0);
    EXPECT_EQ(p.searched.row1, expected.row1);
    EXPECT_EQ(p.searched.col0, expected.col0);
    EXPECT_EQ(p.searched.col1, expected.col1);
    const int rows = expected.row1 - expected.row0, cols = expected.col1 - expected.col0;
    if (impl.PnetWindowIsExact(rows, cols, 481, 481)) {
      ++cropped_runs;
      EXPECT_EQ(p.run.row0, p.searched.row0);
      EXPECT_EQ(p.run.col1, p.searched.col1);
    } else {
      ++fallbacks;
      EXPECT_EQ(p.run.row0, 0);
      EXPECT_EQ(p.run.row1, 481);
    }
  }
  // The big region runs on its window, the tiny one on the whole level.
  EXPECT_EQ(cropped_runs, 1);
  EXPECT_EQ(fallbacks, 1);
}

}  // namespace
}  // namespace dmue::preprocessing
