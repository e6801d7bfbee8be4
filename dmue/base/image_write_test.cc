#include "dmue/base/image_write.h"

#include <opencv2/imgcodecs.hpp>

#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

cv::Mat Pattern() {
  cv::Mat bgr(12, 10, CV_8UC3);
  for (int y = 0; y < bgr.rows; ++y) {
    for (int x = 0; x < bgr.cols; ++x) bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 20, y * 20, (x + y) * 10);
  }
  return bgr;
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_UNCHANGED);
}

TEST(ImageWriteTest, PngRoundTripsExactly) {
  const cv::Mat bgr = Pattern();
  absl::StatusOr<std::string> png = EncodePng(bgr);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->substr(1, 3), "PNG");
  const cv::Mat back = Decode(*png);
  ASSERT_EQ(back.size(), bgr.size());
  EXPECT_EQ(cv::norm(back, bgr, cv::NORM_INF), 0);
}

TEST(ImageWriteTest, WritesByExtensionAndPngAnyName) {
  const cv::Mat bgr = Pattern();
  const std::string jpg = testing::TempPath("image_write_test.jpg");
  ASSERT_TRUE(WriteImage(jpg, bgr, {cv::IMWRITE_JPEG_QUALITY, 90}).ok());
  const std::string jpeg_bytes = testing::ReadFile(jpg);
  EXPECT_EQ(jpeg_bytes.substr(0, 2), "\xff\xd8");
  EXPECT_EQ(Decode(jpeg_bytes).size(), bgr.size());

  const std::string chart = testing::TempPath("image_write_test.chart");
  ASSERT_TRUE(WritePng(chart, bgr).ok());
  EXPECT_EQ(cv::norm(Decode(testing::ReadFile(chart)), bgr, cv::NORM_INF), 0);
}

TEST(ImageWriteTest, ErrorsNameThePath) {
  const absl::Status bad_format = WriteImage(testing::TempPath("image_write_test.nosuchformat"), Pattern());
  EXPECT_FALSE(bad_format.ok());
  EXPECT_NE(bad_format.message().find("image_write_test.nosuchformat"), std::string::npos) << bad_format;
  const absl::Status empty = WritePng(testing::TempPath("image_write_test_empty.png"), cv::Mat());
  EXPECT_FALSE(empty.ok());
  EXPECT_NE(empty.message().find("image_write_test_empty.png"), std::string::npos) << empty;
  const absl::Status no_dir = WritePng("/nonexistent_dir_for_test/x.png", Pattern());
  EXPECT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.message().find("/nonexistent_dir_for_test/x.png"), std::string::npos) << no_dir;
}

}  // namespace
}  // namespace dmue
