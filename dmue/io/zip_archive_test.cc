#include "dmue/io/zip_archive.h"

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"

namespace dmue::io {
namespace {

using ::dmue::testing::TempPath;
using ::dmue::testing::ReadFile;
using ::dmue::testing::WriteFile;

uint32_t Get32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
uint16_t Get16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) |
                               (static_cast<unsigned char>(s[at + 1]) << 8));
}

void Put16(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v));
  out->push_back(static_cast<char>(v >> 8));
}
void Put32(std::string* out, uint32_t v) {
  Put16(out, v & 0xffff);
  Put16(out, v >> 16);
}

// A one-entry archive with a raw-deflated entry, built by hand the way other
// zip writers (Python's zipfile with ZIP_DEFLATED) lay it out.
std::string DeflatedArchive(const std::string& name, const std::string& data,
                            bool corrupt_crc) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string packed(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = data.size();
  zs.next_out = reinterpret_cast<Bytef*>(packed.data());
  zs.avail_out = packed.size();
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  packed.resize(zs.total_out);
  deflateEnd(&zs);
  uint32_t crc =
      crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size());
  if (corrupt_crc) crc ^= 1;
  std::string out;
  Put32(&out, 0x04034b50);
  Put16(&out, 20);
  Put16(&out, 0);
  Put16(&out, 8);
  Put32(&out, 0);
  Put32(&out, crc);
  Put32(&out, packed.size());
  Put32(&out, data.size());
  Put16(&out, name.size());
  Put16(&out, 0);
  out += name + packed;
  const uint32_t cd = out.size();
  Put32(&out, 0x02014b50);
  Put16(&out, 20);
  Put16(&out, 20);
  Put16(&out, 0);
  Put16(&out, 8);
  Put32(&out, 0);
  Put32(&out, crc);
  Put32(&out, packed.size());
  Put32(&out, data.size());
  Put16(&out, name.size());
  Put32(&out, 0);
  Put32(&out, 0);
  Put32(&out, 0);
  Put32(&out, 0);
  out += name;
  const uint32_t cd_size = out.size() - cd;
  Put32(&out, 0x06054b50);
  Put32(&out, 0);
  Put16(&out, 1);
  Put16(&out, 1);
  Put32(&out, cd_size);
  Put32(&out, cd);
  Put16(&out, 0);
  return out;
}

TEST(ZipArchiveTest, WritesAlignedStoredEntriesAndReadsThemBack) {
  const std::string path = TempPath("roundtrip.zip");
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  {
    absl::StatusOr<std::unique_ptr<ZipWriter>> w = ZipWriter::Create(path);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->AddEntry("archive/data.pkl", "hello").ok());
    ASSERT_TRUE((*w)->AddEntry("archive/data/0", big).ok());
    ASSERT_TRUE((*w)->AddEntry("archive/data/1", "").ok());
    ASSERT_TRUE((*w)->AddEntry("archive/version", "3\n").ok());
    ASSERT_TRUE((*w)->Finish().ok());
    EXPECT_FALSE((*w)->AddEntry("late", "x").ok());
  }
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)->entries().size(), 4u);
  EXPECT_EQ((*r)->entries()[1].name, "archive/data/0");
  const ZipEntry* e = (*r)->Find("archive/data/0");
  ASSERT_NE(e, nullptr);
  absl::StatusOr<std::string> got = (*r)->ReadToString(*e, 1 << 20);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, big);
  EXPECT_EQ(*(*r)->ReadToString(*(*r)->Find("archive/version"), 10), "3\n");
  EXPECT_EQ(*(*r)->ReadToString(*(*r)->Find("archive/data/1"), 10), "");
  EXPECT_FALSE((*r)->ReadToString(*e, 1000).ok());  // Over the cap.
  EXPECT_EQ((*r)->Find("missing"), nullptr);

  // Every entry's data starts on a 64-byte boundary, via an "FB" extra field.
  const std::string raw = ReadFile(path);
  for (const ZipEntry& entry : (*r)->entries()) {
    const size_t h = entry.local_header_offset;
    ASSERT_EQ(Get32(raw, h), 0x04034b50u);
    const size_t name_len = Get16(raw, h + 26);
    const size_t extra_len = Get16(raw, h + 28);
    EXPECT_EQ(raw.substr(h + 30 + name_len, 2), "FB");
    EXPECT_EQ((h + 30 + name_len + extra_len) % 64, 0u) << entry.name;
  }
}

