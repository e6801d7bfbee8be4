// A model bundle: inference weights (`<name>.pth`, a state dict PyTorch loads;
// float32 or float16 storage, restored to float32) and their ModelSpec
// (`<name>.spec.pbtxt`, model_spec.proto) beside them.
//
//   absl::StatusOr<ModelBundle> bundle = LoadModelBundle("model.pth");
//
// A checkpoint without a spec file (a reference target checkpoint, say) loads
// only with a spec the caller names; nothing is guessed. A spec that does not
// fit the weights is refused with an error naming both files.
#ifndef DMUE_MODEL_BUNDLE_H_
#define DMUE_MODEL_BUNDLE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/inference_model.h"
#include "dmue/model_spec.pb.h"

namespace dmue {

// `dir/model.pth` -> `dir/model.spec.pbtxt` (any extension is replaced).
std::string SpecPathFor(const std::string& weights_path);

// Field-named errors: "ModelSpec.input.crop: ...".
absl::Status ValidateModelSpec(const ModelSpec& spec);
absl::StatusOr<ModelSpec> LoadModelSpec(const std::string& path);
// Validated, then written atomically.
absl::Status WriteModelSpec(const std::string& path, const ModelSpec& spec);

struct ModelBundle {
  ModelSpec spec;
  std::string weights_path;
  std::string spec_path;
  InferenceModel model{nullptr};  // eval mode, float32
};

// Loads `weights_path` with the spec at `spec_path`, or (empty) the one
// beside the weights. Multi-branch checkpoints are converted to their main
// branch on the fly.
absl::StatusOr<ModelBundle> LoadModelBundle(const std::string& weights_path, const std::string& spec_path = "");

// Writes the inference weights (float32, or float16 storage when
// `half_storage`) and the spec beside them.
absl::Status WriteModelBundle(const std::string& weights_path, const InferenceModel& model, const ModelSpec& spec,
                              bool half_storage = false);

}  // namespace dmue

#endif  // DMUE_MODEL_BUNDLE_H_
