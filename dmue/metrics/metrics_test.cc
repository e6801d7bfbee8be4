// Hand-built cases with answers worked out on paper.
#include "dmue/metrics/metrics.h"

#include <cmath>

#include "gtest/gtest.h"

namespace dmue {
namespace {

constexpr double kEps = 1e-12;

ConfusionMatrix Build(int classes, const std::vector<int>& truth, const std::vector<int>& predicted) {
  ConfusionMatrix m(classes);
  for (size_t i = 0; i < truth.size(); ++i) EXPECT_TRUE(m.Add(truth[i], predicted[i]).ok());
  return m;
}

TEST(ConfusionMatrixTest, CountsAndRowNormalisation) {
  // 4 classes; class 3 never occurs and is never predicted.
  ConfusionMatrix m = Build(4, {0, 0, 0, 1, 1, 2, 2, 2, 2}, {0, 1, 0, 1, 2, 2, 2, 0, 2});
  const std::vector<std::vector<int64_t>> expected = {{2, 1, 0, 0}, {0, 1, 1, 0}, {1, 0, 3, 0}, {0, 0, 0, 0}};
  EXPECT_EQ(m.counts(), expected);
  EXPECT_EQ(m.total(), 9);
  const auto norm = m.RowNormalized();
  EXPECT_NEAR(norm[0][0], 2.0 / 3, kEps);
  EXPECT_NEAR(norm[0][1], 1.0 / 3, kEps);
  EXPECT_NEAR(norm[1][2], 0.5, kEps);
  EXPECT_NEAR(norm[2][2], 0.75, kEps);
  EXPECT_EQ(norm[3], std::vector<double>(4, 0.0));
}

TEST(ConfusionMatrixTest, RejectsOutOfRangeClasses) {
  ConfusionMatrix m(3);
  absl::Status s = m.Add(3, 0);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("true class 3"), std::string::npos) << s;
  s = m.Add(0, -1);
  EXPECT_NE(s.message().find("predicted class -1"), std::string::npos) << s;
  EXPECT_EQ(m.total(), 0);
}

TEST(SummarizeTest, PrecisionRecallF1) {
  ClassificationSummary s = Summarize(Build(4, {0, 0, 0, 1, 1, 2, 2, 2, 2}, {0, 1, 0, 1, 2, 2, 2, 0, 2}));
  EXPECT_EQ(s.count, 9);
  EXPECT_NEAR(s.accuracy, 6.0 / 9, kEps);
  EXPECT_NEAR(s.mean_class_accuracy, 23.0 / 36, kEps);  // (2/3 + 1/2 + 3/4) / 3
  // Precision: columns 3, 2, 4 predicted -> 2/3, 1/2, 3/4; equal to the recalls here.
  const double expected[] = {2.0 / 3, 0.5, 0.75};
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(s.per_class[c].precision, expected[c], kEps) << c;
    EXPECT_NEAR(s.per_class[c].recall, expected[c], kEps) << c;
    EXPECT_NEAR(s.per_class[c].f1, expected[c], kEps) << c;
    EXPECT_TRUE(s.per_class[c].precision_defined);
  }
  EXPECT_EQ(s.per_class[2].support, 4);
  EXPECT_EQ(s.per_class[2].predicted, 4);
  EXPECT_EQ(s.per_class[0].predicted, 3);
  // Class 3: 0/0 everywhere, reported as 0 and left out of the averages.
  EXPECT_FALSE(s.per_class[3].precision_defined);
  EXPECT_FALSE(s.per_class[3].recall_defined);
  EXPECT_EQ(s.per_class[3].f1, 0.0);
  EXPECT_NEAR(s.macro_f1, 23.0 / 36, kEps);
}

TEST(SummarizeTest, ZeroDivisionCases) {
  // Class 1 is predicted once but never true: precision 0 (defined), recall
  // 0/0, F1 0, and it counts in macro F1 but not in the mean class accuracy.
  ClassificationSummary s = Summarize(Build(2, {0, 0}, {1, 0}));
  EXPECT_NEAR(s.per_class[0].precision, 1.0, kEps);
  EXPECT_NEAR(s.per_class[0].recall, 0.5, kEps);
  EXPECT_NEAR(s.per_class[0].f1, 2.0 / 3, kEps);
  EXPECT_TRUE(s.per_class[1].precision_defined);
  EXPECT_FALSE(s.per_class[1].recall_defined);
  EXPECT_EQ(s.per_class[1].precision, 0.0);
  EXPECT_EQ(s.per_class[1].recall, 0.0);
  EXPECT_EQ(s.per_class[1].f1, 0.0);
  EXPECT_NEAR(s.mean_class_accuracy, 0.5, kEps);
  EXPECT_NEAR(s.macro_f1, 1.0 / 3, kEps);

  // A class never predicted: precision 0/0 -> 0, recall 0, F1 0.
  s = Summarize(Build(2, {0, 1}, {0, 0}));
  EXPECT_FALSE(s.per_class[1].precision_defined);
  EXPECT_EQ(s.per_class[1].f1, 0.0);
  EXPECT_NEAR(s.per_class[0].precision, 0.5, kEps);
  EXPECT_NEAR(s.macro_f1, (2.0 / 3 + 0.0) / 2, kEps);

  // Nothing at all.
  s = Summarize(ConfusionMatrix(3));
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.accuracy, 0.0);
  EXPECT_EQ(s.mean_class_accuracy, 0.0);
  EXPECT_EQ(s.macro_f1, 0.0);
}

