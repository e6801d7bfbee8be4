#include "evaluation/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dmue/base/status_macros.h"
#include "dmue/util/progress.h"

namespace dmue::evaluation {

absl::StatusOr<EvaluationReport> Evaluate(LoadedClassifier& classifier, const EvalData& data,
                                          const EvaluatorOptions& options, std::vector<Prediction>* predictions) {
  const int num_classes = classifier.info.num_classes;
  if (data.num_classes != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat("the data has ", data.num_classes,
                                                   " classes but the checkpoint has ", num_classes));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<datasets::Loader> loader, MakeEvalLoader(data));
  inference::ClassifierOptions compute;
  compute.precision = options.precision;
  compute.channels_last = options.channels_last;
  compute.device = options.device;
  compute.auto_batch_sizes = {data.batch_size};
  ASSIGN_OR_RETURN(std::unique_ptr<inference::Classifier> model,
                   inference::Classifier::FromModel(classifier.model, num_classes, data.transform.crop, compute));
  if (options.progress) std::cerr << "evaluate: " << model->compute_summary() << "\n";

  EvaluationReport report;
  report.tta_flip = options.tta_flip;
  report.data = data.description;
  report.confusion = ConfusionMatrix(num_classes);
  CalibrationAccumulator calibration(options.calibration_bins);
  VoteAccumulator votes;
  double nll_sum = 0;
  const int64_t total = data.source->size();
  ProgressMeter meter("evaluate", total, options.progress ? 5.0 : 1e9);
  const auto start = std::chrono::steady_clock::now();

  c10::InferenceMode inference_mode;
  loader->StartEpoch(0);
  std::vector<double> votes_row(num_classes), prediction_row(num_classes);
  while (true) {
    ASSIGN_OR_RETURN(std::optional<datasets::Batch> next, loader->Next());
    if (!next.has_value()) break;
    const datasets::Batch& batch = *next;
    ASSIGN_OR_RETURN(torch::Tensor probs, model->Probabilities(batch.images));
    if (options.tta_flip) {
      ASSIGN_OR_RETURN(const torch::Tensor mirrored, model->Probabilities(torch::flip(batch.images, {3})));
      probs = ((probs + mirrored) / 2).contiguous();
    }
    const auto p = probs.accessor<float, 2>();
    const auto labels = batch.labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < probs.size(0); ++i) {
      int predicted = 0;
      for (int c = 1; c < num_classes; ++c) {
        if (p[i][c] > p[i][predicted]) predicted = c;
      }
      const int label = int(labels[i]);
      if (absl::Status s = report.confusion.Add(label, predicted); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("example '", data.keys[batch.indices[i]], "': ", s.message()));
      }
      calibration.Add(p[i][predicted], predicted == label);
      nll_sum += -std::log(std::max<double>(p[i][label], 1e-12));
      const std::vector<float>& distribution = data.source->distribution(batch.indices[i]);
      if (!distribution.empty()) {
        for (int c = 0; c < num_classes; ++c) {
          votes_row[c] = distribution[c];
          prediction_row[c] = p[i][c];
        }
        if (!votes.Add(votes_row, prediction_row)) ++report.votes_missing;
      } else {
        ++report.votes_missing;
      }
      if (predictions != nullptr) {
        Prediction prediction;
        prediction.index = batch.indices[i];
        prediction.label = label;
        prediction.predicted = predicted;
        prediction.probabilities.assign(p[i].data(), p[i].data() + num_classes);
        predictions->push_back(std::move(prediction));
      }
    }
    meter.Add(probs.size(0));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  meter.Finish();
  report.num_examples = report.confusion.total();
  if (report.num_examples == 0) return absl::InvalidArgumentError(absl::StrCat(data.description, ": no examples"));
  report.summary = Summarize(report.confusion);
  report.calibration = calibration.Result();
  report.mean_nll = nll_sum / double(report.num_examples);
  if (data.has_distributions) {
    report.votes = votes.Result();
  } else {
    report.votes_missing = 0;
  }
  report.seconds = seconds;
  report.images_per_second = seconds > 0 ? double(report.num_examples) / seconds : 0;
  return report;
}

std::string PredictionsCsv(const std::vector<Prediction>& predictions, const EvalData& data,
                           const std::vector<std::string>& class_names) {
  std::string csv = "key,label,predicted,confidence";
  for (const std::string& name : class_names) absl::StrAppend(&csv, ",", CsvField("p_" + name));
  csv += "\n";
  for (const Prediction& p : predictions) {
    absl::StrAppend(&csv, CsvField(data.keys[p.index]), ",", p.label, ",", p.predicted, ",",
                    absl::StrFormat("%.6f", p.probabilities[p.predicted]));
    for (float v : p.probabilities) absl::StrAppend(&csv, ",", absl::StrFormat("%.6f", v));
    csv += "\n";
  }
  return csv;
}

}  // namespace dmue::evaluation
