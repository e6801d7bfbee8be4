// Converts a DMUE checkpoint into an inference model, like the reference's
// convert_weights.py, and (with --spec) into a model bundle: the weights plus
// their ModelSpec beside them, checked against each other.
//
//   bazel run //dmue:convert_to_inference -- --input=ep7_acc0.63.pth --output=target.pth --num_classes=8
//   bazel run //dmue:convert_to_inference -- --input=$PWD/runs/x/last.pth
//       --spec=$PWD/runs/x/best_inference.spec.pbtxt --half_storage --output=$PWD/serving/models/x.pth
#include <cstdlib>
#include <iostream>

#include <torch/torch.h>

#include "absl/strings/str_format.h"
#include "dmue/base/status_macros.h"
#include "dmue/model_bundle.h"
#include "dmue/model_io.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(input, "", "multi-branch checkpoint, or (with --spec) an inference checkpoint (.pth)");
DEFINE_string(output, "", "where to write the inference-model .pth");
DEFINE_int32(num_classes, 8, "without --spec: number of expression classes C (the model has C + 1 branches)");
DEFINE_string(spec, "", "ModelSpec text file of the model: writes a bundle (spec beside --output)");
DEFINE_bool(half_storage, false, "with --spec: store float16 weights (loading restores float32)");

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return 1;
}

// Largest logit difference between the written bundle and the source model,
// relative to the largest logit, on random inputs of the spec's size.
absl::StatusOr<double> RoundTripDeviation(dmue::ModelBundle& source) {
  ASSIGN_OR_RETURN(dmue::ModelBundle written, dmue::LoadModelBundle(FLAGS_output));
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const int side = source.spec.input().crop();
  const torch::Tensor x = torch::randn({8, 3, side, side});
  const torch::Tensor a = source.model->forward(x), b = written.model->forward(x);
  return (a - b).abs().max().item<double>() / std::max(a.abs().max().item<double>(), 1e-12);
}

int WriteBundle() {
  absl::StatusOr<dmue::ModelBundle> bundle = dmue::LoadModelBundle(FLAGS_input, FLAGS_spec);
  if (!bundle.ok()) return Fail(bundle.status());
  if (absl::Status s = dmue::WriteModelBundle(FLAGS_output, bundle->model, bundle->spec, FLAGS_half_storage); !s.ok()) {
    return Fail(s);
  }
  absl::StatusOr<double> deviation = RoundTripDeviation(*bundle);
  if (!deviation.ok()) return Fail(deviation.status());
  std::cout << "wrote " << FLAGS_output << " and " << dmue::SpecPathFor(FLAGS_output)
            << absl::StrFormat(" (%s storage; logits within %.2g of the source, relative)\n",
                               FLAGS_half_storage ? "float16" : "float32", *deviation);
  return 0;
}

int WriteWeights() {
  absl::StatusOr<dmue::StateDict> weights = dmue::ReadWeights(FLAGS_input);
  if (!weights.ok()) return Fail(weights.status());
  if (!dmue::IsMultiBranch(*weights)) {
    std::cerr << "error: " << FLAGS_input << " has no base.layer4_<b> keys: not a multi-branch checkpoint\n";
    return 1;
  }
  if (absl::Status s = dmue::ExportInferenceWeights(*weights, FLAGS_num_classes, FLAGS_output); !s.ok()) {
    return Fail(s);
  }
  std::cout << "wrote " << FLAGS_output << " (no --spec: the server, predict and the evaluator will need one)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("convert a DMUE checkpoint to the inference model (or, with --spec, a model bundle)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (FLAGS_input.empty() || FLAGS_output.empty()) {
    std::cerr << "--input and --output are required\n";
    return 2;
  }
  if (FLAGS_half_storage && FLAGS_spec.empty()) {
    std::cerr << "--half_storage writes a bundle: give --spec\n";
    return 2;
  }
  return FLAGS_spec.empty() ? WriteWeights() : WriteBundle();
}
