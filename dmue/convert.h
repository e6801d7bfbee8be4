// Target-branch conversion: a multi-branch DMUE state dict (optionally with
// DataParallel's "module." prefix) -> the inference model's state dict, as the
// reference's convert_weights.py does: keep the trunk, rename layer4_C to
// layer4 and classifiers.C to classifiers.0, drop the auxiliary branches and
// project_w. Unlike the reference, branch indices are parsed, not matched as
// substrings, so models with 10 or more classes convert correctly.
#ifndef DMUE_CONVERT_H_
#define DMUE_CONVERT_H_

#include "absl/status/statusor.h"
#include "dmue/state_dict.h"

namespace dmue {

absl::StatusOr<StateDict> ConvertToInference(const StateDict& multi_branch, int num_classes);

// Removes a leading "module." from every key.
StateDict StripModulePrefix(const StateDict& state);

}  // namespace dmue

#endif  // DMUE_CONVERT_H_
