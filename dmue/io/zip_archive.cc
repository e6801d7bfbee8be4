#include "dmue/io/zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dmue/base/status_macros.h"

namespace dmue::io {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kMaxComment = 0xffff;
constexpr uint64_t kMax32 = 0xffffffffu;

uint16_t Get16(const unsigned char* p) { return p[0] | (p[1] << 8); }
uint32_t Get32(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[3]} << 24);
}
uint64_t Get64(const unsigned char* p) {
  return uint64_t{Get32(p)} | (uint64_t{Get32(p + 4)} << 32);
}
void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}
void Put32(std::string* out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v & 0xffff));
  Put16(out, static_cast<uint16_t>(v >> 16));
}

absl::Status Corrupt(const std::string& path, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("corrupt zip archive ", path, ": ", what));
}

absl::Status ErrnoError(absl::string_view action, const std::string& path) {
  int err = errno;
  std::string message = absl::StrCat(action, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

// zlib's length arguments are 32-bit; feed it in chunks below that.
uint32_t Crc32(uint32_t crc, const unsigned char* data, uint64_t size) {
  constexpr uint64_t kChunk = 1u << 30;
  while (size > 0) {
    uInt n = static_cast<uInt>(std::min(size, kChunk));
    crc = static_cast<uint32_t>(::crc32(crc, data, n));
    data += n;
    size -= n;
  }
  return crc;
}

// Walks the records (id, length, payload) of an extra field; false when one
// runs past the field's end, which the format does not allow.
template <typename Fn>
bool ForEachExtraRecord(const unsigned char* extra, uint64_t len, Fn&& fn) {
  uint64_t e = 0;
  while (e < len) {
    if (len - e < 4) return false;
    const uint16_t id = Get16(extra + e);
    const uint64_t n = Get16(extra + e + 2);
    if (n > len - e - 4) return false;
    fn(id, extra + e + 4, n);
    e += 4 + n;
  }
  return true;
}

// x + y, saturating: the sums below come from hostile 64-bit fields.
uint64_t SatAdd(uint64_t x, uint64_t y) {
  return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

}  // namespace

// ---------------------------------------------------------------- ZipReader

absl::StatusOr<std::unique_ptr<ZipReader>> ZipReader::Open(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status status = ErrnoError("cannot stat", path);
    ::close(fd);
    return status;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file"));
  }
  std::unique_ptr<ZipReader> reader(
      new ZipReader(path, fd, static_cast<uint64_t>(st.st_size)));
  RETURN_IF_ERROR(reader->ParseCentralDirectory());
  return reader;
}

ZipReader::~ZipReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status ZipReader::ReadAt(uint64_t offset, void* dst, uint64_t size,
                               absl::string_view what) const {
  if (offset > file_size_ || size > file_size_ - offset) {
    return absl::DataLossError(absl::StrFormat(
        "truncated zip archive %s: %s at offset %d needs %d bytes but the "
        "file has %d",
        path_, what, offset, size, file_size_));
  }
  auto* out = static_cast<unsigned char*>(dst);
  while (size > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, 1u << 30));
    ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path_);
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrFormat(
          "truncated zip archive %s: unexpected end of file at offset %d "
          "reading %s",
          path_, offset, what));
    }
    out += got;
    offset += static_cast<uint64_t>(got);
    size -= static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

