#include "tools/fuzz/mem_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dmue::fuzz {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "mem_file: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

MemFile& MemFile::Get() {
  static MemFile* const file = new MemFile();
  return *file;
}

MemFile::MemFile() : fd_(::memfd_create("fuzz_input", MFD_CLOEXEC)) {
  if (fd_ < 0) Die("memfd_create");
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

const std::string& MemFile::Write(const uint8_t* data, size_t size) {
  if (::ftruncate(fd_, 0) != 0) Die("ftruncate");
  size_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("pwrite");
    done += static_cast<size_t>(n);
  }
  return path_;
}

}  // namespace dmue::fuzz
