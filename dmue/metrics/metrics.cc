#include "dmue/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace dmue {

ConfusionMatrix::ConfusionMatrix(int num_classes)
    : num_classes_(std::max(num_classes, 0)),
      counts_(num_classes_, std::vector<int64_t>(num_classes_, 0)) {}

absl::Status ConfusionMatrix::Add(int truth, int predicted, int64_t count) {
  if (truth < 0 || truth >= num_classes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("true class ", truth, " is outside [0, ", num_classes_, ")"));
  }
  if (predicted < 0 || predicted >= num_classes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("predicted class ", predicted, " is outside [0, ", num_classes_, ")"));
  }
  counts_[truth][predicted] += count;
  total_ += count;
  return absl::OkStatus();
}

int64_t ConfusionMatrix::RowSum(int truth) const {
  return std::accumulate(counts_[truth].begin(), counts_[truth].end(), int64_t{0});
}

int64_t ConfusionMatrix::ColumnSum(int predicted) const {
  int64_t sum = 0;
  for (const auto& row : counts_) sum += row[predicted];
  return sum;
}

std::vector<std::vector<double>> ConfusionMatrix::RowNormalized() const {
  std::vector<std::vector<double>> out(num_classes_, std::vector<double>(num_classes_, 0.0));
  for (int t = 0; t < num_classes_; ++t) {
    const int64_t sum = RowSum(t);
    if (sum == 0) continue;
    for (int p = 0; p < num_classes_; ++p) out[t][p] = double(counts_[t][p]) / double(sum);
  }
  return out;
}

ClassificationSummary Summarize(const ConfusionMatrix& confusion) {
  ClassificationSummary s;
  const int n = confusion.num_classes();
  s.count = confusion.total();
  int64_t correct = 0;
  double recall_sum = 0, f1_sum = 0;
  int recall_classes = 0, f1_classes = 0;
  for (int c = 0; c < n; ++c) {
    ClassMetrics m;
    m.support = confusion.RowSum(c);
    m.predicted = confusion.ColumnSum(c);
    m.correct = confusion.count(c, c);
    correct += m.correct;
    m.precision_defined = m.predicted > 0;
    m.recall_defined = m.support > 0;
    m.precision = m.precision_defined ? double(m.correct) / double(m.predicted) : 0.0;
    m.recall = m.recall_defined ? double(m.correct) / double(m.support) : 0.0;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
    if (m.recall_defined) {
      recall_sum += m.recall;
      ++recall_classes;
    }
    if (m.recall_defined || m.precision_defined) {
      f1_sum += m.f1;
      ++f1_classes;
    }
    s.per_class.push_back(m);
  }
  s.accuracy = s.count > 0 ? double(correct) / double(s.count) : 0.0;
  s.mean_class_accuracy = recall_classes > 0 ? recall_sum / recall_classes : 0.0;
  s.macro_f1 = f1_classes > 0 ? f1_sum / f1_classes : 0.0;
  return s;
}

int CalibrationBin(double confidence, int num_bins) {
  if (!(confidence > 0)) return 0;  // also NaN
  if (confidence >= 1) return num_bins - 1;
  // Bin m (0-based) holds (m/M, (m+1)/M].
  // ceil may be off by one at a boundary through rounding; settle it
  // against the boundaries the bins report (b / M).
  int bin = std::clamp(int(std::ceil(confidence * num_bins)) - 1, 0, num_bins - 1);
  if (bin > 0 && confidence <= double(bin) / num_bins) --bin;
  if (bin < num_bins - 1 && confidence > double(bin + 1) / num_bins) ++bin;
  return bin;
}

CalibrationAccumulator::CalibrationAccumulator(int num_bins)
    : num_bins_(std::max(num_bins, 1)),
      counts_(num_bins_, 0),
      confidence_sums_(num_bins_, 0.0),
      correct_(num_bins_, 0) {}