TEST(CalibrationTest, BinsAreLeftOpenRightClosed) {
  EXPECT_EQ(CalibrationBin(0.0, 15), 0);
  EXPECT_EQ(CalibrationBin(1.0 / 15, 15), 0);
  EXPECT_EQ(CalibrationBin(0.0667, 15), 1);
  EXPECT_EQ(CalibrationBin(0.2, 15), 2);  // 3/15 is the upper edge of bin 2
  EXPECT_EQ(CalibrationBin(0.20001, 15), 3);
  EXPECT_EQ(CalibrationBin(0.5, 15), 7);
  EXPECT_EQ(CalibrationBin(14.0 / 15, 15), 13);
  EXPECT_EQ(CalibrationBin(0.95, 15), 14);
  EXPECT_EQ(CalibrationBin(1.0, 15), 14);
  EXPECT_EQ(CalibrationBin(1.5, 15), 14);
  EXPECT_EQ(CalibrationBin(-0.1, 15), 0);
  EXPECT_EQ(CalibrationBin(0.3, 10), 2);
}

TEST(CalibrationTest, KnownEce) {
  // Bin 14: 4 samples at 0.95, 3 correct -> gap 0.2.
  // Bin 7: 2 samples at 0.5, 1 correct -> gap 0.
  // Bin 4: 2 samples at 0.3, none correct -> gap 0.3.
  // ECE = 4/8 * 0.2 + 2/8 * 0 + 2/8 * 0.3 = 0.175; MCE = 0.3.
  CalibrationAccumulator acc(15);
  for (int i = 0; i < 3; ++i) acc.Add(0.95, true);
  acc.Add(0.95, false);
  acc.Add(0.5, true);
  acc.Add(0.5, false);
  acc.Add(0.3, false);
  acc.Add(0.3, false);
  Calibration c = acc.Result();
  EXPECT_EQ(c.count, 8);
  EXPECT_NEAR(c.ece, 0.175, 1e-12);
  EXPECT_NEAR(c.mce, 0.3, 1e-12);
  ASSERT_EQ(c.bins.size(), 15u);
  EXPECT_EQ(c.bins[14].count, 4);
  EXPECT_NEAR(c.bins[14].accuracy, 0.75, kEps);
  EXPECT_NEAR(c.bins[14].mean_confidence, 0.95, kEps);
  EXPECT_EQ(c.bins[4].count, 2);
  EXPECT_EQ(c.bins[0].count, 0);
  EXPECT_NEAR(c.bins[4].lower, 4.0 / 15, kEps);
  EXPECT_NEAR(c.bins[4].upper, 5.0 / 15, kEps);
}

TEST(CalibrationTest, PerfectlyCalibratedAndEmpty) {
  CalibrationAccumulator acc(15);
  for (int i = 0; i < 10; ++i) acc.Add(0.7, i < 7);
  EXPECT_NEAR(acc.Result().ece, 0.0, 1e-12);
  EXPECT_EQ(CalibrationAccumulator(15).Result().ece, 0.0);
}

TEST(DistributionTest, KlDivergence) {
  EXPECT_NEAR(KlDivergence({0.5, 0.5, 0.0}, {0.25, 0.25, 0.5}), std::log(2.0), kEps);
  EXPECT_NEAR(KlDivergence({0.2, 0.8}, {0.2, 0.8}), 0.0, kEps);
  // q = 0 where p > 0: the floor keeps it finite.
  EXPECT_NEAR(KlDivergence({1.0, 0.0}, {0.0, 1.0}), -std::log(1e-12), 1e-9);
  EXPECT_TRUE(std::isnan(KlDivergence({1.0}, {0.5, 0.5})));
}

