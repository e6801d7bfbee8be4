// An in-memory file with a path, for fuzzing readers that take a path
// (ZipReader::Open, ReadCheckpoint) at millions of inputs without touching
// the disk.
#ifndef TOOLS_FUZZ_MEM_FILE_H_
#define TOOLS_FUZZ_MEM_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace dmue::fuzz {

// One anonymous memory-backed file (memfd) per process, reused: Write()
// replaces its contents and returns a path that opens it (/proc/self/fd/N).
// The file is regular, so readers that insist on S_ISREG accept it. Not
// thread-safe: fuzz targets run one input at a time.
class MemFile {
 public:
  static MemFile& Get();

  // Aborts if the kernel refuses: that is a broken harness, not a finding.
  const std::string& Write(const uint8_t* data, size_t size);

 private:
  MemFile();
  int fd_;
  std::string path_;
};

}  // namespace dmue::fuzz

#endif  // TOOLS_FUZZ_MEM_FILE_H_
