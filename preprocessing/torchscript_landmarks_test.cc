#include "preprocessing/torchscript_landmarks.h"

#include <torch/script.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "dmue/io/image_decode.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"
#include "preprocessing/face_aligner.h"
#include "preprocessing/mtcnn.h"
#include "third_party/shared_data.h"

namespace dmue::preprocessing {
namespace {

using ::dmue::testing::TempPath;

// A tiny scripted "landmark model", built and saved here: it returns five
// fixed points of its S x S input (as a (heatmaps, points) tuple, like FAN).
std::string SaveFakeModel() {
  torch::jit::Module m("FakeLandmarks");
  m.define(R"JIT(
def forward(self, x):
    s = float(x.size(2))
    pts = torch.tensor([[80.0, 100.0], [176.0, 100.0], [128.0, 140.0], [90.0, 190.0], [166.0, 190.0]])
    return (x.mean(), (pts * (s / 256.0)).unsqueeze(0))
)JIT");
  const std::string path = TempPath("fake_landmarks.pt");
  m.save(path);
  return path;
}

std::string WriteTemplate(const std::string& name, int points) {
  const std::string path = TempPath(name);
  std::ofstream f(path);
  const char* lines[] = {"314 364", "484 364", "395 458", "310 524", "480 524"};
  for (int i = 0; i < points; ++i) f << lines[i] << "\n";
  return path;
}

TEST(TorchScriptLandmarksTest, MapsModelPointsBackToThePhoto) {
  const std::string model = SaveFakeModel();
  auto source = TorchScriptLandmarkSource::Load(model, WriteTemplate("t5.txt", 5));
  ASSERT_TRUE(source.ok()) << source.status();
  cv::Mat rgb(300, 400, CV_8UC3, cv::Scalar(90, 120, 150));
  FaceDetection face;
  face.box = {100.f, 50.f, 228.f, 306.f};  // y2 beyond the image: clamped to 300.
  auto points = (*source)->Landmarks(rgb, face);
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 5u);
  // x: 80 * 128/256 + 100; y: 100 * 250/256 + 50.
  EXPECT_NEAR((*points)[0].x, 140.0, 1e-9);
  EXPECT_NEAR((*points)[0].y, 100.0 * 250 / 256 + 50, 1e-9);
  EXPECT_EQ((*source)->Template().size(), 5u);
}

TEST(TorchScriptLandmarksTest, Errors) {
  EXPECT_FALSE(
      TorchScriptLandmarkSource::Load(TempPath("missing.pt"), WriteTemplate("t5b.txt", 5)).ok());
  const std::string model = SaveFakeModel();
  EXPECT_FALSE(TorchScriptLandmarkSource::Load(model, TempPath("missing.txt")).ok());
  // The model gives 5 points, the template has 4.
  auto source = TorchScriptLandmarkSource::Load(model, WriteTemplate("t4.txt", 4));
  ASSERT_TRUE(source.ok());
  cv::Mat rgb(100, 100, CV_8UC3, cv::Scalar(1, 2, 3));
  FaceDetection face;
  face.box = {10.f, 10.f, 60.f, 60.f};
  auto points = (*source)->Landmarks(rgb, face);
  EXPECT_EQ(points.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TorchScriptLandmarksTest, DrivesCropAlign) {
  auto dir = SharedPath("models/mtcnn");
  auto photo_path = SharedPath("golden/mtcnn/images/face_sdk_test2.jpg");
  if (!dir.ok() || !photo_path.ok()) GTEST_SKIP() << "shared data missing";
  auto mtcnn = Mtcnn::Load(*dir);
  ASSERT_TRUE(mtcnn.ok());
  auto source = TorchScriptLandmarkSource::Load(SaveFakeModel(), WriteTemplate("t5c.txt", 5));
  ASSERT_TRUE(source.ok());
  FaceAligner aligner(mtcnn->get(), source->get(), AlignOptions());
  auto photo = io::ReadImageRgb(*photo_path);
  ASSERT_TRUE(photo.ok());
  auto result = aligner.CropAlign(*photo);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->crop.size(), cv::Size(256, 256));
  EXPECT_EQ(result->landmarks_src.size(), 5u);
}

}  // namespace
}  // namespace dmue::preprocessing