TEST(ZipArchiveTest, ReadsDeflatedEntries) {
  const std::string path = TempPath("deflated.zip");
  std::string data;
  for (int i = 0; i < 50000; ++i) data += std::to_string(i % 97);
  WriteFile(path, DeflatedArchive("x/data.pkl", data, false));
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  const ZipEntry* e = (*r)->Find("x/data.pkl");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->method, 8);
  EXPECT_LT(e->compressed_size, data.size());
  absl::StatusOr<std::string> got = (*r)->ReadToString(*e, 1 << 30);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
}

TEST(ZipArchiveTest, DetectsCrcMismatch) {
  const std::string path = TempPath("badcrc.zip");
  WriteFile(path, DeflatedArchive("a", "some text some text", true));
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::string> got = (*r)->ReadToString((*r)->entries()[0], 100);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("CRC"), std::string::npos);
}

TEST(ZipArchiveTest, MissingFileNamesThePath) {
  const std::string path = TempPath("does_not_exist.zip");
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(path), std::string::npos);
}

TEST(ZipArchiveTest, RejectsEmptyRandomAndTruncatedFiles) {
  const std::string path = TempPath("junk.zip");
  WriteFile(path, "");
  EXPECT_FALSE(ZipReader::Open(path).ok());

  std::mt19937 rng(1);
  std::string noise(5000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  WriteFile(path, noise);
  EXPECT_FALSE(ZipReader::Open(path).ok());

  // Every prefix of a valid archive: an error or a reader whose entries all
  // fail cleanly, never a crash.
  const std::string good = DeflatedArchive("n", std::string(3000, 'q'), false);
  for (size_t n = 0; n < good.size(); ++n) {
    WriteFile(path, good.substr(0, n));
    absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(path), std::string::npos);
      continue;
    }
    for (const ZipEntry& e : (*r)->entries()) {
      (void)(*r)->ReadToString(e, 1 << 20);
    }
  }
  // Cut inside the central directory: the message says "truncated".
  WriteFile(path, good.substr(0, good.size() - 30));
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
}

TEST(ZipArchiveTest, CorruptSizesDoNotAllocate) {
  std::string archive = DeflatedArchive("n", std::string(3000, 'q'), false);
  // Claim a 4 GiB uncompressed size in the central directory entry: more
  // than 21 deflated bytes can produce, so the archive does not even open.
  const size_t cd = archive.size() - 22 - 46 - 1;
  ASSERT_EQ(Get32(archive, cd), 0x02014b50u);
  for (int i = 0; i < 4; ++i) archive[cd + 24 + i] = '\xff';
  const std::string path = TempPath("huge.zip");
  WriteFile(path, archive);
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more than deflate can produce"),
            std::string::npos)
      << r.status();
  EXPECT_NE(r.status().message().find(path), std::string::npos);
}

// --- Hand-made hostile layouts ---------------------------------------------

struct RawEntry {
  std::string name;
  std::string data;  // Written as is after the local header.
  uint16_t method = 0;
  // Declared sizes; -1: data.size().
  int64_t compressed = -1;
  int64_t uncompressed = -1;
  std::string local_extra;
  std::string central_extra;
  // Local header offset the central directory claims; -1: the real one.
  int64_t claimed_offset = -1;
};

