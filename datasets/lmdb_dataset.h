// LMDB image storage.
//
// Layout (compatible with the reference preprocess/make_lmdb.py):
//   key   `<split>_<relative path>` (see LmdbKey in label_list.h)
//   value raw mode:     H*W*3 bytes of RGB uint8 (the reference: 256x256x3)
//         encoded mode: a 16-byte header then PNG or JPEG bytes:
//           "DMUE" | version u8 (1) | encoding u8 (1 png, 2 jpeg) | channels u8 |
//           reserved u8 | height u32 LE | width u32 LE
// Reserved keys (never image records) start with "__":
//   `__meta__`   text `name=value` lines: format, version, encoding, height,
//                width, channels (raw mode), num_records, complete (0/1)
//   `__labels__` the label list in REFERENCE format with distribution columns
//                when present (label_list.h), written by Finish().
// A database written by make_lmdb.py has no `__meta__`; the reader then takes
// raw square RGB records (side = sqrt(size / 3)).
#ifndef DATASETS_LMDB_DATASET_H_
#define DATASETS_LMDB_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datasets/image_codec.h"
#include "datasets/label_list.h"

struct MDB_env;
struct MDB_txn;

namespace dmue::datasets {

inline constexpr absl::string_view kMetaKey = "__meta__";
inline constexpr absl::string_view kLabelsKey = "__labels__";
bool IsReservedKey(absl::string_view key);

struct LmdbInfo {
  ImageEncoding encoding = ImageEncoding::kRaw;
  // Raw mode: size of every record (0 = unknown: square RGB inferred per record).
  int height = 0;
  int width = 0;
  int channels = 3;
  int64_t num_records = 0;  // image records (reserved keys excluded)
  bool complete = false;    // Finish() was called
  bool has_meta = false;    // false for reference-made databases
};

// Encodes one record. Raw: `image` must be RGB uint8 (grey is replicated), its
// bytes are stored as they are. PNG/JPEG: header + encoded bytes (grey stays 1
// channel, which PNG stores compactly).
absl::StatusOr<std::string> EncodeRecord(const cv::Mat& image, ImageEncoding encoding,
                                         int jpeg_quality = 95);
// Decodes one record to RGB uint8 HWC. For raw records the returned Mat is a
// view of `value` (no copy; read-only) unless `copy`; `where` names the record
// in errors (e.g. "<db path>:<key>").
absl::StatusOr<cv::Mat> DecodeRecord(absl::string_view value, const LmdbInfo& info,
                                     absl::string_view where, bool copy = true);

struct LmdbWriterOptions {
  ImageEncoding encoding = ImageEncoding::kRaw;
  int jpeg_quality = 95;
  // Records per write transaction. An interrupted run keeps every committed
  // transaction; a new writer on the same path resumes (Contains() is true for
  // the keys already stored).
  int64_t commit_every = 1000;
  // Initial map size; doubled (or more) whenever LMDB reports MDB_MAP_FULL.
  int64_t initial_map_size = int64_t{64} << 20;
  // false: fail if the database already holds image records.
  bool resume = true;
};

class LmdbWriter {
 public:
  // Creates the directory `path` (data.mdb + lock.mdb inside) if needed.
  static absl::StatusOr<std::unique_ptr<LmdbWriter>> Open(const std::string& path,
                                                          const LmdbWriterOptions& options = {});
  // Commits pending records (a clean stop); use Abandon() to simulate a crash.
  ~LmdbWriter();
  LmdbWriter(const LmdbWriter&) = delete;
  LmdbWriter& operator=(const LmdbWriter&) = delete;

  // True if `key` is stored (committed earlier, also by an earlier run) or pending.
  bool Contains(absl::string_view key) const;
  // Encodes and stores an image; AlreadyExists if the key is present.
  absl::Status Put(absl::string_view key, const cv::Mat& image);
  // Stores an already-encoded record (EncodeRecord output) as it is.
  absl::Status PutRecord(absl::string_view key, std::string value);
  // Writes pending records (and an updated __meta__) in one transaction,
  // growing the map as needed.
  absl::Status Commit();
  // Commits, stores __labels__ (if `labels` is not null) and marks complete.
  absl::Status Finish(const std::vector<LabelEntry>* labels);
  // Drops pending records and closes, as a crash after the last commit would.
  void Abandon();

