// Seeded random-weights models for hermetic serving tests: the pipeline,
// batching and front ends are tested without a trained model.
#ifndef SERVING_TESTING_TEST_MODEL_H_
#define SERVING_TESTING_TEST_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dmue/model_spec.pb.h"

namespace dmue::serving::testing {

// Writes <dir>/random_inference.pth (ResNet-18 inference model with
// `num_classes` outputs, initialised from `seed`) and returns its path. No
// spec: like a reference checkpoint, it is served with a model_spec.
absl::StatusOr<std::string> WriteRandomInferenceModel(const std::string& dir, int num_classes,
                                                      uint64_t seed = 0);

// A spec for those weights: ResNet-18, one class per name, resize -> crop
// input, grey or colour.
ModelSpec TestSpec(const std::vector<std::string>& class_names, int resize, int crop, bool grayscale);

// WriteRandomInferenceModel plus `spec` beside the weights (a model bundle);
// returns the weights' path.
absl::StatusOr<std::string> WriteRandomModelBundle(const std::string& dir, const ModelSpec& spec,
                                                   uint64_t seed = 0);

}  // namespace dmue::serving::testing

#endif  // SERVING_TESTING_TEST_MODEL_H_