// Local headers and data in order, then the central directory and the end
// record. Only the fields the reader looks at are meaningful.
std::string BuildArchive(const std::vector<RawEntry>& entries) {
  std::string out;
  std::vector<uint32_t> offsets;
  for (const RawEntry& e : entries) {
    offsets.push_back(out.size());
    const uint32_t crc =
        crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), e.data.size());
    Put32(&out, 0x04034b50);
    Put16(&out, 20);
    Put16(&out, 0);
    Put16(&out, e.method);
    Put32(&out, 0);
    Put32(&out, crc);
    Put32(&out, e.compressed < 0 ? e.data.size() : e.compressed);
    Put32(&out, e.uncompressed < 0 ? e.data.size() : e.uncompressed);
    Put16(&out, e.name.size());
    Put16(&out, e.local_extra.size());
    out += e.name + e.local_extra + e.data;
  }
  const uint32_t cd = out.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const RawEntry& e = entries[i];
    const uint32_t crc =
        crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), e.data.size());
    Put32(&out, 0x02014b50);
    Put16(&out, 20);
    Put16(&out, 20);
    Put16(&out, 0);
    Put16(&out, e.method);
    Put32(&out, 0);
    Put32(&out, crc);
    Put32(&out, e.compressed < 0 ? e.data.size() : e.compressed);
    Put32(&out, e.uncompressed < 0 ? e.data.size() : e.uncompressed);
    Put16(&out, e.name.size());
    Put16(&out, e.central_extra.size());
    Put16(&out, 0);  // Comment.
    Put16(&out, 0);  // Disk.
    Put16(&out, 0);  // Internal attributes.
    Put32(&out, 0);  // External attributes.
    Put32(&out, e.claimed_offset < 0 ? offsets[i] : e.claimed_offset);
    out += e.name + e.central_extra;
  }
  const uint32_t cd_size = out.size() - cd;
  Put32(&out, 0x06054b50);
  Put32(&out, 0);
  Put16(&out, entries.size());
  Put16(&out, entries.size());
  Put32(&out, cd_size);
  Put32(&out, cd);
  Put16(&out, 0);
  return out;
}

absl::Status OpenStatus(const std::string& name, const std::string& archive) {
  const std::string path = TempPath(name);
  WriteFile(path, archive);
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  return r.status();
}

TEST(ZipHostileTest, BuilderMakesValidArchives) {
  // The builder's baseline opens and reads, so the refusals below are due
  // to the one thing each case breaks.
  const std::string path = TempPath("raw_ok.zip");
  WriteFile(path,
            BuildArchive({{.name = "a", .data = "hello"},
                          {.name = "b",
                           .data = "world",
                           .local_extra = std::string("FB\x02\x00zz", 6)}}));
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*(*r)->ReadToString(*(*r)->Find("b"), 100), "world");
}

