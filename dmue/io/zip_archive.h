// Minimal zip reader and writer for PyTorch's checkpoint container.
//
// ZipReader finds entries through the central directory (local headers of
// torch files carry zeros when a data descriptor follows), reads stored and
// deflated entries with CRC-32 checks, and understands zip64 sizes/offsets.
// It opens only archives whose layout is sound: every entry's local header
// and data lie inside the file without overlapping another entry or the
// central directory, every extra field is a whole number of records, no
// deflated entry claims more than deflate can expand to, and the entries
// together declare at most kMaxExpansion times the file's size plus
// kExpansionAllowance uncompressed bytes. So a small file cannot make a
// reader decompress gigabytes, whatever it claims.
// ZipWriter writes stored entries whose data start 64-byte aligned, the way
// PyTorch's own writer pads them (an "FB" extra field in the local header), so
// the storages can be mapped directly. The writer refuses archives that would
// need zip64 (>= 4 GiB or >= 65535 entries). Both are torch-free.
#ifndef DMUE_IO_ZIP_ARCHIVE_H_
#define DMUE_IO_ZIP_ARCHIVE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflate.
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  // Where the data starts (after the local header); set by ZipReader::Open.
  uint64_t data_offset = 0;
};

class ZipReader {
 public:
  // Opens `path` and parses its central directory. Errors name the path.
  static absl::StatusOr<std::unique_ptr<ZipReader>> Open(
      const std::string& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // Null when there is no entry with exactly this name.
  const ZipEntry* Find(absl::string_view name) const;

  // Budget on the uncompressed total: torch writes its entries stored
  // (uncompressed), so a real checkpoint declares about its own size; 4x
  // still admits an archive recompressed with deflate even when most of its
  // tensors are zeros, while a bomb of 1 MB cannot declare more than 68 MB.
  static constexpr uint64_t kMaxExpansion = 4;
  static constexpr uint64_t kExpansionAllowance = uint64_t{64} << 20;

  // Decompresses the first `size` bytes of `entry` (at most its
  // uncompressed size) into `dst`. The rest of the entry passes through a
  // small buffer, so a reader that needs only a prefix never allocates the
  // whole entry, yet the CRC is verified over all of it.
  absl::Status ReadInto(const ZipEntry& entry, void* dst, uint64_t size) const;
  // The whole entry; refuses entries larger than `max_size`.
  absl::StatusOr<std::string> ReadToString(const ZipEntry& entry,
                                           uint64_t max_size) const;

 private:
  ZipReader(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), file_size_(size) {}
  absl::Status ReadAt(uint64_t offset, void* dst, uint64_t size,
                      absl::string_view what) const;
  absl::Status ParseCentralDirectory();
  absl::Status ParseCentralEntry(const unsigned char* h, uint64_t left,
                                 uint64_t i, uint64_t* consumed);
  absl::Status ReadLocalHeader(ZipEntry& entry) const;
  absl::Status CheckLayout(uint64_t cd_offset, uint64_t cd_size);
  absl::Status CheckSizes() const;
  absl::Status ReadStored(const ZipEntry& entry, unsigned char* dst,
                          uint64_t size, uint32_t* crc) const;
  absl::Status ReadDeflated(const ZipEntry& entry, unsigned char* dst,
                            uint64_t size, uint32_t* crc) const;

  std::string path_;
  int fd_;
  uint64_t file_size_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// Writes a new archive at `path` (truncating it). Entries are stored
// uncompressed. Call Finish() to write the central directory; an unfinished
// archive is not a valid zip file.
class ZipWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ZipWriter>> Create(
      const std::string& path);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  absl::Status AddEntry(absl::string_view name, const void* data,
                        uint64_t size);
  absl::Status AddEntry(absl::string_view name, absl::string_view data) {
    return AddEntry(name, data.data(), data.size());
  }
  // Writes the central directory and end record, flushes and closes the file.
  absl::Status Finish();

  // Data alignment of every entry, as PyTorch uses.
  static constexpr uint64_t kAlignment = 64;

 private:
  ZipWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status Write(const void* data, uint64_t size);

  std::string path_;
  int fd_;
  uint64_t offset_ = 0;
  std::vector<ZipEntry> entries_;
  bool finished_ = false;
};

}  // namespace dmue::io

#endif  // DMUE_IO_ZIP_ARCHIVE_H_
