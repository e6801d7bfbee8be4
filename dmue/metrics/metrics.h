// Classification, calibration and label-distribution metrics, torch-free:
// one copy shared by the trainer's validation and the evaluator.
//
//   * ConfusionMatrix: counts [true][predicted], row-normalised view.
//   * Summarize: accuracy, mean per-class accuracy (mean recall over classes
//     with samples), per-class precision / recall / F1, macro F1. Zero
//     division follows scikit-learn's zero_division=0: a class never predicted
//     has precision 0, a class without samples has recall 0, and F1 is 0 when
//     precision + recall is 0; the `*_defined` flags say which were 0/0.
//   * Calibration: expected calibration error (Guo et al. 2017) with M
//     equal-width bins over the top-1 confidence: bin m (1-based) holds the
//     confidences in ((m-1)/M, m/M] (confidence 0 goes to the first bin);
//     ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|. MCE is the largest gap.
//   * Vote distributions (FERPlus): KL(votes || prediction) with 0 log 0 = 0
//     and the prediction clamped below at 1e-12; Jensen-Shannon divergence
//     (natural log, in [0, ln 2]: bounded and symmetric, so one voted class
//     the model gives ~0 does not dominate the mean as it does for KL); top-1
//     prediction among the voted labels (the predicted class got at least one
//     vote); accuracy against the vote argmax ("majority" label, first on ties).
//   * Spearman rank correlation: Pearson correlation of average ranks (ties
//     share the mean of their ranks); NaN when either side is constant.
#ifndef DMUE_METRICS_METRICS_H_
#define DMUE_METRICS_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace dmue {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);

  // InvalidArgument when a class is outside [0, num_classes).
  absl::Status Add(int truth, int predicted, int64_t count = 1);

  int num_classes() const { return num_classes_; }
  int64_t count(int truth, int predicted) const { return counts_[truth][predicted]; }
  int64_t total() const { return total_; }
  int64_t RowSum(int truth) const;
  int64_t ColumnSum(int predicted) const;
  const std::vector<std::vector<int64_t>>& counts() const { return counts_; }
  // Each row divided by its sum (rows without samples stay 0).
  std::vector<std::vector<double>> RowNormalized() const;

 private:
  int num_classes_;
  int64_t total_ = 0;
  std::vector<std::vector<int64_t>> counts_;
};

struct ClassMetrics {
  int64_t support = 0;    // samples whose true class this is
  int64_t predicted = 0;  // samples predicted as this class
  int64_t correct = 0;
  double precision = 0;
  double recall = 0;  // = the class accuracy
  double f1 = 0;
  bool precision_defined = false;  // predicted > 0
  bool recall_defined = false;     // support > 0
};

struct ClassificationSummary {
  int64_t count = 0;
  double accuracy = 0;             // 0 when count is 0
  double mean_class_accuracy = 0;  // mean recall over classes with support
  double macro_f1 = 0;             // mean F1 over classes with support or predictions
  std::vector<ClassMetrics> per_class;
};

ClassificationSummary Summarize(const ConfusionMatrix& confusion);

struct ReliabilityBin {
  double lower = 0, upper = 0;  // (lower, upper]
  int64_t count = 0;
  double mean_confidence = 0;  // 0 for empty bins
  double accuracy = 0;         // 0 for empty bins
};

struct Calibration {
  int64_t count = 0;
  double ece = 0;
  double mce = 0;  // maximum |acc - conf| over non-empty bins
  std::vector<ReliabilityBin> bins;
};

// Index of the bin holding `confidence` (clamped to [0, 1]).
int CalibrationBin(double confidence, int num_bins);

class CalibrationAccumulator {
 public:
  explicit CalibrationAccumulator(int num_bins = 15);
  void Add(double confidence, bool correct);
  Calibration Result() const;

 private:
  int num_bins_;
  std::vector<int64_t> counts_;
  std::vector<double> confidence_sums_;
  std::vector<int64_t> correct_;
};

// KL(p || q) in nats: sum_i p_i log(p_i / max(q_i, q_floor)), terms with
// p_i = 0 skipped. NaN when the sizes differ.
double KlDivergence(absl::Span<const double> p, absl::Span<const double> q, double q_floor = 1e-12);
// Jensen-Shannon divergence in nats: (KL(p || m) + KL(q || m)) / 2 with
// m = (p + q) / 2 (0 log 0 = 0; no floor needed since m_i >= p_i / 2). 0 for
// equal distributions, ln 2 for disjoint ones. NaN when the sizes differ.
double JsDivergence(absl::Span<const double> p, absl::Span<const double> q);
// Shannon entropy in nats (0 log 0 = 0).
double Entropy(absl::Span<const double> p);
// Index of the largest value, first on ties; -1 for an empty span.
int ArgMax(absl::Span<const double> values);
// 1-based average ranks (ties get the mean of the ranks they span).
std::vector<double> AverageRanks(absl::Span<const double> values);
double PearsonCorrelation(absl::Span<const double> x, absl::Span<const double> y);
double SpearmanCorrelation(absl::Span<const double> x, absl::Span<const double> y);

// Agreement of predicted distributions with human vote distributions.
struct VoteSummary {
  int64_t count = 0;
  double majority_accuracy = 0;      // argmax(prediction) == argmax(votes)
  double mean_kl = 0;                // mean KL(votes || prediction)
  double mean_js = 0;                // mean JS(votes, prediction)
  double top1_in_voted_rate = 0;     // votes[argmax(prediction)] > 0
};

class VoteAccumulator {
 public:
  // `votes` is normalised here (any non-negative counts are fine); entries
  // whose votes sum to 0 are skipped (returns false).
  bool Add(absl::Span<const double> votes, absl::Span<const double> prediction);
  VoteSummary Result() const;

 private:
  int64_t count_ = 0;
  int64_t majority_correct_ = 0;
  int64_t top1_in_voted_ = 0;
  double kl_sum_ = 0;
  double js_sum_ = 0;
};

// Normalises to sum 1; all-zero input gives all zeros.
std::vector<double> Normalized(absl::Span<const double> values);

}  // namespace dmue

#endif  // DMUE_METRICS_METRICS_H_
