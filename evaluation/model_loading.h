// Loading the model an evaluation or audit runs: any DMUE checkpoint (the
// converted inference model, a multi-branch snapshot, a training checkpoint
// with weights under 'state_dict'), kind auto-detected with IsMultiBranch.
// The class count is read from the checkpoint's classifier and checked
// against the one asked for; errors name the file. With the checkpoint's
// ModelSpec (dmue/model_spec.proto) the architecture is the spec's, and a
// checkpoint whose backbone or class count differs is refused naming both
// files.
#ifndef EVALUATION_MODEL_LOADING_H_
#define EVALUATION_MODEL_LOADING_H_

#include <optional>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "dmue/dmue_model.h"
#include "dmue/inference_model.h"
#include "dmue/model_config.pb.h"
#include "dmue/model_spec.pb.h"
#include "dmue/state_dict.h"

namespace dmue::evaluation {

// A ModelSpec text file and what it holds.
struct SpecFile {
  std::string path;
  dmue::ModelSpec spec;
};

// Which checkpoint to load and how (the flags of evaluate / audit).
struct CheckpointSpec {
  std::string checkpoint;
  // "auto" (ResNet-50-IBN-a when the checkpoint has bottleneck blocks, else
  // ResNet-18), "resnet18" or "resnet50_ibn".
  std::string backbone = "auto";
  int num_classes = 0;  // 0: the checkpoint's
  // Optional ModelConfig text file for other architecture settings (its
  // backbone and num_classes are overridden by the two fields above).
  std::string model_config;
  // The checkpoint's spec, when it has one: its model is the architecture
  // (then --model_config is refused, and --backbone / --num_classes must
  // agree with it).
  std::optional<SpecFile> spec;
};

struct CheckpointInfo {
  bool multi_branch = false;
  int num_classes = 0;
  ModelConfig config;  // backbone and num_classes filled in
};

// Class count and kind from weights read from `path` (for errors).
absl::StatusOr<CheckpointInfo> InspectWeights(const StateDict& weights, const CheckpointSpec& spec);

// An eval-mode inference model (multi-branch checkpoints are converted to
// their main branch, which is bit-identical to ForwardEval).
struct LoadedClassifier {
  CheckpointInfo info;
  InferenceModel model{nullptr};
};
absl::StatusOr<LoadedClassifier> LoadClassifier(const CheckpointSpec& spec);

// An eval-mode multi-branch model; an inference checkpoint is refused.
struct LoadedDmue {
  CheckpointInfo info;
  DmueModel model{nullptr};
};
absl::StatusOr<LoadedDmue> LoadMultiBranch(const CheckpointSpec& spec);

}  // namespace dmue::evaluation

#endif  // EVALUATION_MODEL_LOADING_H_
