// Writes a random-weights inference checkpoint (for tests and demos of the
// server without a trained model) and prints its path.
#include <iostream>

#include <gflags/gflags.h>

#include "serving/testing/test_model.h"

DEFINE_string(output_dir, "", "folder to write random_inference.pth into");
DEFINE_int32(num_classes, 8, "classes of the model");
DEFINE_uint64(seed, 0, "initialisation seed");

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
  std::cout << *path << "\n";
  return 0;
}
