// Report, JSON and picture helpers.
#include "evaluation/report.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "evaluation/charts.h"
#include "gtest/gtest.h"

namespace dmue::evaluation {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

EvaluationReport SmallReport() {
  EvaluationReport r;
  r.checkpoint = "model \"x\".pth";
  r.model_kind = "inference";
  r.data = "test";
  r.class_names = {"a", "b", "c"};
  r.confusion = ConfusionMatrix(3);
  EXPECT_TRUE(r.confusion.Add(0, 0, 3).ok());
  EXPECT_TRUE(r.confusion.Add(1, 2).ok());
  r.summary = Summarize(r.confusion);
  CalibrationAccumulator acc;
  acc.Add(0.9, true);
  acc.Add(0.6, false);
  r.calibration = acc.Result();
  r.votes = VoteSummary{2, 0.5, 0.25, 1.0};
  r.num_examples = 4;
  r.seconds = 2;
  r.images_per_second = 2;
  r.mean_nll = std::nan("");
  return r;
}

TEST(ReportTest, JsonHasTheMetrics) {
  const std::string json = ReportJson(SmallReport());
  EXPECT_NE(json.find("\"checkpoint\": \"model \\\"x\\\".pth\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"accuracy\": 0.75"), std::string::npos) << json;
  EXPECT_NE(json.find("\"confusion\": [[3, 0, 0], [0, 0, 1], [0, 0, 0]]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"mean_nll\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"top1_in_voted_rate\": 1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"precision_defined\": false"), std::string::npos) << json;  // class b
}

TEST(ReportTest, TableMarksUndefinedValues) {
  const std::string table = ReportTable(SmallReport());
  EXPECT_NE(table.find("accuracy 0.7500"), std::string::npos) << table;
  EXPECT_NE(table.find("majority-label accuracy 0.5000"), std::string::npos) << table;
  EXPECT_NE(table.find(" -"), std::string::npos) << table;
}

TEST(ReportTest, WritesFiles) {
  const std::string dir = ::testing::TempDir() + "/report_out";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WriteEvaluationOutputs(SmallReport(), dir).ok());
  for (const char* name : {"confusion.png", "confusion_counts.png", "reliability.png"}) {
    cv::Mat image = cv::imread(dir + "/" + name);
    EXPECT_FALSE(image.empty()) << name;
  }
  EXPECT_EQ(Read(dir + "/report.json"), ReportJson(SmallReport()));
}

TEST(ChartsTest, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(ChartsTest, ContactSheet) {
  SheetItem item;
  item.rgb = cv::Mat(48, 48, CV_8UC1, cv::Scalar(128));
  item.title = "#1 key";
  item.subtitle = "label a";
  item.bars = {0.0, 0.7, 0.3};
  item.reference = {0.5, 0.5, 0.0};
  item.highlight = 0;
  cv::Mat sheet = DrawContactSheet({item, item, item}, {"a", "b", "c"}, 2, "top");
  EXPECT_EQ(sheet.type(), CV_8UC3);
  EXPECT_GT(sheet.rows, 2 * 150);
  absl::StatusOr<std::string> png = EncodePng(sheet);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->substr(1, 3), "PNG");
  EXPECT_EQ(DrawContactSheet({}, {}, 4, "empty").type(), CV_8UC3);
}

TEST(ReportTest, DefaultClassNames) {
  EXPECT_EQ(DefaultClassNames(8)[1], "happiness");
  EXPECT_EQ(DefaultClassNames(3), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(DefaultClassNames(2, {"x", "y"}), (std::vector<std::string>{"x", "y"}));
}

}  // namespace
}  // namespace dmue::evaluation
