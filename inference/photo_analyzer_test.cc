// The photo stages one by one (decode limits, keeping the most probable
// faces, mapping back to full resolution, the crop fallback) and chained on
// the real photos of ../shared/data/photos (skipped, saying so, when ../shared
// is absent).
#include "inference/photo_analyzer.h"

#include <cmath>

#include <string>

#include <opencv2/imgproc.hpp>

#include "dmue/testing/files.h"
#include "gtest/gtest.h"
#include "inference/face_input.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"
#include "third_party/shared_data.h"

namespace dmue::inference {
namespace {

using preprocessing::FaceDetection;

InputSpec GreyInput() {
  InputSpec input;
  input.set_resize(72);
  input.set_crop(64);
  input.set_grayscale(true);
  return input;
}

FaceDetection Face(float prob, float x) {
  FaceDetection face;
  face.prob = prob;
  face.box = {x, 10, x + 20, 30};
  for (int k = 0; k < 5; ++k) face.landmarks[k] = {x + 2 * k, 20};
  return face;
}

TEST(PhotoStagesTest, DecodeRefusesEmptyOversizedAndUndecodableBytesNamingTheSource) {
  PhotoLimits limits;
  limits.max_bytes = 100;
  auto empty = DecodePhoto("", "upload.jpg", limits);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  auto big = DecodePhoto(std::string(101, 'x'), "upload.jpg", limits);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  auto garbage = DecodePhoto("definitely not a jpeg", "not_an_image.jpg", limits);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  for (const auto& s : {empty.status(), big.status(), garbage.status()}) {
    EXPECT_NE(s.message().find(".jpg"), std::string::npos) << s;
  }
}

TEST(PhotoStagesTest, KeepMostProbableIsStableAndCountsTheDropped) {
  std::vector<FaceDetection> faces = {Face(0.8f, 0), Face(0.99f, 100), Face(0.8f, 200), Face(0.9f, 300)};
  EXPECT_EQ(KeepMostProbable(3, &faces), 1);
  ASSERT_EQ(faces.size(), 3u);
  EXPECT_EQ(faces[0].box[0], 100);
  EXPECT_EQ(faces[1].box[0], 300);
  EXPECT_EQ(faces[2].box[0], 0);  // the first of the two 0.8s
  EXPECT_EQ(KeepMostProbable(5, &faces), 0);
  EXPECT_EQ(faces.size(), 3u);
}

TEST(PhotoStagesTest, MapToPhotoUndoesTheDecodeScale) {
  const PhotoFace face = MapToPhoto(Face(0.7f, 50), 0.5, 0.25);
  EXPECT_FLOAT_EQ(face.box[0], 100);
  EXPECT_FLOAT_EQ(face.box[1], 40);
  EXPECT_FLOAT_EQ(face.box[2], 140);
  EXPECT_FLOAT_EQ(face.box[3], 120);
  EXPECT_FLOAT_EQ(face.landmarks[3][0], 112);
  EXPECT_FLOAT_EQ(face.landmarks[3][1], 80);
  EXPECT_FLOAT_EQ(face.score, 0.7f);
}

TEST(PhotoStagesTest, PreprocessFacesConcatenatesAndNamesTheFace) {
  cv::Mat crop(80, 80, CV_8UC3, cv::Scalar(10, 120, 240));
  auto inputs = PreprocessFaces({crop, crop}, GreyInput(), "photo.jpg");
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  const int64_t item = FaceInputSize(GreyInput());
  ASSERT_EQ(inputs->size(), size_t(2 * item));
  std::vector<float> one(item);
  ASSERT_TRUE(PreprocessFace(crop, GreyInput(), one.data()).ok());
  EXPECT_TRUE(std::equal(one.begin(), one.end(), inputs->begin() + item));
  InputSpec too_big = GreyInput();
  too_big.set_resize(0);
  too_big.set_crop(100);  // larger than the 80x80 crop
  auto bad = PreprocessFaces({crop}, too_big, "photo.jpg");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("photo.jpg: face 0"), std::string::npos) << bad.status();
}

class PhotoAnalyzerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DMUE_SHARED_OR_SKIP(pnet, "models/mtcnn/pnet.pt");
    DMUE_SHARED_OR_SKIP(photo, "data/photos/face_sdk_test1.jpg");
    detector_dir_ = pnet.substr(0, pnet.rfind('/'));
    photos_ = photo.substr(0, photo.rfind('/'));
  }
  std::unique_ptr<PhotoAnalyzer> Analyzer(const PhotoLimits& limits = {},
                                          preprocessing::CropFlow flow = preprocessing::CropFlow::kExact) {
    auto analyzer = PhotoAnalyzer::Create(detector_dir_, limits, GreyInput(), flow);
    EXPECT_TRUE(analyzer.ok()) << analyzer.status();
    return analyzer.ok() ? *std::move(analyzer) : nullptr;
  }
  std::string Photo(const std::string& name) { return ::dmue::testing::ReadFile(photos_ + "/" + name); }

  std::string detector_dir_, photos_;
};