absl::Status ZipReader::ParseCentralDirectory() {
  if (file_size_ < kEndSize) {
    return absl::DataLossError(
        absl::StrFormat("truncated or not a zip archive: %s has only %d bytes",
                        path_, file_size_));
  }
  // The end record sits within the last 22 + 65535 (comment) bytes.
  const uint64_t tail_size = std::min(file_size_, kEndSize + kMaxComment);
  const uint64_t tail_start = file_size_ - tail_size;
  std::vector<unsigned char> tail(tail_size);
  RETURN_IF_ERROR(ReadAt(tail_start, tail.data(), tail_size, "end record"));
  int64_t end_pos = -1;
  for (int64_t i = static_cast<int64_t>(tail_size - kEndSize); i >= 0; --i) {
    if (Get32(&tail[i]) == kEndSig) {
      end_pos = i;
      break;
    }
  }
  if (end_pos < 0) {
    return absl::DataLossError(absl::StrCat(
        "not a zip archive or truncated: no end-of-central-directory record "
        "in ",
        path_));
  }
  const unsigned char* end = &tail[end_pos];
  uint64_t count = Get16(end + 10);
  uint64_t cd_size = Get32(end + 12);
  uint64_t cd_offset = Get32(end + 16);
  const uint64_t end_offset = tail_start + static_cast<uint64_t>(end_pos);

  // Zip64: PyTorch always writes the zip64 end record; its values win when
  // the classic fields saturate.
  if (end_offset >= 20) {
    unsigned char locator[20];
    if (ReadAt(end_offset - 20, locator, 20, "zip64 locator").ok() &&
        Get32(locator) == kZip64LocatorSig) {
      const uint64_t z64_offset = Get64(locator + 8);
      unsigned char z64[56];
      RETURN_IF_ERROR(ReadAt(z64_offset, z64, 56, "zip64 end record"));
      if (Get32(z64) != kZip64EndSig) {
        return Corrupt(path_, "bad zip64 end-of-central-directory signature");
      }
      if (count == 0xffff) count = Get64(z64 + 32);
      if (cd_size == kMax32) cd_size = Get64(z64 + 40);
      if (cd_offset == kMax32) cd_offset = Get64(z64 + 48);
    }
  }
  if (cd_offset > file_size_ || cd_size > file_size_ - cd_offset) {
    return absl::DataLossError(absl::StrFormat(
        "truncated zip archive %s: central directory at offset %d (%d bytes) "
        "lies beyond the end of the file (%d bytes)",
        path_, cd_offset, cd_size, file_size_));
  }
  if (count > cd_size / kCentralHeaderSize) {
    return Corrupt(path_,
                   absl::StrFormat("%d entries cannot fit a %d-byte central "
                                   "directory",
                                   count, cd_size));
  }
  std::vector<unsigned char> cd(cd_size);
  RETURN_IF_ERROR(ReadAt(cd_offset, cd.data(), cd_size, "central directory"));
  entries_.reserve(count);
  uint64_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t consumed = 0;
    RETURN_IF_ERROR(
        ParseCentralEntry(&cd[0] + pos, cd_size - pos, i, &consumed));
    pos += consumed;
  }
  RETURN_IF_ERROR(CheckSizes());
  return CheckLayout(cd_offset, cd_size);
}

