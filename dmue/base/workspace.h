// `bazel run` starts a binary in its runfiles tree; the paths a user gives
// (configs, checkpoints, output folders) mean the workspace. Every binary that
// takes paths calls EnterWorkspace() once at start-up.
#ifndef DMUE_BASE_WORKSPACE_H_
#define DMUE_BASE_WORKSPACE_H_

#include "absl/status/status.h"

namespace dmue {

// Changes into $BUILD_WORKSPACE_DIRECTORY when it is set (under `bazel run`);
// OK and nothing done otherwise. FailedPrecondition naming the folder when it
// cannot be entered.
absl::Status EnterWorkspace();

}  // namespace dmue

#endif  // DMUE_BASE_WORKSPACE_H_