TEST(ZipHostileTest, RefusesOverlappingEntries) {
  // Fifty names for one deflated stream: each would inflate it again.
  std::string packed;
  {
    const std::string data(100000, 'z');
    z_stream zs{};
    deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    packed.resize(deflateBound(&zs, data.size()));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = data.size();
    zs.next_out = reinterpret_cast<Bytef*>(packed.data());
    zs.avail_out = packed.size();
    ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    packed.resize(zs.total_out);
    deflateEnd(&zs);
  }
  std::vector<RawEntry> entries = {
      {.name = "s", .data = packed, .method = 8, .uncompressed = 100000}};
  for (int i = 0; i < 50; ++i) {
    RawEntry alias = entries[0];
    alias.name = "alias" + std::to_string(i);
    alias.data = "";
    alias.compressed = packed.size();
    alias.claimed_offset = 0;
    entries.push_back(alias);
  }
  absl::Status s = OpenStatus("overlap.zip", BuildArchive(entries));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("overlap"), std::string::npos) << s;

  // An entry whose data runs into the one after it.
  s = OpenStatus("overlap2.zip", BuildArchive({{.name = "a",
                                                .data = "0123456789",
                                                .compressed = 20,
                                                .uncompressed = 20},
                                               {.name = "b", .data = "x"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("entries 'a'"), std::string::npos) << s;

  // An entry whose data runs into the central directory.
  s = OpenStatus("overlap_cd.zip", BuildArchive({{.name = "a",
                                                  .data = "0123456789",
                                                  .compressed = 30,
                                                  .uncompressed = 30}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("overlaps the central directory"),
            std::string::npos)
      << s;
}

TEST(ZipHostileTest, RefusesExtraFieldsThatOverrunTheirHeader) {
  // A zip64 record that claims 16 bytes of payload but has 4.
  absl::Status s =
      OpenStatus("central_extra.zip",
                 BuildArchive({{.name = "a",
                                .data = "data",
                                .central_extra = std::string("\x01\x00\x10\x00"
                                                             "abcd",
                                                             8)}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("extra field of entry 'a' overruns its central"),
            std::string::npos)
      << s;
  // Two stray bytes after a whole record.
  s = OpenStatus(
      "central_extra2.zip",
      BuildArchive({{.name = "a",
                     .data = "data",
                     .central_extra = std::string("FB\x00\x00zz", 6)}}));
  EXPECT_FALSE(s.ok());
  // The padding record of a local header claiming more than the field.
  s = OpenStatus(
      "local_extra.zip",
      BuildArchive({{.name = "a",
                     .data = "data",
                     .local_extra = std::string("FB\x40\x00zzzz", 8)}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("extra field of entry 'a' overruns its local"),
            std::string::npos)
      << s;
}

TEST(ZipHostileTest, RefusesArchivesDeclaringMoreThanTheirBudget) {
  // 80 deflated entries of 1000 bytes, each claiming a plausible (< 1032x)
  // 1,000,000 bytes: 80 MB from an 85 KB file.
  std::vector<RawEntry> entries;
  for (int i = 0; i < 80; ++i) {
    entries.push_back({.name = "e" + std::to_string(i),
                       .data = std::string(1000, '\x03'),
                       .method = 8,
                       .uncompressed = 1000000});
  }
  const std::string archive = BuildArchive(entries);
  absl::Status s = OpenStatus("bomb.zip", archive);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("declares 80000000 uncompressed bytes"),
            std::string::npos)
      << s;
  EXPECT_LT(ZipReader::kMaxExpansion * archive.size() +
                ZipReader::kExpansionAllowance,
            80000000u);
  // Under the budget the same layout opens (its data fail only when read).
  entries.resize(60);
  EXPECT_TRUE(OpenStatus("no_bomb.zip", BuildArchive(entries)).ok());
}

TEST(ZipHostileTest, ReadsOnlyThePrefixAskedForAndStillChecksTheCrc) {
  std::string data;
  for (int i = 0; i < 50000; ++i) data += std::to_string(i % 97);
  for (bool corrupt : {false, true}) {
    const std::string path = TempPath("prefix.zip");
    WriteFile(path, DeflatedArchive("d", data, corrupt));
    absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status();
    const ZipEntry& e = (*r)->entries()[0];
    std::string head(10, '\0');
    absl::Status s = (*r)->ReadInto(e, head.data(), head.size());
    if (corrupt) {
      ASSERT_FALSE(s.ok());
      EXPECT_NE(s.message().find("CRC"), std::string::npos) << s;
    } else {
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_EQ(head, data.substr(0, 10));
    }
    std::string more(data.size() + 1, '\0');
    EXPECT_FALSE((*r)->ReadInto(e, more.data(), more.size()).ok());
  }
  // Stored entries too.
  const std::string path = TempPath("prefix_stored.zip");
  WriteFile(path, BuildArchive({{.name = "s", .data = data}}));
  absl::StatusOr<std::unique_ptr<ZipReader>> r = ZipReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  std::string head(7, '\0');
  ASSERT_TRUE((*r)->ReadInto((*r)->entries()[0], head.data(), 7).ok());
  EXPECT_EQ(head, data.substr(0, 7));
  // A deflated stream longer than its declared size is refused.
  WriteFile(path, DeflatedArchive("d", data, false));
  std::string raw = ReadFile(path);
  const size_t cd = raw.size() - 22 - 46 - 1;
  const uint32_t shorter = data.size() - 5;
  for (int i = 0; i < 4; ++i) {
    raw[cd + 24 + i] = static_cast<char>(shorter >> (8 * i));
  }
  WriteFile(path, raw);
  r = ZipReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  std::string all(shorter, '\0');
  absl::Status s = (*r)->ReadInto((*r)->entries()[0], all.data(), all.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("more than its declared size"), std::string::npos)
      << s;
}

}  // namespace
}  // namespace dmue::io