  int64_t num_records() const { return int64_t(keys_.size()); }
  int64_t num_existing() const { return num_existing_; }  // found on open
  int64_t map_size() const { return map_size_; }
  const std::string& path() const { return path_; }

 private:
  LmdbWriter(std::string path, LmdbWriterOptions options);
  absl::Status CommitWithMeta(bool complete, const std::string* labels);
  absl::Status Grow(int64_t at_least);
  void Close();

  std::string path_;
  LmdbWriterOptions options_;
  MDB_env* env_ = nullptr;
  unsigned int dbi_ = 0;
  int64_t map_size_ = 0;
  int64_t num_existing_ = 0;
  int height_ = 0, width_ = 0, channels_ = 0;  // raw mode: fixed by the first record
  std::unordered_set<std::string> keys_;
  std::vector<std::pair<std::string, std::string>> pending_;
  int64_t pending_bytes_ = 0;
};

class LmdbReader {
 public:
  // Opens read-only, memory-mapped, MDB_NOTLS (transactions are not tied to
  // threads). Many threads may read at once, each through its own Snapshot.
  static absl::StatusOr<std::unique_ptr<LmdbReader>> Open(const std::string& path);
  ~LmdbReader();
  LmdbReader(const LmdbReader&) = delete;
  LmdbReader& operator=(const LmdbReader&) = delete;

  // A read transaction. Values it returns point into the memory map and stay
  // valid until it is destroyed. Use one Snapshot from one thread at a time.
  class Snapshot {
   public:
    Snapshot(Snapshot&& other) noexcept;
    Snapshot& operator=(Snapshot&& other) noexcept;
    ~Snapshot();
    // NotFound naming the key and the database path.
    absl::StatusOr<absl::string_view> Get(absl::string_view key) const;
    // Decoded RGB HWC; raw records are zero-copy views unless `copy`.
    absl::StatusOr<cv::Mat> GetImage(absl::string_view key, bool copy = false) const;

   private:
    friend class LmdbReader;
    Snapshot(const LmdbReader* reader, MDB_txn* txn) : reader_(reader), txn_(txn) {}
    const LmdbReader* reader_;
    MDB_txn* txn_;
  };
  absl::StatusOr<Snapshot> BeginRead() const;

  // Convenience: one short transaction, returns a decoded copy.
  absl::StatusOr<cv::Mat> ReadImage(absl::string_view key) const;
  // All image keys in key order (reserved keys only if asked).
  absl::StatusOr<std::vector<std::string>> Keys(bool include_reserved = false) const;
  // The stored __labels__ list (NotFound if there is none).
  absl::StatusOr<std::vector<LabelEntry>> Labels() const;

  const LmdbInfo& info() const { return info_; }
  const std::string& path() const { return path_; }

 private:
  explicit LmdbReader(std::string path) : path_(std::move(path)) {}
  std::string path_;
  MDB_env* env_ = nullptr;
  unsigned int dbi_ = 0;
  LmdbInfo info_;
};

struct VerifyReport {
  int64_t num_records = 0;  // image records found
  int64_t num_ok = 0;       // decoded fine
  // (key, reason) for records that do not decode, and for label-list keys
  // missing from the database.
  std::vector<std::pair<std::string, std::string>> bad;
  bool ok() const { return bad.empty(); }
};
// Decodes every record (and checks that __labels__ keys exist).
absl::StatusOr<VerifyReport> VerifyLmdb(const std::string& path);

// FailedPrecondition for a database whose packing never finished (our
// __meta__ says complete=0: a killed or failed pack), saying how to resume;
// OK for complete ones and for databases without __meta__ (the reference's).
// The loaders and VerifyLmdb refuse such databases.
absl::Status CheckComplete(const LmdbReader& reader, const std::string& path);

}  // namespace dmue::datasets

#endif  // DATASETS_LMDB_DATASET_H_
