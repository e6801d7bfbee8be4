#include "dmue/base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"

namespace dmue {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  const int code = errno;
  return absl::Status(code == ENOSPC || code == EDQUOT ? absl::StatusCode::kResourceExhausted
                                                       : absl::StatusCode::kDataLoss,
                      absl::StrCat("cannot ", what, " '", path, "': ", std::strerror(code)));
}

absl::Status SyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced ? absl::OkStatus() : ErrnoError("fsync", path);
}

std::string DirectoryOf(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

absl::Status WriteAll(int fd, absl::string_view contents, const std::string& path) {
  while (!contents.empty()) {
    const ssize_t n = ::write(fd, contents.data(), contents.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("write", path);
    contents.remove_prefix(static_cast<size_t>(n));
  }
  return ::fsync(fd) == 0 ? absl::OkStatus() : ErrnoError("fsync", path);
}

// Renames a synced temp file over `path`, then syncs the directory so the
// rename survives a crash; the temp file is removed if the rename fails.
absl::Status RenameDurably(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status renamed = ErrnoError(absl::StrCat("rename '", tmp, "' to"), path);
    ::unlink(tmp.c_str());
    return renamed;
  }
  return SyncPath(DirectoryOf(path), O_RDONLY | O_DIRECTORY);
}

}  // namespace

std::string UniqueTempPath(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const std::string tmp = UniqueTempPath(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", tmp);
  absl::Status written = WriteAll(fd, contents, tmp);
  if (::close(fd) != 0 && written.ok()) written = ErrnoError("close", tmp);
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  return RenameDurably(tmp, path);
}

absl::Status CommitTempFile(const std::string& temp_path, const std::string& path) {
  if (absl::Status s = SyncPath(temp_path, O_RDONLY); !s.ok()) {
    ::unlink(temp_path.c_str());
    return s;
  }
  return RenameDurably(temp_path, path);
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path, int64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::NotFoundError(absl::StrCat(path, ": cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", st.st_size,
                                                     " bytes exceeds the limit of ", max_bytes,
                                                     " bytes"));
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  const size_t got = data.empty() ? 0 : std::fread(&data[0], 1, data.size(), f.get());
  if (got != data.size()) {
    return absl::DataLossError(absl::StrCat(path, ": short read (", got, " of ", data.size(),
                                            " bytes)"));
  }
  return data;
}

}  // namespace dmue
