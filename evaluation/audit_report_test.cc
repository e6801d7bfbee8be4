// Ranking and vote agreement on hand-built records, and the audit outputs.
#include "evaluation/audit_report.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace dmue::evaluation {
namespace {

AuditRecord Record(int64_t index, int label, double score, double label_prob) {
  AuditRecord r;
  r.index = index;
  r.key = "k" + std::to_string(index);
  r.label = label;
  r.score = score;
  r.label_prob = label_prob;
  return r;
}

std::vector<AuditRecord> FourRecords() {
  return {Record(0, 0, 0.9, 0.9), Record(1, 0, 0.5, 0.9), Record(2, 1, 0.7, 0.2), Record(3, 1, 0.8, 0.2)};
}

TEST(RankTest, Combined) {
  // R_class(1 - score): class 0 -> r0 0, r1 1; class 1 -> r2 1, r3 0.
  // suspicion = (1 - p) * (0.5 + 0.5 R): r0 .05, r1 .1, r2 .8, r3 .4.
  std::vector<AuditRecord> records = FourRecords();
  EXPECT_EQ(RankRecords(&records), (std::vector<size_t>{2, 3, 1, 0}));
  EXPECT_NEAR(records[0].suspicion, 0.05, 1e-12);
  EXPECT_NEAR(records[1].suspicion, 0.1, 1e-12);
  EXPECT_NEAR(records[2].suspicion, 0.8, 1e-12);
  EXPECT_NEAR(records[3].suspicion, 0.4, 1e-12);
  EXPECT_EQ(records[2].rank, 1);
  EXPECT_EQ(records[0].rank, 4);
}

TEST(RankTest, AlternativesAndTies) {
  std::vector<AuditRecord> records = FourRecords();
  EXPECT_EQ(RankRecords(&records, RankBy::kLabelProb), (std::vector<size_t>{2, 3, 0, 1}));  // ties by index
  records = FourRecords();
  EXPECT_EQ(RankRecords(&records, RankBy::kScore), (std::vector<size_t>{1, 2, 0, 3}));
  std::vector<AuditRecord> one = {Record(5, 2, 0.5, 0.5)};
  EXPECT_EQ(RankRecords(&one), (std::vector<size_t>{0}));
  EXPECT_NEAR(one[0].suspicion, 0.25, 1e-12);
  EXPECT_TRUE(ParseRankBy("score").ok());
  EXPECT_FALSE(ParseRankBy("best").ok());
}

TEST(NoiseRecoveryTest, PrecisionAucAndRecoveredClean) {
  // Suspicion (combined) ranks r2 (.8), r3 (.4), r1 (.1), r0 (.05).
  std::vector<AuditRecord> records = FourRecords();
  EXPECT_FALSE(DmueNoiseRecovery(records).has_value());  // nothing flipped
  records[2].clean_label = 0;  // flipped from 0 to 1; predicted 0 below
  records[1].clean_label = 1;
  records[2].predicted = 0;
  records[1].predicted = 0;
  RankRecords(&records);
  std::optional<NoiseRecovery> dmue = DmueNoiseRecovery(records);
  ASSERT_TRUE(dmue.has_value());
  EXPECT_EQ(dmue->flipped, 2);
  EXPECT_DOUBLE_EQ(dmue->precision_at_flipped, 0.5);  // top 2: r2 (flipped), r3 (clean)
  // Pairs (flipped above clean): r2 > r3, r2 > r0, r1 > r0, r1 < r3: 3 of 4.
  EXPECT_DOUBLE_EQ(dmue->roc_auc, 0.75);
  EXPECT_DOUBLE_EQ(dmue->clean_label_recovered, 0.5);
  EXPECT_FALSE(BaselineNoiseRecovery(records).has_value());  // no baseline
  // Baseline: 1 - p(label) with a tie between a flipped and a clean sample.
  records[0].baseline = {0.9, 0.1};
  records[1].baseline = {0.7, 0.3};  // label 0: suspicion .3
  records[2].baseline = {0.6, 0.4};  // label 1: suspicion .6
  records[3].baseline = {0.6, 0.4};  // label 1: suspicion .6
  std::optional<NoiseRecovery> baseline = BaselineNoiseRecovery(records);
  ASSERT_TRUE(baseline.has_value());
  // Pairs: r2 = r3 (half), r2 > r0, r1 > r0, r1 < r3: 2.5 of 4.
  EXPECT_DOUBLE_EQ(baseline->roc_auc, 0.625);
  EXPECT_DOUBLE_EQ(baseline->clean_label_recovered, 0.5);  // argmax 0 for both; r2's clean label is 0
  AuditSummary summary;
  summary.noisy_labels = "runs/x/noisy_labels.txt";
  summary.dmue_noise = dmue;
  EXPECT_NE(AuditSummaryJson(summary).find("\"precision_at_flipped\": 0.5"), std::string::npos)
      << AuditSummaryJson(summary);
  EXPECT_NE(AuditSummaryText(summary).find("precision at 2 0.5000"), std::string::npos) << AuditSummaryText(summary);
}

TEST(AgreementTest, OffLabel) {
  const std::vector<double> off = OffLabel({0.6, 0.3, 0.1}, 0);
  ASSERT_EQ(off.size(), 3u);
  EXPECT_EQ(off[0], 0.0);
  EXPECT_NEAR(off[1], 0.75, 1e-12);
  EXPECT_NEAR(off[2], 0.25, 1e-12);
  EXPECT_EQ(OffLabel({0, 1, 0}, 1), (std::vector<double>{0, 0, 0}));
}

std::vector<AuditRecord> VotedRecords() {
  AuditRecord a = Record(0, 0, 0.9, 0.8);
  a.votes = {0.6, 0.3, 0.1};
  a.mined = {0, 0.75, 0.25};
  a.baseline = {0.5, 0.1, 0.4};
  AuditRecord b = Record(1, 1, 0.4, 0.3);
  b.votes = {0, 1, 0};  // nothing off the label
  b.mined = {0.5, 0, 0.5};
  b.baseline = {0.2, 0.6, 0.2};
  AuditRecord c = Record(2, 2, 0.6, 0.5);
  c.votes = {0.2, 0.2, 0.6};
  c.mined = {0.9, 0.1, 0};
  c.baseline = {0.1, 0.3, 0.6};
  AuditRecord d = Record(3, 0, 0.1, 0.1);  // no votes: ignored
  d.mined = {0, 0.5, 0.5};
  d.baseline = {0.3, 0.3, 0.4};
  return {a, b, c, d};
}

TEST(AgreementTest, Dmue) {
  std::optional<Agreement> a = DmueAgreement(VotedRecords());
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->count_votes, 3);
  EXPECT_EQ(a->count_off_label, 2);
  // A: votes_off (0, .75, .25) == mined -> KL 0, top-2 agrees.
  // C: votes_off (.5, .5, 0), mined_off (.9, .1, 0): argmax 0 both (first on ties).
  const double kl_c = 0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1);
  EXPECT_NEAR(a->mean_kl, kl_c / 2, 1e-12);
  // JS of C: m = (.7, .3, 0).
  const double js_c = 0.5 * (0.5 * std::log(0.5 / 0.7) + 0.5 * std::log(0.5 / 0.3)) +
                      0.5 * (0.9 * std::log(0.9 / 0.7) + 0.1 * std::log(0.1 / 0.3));
  EXPECT_NEAR(a->mean_js, js_c / 2, 1e-12);
  EXPECT_NEAR(a->top2_agreement, 1.0, 1e-12);
  // Entropy ranks A 2, B 1, C 3; score ranks A 3, B 1, C 2 -> rho 0.5.
  EXPECT_NEAR(a->spearman_confidence_vs_entropy, 0.5, 1e-12);
  EXPECT_NEAR(a->spearman_label_prob_vs_entropy, 0.5, 1e-12);
}

