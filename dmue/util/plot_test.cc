#include "dmue/util/plot.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <regex>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

const std::vector<std::string> kFerPlus = {"neutral", "happiness", "surprise", "sadness",
                                           "anger",   "disgust",   "fear",     "contempt"};

// Where a test's pictures go for people to look at (bazel keeps
// TEST_UNDECLARED_OUTPUTS_DIR in test.outputs/outputs.zip).
std::string OutputPath(const std::string& name) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  return std::string(dir != nullptr ? dir : ::testing::TempDir().c_str()) + "/" + name;
}

bool WritePngForPeople(const Chart& chart, const std::string& name) {
  return cv::imwrite(OutputPath(name), chart.image);
}

const TextBox* Find(const Chart& chart, const std::string& text) {
  for (const TextBox& t : chart.texts) {
    if (t.text == text) return &t;
  }
  return nullptr;
}

// Every text inside the image with a margin, no two texts overlapping, and
// no ink on the image's border (clipped text would touch it).
void ExpectTextsFit(const Chart& chart) {
  for (const TextBox& t : chart.texts) {
    EXPECT_GE(t.left, 4) << t.text;
    EXPECT_GE(t.top, 4) << t.text;
    EXPECT_LE(t.right, chart.image.cols - 4) << t.text;
    EXPECT_LE(t.bottom, chart.image.rows - 4) << t.text;
  }
  for (size_t i = 0; i < chart.texts.size(); ++i) {
    for (size_t j = i + 1; j < chart.texts.size(); ++j) {
      const TextBox& a = chart.texts[i];
      const TextBox& b = chart.texts[j];
      const bool overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      EXPECT_FALSE(overlap) << "'" << a.text << "' overlaps '" << b.text << "'";
    }
  }
  cv::Mat grey;
  cv::cvtColor(chart.image, grey, cv::COLOR_BGR2GRAY);
  const int m = 4;
  for (const cv::Rect& strip : {cv::Rect(0, 0, grey.cols, m), cv::Rect(0, grey.rows - m, grey.cols, m),
                                cv::Rect(0, 0, m, grey.rows), cv::Rect(grey.cols - m, 0, m, grey.rows)}) {
    double lowest = 0;
    cv::minMaxLoc(grey(strip), &lowest);
    EXPECT_EQ(lowest, 255) << "ink on the border strip " << strip;
  }
}

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

HeatMap FerPlusConfusion() {
  HeatMap map;
  map.title = "confusion (row-normalised), accuracy 0.6840, mean class accuracy 0.6220";
  map.row_labels = map.col_labels = kFerPlus;
  for (int r = 0; r < 8; ++r) {
    std::vector<double> row(8, 0.0092);
    row[r] = 0.8;
    row[(r + 1) % 8] = 0.0314;
    map.values.push_back(row);
  }
  return map;
}