TEST_F(PhotoAnalyzerTest, EveryFaceOfAPhotoWithItsInput) {
  auto analyzer = Analyzer();
  ASSERT_NE(analyzer, nullptr);
  auto photo = analyzer->Analyze(Photo("face_sdk_test1.jpg"), "face_sdk_test1.jpg", false);
  ASSERT_TRUE(photo.ok()) << photo.status();
  EXPECT_EQ(photo->width, 818);
  EXPECT_EQ(photo->height, 418);
  ASSERT_EQ(photo->faces.size(), 2u);
  EXPECT_EQ(photo->faces_dropped, 0);
  EXPECT_EQ(photo->inputs.size(), size_t(2 * FaceInputSize(GreyInput())));
  for (const PhotoFace& face : photo->faces) {
    EXPECT_GT(face.score, 0.9f);
    EXPECT_LT(face.box[0], face.box[2]);
    EXPECT_LT(face.box[1], face.box[3]);
    for (const auto& point : face.landmarks) {  // the landmarks lie in the face box
      EXPECT_GE(point[0], face.box[0]);
      EXPECT_LE(point[0], face.box[2]);
    }
  }
  EXPECT_TRUE(analyzer->Analyze(Photo("facex_logo_noface.png"), "noface.png", false)->faces.empty());
}

TEST_F(PhotoAnalyzerTest, MaxFacesKeepsTheMostProbable) {
  PhotoLimits limits;
  limits.max_faces = 1;
  auto all = Analyzer()->Analyze(Photo("face_sdk_test1.jpg"), "a", false);
  auto one = Analyzer(limits)->Analyze(Photo("face_sdk_test1.jpg"), "a", false);
  ASSERT_TRUE(all.ok() && one.ok());
  ASSERT_EQ(one->faces.size(), 1u);
  EXPECT_EQ(one->faces_dropped, 1);
  const PhotoFace& best = all->faces[0].score >= all->faces[1].score ? all->faces[0] : all->faces[1];
  EXPECT_EQ(one->faces[0].box, best.box);
}

TEST_F(PhotoAnalyzerTest, DownscaledDetectionIsMappedToTheFullPhoto) {
  PhotoLimits small;
  small.max_detection_side = 409;  // half of 818
  auto full = Analyzer()->Analyze(Photo("face_sdk_test1.jpg"), "a", false);
  auto half = Analyzer(small)->Analyze(Photo("face_sdk_test1.jpg"), "a", false);
  ASSERT_TRUE(full.ok() && half.ok());
  EXPECT_EQ(half->width, 818);
  ASSERT_EQ(half->faces.size(), full->faces.size());
  for (size_t i = 0; i < full->faces.size(); ++i) {
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(half->faces[i].box[k], full->faces[i].box[k], 12) << i << " " << k;
  }
}

// The fast crop flow finds the same faces (the first detection) and gives
// inputs close to, but not the same as, the exact flow's.
TEST_F(PhotoAnalyzerTest, FastCropFlowKeepsTheFacesAndNearlyTheInputs) {
  auto exact = Analyzer()->Analyze(Photo("face_sdk_test1.jpg"), "p.jpg", false);
  auto fast = Analyzer({}, preprocessing::CropFlow::kFast)->Analyze(Photo("face_sdk_test1.jpg"), "p.jpg", false);
  ASSERT_TRUE(exact.ok()) << exact.status();
  ASSERT_TRUE(fast.ok()) << fast.status();
  ASSERT_EQ(fast->faces.size(), exact->faces.size());
  for (size_t i = 0; i < fast->faces.size(); ++i) EXPECT_EQ(fast->faces[i].box, exact->faces[i].box);
  ASSERT_EQ(fast->inputs.size(), exact->inputs.size());
  double sum = 0;
  for (size_t i = 0; i < fast->inputs.size(); ++i) sum += std::abs(fast->inputs[i] - exact->inputs[i]);
  const double mean = sum / fast->inputs.size();
  EXPECT_GT(mean, 0);     // not the exact flow in disguise
  EXPECT_LT(mean, 0.25);  // normalised units: a few grey levels on average
}

