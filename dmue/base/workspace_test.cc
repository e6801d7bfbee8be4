#include "dmue/base/workspace.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace dmue {
namespace {

namespace fs = std::filesystem;

TEST(EnterWorkspaceTest, WithoutBazelRunStaysWhereItIs) {
  unsetenv("BUILD_WORKSPACE_DIRECTORY");
  const fs::path before = fs::current_path();
  EXPECT_TRUE(EnterWorkspace().ok());
  EXPECT_EQ(fs::current_path(), before);
}

TEST(EnterWorkspaceTest, EntersTheWorkspaceDirectory) {
  const fs::path before = fs::current_path();
  const fs::path workspace = fs::canonical(::testing::TempDir()) / "workspace_test_ws";
  fs::create_directories(workspace);
  setenv("BUILD_WORKSPACE_DIRECTORY", workspace.c_str(), 1);
  EXPECT_TRUE(EnterWorkspace().ok());
  EXPECT_EQ(fs::current_path(), workspace);
  fs::current_path(before);
  unsetenv("BUILD_WORKSPACE_DIRECTORY");
}

TEST(EnterWorkspaceTest, AMissingFolderIsNamed) {
  const std::string missing = ::testing::TempDir() + "/no_such_workspace";
  setenv("BUILD_WORKSPACE_DIRECTORY", missing.c_str(), 1);
  const absl::Status s = EnterWorkspace();
  unsetenv("BUILD_WORKSPACE_DIRECTORY");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find(missing), absl::string_view::npos) << s.message();
}

}  // namespace
}  // namespace dmue
