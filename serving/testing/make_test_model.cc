// Writes a random-weights inference checkpoint (for tests and demos of the
// server without a trained model) and prints its path.
#include <iostream>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "dmue/model_bundle.h"
#include "serving/testing/test_model.h"

DEFINE_string(output_dir, "", "folder to write random_inference.pth into");
DEFINE_int32(num_classes, 8, "classes of the model");
DEFINE_uint64(seed, 0, "initialisation seed");
DEFINE_bool(with_spec, true,
            "also write random_inference.spec.pbtxt (8 classes: FERPlus names; grey 72 -> 64 input), "
            "making it a model bundle");

namespace {

dmue::ModelSpec SpecFor(int num_classes) {
  const std::vector<std::string> ferplus = {"neutral", "happiness", "surprise", "sadness",
                                            "anger",   "disgust",   "fear",     "contempt"};
  std::vector<std::string> names;
  for (int c = 0; c < num_classes; ++c) names.push_back(num_classes == 8 ? ferplus[c] : std::to_string(c));
  return dmue::serving::testing::TestSpec(names, /*resize=*/72, /*crop=*/64, /*grayscale=*/true);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_output_dir.empty()) {
    std::cerr << "--output_dir is required\n";
    return 2;
  }
  absl::StatusOr<std::string> path =
      dmue::serving::testing::WriteRandomInferenceModel(FLAGS_output_dir, FLAGS_num_classes, FLAGS_seed);
  if (!path.ok()) {
    std::cerr << "error: " << path.status().message() << "\n";
    return 1;
  }
  if (FLAGS_with_spec) {
    if (absl::Status s = dmue::WriteModelSpec(dmue::SpecPathFor(*path), SpecFor(FLAGS_num_classes)); !s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return 1;
    }
  }
  std::cout << *path << "\n";
  return 0;
}