TEST(AgreementTest, Baseline) {
  std::optional<Agreement> a = BaselineAgreement(VotedRecords());
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->count_off_label, 2);
  const double kl_a = 0.75 * std::log(0.75 / 0.2) + 0.25 * std::log(0.25 / 0.8);
  const double kl_c = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);
  EXPECT_NEAR(a->mean_kl, (kl_a + kl_c) / 2, 1e-12);
  EXPECT_NEAR(a->top2_agreement, 0.0, 1e-12);
  // Confidence = baseline p(label): .5, .6, .6 (ranks 1, 2.5, 2.5) vs entropy ranks 2, 1, 3 -> 0.
  EXPECT_NEAR(a->spearman_confidence_vs_entropy, 0.0, 1e-12);
}

TEST(AgreementTest, NoVotes) {
  EXPECT_FALSE(DmueAgreement(FourRecords()).has_value());
  EXPECT_FALSE(BaselineAgreement(FourRecords()).has_value());
}

// The summary of the four voted records over classes a, b, c.
AuditSummary FourRecordSummary(const std::string& data) {
  AuditSummary summary;
  summary.checkpoint = "multi.pth";
  summary.data = data;
  summary.class_names = {"a", "b", "c"};
  summary.count = 4;
  return summary;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The contact sheet in audit.html is the PNG of audit_top.png, base64 in a
// data URI that decodes back to the same picture.
TEST(AuditOutputsTest, HtmlEmbedsTheSheetAsBase64Png) {
  std::vector<AuditRecord> records = VotedRecords();
  const std::vector<size_t> order = RankRecords(&records);
  const AuditSummary summary = FourRecordSummary("data");
  const std::string dir = ::testing::TempDir() + "/audit_report_base64";
  std::filesystem::remove_all(dir);
  auto read = [](int64_t index) -> absl::StatusOr<cv::Mat> {
    return cv::Mat(30 + int(index), 40, CV_8UC3, cv::Scalar(int(index) * 50, 100, 150));
  };
  ASSERT_TRUE(WriteAuditOutputs(summary, records, order, 3, read, dir).ok());
  const std::string html = ReadFile(dir + "/audit.html");
  const std::string prefix = "<img alt=\"contact sheet\" src=\"data:image/png;base64,";
  const size_t start = html.find(prefix);
  ASSERT_NE(start, std::string::npos);
  const size_t begin = start + prefix.size();
  const std::string encoded = html.substr(begin, html.find('"', begin) - begin);
  std::string png;
  ASSERT_TRUE(absl::Base64Unescape(encoded, &png));
  EXPECT_EQ(absl::Base64Escape(png), encoded);  // standard alphabet, padded
  const cv::Mat embedded = cv::imdecode(cv::Mat(1, int(png.size()), CV_8UC1, png.data()), cv::IMREAD_COLOR);
  const cv::Mat written = cv::imread(dir + "/audit_top.png");
  ASSERT_FALSE(embedded.empty());
  ASSERT_EQ(embedded.size(), written.size());
  EXPECT_EQ(cv::norm(embedded, written, cv::NORM_INF), 0);
}

TEST(AuditOutputsTest, CsvHtmlAndSheet) {
  std::vector<AuditRecord> records = VotedRecords();
  records[2].key = "needs,quoting";
  const std::vector<size_t> order = RankRecords(&records);
  AuditSummary summary = FourRecordSummary("<data>");
  summary.dmue = DmueAgreement(records);
  const std::string csv = AuditCsv(records, order, summary.class_names);
  std::istringstream lines(csv);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  EXPECT_EQ(header,
            "rank,key,index,given_label,given_name,suspicion,score,batch_score,p_given_label,predicted,mined_a,mined_b,"
            "mined_c,votes_a,votes_b,votes_c,baseline_a,baseline_b,baseline_c");
  EXPECT_EQ(first.substr(0, 5), "1,k3,");  // d: (1 - .1) * (.5 + .5 * 1) = .9
  EXPECT_NE(csv.find("\"needs,quoting\""), std::string::npos);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);

  const std::string dir = ::testing::TempDir() + "/audit_report_out";
  std::filesystem::remove_all(dir);
  auto read = [](int64_t index) -> absl::StatusOr<cv::Mat> {
    return cv::Mat(40, 40, CV_8UC3, cv::Scalar(int(index) * 50, 100, 150));
  };
  ASSERT_TRUE(WriteAuditOutputs(summary, records, order, 3, read, dir).ok());
  EXPECT_FALSE(cv::imread(dir + "/audit_top.png").empty());
  const std::string html = ReadFile(dir + "/audit.html");
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("&lt;data&gt;"), std::string::npos);
  EXPECT_NE(html.find("Agreement with human votes"), std::string::npos);
  EXPECT_NE(html.find("mean JS(votes_off, pred_off)"), std::string::npos);
  const std::string js = absl::StrFormat("%.4f", summary.dmue->mean_js);
  EXPECT_NE(AuditSummaryText(summary).find("JS(votes_off, pred_off) " + js), std::string::npos)
      << AuditSummaryText(summary);
  EXPECT_NE(AuditSummaryJson(summary).find("\"mean_js_votes_off_label\": "), std::string::npos)
      << AuditSummaryJson(summary);
  EXPECT_TRUE(std::filesystem::exists(dir + "/audit.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/audit_summary.json"));

  // An image that cannot be read is an error.
  auto broken = [](int64_t) -> absl::StatusOr<cv::Mat> { return absl::NotFoundError("record k3 missing"); };
  EXPECT_FALSE(WriteAuditOutputs(summary, records, order, 3, broken, dir).ok());
}

}  // namespace
}  // namespace dmue::evaluation