TEST(PlotTest, ConfusionMatrixShowsFullNamesAndOneNumberFormat) {
  const HeatMap map = FerPlusConfusion();
  absl::StatusOr<Chart> chart = DrawHeatMap(map);
  ASSERT_TRUE(chart.ok()) << chart.status();
  ASSERT_TRUE(WritePngForPeople(*chart, "ferplus_confusion.png"));
  ExpectTextsFit(*chart);
  // Every class name in full, as a row and as a column label.
  for (const std::string& name : kFerPlus) {
    int count = 0;
    for (const TextBox& t : chart->texts) count += t.text == name;
    EXPECT_EQ(count, 2) << name;
  }
  // The title whole (its lines come first, wrapped or not), then the 64
  // cells, each with 2 decimals.
  const std::regex two_decimals("[0-9]\\.[0-9][0-9]");
  std::vector<std::string> title;
  size_t i = 0;
  for (; i < chart->texts.size() && !std::regex_match(chart->texts[i].text, two_decimals); ++i) {
    title.push_back(chart->texts[i].text);
  }
  EXPECT_EQ(absl::StrJoin(title, " "), map.title);
  ASSERT_GE(chart->texts.size(), i + 64);
  for (size_t k = i; k < i + 64; ++k) {
    EXPECT_TRUE(std::regex_match(chart->texts[k].text, two_decimals)) << chart->texts[k].text;
  }
  EXPECT_NE(Find(*chart, "0.03"), nullptr);
  EXPECT_NE(Find(*chart, "0.01"), nullptr);  // 0.0092, not 9.2e-03
  EXPECT_NE(Find(*chart, "predicted"), nullptr);
  EXPECT_NE(Find(*chart, "true"), nullptr);

  // Counts are integers.
  HeatMap counts = map;
  for (auto& row : counts.values) {
    for (double& v : row) v = std::round(v * 1000);
  }
  absl::StatusOr<Chart> count_chart = DrawHeatMap(counts);
  ASSERT_TRUE(count_chart.ok());
  ASSERT_TRUE(WritePngForPeople(*count_chart, "ferplus_confusion_counts.png"));
  EXPECT_NE(Find(*count_chart, "800"), nullptr);
  EXPECT_NE(Find(*count_chart, "9"), nullptr);
  ExpectTextsFit(*count_chart);
}

TEST(PlotTest, LinePlotTitleLabelsAndLegendFit) {
  LinePlot plot;
  plot.title = "eval accuracy of DMUE against plain cross entropy on FERPlus Valid, 3,191 faces, every epoch";
  plot.x_label = "optimiser step";
  plot.y_label = "mean class accuracy";
  plot.width = 700;
  plot.height = 420;
  plot.series = {{"dmue_main_branch_accuracy", {0, 200, 400, 600}, {0.14, 0.41, 0.58, 0.6231}},
                 {"cross_entropy_baseline", {0, 200, 400, 600}, {0.14, 0.45, 0.61, 0.684}},
                 {"mean_class_accuracy", {0, 300, 600}, {0.12, 0.5, 0.0092}}};
  absl::StatusOr<Chart> chart = DrawLinePlot(plot);
  ASSERT_TRUE(chart.ok()) << chart.status();
  ASSERT_TRUE(WritePngForPeople(*chart, "curves.png"));
  ExpectTextsFit(*chart);
  for (const Series& s : plot.series) EXPECT_NE(Find(*chart, s.name), nullptr) << s.name;
  EXPECT_NE(Find(*chart, plot.x_label), nullptr);
  EXPECT_NE(Find(*chart, plot.y_label), nullptr);
  // One tick format on the y axis: 0.0, 0.2, ... (1 decimal for a 0.2 step).
  for (const char* tick : {"0.0", "0.2", "0.4", "0.6"}) EXPECT_NE(Find(*chart, tick), nullptr) << tick;
  for (const TextBox& t : chart->texts) EXPECT_EQ(t.text.find("e-"), std::string::npos) << t.text;
}

TEST(PlotTest, TickFormatsStayConsistentAtSmallAndLargeScales) {
  LinePlot small{"lr", "step", "learning rate", {{"lr", {0, 1, 2, 3}, {1e-4, 5e-5, 2e-5, 1e-5}}}};
  absl::StatusOr<Chart> chart = DrawLinePlot(small);
  ASSERT_TRUE(chart.ok());
  ASSERT_TRUE(WritePngForPeople(*chart, "learning_rate.png"));
  ExpectTextsFit(*chart);
  // All y ticks in scientific notation with the same mantissa digits.
  const std::regex scientific("[0-9]\\.[0-9]e-0[0-9]|0\\.0e\\+00");
  int ticks = 0;
  for (const TextBox& t : chart->texts) {
    if (std::isdigit(static_cast<unsigned char>(t.text[0])) && t.text.find('e') != std::string::npos) {
      EXPECT_TRUE(std::regex_match(t.text, scientific)) << t.text;
      ++ticks;
    }
  }
  EXPECT_GE(ticks, 3);
}

}  // namespace
}  // namespace dmue
