// Evaluates a DMUE checkpoint on labelled data: accuracy, mean per-class
// accuracy, per-class precision / recall / F1, confusion matrix, ECE, and
// vote-distribution agreement for FERPlus-style data. Class names and the
// input transform come from the checkpoint's model spec (--spec, or
// x.spec.pbtxt beside x.pth) when it has one. Writes report.json,
// predictions.csv, confusion.png, confusion_counts.png and reliability.png to
// --output_dir and prints a table.
//
//   bazel run //evaluation:evaluate -- --checkpoint=$PWD/runs/x/best_inference.pth
//       --lmdb=$PWD/runs/synthetic_data/lmdb --list=$PWD/runs/synthetic_data/val_list.txt
//       --resize=72 --crop=64 --output_dir=$PWD/runs/x/eval
#include <cstdio>
#include <iostream>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "dmue/base/files.h"
#include "dmue/base/workspace.h"
#include "evaluation/common_flags.h"
#include "evaluation/evaluator.h"
#include "evaluation/report.h"
#include "inference/classifier.h"

DEFINE_bool(tta_flip, false, "Average the softmax of each image and of its horizontal mirror.");
DEFINE_string(precision, "auto",
              "auto | fp32 | bf16. auto times fp32, fp32 channels-last and bf16 on the data's batch shape and keeps "
              "the fastest within 0.02 of fp32's probabilities (the choice is logged); fp32 gives exact numbers.");
DEFINE_bool(channels_last, true, "NHWC activations with --precision=fp32|bf16 (auto measures the layout).");
DEFINE_bool(bf16, false, "Deprecated spelling of --precision=bf16.");
DEFINE_int32(calibration_bins, 15, "Equal-width bins of the ECE.");

namespace dmue::evaluation {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "evaluate: " << status.message() << "\n";
  return 1;
}

// --precision, or BF16 for the old --bf16 (which contradicts any other
// --precision given).
absl::StatusOr<inference::PrecisionChoice> PrecisionFromFlags() {
  if (!FLAGS_bf16) return inference::ParsePrecision(FLAGS_precision, "--precision");
  if (!gflags::GetCommandLineFlagInfoOrDie("precision").is_default && FLAGS_precision != "bf16") {
    return absl::InvalidArgumentError("--bf16 contradicts --precision=" + FLAGS_precision + ": use --precision alone");
  }
  return inference::PrecisionChoice::kBFloat16;
}

int Main() {
  ApplyThreadFlag();
  absl::StatusOr<std::string> device = DeviceFlag();
  if (!device.ok()) return Fail(device.status());
  const std::string output_dir = OutputDirFlag();
  if (output_dir.empty()) return Fail(absl::InvalidArgumentError("--output_dir is required"));
  absl::StatusOr<std::optional<SpecFile>> spec = SpecFileFromFlags();
  if (!spec.ok()) return Fail(spec.status());
  const CheckpointSpec checkpoint = CheckpointSpecFromFlags(*spec);
  absl::StatusOr<LoadedClassifier> classifier = LoadClassifier(checkpoint);
  if (!classifier.ok()) return Fail(classifier.status());
  absl::StatusOr<ModelContract> contract = ContractFromFlags(*spec, classifier->info.num_classes);
  if (!contract.ok()) return Fail(contract.status());
  const std::vector<std::string>& names = contract->class_names;
  absl::StatusOr<EvalData> data = OpenEvalData(DataSpecFromFlags(*contract), classifier->info.num_classes);
  if (!data.ok()) return Fail(data.status());
  absl::StatusOr<inference::PrecisionChoice> precision = PrecisionFromFlags();
  if (!precision.ok()) return Fail(precision.status());
  EvaluatorOptions options;
  options.tta_flip = FLAGS_tta_flip;
  options.precision = *precision;
  options.channels_last = FLAGS_channels_last;
  options.device = *device;
  options.calibration_bins = FLAGS_calibration_bins;
  std::vector<Prediction> predictions;
  absl::StatusOr<EvaluationReport> report = Evaluate(*classifier, *data, options, &predictions);
  if (!report.ok()) return Fail(report.status());
  report->checkpoint = checkpoint.checkpoint;
  report->model_spec = *spec ? (*spec)->path : "";
  report->model_kind = classifier->info.multi_branch ? "multi_branch" : "inference";
  report->class_names = names;
  if (absl::Status s = WriteEvaluationOutputs(*report, output_dir); !s.ok()) return Fail(s);
  if (absl::Status s = WriteFileAtomically(output_dir + "/predictions.csv", PredictionsCsv(predictions, *data, names));
      !s.ok()) {
    return Fail(s);
  }
  std::cout << ReportTable(*report) << "outputs: " << output_dir << "/{report.json, predictions.csv, confusion.png, "
            << "confusion_counts.png, reliability.png}\n";
  return 0;
}

}  // namespace
}  // namespace dmue::evaluation

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Evaluates a DMUE checkpoint; see evaluation/evaluate_main.cc.");
  // Without --checkpoint: the shipped model bundle (its spec beside it).
  gflags::SetCommandLineOptionWithMode("checkpoint", "serving/models/ferplus_resnet18.pth",
                                       gflags::SET_FLAGS_DEFAULT);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) {
    std::cerr << "evaluate: " << s.message() << "\n";
    return 2;
  }
  return dmue::evaluation::Main();
}