TEST(DistributionTest, JsDivergence) {
  const double ln2 = std::log(2.0);
  EXPECT_NEAR(JsDivergence({0.2, 0.8}, {0.2, 0.8}), 0.0, kEps);  // identical
  EXPECT_NEAR(JsDivergence({1.0, 0.0}, {0.0, 1.0}), ln2, kEps);  // disjoint: the maximum
  EXPECT_NEAR(JsDivergence({0.5, 0.5, 0.0, 0.0}, {0.0, 0.0, 0.3, 0.7}), ln2, kEps);
  // m = (.375, .375, .25): KL(p||m) = ln(4/3), KL(q||m) = .5 ln(2/3) + .5 ln 2 = .5 ln(4/3).
  EXPECT_NEAR(JsDivergence({0.5, 0.5, 0.0}, {0.25, 0.25, 0.5}), 0.75 * std::log(4.0 / 3.0), kEps);
  // Zero in both at index 2 (m = 0 there): m = (.25, .5, 0, .25), each KL = .5 ln 2.
  EXPECT_NEAR(JsDivergence({0.5, 0.5, 0.0, 0.0}, {0.0, 0.5, 0.0, 0.5}), 0.5 * ln2, kEps);
  // A voted class the model gives exactly 0: KL needs its floor, JS stays small and finite.
  // p = (.9, .1), q = (1, 0): m = (.95, .05).
  const double expected = 0.5 * (0.9 * std::log(0.9 / 0.95) + 0.1 * std::log(0.1 / 0.05)) +
                          0.5 * std::log(1.0 / 0.95);
  EXPECT_NEAR(JsDivergence({0.9, 0.1}, {1.0, 0.0}), expected, kEps);
  EXPECT_NEAR(JsDivergence({0.9, 0.1}, {1.0, 0.0}), JsDivergence({1.0, 0.0}, {0.9, 0.1}), kEps);  // symmetric
  EXPECT_TRUE(std::isnan(JsDivergence({1.0}, {0.5, 0.5})));
}

TEST(DistributionTest, EntropyAndArgMax) {
  EXPECT_NEAR(Entropy({0.5, 0.5, 0.0}), std::log(2.0), kEps);
  EXPECT_NEAR(Entropy({1.0, 0.0}), 0.0, kEps);
  EXPECT_EQ(ArgMax({0.1, 0.4, 0.4, 0.1}), 1);  // first on ties
  EXPECT_EQ(ArgMax({}), -1);
}

TEST(DistributionTest, VoteAccumulator) {
  VoteAccumulator acc;
  // Votes 6/3/1/0 normalise to .6/.3/.1/0; prediction argmax 1 (voted, not the majority).
  EXPECT_TRUE(acc.Add({6, 3, 1, 0}, {0.1, 0.6, 0.2, 0.1}));
  // Votes all on class 3; prediction argmax 0 (not voted).
  EXPECT_TRUE(acc.Add({0, 0, 0, 5}, {0.7, 0.1, 0.1, 0.1}));
  // Majority right.
  EXPECT_TRUE(acc.Add({1, 0, 0, 0}, {0.5, 0.5 / 3, 0.5 / 3, 0.5 / 3}));
  EXPECT_FALSE(acc.Add({0, 0, 0, 0}, {0.25, 0.25, 0.25, 0.25}));  // no votes: skipped
  VoteSummary s = acc.Result();
  EXPECT_EQ(s.count, 3);
  EXPECT_NEAR(s.majority_accuracy, 1.0 / 3, kEps);
  EXPECT_NEAR(s.top1_in_voted_rate, 2.0 / 3, kEps);
  const double kl1 = 0.6 * std::log(0.6 / 0.1) + 0.3 * std::log(0.3 / 0.6) + 0.1 * std::log(0.1 / 0.2);
  const double kl2 = std::log(10.0);
  const double kl3 = std::log(2.0);
  EXPECT_NEAR(s.mean_kl, (kl1 + kl2 + kl3) / 3, 1e-12);
  const double js1 = JsDivergence({0.6, 0.3, 0.1, 0}, {0.1, 0.6, 0.2, 0.1});
  // Votes (0, 0, 0, 1), prediction (.7, .1, .1, .1): m = (.35, .05, .05, .55).
  const double js2 = 0.5 * std::log(1 / 0.55) + 0.5 * (0.9 * std::log(2.0) + 0.1 * std::log(0.1 / 0.55));
  const double js3 = JsDivergence({1, 0, 0, 0}, {0.5, 0.5 / 3, 0.5 / 3, 0.5 / 3});
  EXPECT_NEAR(s.mean_js, (js1 + js2 + js3) / 3, 1e-12);
}

TEST(RankTest, AverageRanksAndSpearman) {
  EXPECT_EQ(AverageRanks({10, 30, 20, 30}), (std::vector<double>{1, 3.5, 2, 3.5}));
  // y ranks 1, 2, 3.5, 5, 3.5: rho = 8 / sqrt(10 * 9.5).
  EXPECT_NEAR(SpearmanCorrelation({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 8.0 / std::sqrt(95.0), 1e-12);
  EXPECT_NEAR(SpearmanCorrelation({1, 2, 3, 4}, {1, 4, 9, 16}), 1.0, 1e-12);  // monotone, not linear
  EXPECT_NEAR(SpearmanCorrelation({1, 2, 3, 4}, {8, 4, 2, 1}), -1.0, 1e-12);
  EXPECT_TRUE(std::isnan(SpearmanCorrelation({1, 2, 3}, {2, 2, 2})));
  EXPECT_TRUE(std::isnan(SpearmanCorrelation({1}, {2})));
  EXPECT_NEAR(PearsonCorrelation({1, 2, 3}, {2, 4, 6}), 1.0, 1e-12);
}

TEST(DistributionTest, Normalized) {
  EXPECT_EQ(Normalized({1, 3}), (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(Normalized({0, 0}), (std::vector<double>{0, 0}));
}

}  // namespace
}  // namespace dmue
