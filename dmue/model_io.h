// Loading and saving DMUE weights as PyTorch files: reference multi-branch
// snapshots (DataParallel "module." prefixes included), reference target
// (inference) checkpoints, our own training checkpoints (weights under
// "state_dict"), and export of the inference model as a `.pth` that Python's
// reference inference.py loads.
#ifndef DMUE_MODEL_IO_H_
#define DMUE_MODEL_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/dmue_model.h"
#include "dmue/inference_model.h"
#include "dmue/model_config.pb.h"
#include "dmue/state_dict.h"

namespace dmue {

// Reads the tensors of any of the files above (module. prefix stripped).
absl::StatusOr<StateDict> ReadWeights(const std::string& path);

// True when the weights hold the C + 1 layer4 branches of a multi-branch model.
bool IsMultiBranch(const StateDict& weights);

// An eval-mode inference model from a target or a multi-branch checkpoint
// (converted on the fly). Errors name the file and the mismatching keys.
absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& path, const ModelConfig& config);

// Loads a multi-branch checkpoint into `model` (strict).
absl::Status LoadDmueWeights(const std::string& path, DmueModel& model);

// Loads a pretraining checkpoint with the reference's "msra" mapping:
// {'state_dict': feat_net.*} -> base.*, its layer4 copied into every branch,
// fc / loss_layer entries skipped. Every trunk tensor must be present.
absl::Status LoadMsraPretrained(const std::string& path, DmueModel& model);

// Converts the multi-branch weights to the inference model and writes them
// as an OrderedDict .pth (atomically).
absl::Status ExportInferenceWeights(const StateDict& multi_branch, int num_classes, const std::string& path);

}  // namespace dmue

#endif  // DMUE_MODEL_IO_H_
