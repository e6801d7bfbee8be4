// Converts a multi-branch DMUE checkpoint (reference snapshot or ours) into the
// inference model's .pth, like the reference's convert_weights.py:
//
//   bazel run //dmue:convert_to_inference -- --input=ep7_acc0.63.pth --output=target.pth --num_classes=8
#include <cstdlib>
#include <iostream>

#include "dmue/model_io.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(input, "", "multi-branch checkpoint (.pth)");
DEFINE_string(output, "", "where to write the inference-model .pth");
DEFINE_int32(num_classes, 8, "number of expression classes C (the model has C + 1 branches)");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("convert a multi-branch DMUE checkpoint to the inference model");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (FLAGS_input.empty() || FLAGS_output.empty()) {
    std::cerr << "--input and --output are required\n";
    return 2;
  }
  absl::StatusOr<dmue::NamedTensors> weights = dmue::ReadWeights(FLAGS_input);
  if (!weights.ok()) {
    std::cerr << "error: " << weights.status().message() << "\n";
    return 1;
  }
  if (!dmue::IsMultiBranch(*weights)) {
    std::cerr << "error: " << FLAGS_input << " has no base.layer4_<b> keys: not a multi-branch checkpoint\n";
    return 1;
  }
  if (absl::Status s = dmue::ExportInferenceWeights(*weights, FLAGS_num_classes, FLAGS_output); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  }
  std::cout << "wrote " << FLAGS_output << "\n";
  return 0;
}
