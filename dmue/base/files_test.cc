#include "dmue/base/files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

namespace fs = std::filesystem;

TEST(FilesTest, WritesAndReplacesAtomically) {
  const std::string path = testing::TempPath("atomic/out.txt");
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(testing::ReadFile(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path, "second, longer").ok());
  EXPECT_EQ(testing::ReadFile(path), "second, longer");
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path())) {
    EXPECT_EQ(entry.path().filename(), "out.txt") << "temp file left behind: " << entry.path();
  }
}

TEST(FilesTest, TempNamesAreUniquePerWrite) {
  EXPECT_NE(UniqueTempPath("x"), UniqueTempPath("x"));
}

TEST(FilesTest, ConcurrentWritersNeverTearTheFile) {
  // Two writers of one path with a fixed temp name overwrite each other's
  // temp; with unique names every read sees one complete version.
  const std::string path = testing::TempPath("atomic/concurrent.txt");
  fs::create_directories(fs::path(path).parent_path());
  const std::string a(200000, 'a'), b(300000, 'b');
  std::vector<std::thread> writers;
  for (const std::string* text : {&a, &b}) {
    writers.emplace_back([&path, text] {
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(WriteFileAtomically(path, *text).ok());
    });
  }
  for (int i = 0; i < 50; ++i) {
    const std::string seen = testing::ReadFile(path);
    if (seen.empty()) continue;  // not written yet
    EXPECT_TRUE(seen == a || seen == b) << "torn file of " << seen.size() << " bytes";
  }
  for (std::thread& t : writers) t.join();
}

TEST(FilesTest, ErrorsNameThePathAndLeaveTheTargetAlone) {
  const absl::Status s = WriteFileAtomically("/nonexistent_dir/x.txt", "data");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent_dir/x.txt"), std::string::npos) << s;
  EXPECT_FALSE(fs::exists("/nonexistent_dir/x.txt"));
}

TEST(FilesTest, CommitMovesAFilledTempFile) {
  const std::string path = testing::TempPath("atomic/committed.bin");
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = UniqueTempPath(path);
  std::ofstream(tmp) << "payload";
  ASSERT_TRUE(CommitTempFile(tmp, path).ok());
  EXPECT_EQ(testing::ReadFile(path), "payload");
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_FALSE(CommitTempFile(tmp, path).ok());  // gone: an error, not a crash
}

TEST(FilesTest, ReadsWholeFilesWithinTheLimit) {
  const std::string path = testing::TempPath("read/bytes.bin");
  fs::create_directories(fs::path(path).parent_path());
  testing::WriteFile(path, std::string("ab\0cd", 5));
  absl::StatusOr<std::string> bytes = ReadFileBytes(path, 5);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, std::string("ab\0cd", 5));

  EXPECT_EQ(ReadFileBytes(path, 4).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileBytes(path + ".missing", 5).status().code(), absl::StatusCode::kNotFound);
  const absl::Status dir = ReadFileBytes(fs::path(path).parent_path(), 5).status();
  EXPECT_EQ(dir.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dir.message().find("not a regular file"), std::string::npos) << dir;
}

}  // namespace
}  // namespace dmue