TEST_F(PhotoAnalyzerTest, SkipDetectionClassifiesTheWholePhoto) {
  auto photo = Analyzer()->Analyze(Photo("face_sdk_test1_cropped.jpg"), "crop.jpg", true);
  ASSERT_TRUE(photo.ok()) << photo.status();
  ASSERT_EQ(photo->faces.size(), 1u);
  EXPECT_EQ(photo->faces[0].box[2], photo->width);
  EXPECT_EQ(photo->faces[0].box[3], photo->height);
  EXPECT_EQ(photo->faces[0].score, 1);
  EXPECT_EQ(photo->inputs.size(), size_t(FaceInputSize(GreyInput())));
}

TEST_F(PhotoAnalyzerTest, CropFaceFallsBackToTheEnlargedBox) {
  auto detector = preprocessing::Mtcnn::Load(detector_dir_);
  ASSERT_TRUE(detector.ok()) << detector.status();
  preprocessing::MtcnnLandmarkSource landmarks;
  const preprocessing::FaceAligner aligner(detector->get(), &landmarks, preprocessing::AlignOptions{});
  // Noise: the second detection finds no face, the enlarged box is used.
  cv::Mat grey(200, 200, CV_8UC3);
  cv::randu(grey, cv::Scalar::all(0), cv::Scalar::all(256));
  FaceDetection face = Face(0.9f, 60);
  face.box = {60, 60, 120, 130};
  auto crop = CropFace(aligner, grey, face);
  ASSERT_TRUE(crop.ok()) << crop.status();
  EXPECT_EQ(crop->rows, 256);
  EXPECT_EQ(crop->cols, 256);
  const preprocessing::CropRect r = preprocessing::EnlargedCropRect(face.box, 200, 200, 256, 224, false, nullptr);
  cv::Mat expected;
  cv::resize(grey(cv::Range(r.row0, r.row1), cv::Range(r.col0, r.col1)), expected, cv::Size(256, 256), 0, 0,
             cv::INTER_CUBIC);
  EXPECT_EQ(cv::norm(*crop, expected, cv::NORM_INF), 0);
  face.box = {500, 500, 600, 600};  // wholly outside
  EXPECT_EQ(CropFace(aligner, grey, face).status().code(), absl::StatusCode::kNotFound);
}

// The fast flow on detections no detector should give (a server must not
// crash on them): collinear or coincident landmarks, boxes partly or wholly
// outside the photo, a huge box. Each gives a 256x256 crop or NotFound.
TEST_F(PhotoAnalyzerTest, FastCropFlowSurvivesDegenerateDetections) {
  auto detector = preprocessing::Mtcnn::Load(detector_dir_);
  ASSERT_TRUE(detector.ok()) << detector.status();
  preprocessing::MtcnnLandmarkSource landmarks;
  preprocessing::AlignOptions options;
  options.flow = preprocessing::CropFlow::kFast;
  const preprocessing::FaceAligner aligner(detector->get(), &landmarks, options);
  cv::Mat photo(200, 300, CV_8UC3);
  cv::randu(photo, cv::Scalar::all(0), cv::Scalar::all(256));
  std::vector<FaceDetection> faces;
  FaceDetection same_point = Face(0.9f, 50);
  for (auto& p : same_point.landmarks) p = {60, 20};
  faces.push_back(same_point);
  faces.push_back(Face(0.9f, 50));  // collinear landmarks
  FaceDetection edge = Face(0.9f, 290);
  faces.push_back(edge);
  FaceDetection outside = Face(0.9f, 1000);
  faces.push_back(outside);
  FaceDetection huge = Face(0.9f, 0);
  huge.box = {-1e6f, -1e6f, 1e6f, 1e6f};
  huge.landmarks = {{{100, 80}, {160, 80}, {130, 110}, {105, 140}, {155, 140}}};
  faces.push_back(huge);
  int crops = 0;
  for (const FaceDetection& face : faces) {
    absl::StatusOr<cv::Mat> crop = CropFace(aligner, photo, face);
    if (!crop.ok()) {
      EXPECT_EQ(crop.status().code(), absl::StatusCode::kNotFound) << crop.status();
      continue;
    }
    EXPECT_EQ(crop->size(), cv::Size(256, 256));
    ++crops;
  }
  EXPECT_GE(crops, 3);
}

}  // namespace
}  // namespace dmue::inference
