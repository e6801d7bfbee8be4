// Report, JSON and picture helpers.
#include "evaluation/report.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "dmue/base/image_write.h"
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
  r.votes = VoteSummary();
  r.votes->count = 2;
  r.votes->majority_accuracy = 0.5;
  r.votes->mean_kl = 0.25;
  r.votes->mean_js = 0.125;
  r.votes->top1_in_voted_rate = 1.0;
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
  EXPECT_NE(json.find("\"mean_kl_votes_to_prediction\": 0.25"), std::string::npos) << json;
  EXPECT_NE(json.find("\"mean_js_votes_vs_prediction\": 0.125"), std::string::npos) << json;
  EXPECT_NE(json.find("\"precision_defined\": false"), std::string::npos) << json;  // class b
}

TEST(ReportTest, TableMarksUndefinedValues) {
  const std::string table = ReportTable(SmallReport());
  EXPECT_NE(table.find("accuracy 0.7500"), std::string::npos) << table;
  EXPECT_NE(table.find("majority-label accuracy 0.5000"), std::string::npos) << table;
  EXPECT_NE(table.find("KL(votes||pred) 0.2500  JS(votes, pred) 0.1250"), std::string::npos) << table;
  EXPECT_NE(table.find(" -"), std::string::npos) << table;
}

TEST(ReportTest, TableKeepsLongNames) {
  EvaluationReport r = SmallReport();
  r.class_names = {"happiness", "contempt", "a_very_long_class_name"};
  const std::string table = ReportTable(r);
  // In full in the per-class row, the confusion header and the confusion row.
  for (const std::string& name : r.class_names) {
    int count = 0;
    for (size_t at = table.find(name); at != std::string::npos; at = table.find(name, at + 1)) ++count;
    EXPECT_EQ(count, 3) << name << "\n" << table;
  }
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

// Where pictures go for people to look at (bazel keeps
// TEST_UNDECLARED_OUTPUTS_DIR in test.outputs/outputs.zip).
std::string OutputDir(const std::string& name) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  return std::string(dir != nullptr ? dir : ::testing::TempDir().c_str()) + "/" + name;
}

TEST(ReportTest, FerPlusPictures) {
  EvaluationReport r;
  r.class_names = {"neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"};
  r.confusion = ConfusionMatrix(8);
  CalibrationAccumulator calibration;
  for (int t = 0; t < 8; ++t) {
    for (int p = 0; p < 8; ++p) {
      ASSERT_TRUE(r.confusion.Add(t, p, t == p ? 300 - 30 * t : (t + p) % 5).ok());
    }
  }
  for (int i = 0; i < 3191; ++i) calibration.Add((i % 100) / 100.0, i % 3 != 0);
  r.summary = Summarize(r.confusion);
  r.calibration = calibration.Result();
  const std::string dir = OutputDir("ferplus_report");
  ASSERT_TRUE(WriteEvaluationOutputs(r, dir).ok());
  for (const char* name : {"confusion.png", "confusion_counts.png", "reliability.png"}) {
    EXPECT_FALSE(cv::imread(dir + "/" + name).empty()) << name;
  }
  SheetItem item;
  item.rgb = cv::Mat(48, 48, CV_8UC1, cv::Scalar(128));
  item.title = "#1 valid_fer0032220.png";
  item.subtitle = "happiness  s=0.512 p=0.31";
  item.bars = {0.0, 0.05, 0.6, 0.1, 0.05, 0.05, 0.1, 0.05};
  item.reference = {0.1, 0.3, 0.5, 0.0, 0.0, 0.0, 0.1, 0.0};
  item.highlight = 1;
  ASSERT_TRUE(WritePng(dir + "/sheet.png", DrawContactSheet({item, item, item}, r.class_names, 3, "top 3")).ok());
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

TEST(ReportTest, IndexClassNames) {
  // Never the FERPlus names for 8 classes: the reference's AffectNet order differs.
  EXPECT_EQ(IndexClassNames(8)[1], "1");
  EXPECT_EQ(IndexClassNames(3), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_TRUE(IndexClassNames(0).empty());
}

}  // namespace
}  // namespace dmue::evaluation
