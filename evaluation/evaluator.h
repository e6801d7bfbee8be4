// The evaluator: runs a classifier over evaluation data in order and measures
// accuracy, mean per-class accuracy, per-class precision / recall / F1, the
// confusion matrix, calibration (ECE over the top-1 softmax probability), the
// mean NLL, and, for data with vote distributions (FERPlus), accuracy against
// the vote majority, KL(votes || prediction), JS(votes, prediction) and the
// top-1-among-voted rate.
// Optional horizontal-flip test-time augmentation averages the softmax of the
// image and of its mirror. Throughput counts loading and forward passes (not
// AUTO's timing at the start).
#ifndef EVALUATION_EVALUATOR_H_
#define EVALUATION_EVALUATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "evaluation/eval_data.h"
#include "evaluation/model_loading.h"
#include "evaluation/report.h"
#include "inference/classifier.h"

namespace dmue::evaluation {

struct EvaluatorOptions {
  bool tta_flip = false;
  // The model runs through inference/classifier.h (BatchNorm folded). AUTO
  // times fp32, fp32 channels-last and bf16 on the data's batch shape and
  // keeps the fastest within its probability bound (logged); FP32 and BF16
  // fix the dtype, channels_last the layout. //evaluation:evaluate defaults
  // to AUTO; here FP32, so that library callers get fp32 numbers unless they
  // ask for speed.
  inference::PrecisionChoice precision = inference::PrecisionChoice::kFloat32;
  bool channels_last = true;
  // "cpu", "cuda" or "cuda:N" (inference::ClassifierOptions::device); the
  // metrics are computed on the host.
  std::string device = "cpu";
  int calibration_bins = 15;
  bool progress = true;  // progress lines on stderr
};

struct Prediction {
  int64_t index = 0;  // example index in the data
  int label = 0;
  int predicted = 0;
  std::vector<float> probabilities;
};

// Fills everything in the report but checkpoint / model_kind / class_names.
absl::StatusOr<EvaluationReport> Evaluate(LoadedClassifier& classifier, const EvalData& data,
                                          const EvaluatorOptions& options,
                                          std::vector<Prediction>* predictions = nullptr);

// key,label,predicted,confidence,p_<class>... one line per example.
std::string PredictionsCsv(const std::vector<Prediction>& predictions, const EvalData& data,
                           const std::vector<std::string>& class_names);

}  // namespace dmue::evaluation

#endif  // EVALUATION_EVALUATOR_H_
