// The evaluation report (torch-free): what the evaluator measured, as
// report.json, as a text table, and as PNG pictures (confusion matrix counts
// and row-normalised, reliability diagram).
#ifndef EVALUATION_REPORT_H_
#define EVALUATION_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "dmue/metrics/metrics.h"

namespace dmue::evaluation {

struct EvaluationReport {
  std::string checkpoint;
  std::string model_spec;  // its ModelSpec file ("": none)
  std::string model_kind;  // "inference" or "multi_branch"
  std::string data;        // description of the data
  bool tta_flip = false;
  std::vector<std::string> class_names;
  ConfusionMatrix confusion{0};
  ClassificationSummary summary;
  Calibration calibration;
  double mean_nll = 0;  // mean -log p(label)
  // Only when the data carries vote distributions.
  std::optional<VoteSummary> votes;
  int64_t votes_missing = 0;  // examples without a distribution
  int64_t num_examples = 0;
  double seconds = 0;  // data loading + forward passes
  double images_per_second = 0;
};

// JSON helpers: a quoted, escaped string; a number (non-finite -> null).
std::string JsonString(absl::string_view s);
std::string JsonNumber(double v);
// A CSV field, quoted (RFC 4180) when it holds a comma, quote or newline.
std::string CsvField(absl::string_view s);

std::string ReportJson(const EvaluationReport& report);
std::string ReportTable(const EvaluationReport& report);

// report.json, confusion.png (row-normalised), confusion_counts.png,
// reliability.png; the directory is created.
absl::Status WriteEvaluationOutputs(const EvaluationReport& report, const std::string& dir);

// "0", "1", ..., "C-1": the names of classes nobody named. Names are never
// guessed from the count (8 classes are FERPlus's in one order and the
// reference AffectNet's in another).
std::vector<std::string> IndexClassNames(int num_classes);

}  // namespace dmue::evaluation

#endif  // EVALUATION_REPORT_H_
