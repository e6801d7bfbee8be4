// Locates files of the read-only ../shared folder (golden tensors, models,
// photos, data) from tests, benchmarks and tools.
//
// Tests get the files through the @shared repository as runfiles; binaries run
// with `bazel run` fall back to <workspace>/../shared. When the folder is
// absent, SharedPath() returns an error that says so, and tests skip with that
// message instead of crashing.
#ifndef THIRD_PARTY_SHARED_DATA_H_
#define THIRD_PARTY_SHARED_DATA_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue {

// Absolute path of `relative` (e.g. "golden/batch_c8.pt") inside ../shared.
absl::StatusOr<std::string> SharedPath(absl::string_view relative);

}  // namespace dmue

// Resolves `relative` into `var`, or skips the current GoogleTest test with the
// reason when ../shared (or that file) is missing.
#define DMUE_SHARED_OR_SKIP(var, relative)                  \
  std::string var;                                          \
  {                                                         \
    auto dmue_shared_path_ = ::dmue::SharedPath(relative);  \
    if (!dmue_shared_path_.ok()) {                          \
      GTEST_SKIP() << dmue_shared_path_.status().message(); \
    }                                                       \
    var = *dmue_shared_path_;                               \
  }

#endif  // THIRD_PARTY_SHARED_DATA_H_
