#include "serving/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace dmue::serving {
namespace {

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.9g", v);
}

std::string EscapeLabelValue(const std::string& v) {
  return absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

std::string FormatLabels(const Labels& labels, const std::string& extra_name = "",
                         const std::string& extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, first ? "" : ",", k, "=\"", EscapeLabelValue(v), "\"");
    first = false;
  }
  if (!extra_name.empty()) absl::StrAppend(&out, first ? "" : ",", extra_name, "=\"", extra_value, "\"");
  return out + "}";
}

}  // namespace

Metric::Metric(std::string name, std::string help, Kind kind, std::vector<double> buckets)
    : name_(std::move(name)), help_(std::move(help)), kind_(kind), buckets_(std::move(buckets)) {}

Metric::Series& Metric::SeriesFor(const Labels& labels) {
  Series& s = series_[labels];
  if (kind_ == Kind::kHistogram && s.bucket_counts.empty()) s.bucket_counts.assign(buckets_.size(), 0);
  return s;
}

void Metric::Add(double value, const Labels& labels) {
  absl::MutexLock lock(&mutex_);
  SeriesFor(labels).value += value;
}

void Metric::Set(double value, const Labels& labels) {
  absl::MutexLock lock(&mutex_);
  SeriesFor(labels).value = value;
}

void Metric::Observe(double value, const Labels& labels) {
  absl::MutexLock lock(&mutex_);
  Series& s = SeriesFor(labels);
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), value);
  if (it != buckets_.end()) ++s.bucket_counts[it - buckets_.begin()];
  ++s.count;
  s.sum += value;
}

double Metric::Value(const Labels& labels) const {
  absl::MutexLock lock(&mutex_);
  const auto it = series_.find(labels);
  if (it == series_.end()) return 0;
  return kind_ == Kind::kHistogram ? static_cast<double>(it->second.count) : it->second.value;
}

double Metric::Sum(const Labels& labels) const {
  absl::MutexLock lock(&mutex_);
  const auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.sum;
}

void Metric::Render(std::string* out) const {
  const char* type = kind_ == Kind::kCounter ? "counter" : kind_ == Kind::kGauge ? "gauge" : "histogram";
  absl::StrAppend(out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ", type, "\n");
  absl::MutexLock lock(&mutex_);
  for (const auto& [labels, s] : series_) {
    if (kind_ != Kind::kHistogram) {
      absl::StrAppend(out, name_, FormatLabels(labels), " ", FormatValue(s.value), "\n");
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      cumulative += s.bucket_counts[b];
      absl::StrAppend(out, name_, "_bucket", FormatLabels(labels, "le", FormatValue(buckets_[b])), " ",
                      cumulative, "\n");
    }
    absl::StrAppend(out, name_, "_bucket", FormatLabels(labels, "le", "+Inf"), " ", s.count, "\n");
    absl::StrAppend(out, name_, "_sum", FormatLabels(labels), " ", FormatValue(s.sum), "\n");
    absl::StrAppend(out, name_, "_count", FormatLabels(labels), " ", s.count, "\n");
  }
}

Metric* MetricsRegistry::Add(std::unique_ptr<Metric> metric) {
  absl::MutexLock lock(&mutex_);
  metrics_.push_back(std::move(metric));
  return metrics_.back().get();
}

Metric* MetricsRegistry::AddCounter(const std::string& name, const std::string& help) {
  return Add(std::make_unique<Metric>(name, help, Metric::Kind::kCounter, std::vector<double>{}));
}

Metric* MetricsRegistry::AddGauge(const std::string& name, const std::string& help) {
  return Add(std::make_unique<Metric>(name, help, Metric::Kind::kGauge, std::vector<double>{}));
}

Metric* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                      std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  return Add(std::make_unique<Metric>(name, help, Metric::Kind::kHistogram, std::move(buckets)));
}

std::string MetricsRegistry::RenderText() const {
  std::string out;
  absl::MutexLock lock(&mutex_);
  for (const auto& m : metrics_) m->Render(&out);
  return out;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  for (int i = 0; i < count; ++i, start *= factor) b.push_back(start);
  return b;
}

}  // namespace dmue::serving