void CalibrationAccumulator::Add(double confidence, bool correct) {
  const int bin = CalibrationBin(confidence, num_bins_);
  ++counts_[bin];
  confidence_sums_[bin] += std::clamp(confidence, 0.0, 1.0);
  correct_[bin] += correct ? 1 : 0;
}

Calibration CalibrationAccumulator::Result() const {
  Calibration c;
  for (int b = 0; b < num_bins_; ++b) c.count += counts_[b];
  for (int b = 0; b < num_bins_; ++b) {
    ReliabilityBin bin;
    bin.lower = double(b) / num_bins_;
    bin.upper = double(b + 1) / num_bins_;
    bin.count = counts_[b];
    if (bin.count > 0) {
      bin.mean_confidence = confidence_sums_[b] / double(bin.count);
      bin.accuracy = double(correct_[b]) / double(bin.count);
      const double gap = std::abs(bin.accuracy - bin.mean_confidence);
      c.ece += double(bin.count) / double(c.count) * gap;
      c.mce = std::max(c.mce, gap);
    }
    c.bins.push_back(bin);
  }
  return c;
}

double KlDivergence(absl::Span<const double> p, absl::Span<const double> q, double q_floor) {
  if (p.size() != q.size()) return std::numeric_limits<double>::quiet_NaN();
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    kl += p[i] * std::log(p[i] / std::max(q[i], q_floor));
  }
  return kl;
}

double JsDivergence(absl::Span<const double> p, absl::Span<const double> q) {
  if (p.size() != q.size()) return std::numeric_limits<double>::quiet_NaN();
  double js = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) js += 0.5 * p[i] * std::log(p[i] / m);
    if (q[i] > 0) js += 0.5 * q[i] * std::log(q[i] / m);
  }
  return js;
}

double Entropy(absl::Span<const double> p) {
  double h = 0;
  for (double v : p) {
    if (v > 0) h -= v * std::log(v);
  }
  return h;
}

int ArgMax(absl::Span<const double> values) {
  if (values.empty()) return -1;
  return int(std::max_element(values.begin(), values.end()) - values.begin());
}

std::vector<double> AverageRanks(absl::Span<const double> values) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(n, 0.0);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank = (double(i) + double(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

double PearsonCorrelation(absl::Span<const double> x, absl::Span<const double> y) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (x.size() != y.size() || x.size() < 2) return nan;
  const double n = double(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return nan;
  return sxy / std::sqrt(sxx * syy);
}

double SpearmanCorrelation(absl::Span<const double> x, absl::Span<const double> y) {
  if (x.size() != y.size()) return std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> rx = AverageRanks(x), ry = AverageRanks(y);
  return PearsonCorrelation(rx, ry);
}

std::vector<double> Normalized(absl::Span<const double> values) {
  double sum = 0;
  for (double v : values) sum += v;
  std::vector<double> out(values.begin(), values.end());
  if (sum <= 0) {
    std::fill(out.begin(), out.end(), 0.0);
    return out;
  }
  for (double& v : out) v /= sum;
  return out;
}

bool VoteAccumulator::Add(absl::Span<const double> votes, absl::Span<const double> prediction) {
  if (votes.size() != prediction.size() || votes.empty()) return false;
  const std::vector<double> p = Normalized(votes);
  double sum = 0;
  for (double v : p) sum += v;
  if (sum <= 0) return false;
  ++count_;
  const int predicted = ArgMax(prediction);
  majority_correct_ += predicted == ArgMax(p);
  top1_in_voted_ += p[predicted] > 0;
  kl_sum_ += KlDivergence(p, prediction);
  js_sum_ += JsDivergence(p, prediction);
  return true;
}

VoteSummary VoteAccumulator::Result() const {
  VoteSummary s;
  s.count = count_;
  if (count_ == 0) return s;
  s.majority_accuracy = double(majority_correct_) / double(count_);
  s.top1_in_voted_rate = double(top1_in_voted_) / double(count_);
  s.mean_kl = kl_sum_ / double(count_);
  s.mean_js = js_sum_ / double(count_);
  return s;
}

}  // namespace dmue
