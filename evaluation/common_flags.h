// Command-line flags shared by //evaluation:evaluate and //evaluation:audit:
// the checkpoint and its model spec, the data (DatasetConfig file, LMDB +
// list, or image folder), sizes, threads, class names and the device.
//
//   absl::StatusOr<std::optional<SpecFile>> spec = SpecFileFromFlags();
//   ... LoadClassifier(CheckpointSpecFromFlags(*spec)) ...
//   absl::StatusOr<ModelContract> contract = ContractFromFlags(*spec, num_classes);
//   ... OpenEvalData(DataSpecFromFlags(*contract), num_classes) ...
#ifndef EVALUATION_COMMON_FLAGS_H_
#define EVALUATION_COMMON_FLAGS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "evaluation/eval_data.h"
#include "evaluation/model_contract.h"
#include "evaluation/model_loading.h"

namespace dmue::evaluation {

// --spec, else the spec beside --checkpoint when it exists (nullopt: none).
absl::StatusOr<std::optional<SpecFile>> SpecFileFromFlags();
CheckpointSpec CheckpointSpecFromFlags(const std::optional<SpecFile>& spec);
// The contract of --checkpoint (`num_classes` classes) from its spec or the
// flags; its warning, if any, goes to stderr.
absl::StatusOr<ModelContract> ContractFromFlags(const std::optional<SpecFile>& spec, int num_classes);
// The data flags with the contract's input and class names.
DataSpec DataSpecFromFlags(const ModelContract& contract);
// --class_names split on commas (empty when not given).
std::vector<std::string> ClassNamesFlag();
std::string OutputDirFlag();
// Applies --num_threads (0 leaves LibTorch's default).
void ApplyThreadFlag();
// --device ("cpu", "cuda", "cuda:N"), checked up front: an unknown name is
// an InvalidArgument and a device this LibTorch cannot use a
// FailedPrecondition, both reading "--device: ...".
absl::StatusOr<std::string> DeviceFlag();

}  // namespace dmue::evaluation

#endif  // EVALUATION_COMMON_FLAGS_H_