absl::Status ZipReader::ParseCentralEntry(const unsigned char* h, uint64_t left,
                                          uint64_t i, uint64_t* consumed) {
  if (left < kCentralHeaderSize || Get32(h) != kCentralHeaderSig) {
    return Corrupt(path_, absl::StrFormat("bad central directory entry %d", i));
  }
  const uint16_t flags = Get16(h + 8);
  ZipEntry entry;
  entry.method = Get16(h + 10);
  entry.crc32 = Get32(h + 16);
  entry.compressed_size = Get32(h + 20);
  entry.uncompressed_size = Get32(h + 24);
  const uint64_t name_len = Get16(h + 28);
  const uint64_t extra_len = Get16(h + 30);
  const uint64_t comment_len = Get16(h + 32);
  entry.local_header_offset = Get32(h + 42);
  if (left - kCentralHeaderSize < name_len + extra_len + comment_len) {
    return Corrupt(path_,
                   absl::StrFormat("central directory entry %d overruns", i));
  }
  entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize),
                    name_len);
  // The zip64 extra field lists only the fields that saturated, in order.
  const unsigned char* extra = h + kCentralHeaderSize + name_len;
  const bool whole = ForEachExtraRecord(
      extra, extra_len,
      [&entry](uint16_t id, const unsigned char* f, uint64_t left) {
        if (id != 0x0001) return;
        auto take = [&](uint64_t* field) {
          if (*field == kMax32 && left >= 8) {
            *field = Get64(f);
            f += 8;
            left -= 8;
          }
        };
        take(&entry.uncompressed_size);
        take(&entry.compressed_size);
        take(&entry.local_header_offset);
      });
  if (!whole) {
    return Corrupt(path_,
                   absl::StrFormat("the extra field of entry '%s' overruns its "
                                   "central directory header",
                                   entry.name));
  }
  if (flags & 1) {
    return absl::UnimplementedError(
        absl::StrCat("encrypted zip entry '", entry.name, "' in ", path_));
  }
  if (entry.method != 0 && entry.method != 8) {
    return absl::UnimplementedError(absl::StrFormat(
        "zip entry '%s' in %s uses compression method %d (only stored and "
        "deflate are supported)",
        entry.name, path_, entry.method));
  }
  if (entry.method == 0 && entry.compressed_size != entry.uncompressed_size) {
    return Corrupt(path_, absl::StrCat("stored entry '", entry.name,
                                       "' has different sizes"));
  }
  // Deflate expands at most ~1032x; a larger claim is corrupt and must not
  // make anyone allocate it.
  if (entry.method == 8 &&
      entry.uncompressed_size / 1032 > entry.compressed_size + 1) {
    return Corrupt(
        path_, absl::StrFormat("entry '%s' claims %d uncompressed bytes from "
                               "%d compressed, more than deflate can produce",
                               entry.name, entry.uncompressed_size,
                               entry.compressed_size));
  }
  if (entry.local_header_offset > file_size_ ||
      entry.compressed_size > file_size_ - entry.local_header_offset) {
    return absl::DataLossError(absl::StrFormat(
        "truncated zip archive %s: entry '%s' at offset %d (%d bytes) lies "
        "beyond the end of the file (%d bytes)",
        path_, entry.name, entry.local_header_offset, entry.compressed_size,
        file_size_));
  }
  index_.emplace(entry.name, entries_.size());
  entries_.push_back(std::move(entry));
  *consumed = kCentralHeaderSize + name_len + extra_len + comment_len;
  return absl::OkStatus();
}

absl::Status ZipReader::CheckSizes() const {
  uint64_t total = 0;
  for (const ZipEntry& e : entries_) total = SatAdd(total, e.uncompressed_size);
  const uint64_t budget =
      file_size_ > (UINT64_MAX - kExpansionAllowance) / kMaxExpansion
          ? UINT64_MAX
          : kMaxExpansion * file_size_ + kExpansionAllowance;
  if (total > budget) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "zip archive %s declares %d uncompressed bytes in %d entries, more "
        "than the %d allowed for a %d-byte file (%d x its size + %d MiB)",
        path_, total, entries_.size(), budget, file_size_, kMaxExpansion,
        kExpansionAllowance >> 20));
  }
  return absl::OkStatus();
}

absl::Status ZipReader::ReadLocalHeader(ZipEntry& entry) const {
  unsigned char h[kLocalHeaderSize];
  RETURN_IF_ERROR(ReadAt(entry.local_header_offset, h, kLocalHeaderSize,
                         absl::StrCat("local header of '", entry.name, "'")));
  if (Get32(h) != kLocalHeaderSig) {
    return Corrupt(path_,
                   absl::StrCat("bad local header for '", entry.name, "'"));
  }
  const uint64_t name_len = Get16(h + 26);
  const uint64_t extra_len = Get16(h + 28);
  std::vector<unsigned char> extra(extra_len);
  RETURN_IF_ERROR(ReadAt(
      entry.local_header_offset + kLocalHeaderSize + name_len, extra.data(),
      extra_len, absl::StrCat("local header of '", entry.name, "'")));
  if (!ForEachExtraRecord(extra.data(), extra_len,
                          [](uint16_t, const unsigned char*, uint64_t) {})) {
    return Corrupt(path_,
                   absl::StrFormat("the extra field of entry '%s' overruns its "
                                   "local header",
                                   entry.name));
  }
  const uint64_t data =
      entry.local_header_offset + kLocalHeaderSize + name_len + extra_len;
  if (data > file_size_ || entry.compressed_size > file_size_ - data) {
    return absl::DataLossError(absl::StrFormat(
        "truncated zip archive %s: data of '%s' at offset %d needs %d bytes "
        "but the file has %d",
        path_, entry.name, data, entry.compressed_size, file_size_));
  }
  entry.data_offset = data;
  return absl::OkStatus();
}

