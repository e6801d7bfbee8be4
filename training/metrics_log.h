// Append-only metric logs of a training run: one JSON object per line
// (metrics.jsonl) and the same records as CSV (metrics.csv), flushed after
// every record so a crash loses nothing already logged, plus PNG curves of
// every metric over the run.
#ifndef TRAINING_METRICS_LOG_H_
#define TRAINING_METRICS_LOG_H_

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dmue::training {

struct MetricRecord {
  std::string kind;  // "train" or "eval"
  int64_t epoch = 0;
  int64_t step = 0;
  std::map<std::string, double> values;
};

class MetricsLog {
 public:
  // Opens (appending to) <dir>/metrics.jsonl and <dir>/metrics.csv.
  static absl::StatusOr<MetricsLog> Open(const std::string& dir);

  absl::Status Append(const MetricRecord& record);

  // Draws <dir>/curves_<kind>.png for every kind logged so far.
  absl::Status WriteCurves() const;

  const std::vector<MetricRecord>& records() const { return records_; }

 private:
  explicit MetricsLog(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::vector<MetricRecord> records_;
};

// Parses metrics.jsonl lines written by Append (for resume and tools).
absl::StatusOr<MetricRecord> ParseMetricLine(const std::string& line);

}  // namespace dmue::training

#endif  // TRAINING_METRICS_LOG_H_
