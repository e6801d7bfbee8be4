#include "training/metrics_log.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace dmue::training {
namespace {

TEST(MetricsLogTest, AppendsReopensAndDrawsCurves) {
  const std::string dir = ::testing::TempDir() + "/metrics_run";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    absl::StatusOr<MetricsLog> log = MetricsLog::Open(dir);
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE(log->Append({"train", 0, 10, {{"ce", 2.0}, {"aux", 1.9}}}).ok());
    ASSERT_TRUE(log->Append({"eval", 0, 10, {{"accuracy", 0.3}}}).ok());
  }
  absl::StatusOr<MetricsLog> reopened = MetricsLog::Open(dir);
  ASSERT_TRUE(reopened.ok());
  ASSERT_EQ(reopened->records().size(), 2u);
  EXPECT_DOUBLE_EQ(reopened->records()[0].values.at("aux"), 1.9);
  EXPECT_EQ(reopened->records()[1].kind, "eval");
  ASSERT_TRUE(reopened->Append({"train", 1, 20, {{"ce", 1.5}, {"aux", 1.2}}}).ok());
  ASSERT_TRUE(reopened->WriteCurves().ok());
  EXPECT_TRUE(std::filesystem::exists(dir + "/curves_train_loss.png"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/curves_eval_accuracy.png"));
}

TEST(MetricsLogTest, RejectsGarbageLines) {
  EXPECT_FALSE(ParseMetricLine("garbage").ok());
  EXPECT_FALSE(ParseMetricLine("{\"kind\":\"x\",\"step\":abc}").ok());
  absl::StatusOr<MetricRecord> ok = ParseMetricLine("{\"kind\":\"train\",\"epoch\":1,\"step\":2,\"ce\":null}");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(std::isnan(ok->values.at("ce")));
}

}  // namespace
}  // namespace dmue::training
