// Prometheus metrics of the server: counters, gauges and histograms with
// labels, rendered in the Prometheus text exposition format (version 0.0.4)
// for GET /metrics. Thread-safe; no dependencies beyond Abseil.
#ifndef SERVING_METRICS_H_
#define SERVING_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace dmue::serving {

// Label name/value pairs, e.g. {{"route", "/v1/faces"}, {"code", "200"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Metric {
 public:
  enum class Kind { kCounter, kGauge, kHistogram };
  Metric(std::string name, std::string help, Kind kind, std::vector<double> buckets);

  // Counter: adds `value` (>= 0). Gauge: adds `value` (any sign).
  void Add(double value, const Labels& labels = {});
  // Gauge: sets it.
  void Set(double value, const Labels& labels = {});
  // Histogram: records one observation.
  void Observe(double value, const Labels& labels = {});

  // Current value of a counter/gauge, or the observation count of a histogram.
  double Value(const Labels& labels = {}) const;
  // Histogram: sum of the observations.
  double Sum(const Labels& labels = {}) const;

  void Render(std::string* out) const;

 private:
  struct Series {
    double value = 0;                  // counter / gauge
    std::vector<uint64_t> bucket_counts;  // histogram, per upper bound (not cumulative)
    uint64_t count = 0;
    double sum = 0;
  };
  Series& SeriesFor(const Labels& labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string name_;
  const std::string help_;
  const Kind kind_;
  const std::vector<double> buckets_;
  mutable absl::Mutex mutex_;
  std::map<Labels, Series> series_ ABSL_GUARDED_BY(mutex_);
};

class MetricsRegistry {
 public:
  Metric* AddCounter(const std::string& name, const std::string& help);
  Metric* AddGauge(const std::string& name, const std::string& help);
  // `buckets`: increasing upper bounds; +Inf is implied.
  Metric* AddHistogram(const std::string& name, const std::string& help, std::vector<double> buckets);

  // Every metric, in the order added.
  std::string RenderText() const;

 private:
  Metric* Add(std::unique_ptr<Metric> metric);
  mutable absl::Mutex mutex_;
  std::vector<std::unique_ptr<Metric>> metrics_ ABSL_GUARDED_BY(mutex_);
};

// Exponential bucket bounds start, start*factor, ... (count of them).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

}  // namespace dmue::serving

#endif  // SERVING_METRICS_H_
