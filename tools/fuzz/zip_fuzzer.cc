// Fuzz target: the zip reader (dmue/io/zip_archive.h). Opens the input as an
// archive and, when its layout is accepted, reads every entry whole and as a
// prefix, the two ways torch_checkpoint.cc reads data.pkl and storages.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "dmue/io/zip_archive.h"
#include "tools/fuzz/mem_file.h"

namespace dmue::fuzz {
namespace {

// Real checkpoints have a few hundred entries at most; past this the run
// would only repeat itself.
constexpr size_t kMaxEntriesRead = 256;
constexpr uint64_t kMaxEntryBytes = uint64_t{4} << 20;

void ReadEntries(const io::ZipReader& zip) {
  const size_t n = std::min(zip.entries().size(), kMaxEntriesRead);
  for (size_t i = 0; i < n; ++i) {
    const io::ZipEntry& entry = zip.entries()[i];
    (void)zip.Find(entry.name);
    (void)zip.ReadToString(entry, kMaxEntryBytes);
    unsigned char prefix[64];
    const uint64_t want =
        std::min<uint64_t>(sizeof(prefix), entry.uncompressed_size);
    (void)zip.ReadInto(entry, prefix, want);
  }
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = dmue::fuzz::MemFile::Get().Write(data, size);
  absl::StatusOr<std::unique_ptr<dmue::io::ZipReader>> zip =
      dmue::io::ZipReader::Open(path);
  if (zip.ok()) dmue::fuzz::ReadEntries(**zip);
  return 0;
}
