#include "dmue/base/workspace.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace dmue {

absl::Status EnterWorkspace() {
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace == nullptr || chdir(workspace) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("cannot enter the workspace ", workspace));
}

}  // namespace dmue
