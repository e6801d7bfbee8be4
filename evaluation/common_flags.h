// Command-line flags shared by //evaluation:evaluate and //evaluation:audit:
// the checkpoint, the data (DatasetConfig file, LMDB + list, or image
// folder), sizes, threads and class names.
#ifndef EVALUATION_COMMON_FLAGS_H_
#define EVALUATION_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "evaluation/eval_data.h"
#include "evaluation/model_loading.h"

namespace dmue::evaluation {

ModelSpec ModelSpecFromFlags();
DataSpec DataSpecFromFlags();
// --class_names split on commas (empty when not given).
std::vector<std::string> ClassNamesFlag();
// Class names for `num_classes`: --class_names (its length must match) or the
// defaults.
absl::StatusOr<std::vector<std::string>> ResolveClassNames(int num_classes);
std::string OutputDirFlag();
// Applies --num_threads (0 leaves LibTorch's default).
void ApplyThreadFlag();

}  // namespace dmue::evaluation

#endif  // EVALUATION_COMMON_FLAGS_H_
