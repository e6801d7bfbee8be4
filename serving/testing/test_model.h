// A seeded random-weights inference checkpoint for hermetic serving tests:
// the pipeline, batching and front ends are tested without a trained model.
#ifndef SERVING_TESTING_TEST_MODEL_H_
#define SERVING_TESTING_TEST_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace dmue::serving::testing {

// Writes <dir>/random_inference.pth (ResNet-18 inference model with
// `num_classes` outputs, initialised from `seed`) and returns its path.
absl::StatusOr<std::string> WriteRandomInferenceModel(const std::string& dir, int num_classes,
                                                      uint64_t seed = 0);

}  // namespace dmue::serving::testing

#endif  // SERVING_TESTING_TEST_MODEL_H_
