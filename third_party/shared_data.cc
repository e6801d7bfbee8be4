#include "third_party/shared_data.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dmue {
namespace {

std::vector<std::string> CandidateRoots() {
  std::vector<std::string> roots;
  if (const char* dir = std::getenv("DMUE_SHARED_DIR")) roots.push_back(dir);
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    roots.push_back(absl::StrCat(srcdir, "/shared"));
    roots.push_back(absl::StrCat(srcdir, "/dmue_cpp/external/shared"));
  }
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    roots.push_back(absl::StrCat(ws, "/../shared"));
  }
  roots.push_back("../shared");
  return roots;
}

}  // namespace

absl::StatusOr<std::string> SharedPath(absl::string_view relative) {
  std::vector<std::string> tried;
  for (const std::string& root : CandidateRoots()) {
    std::filesystem::path candidate = std::filesystem::path(root) / std::string(relative);
    std::error_code ec;
    if (std::filesystem::exists(candidate, ec)) {
      return std::filesystem::absolute(candidate, ec).string();
    }
    tried.push_back(candidate.string());
  }
  return absl::NotFoundError(absl::StrCat(
      "shared data file '", relative, "' not found (the read-only ../shared folder ",
      "is absent or incomplete; set DMUE_SHARED_DIR to override). Tried: ",
      absl::StrJoin(tried, ", ")));
}

}  // namespace dmue