absl::Status ZipReader::CheckLayout(uint64_t cd_offset, uint64_t cd_size) {
  for (ZipEntry& entry : entries_) {
    RETURN_IF_ERROR(ReadLocalHeader(entry));
  }
  // Each entry occupies [local header, end of data). Entries that share
  // bytes (several names for one deflate stream, say) would multiply what a
  // small file decompresses to, so no two may overlap, nor may one overlap
  // the central directory.
  std::vector<const ZipEntry*> order;
  order.reserve(entries_.size());
  for (const ZipEntry& e : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const ZipEntry* a, const ZipEntry* b) {
              return a->local_header_offset < b->local_header_offset;
            });
  const uint64_t cd_end = cd_offset + cd_size;
  for (size_t i = 0; i < order.size(); ++i) {
    const ZipEntry& e = *order[i];
    const uint64_t end = e.data_offset + e.compressed_size;
    if (e.local_header_offset < cd_end && cd_offset < end) {
      return Corrupt(
          path_, absl::StrFormat("entry '%s' (bytes %d-%d) overlaps the "
                                 "central directory (bytes %d-%d)",
                                 e.name, e.local_header_offset, end, cd_offset,
                                 cd_end));
    }
    if (i + 1 < order.size() && end > order[i + 1]->local_header_offset) {
      const ZipEntry& next = *order[i + 1];
      return Corrupt(
          path_, absl::StrFormat("entries '%s' (bytes %d-%d) and '%s' (from "
                                 "byte %d) overlap",
                                 e.name, e.local_header_offset, end, next.name,
                                 next.local_header_offset));
    }
  }
  return absl::OkStatus();
}

const ZipEntry* ZipReader::Find(absl::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

// The scratch buffer through which the unwanted rest of an entry streams.
constexpr uint64_t kScratchSize = uint64_t{1} << 20;

absl::Status ZipReader::ReadStored(const ZipEntry& entry, unsigned char* dst,
                                   uint64_t size, uint32_t* crc) const {
  const std::string what = absl::StrCat("entry '", entry.name, "'");
  RETURN_IF_ERROR(ReadAt(entry.data_offset, dst, size, what));
  *crc = Crc32(*crc, dst, size);
  std::vector<unsigned char> scratch;
  for (uint64_t done = size; done < entry.uncompressed_size;) {
    const uint64_t n = std::min(entry.uncompressed_size - done, kScratchSize);
    scratch.resize(n);
    RETURN_IF_ERROR(ReadAt(entry.data_offset + done, scratch.data(), n, what));
    *crc = Crc32(*crc, scratch.data(), n);
    done += n;
  }
  return absl::OkStatus();
}

absl::Status ZipReader::ReadDeflated(const ZipEntry& entry, unsigned char* dst,
                                     uint64_t size, uint32_t* crc) const {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    return absl::InternalError("zlib inflateInit2 failed");
  }
  const std::string what = absl::StrCat("entry '", entry.name, "'");
  const uint64_t total = entry.uncompressed_size;
  std::vector<unsigned char> in(std::min(entry.compressed_size, kScratchSize));
  std::vector<unsigned char> scratch(std::min(total - size, kScratchSize) + 1);
  uint64_t in_pos = entry.data_offset;
  uint64_t in_left = entry.compressed_size;
  uint64_t out_done = 0;
  absl::Status status;
  while (true) {
    if (zs.avail_in == 0 && in_left > 0) {
      const uint64_t n = std::min<uint64_t>(in_left, in.size());
      status = ReadAt(in_pos, in.data(), n, what);
      if (!status.ok()) break;
      in_pos += n;
      in_left -= n;
      zs.next_in = in.data();
      zs.avail_in = static_cast<uInt>(n);
    }
    // The wanted prefix goes to `dst`, the rest to `scratch`; once the
    // declared size is reached, one more byte of room shows whether the
    // stream holds more than it declared.
    unsigned char* out;
    uint64_t room;
    if (out_done < size) {
      out = dst + out_done;
      room = std::min<uint64_t>(size - out_done, 1u << 30);
    } else {
      out = scratch.data();
      room = std::min<uint64_t>(total - out_done, scratch.size() - 1);
      if (room == 0) room = 1;
    }
    zs.next_out = out;
    zs.avail_out = static_cast<uInt>(room);
    const int ret = inflate(&zs, Z_NO_FLUSH);
    const uint64_t produced = room - zs.avail_out;
    out_done += produced;
    if (out_done > total) {
      status = Corrupt(path_, absl::StrCat(what,
                                           " inflates to more than its "
                                           "declared size"));
      break;
    }
    *crc = Crc32(*crc, out, produced);
    if (ret == Z_STREAM_END) break;
    // Z_BUF_ERROR means no progress was possible: only more input can help.
    if (ret == Z_OK || (ret == Z_BUF_ERROR && zs.avail_in == 0 && in_left > 0))
      continue;
    status = Corrupt(path_, absl::StrCat("cannot inflate ", what));
    break;
  }
  inflateEnd(&zs);
  RETURN_IF_ERROR(status);
  if (out_done != total) {
    return Corrupt(path_, absl::StrCat(what, " inflates to the wrong size"));
  }
  return absl::OkStatus();
}

