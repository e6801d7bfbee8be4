#include "dmue/util/plot.h"

#include <opencv2/imgcodecs.hpp>

#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(PlotTest, WritesLinePlotPng) {
  const std::string path = ::testing::TempDir() + "/curve.png";
  LinePlot plot{"loss", "epoch", "value", {{"train", {0, 1, 2}, {2.0, 1.5, 1.2}}, {"val", {0, 2}, {2.1, 1.4}}}};
  ASSERT_TRUE(WriteLinePlot(path, plot).ok());
  cv::Mat image = cv::imread(path);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, plot.width);
  // Something besides the white background was drawn.
  EXPECT_LT(cv::mean(image)[0], 254.0);
}

TEST(PlotTest, RejectsRaggedInput) {
  LinePlot plot{"bad", "x", "y", {{"s", {0, 1}, {1.0}}}};
  EXPECT_FALSE(WriteLinePlot(::testing::TempDir() + "/bad.png", plot).ok());
  HeatMap map{"bad", {{1, 2}, {3}}, {"a", "b"}, {"a", "b"}};
  EXPECT_FALSE(WriteHeatMap(::testing::TempDir() + "/bad_map.png", map).ok());
}

TEST(PlotTest, WritesHeatMapPng) {
  const std::string path = ::testing::TempDir() + "/confusion.png";
  HeatMap map{"confusion", {{0.9, 0.1}, {0.2, 0.8}}, {"happy", "sad"}, {"happy", "sad"}};
  ASSERT_TRUE(WriteHeatMap(path, map).ok());
  EXPECT_FALSE(cv::imread(path).empty());
}

TEST(PlotTest, UnwritableDirectoryIsAnError) {
  LinePlot plot{"t", "x", "y", {{"s", {0, 1}, {1, 2}}}};
  EXPECT_FALSE(WriteLinePlot("/nonexistent_dir/x.png", plot).ok());
}

}  // namespace
}  // namespace dmue