absl::Status ZipReader::ReadInto(const ZipEntry& entry, void* dst,
                                 uint64_t size) const {
  if (size > entry.uncompressed_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: entry '%s' holds %d bytes, fewer than the %d "
                        "wanted",
                        path_, entry.name, entry.uncompressed_size, size));
  }
  if (entry.data_offset == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: entry '%s' does not come from this reader", path_, entry.name));
  }
  auto* out = static_cast<unsigned char*>(dst);
  uint32_t crc = 0;
  RETURN_IF_ERROR(entry.method == 0 ? ReadStored(entry, out, size, &crc)
                                    : ReadDeflated(entry, out, size, &crc));
  if (crc != entry.crc32) {
    return Corrupt(path_,
                   absl::StrFormat("CRC mismatch in entry '%s' (stored %08x, "
                                   "computed %08x)",
                                   entry.name, entry.crc32, crc));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZipReader::ReadToString(const ZipEntry& entry,
                                                    uint64_t max_size) const {
  if (entry.uncompressed_size > max_size) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: entry '%s' declares %d bytes, more than the limit of %d", path_,
        entry.name, entry.uncompressed_size, max_size));
  }
  std::string out(entry.uncompressed_size, '\0');
  RETURN_IF_ERROR(ReadInto(entry, out.data(), out.size()));
  return out;
}

// ---------------------------------------------------------------- ZipWriter

absl::StatusOr<std::unique_ptr<ZipWriter>> ZipWriter::Create(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", path);
  return std::unique_ptr<ZipWriter>(new ZipWriter(path, fd));
}

ZipWriter::~ZipWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status ZipWriter::Write(const void* data, uint64_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, 1u << 30));
    ssize_t done = ::write(fd_, p, n);
    if (done < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path_);
    }
    p += done;
    size -= static_cast<uint64_t>(done);
    offset_ += static_cast<uint64_t>(done);
  }
  return absl::OkStatus();
}

absl::Status ZipWriter::AddEntry(absl::string_view name, const void* data,
                                 uint64_t size) {
  if (finished_ || fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("zip archive ", path_, " is already finished"));
  }
  if (name.empty() || name.size() > 0xfff0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad zip entry name length for ", path_));
  }
  if (entries_.size() >= 0xfffe) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot write ", path_, ": more than 65534 entries would need zip64"));
  }
  // Torch's padding: an extra field "FB" whose payload fills up to the next
  // 64-byte boundary, counted from after the 4-byte extra-field header.
  const uint64_t start = offset_ + kLocalHeaderSize + name.size() + 4;
  const uint64_t padding = (kAlignment - start % kAlignment) % kAlignment;
  if (size >= kMax32 || start + padding + size >= kMax32) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot write %s: entry '%s' (%d bytes) would pass 4 GiB, which "
        "needs zip64 (not supported)",
        path_, name, size));
  }
  ZipEntry entry;
  entry.name = std::string(name);
  entry.method = 0;
  entry.crc32 = Crc32(0, static_cast<const unsigned char*>(data), size);
  entry.compressed_size = entry.uncompressed_size = size;
  entry.local_header_offset = offset_;

  std::string header;
  Put32(&header, kLocalHeaderSig);
  Put16(&header, 20);      // Version needed: 2.0.
  Put16(&header, 0x0800);  // UTF-8 names.
  Put16(&header, 0);       // Stored.
  Put16(&header, 0);       // Time.
  Put16(&header, 0x21);    // Date: 1980-01-01.
  Put32(&header, entry.crc32);
  Put32(&header, static_cast<uint32_t>(size));
  Put32(&header, static_cast<uint32_t>(size));
  Put16(&header, static_cast<uint16_t>(name.size()));
  Put16(&header, static_cast<uint16_t>(4 + padding));
  header.append(name.data(), name.size());
  header.append("FB");
  Put16(&header, static_cast<uint16_t>(padding));
  header.append(padding, 'Z');
  RETURN_IF_ERROR(Write(header.data(), header.size()));
  RETURN_IF_ERROR(Write(data, size));
  entries_.push_back(std::move(entry));
  return absl::OkStatus();
}

absl::Status ZipWriter::Finish() {
  if (finished_ || fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("zip archive ", path_, " is already finished"));
  }
  const uint64_t cd_offset = offset_;
  std::string cd;
  for (const ZipEntry& e : entries_) {
    Put32(&cd, kCentralHeaderSig);
    Put16(&cd, 20);  // Made by: 2.0 (MS-DOS attributes).
    Put16(&cd, 20);
    Put16(&cd, 0x0800);
    Put16(&cd, 0);
    Put16(&cd, 0);
    Put16(&cd, 0x21);
    Put32(&cd, e.crc32);
    Put32(&cd, static_cast<uint32_t>(e.compressed_size));
    Put32(&cd, static_cast<uint32_t>(e.uncompressed_size));
    Put16(&cd, static_cast<uint16_t>(e.name.size()));
    Put16(&cd, 0);  // Extra.
    Put16(&cd, 0);  // Comment.
    Put16(&cd, 0);  // Disk.
    Put16(&cd, 0);  // Internal attributes.
    Put32(&cd, 0);  // External attributes.
    Put32(&cd, static_cast<uint32_t>(e.local_header_offset));
    cd.append(e.name);
  }
  if (cd_offset + cd.size() + kEndSize >= kMax32) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot write ", path_, ": archive would pass 4 GiB (needs zip64)"));
  }
  Put32(&cd, kEndSig);
  Put16(&cd, 0);
  Put16(&cd, 0);
  Put16(&cd, static_cast<uint16_t>(entries_.size()));
  Put16(&cd, static_cast<uint16_t>(entries_.size()));
  Put32(&cd, static_cast<uint32_t>(cd.size() - 0));  // Patched below.
  Put32(&cd, static_cast<uint32_t>(cd_offset));
  Put16(&cd, 0);
  // The central directory size excludes the end record itself.
  const uint32_t cd_size = static_cast<uint32_t>(cd.size() - kEndSize);
  for (int i = 0; i < 4; ++i) {
    cd[cd.size() - kEndSize + 12 + i] = static_cast<char>(cd_size >> (8 * i));
  }
  RETURN_IF_ERROR(Write(cd.data(), cd.size()));
  // Durable before the caller renames it over an older file.
  if (::fsync(fd_) != 0) return ErrnoError("cannot sync", path_);
  const int fd = fd_;
  fd_ = -1;
  finished_ = true;
  if (::close(fd) != 0) return ErrnoError("cannot close", path_);
  return absl::OkStatus();
}

}  // namespace dmue::io
