#include "datasets/lmdb_dataset.h"

#include <lmdb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <glog/logging.h>
#include <opencv2/imgproc.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dmue/base/status_macros.h"

namespace dmue::datasets {
namespace {

constexpr char kMagic[4] = {'D', 'M', 'U', 'E'};
constexpr int kHeaderSize = 16;
constexpr uint8_t kVersion = 1;

absl::Status LmdbError(int rc, absl::string_view what, absl::string_view path) {
  return absl::InternalError(absl::StrCat("LMDB ", what, " failed for '", path, "': ", mdb_strerror(rc)));
}

MDB_val Val(absl::string_view s) {
  MDB_val v;
  v.mv_size = s.size();
  v.mv_data = const_cast<char*>(s.data());
  return v;
}

absl::string_view View(const MDB_val& v) {
  return absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = char((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(in[i])) << (8 * i);
  return v;
}

std::string FormatMeta(const LmdbInfo& info) {
  return absl::StrCat("format=dmue-lmdb\nversion=1\nencoding=", ImageEncodingName(info.encoding),
                      "\nheight=", info.height, "\nwidth=", info.width, "\nchannels=", info.channels,
                      "\nnum_records=", info.num_records, "\ncomplete=", info.complete ? 1 : 0, "\n");
}

absl::Status ParseMeta(absl::string_view text, absl::string_view path, LmdbInfo* info) {
  info->has_meta = true;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    int64_t number = 0;
    const bool numeric = absl::SimpleAtoi(kv.second, &number);
    if (kv.first == "encoding") {
      absl::StatusOr<ImageEncoding> encoding = ParseImageEncoding(kv.second);
      if (!encoding.ok()) return absl::DataLossError(absl::StrCat(path, ": __meta__: ", encoding.status().message()));
      info->encoding = *encoding;
    } else if (kv.first == "height" && numeric) {
      info->height = int(number);
    } else if (kv.first == "width" && numeric) {
      info->width = int(number);
    } else if (kv.first == "channels" && numeric) {
      info->channels = int(number);
    } else if (kv.first == "num_records" && numeric) {
      info->num_records = number;
    } else if (kv.first == "complete" && numeric) {
      info->complete = number != 0;
    } else if (kv.first == "format" && kv.second != "dmue-lmdb") {
      return absl::DataLossError(absl::StrCat(path, ": __meta__ has unknown format '", kv.second, "'"));
    }
  }
  return absl::OkStatus();
}

// Opens an environment on a directory. Read-only opens use MDB_NOLOCK: readers
// of a finished database need no lock table, and LMDB forbids opening one
// environment twice in a process (the train and val loaders often share a
// database) — with a lock table the second open can reset it under the first
// (seen as intermittent "key not found" reads). Reading while another process
// writes the same database is therefore not supported.
absl::Status OpenEnv(const std::string& path, bool read_only, int64_t map_size, MDB_env** env,
                     unsigned int* dbi) {
  int rc = mdb_env_create(env);
  if (rc != 0) return LmdbError(rc, "env_create", path);
  auto fail = [&](int code, absl::string_view what) {
    mdb_env_close(*env);
    *env = nullptr;
    return LmdbError(code, what, path);
  };
  if (map_size > 0 && (rc = mdb_env_set_mapsize(*env, size_t(map_size))) != 0) return fail(rc, "set_mapsize");
  if ((rc = mdb_env_set_maxreaders(*env, 1024)) != 0) return fail(rc, "set_maxreaders");
  unsigned int flags = read_only ? (MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD | MDB_NOLOCK) : MDB_NOTLS;
  rc = mdb_env_open(*env, path.c_str(), flags, 0664);
  if (rc != 0 && read_only && (rc == EACCES || rc == EROFS)) {
    mdb_env_close(*env);
    if ((rc = mdb_env_create(env)) != 0) return LmdbError(rc, "env_create", path);
    mdb_env_set_maxreaders(*env, 1024);
    rc = mdb_env_open(*env, path.c_str(), flags | MDB_NOLOCK, 0664);
  }
  if (rc != 0) return fail(rc, "env_open");
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(*env, nullptr, read_only ? MDB_RDONLY : 0, &txn)) != 0) return fail(rc, "txn_begin");
  if ((rc = mdb_dbi_open(txn, nullptr, 0, dbi)) != 0) {
    mdb_txn_abort(txn);
    return fail(rc, "dbi_open");
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail(rc, "txn_commit");
  return absl::OkStatus();
}

}  // namespace

bool IsReservedKey(absl::string_view key) { return key.size() >= 2 && key[0] == '_' && key[1] == '_'; }

absl::StatusOr<std::string> EncodeRecord(const cv::Mat& image, ImageEncoding encoding, int jpeg_quality) {
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3)) {
    return absl::InvalidArgumentError("EncodeRecord: expected a non-empty uint8 image with 1 or 3 channels");
  }
  if (encoding == ImageEncoding::kRaw) {
    cv::Mat rgb = image;
    if (image.channels() == 1) cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB);
    if (!rgb.isContinuous()) rgb = rgb.clone();
    return std::string(reinterpret_cast<const char*>(rgb.data), rgb.total() * 3);
  }
  ASSIGN_OR_RETURN(std::string bytes, EncodeImage(image, encoding, jpeg_quality));
  std::string record(kHeaderSize, '\0');
  std::memcpy(record.data(), kMagic, 4);
  record[4] = char(kVersion);
  record[5] = char(encoding);
  record[6] = char(image.channels());
  PutU32(uint32_t(image.rows), record.data() + 8);
  PutU32(uint32_t(image.cols), record.data() + 12);
  record += bytes;
  return record;
}

absl::StatusOr<cv::Mat> DecodeRecord(absl::string_view value, const LmdbInfo& info, absl::string_view where,
                                     bool copy) {
  if (value.size() >= kHeaderSize && std::memcmp(value.data(), kMagic, 4) == 0) {
    if (uint8_t(value[4]) != kVersion) {
      return absl::DataLossError(absl::StrCat(where, ": unsupported record version ", int(uint8_t(value[4]))));
    }
    const uint32_t height = GetU32(value.data() + 8), width = GetU32(value.data() + 12);
    absl::StatusOr<cv::Mat> image = DecodeImageRgb(value.substr(kHeaderSize), where);
    if (!image.ok()) return absl::DataLossError(image.status().message());
    if (uint32_t(image->rows) != height || uint32_t(image->cols) != width) {
      return absl::DataLossError(absl::StrCat(where, ": header says ", width, "x", height, ", image is ",
                                              image->cols, "x", image->rows));
    }
    return image;
  }
  if (info.has_meta && info.encoding != ImageEncoding::kRaw) {
    return absl::DataLossError(absl::StrCat(where, ": record has no DMUE header in an encoded database"));
  }
  int height = info.height, width = info.width;
  if (height <= 0 || width <= 0) {
    const int side = int(std::lround(std::sqrt(double(value.size()) / 3.0)));
    height = width = side;
  }
  if (value.size() != size_t(height) * size_t(width) * 3 || value.empty()) {
    return absl::DataLossError(absl::StrCat(where, ": raw record has ", value.size(), " bytes, expected ",
                                            int64_t(height) * width * 3, " (", width, "x", height, "x3)"));
  }
  cv::Mat view(height, width, CV_8UC3, const_cast<char*>(value.data()));
  return copy ? view.clone() : view;
}

// ---------------------------------------------------------------- LmdbWriter

LmdbWriter::LmdbWriter(std::string path, LmdbWriterOptions options)
    : path_(std::move(path)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<LmdbWriter>> LmdbWriter::Open(const std::string& path,
                                                             const LmdbWriterOptions& options) {
  if (options.commit_every < 1) return absl::InvalidArgumentError("LmdbWriterOptions.commit_every must be >= 1");
  if (options.initial_map_size < (int64_t{1} << 16)) {
    return absl::InvalidArgumentError("LmdbWriterOptions.initial_map_size must be >= 64 KiB");
  }
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create LMDB folder '", path, "': ", ec.message()));
  std::unique_ptr<LmdbWriter> writer(new LmdbWriter(path, options));
  absl::Status status = OpenEnv(path, false, options.initial_map_size, &writer->env_, &writer->dbi_);
  RETURN_IF_ERROR(status);
  MDB_envinfo env_info;
  mdb_env_info(writer->env_, &env_info);
  writer->map_size_ = int64_t(env_info.me_mapsize);

  // Existing content: keys (for resume) and the meta record.
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(writer->env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "txn_begin", path);
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn, writer->dbi_, &cursor)) != 0) {
    mdb_txn_abort(txn);
    return LmdbError(rc, "cursor_open", path);
  }
  MDB_val key, value;
  LmdbInfo info;
  bool has_meta = false;
  for (rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
    absl::string_view k = View(key);
    if (k == kMetaKey) {
      has_meta = true;
      status = ParseMeta(View(value), path, &info);
    } else if (!IsReservedKey(k)) {
      writer->keys_.emplace(k);
    }
  }
  mdb_cursor_close(cursor);
  mdb_txn_abort(txn);
  RETURN_IF_ERROR(status);
  writer->num_existing_ = int64_t(writer->keys_.size());
  if (writer->num_existing_ > 0) {
    if (!options.resume) {
      return absl::AlreadyExistsError(absl::StrCat("LMDB '", path, "' already holds ", writer->num_existing_,
                                                   " records and resume is off"));
    }
    if (!has_meta) {
      return absl::FailedPreconditionError(
          absl::StrCat("LMDB '", path, "' has records but no __meta__ (not written by LmdbWriter)"));
    }
    if (info.encoding != options.encoding) {
      return absl::FailedPreconditionError(absl::StrCat(
          "LMDB '", path, "' stores ", ImageEncodingName(info.encoding), " records; cannot resume with ",
          ImageEncodingName(options.encoding)));
    }
    writer->height_ = info.height;
    writer->width_ = info.width;
    writer->channels_ = info.channels;
    LOG(INFO) << "Resuming LMDB " << path << " with " << writer->num_existing_ << " records";
  }
  return writer;
}

LmdbWriter::~LmdbWriter() {
  if (env_ != nullptr) {
    absl::Status status = Commit();
    if (!status.ok()) LOG(ERROR) << "LmdbWriter: final commit failed: " << status;
  }
  Close();
}

void LmdbWriter::Close() {
  if (env_ != nullptr) {
    mdb_dbi_close(env_, dbi_);
    mdb_env_close(env_);
    env_ = nullptr;
  }
}

void LmdbWriter::Abandon() {
  for (const auto& [key, value] : pending_) keys_.erase(key);
  pending_.clear();
  pending_bytes_ = 0;
  Close();
}

bool LmdbWriter::Contains(absl::string_view key) const { return keys_.count(std::string(key)) > 0; }

absl::Status LmdbWriter::Put(absl::string_view key, const cv::Mat& image) {
  if (options_.encoding == ImageEncoding::kRaw) {
    const int channels = 3;
    if (height_ == 0) {
      height_ = image.rows;
      width_ = image.cols;
      channels_ = channels;
    } else if (image.rows != height_ || image.cols != width_) {
      return absl::InvalidArgumentError(absl::StrCat("'", key, "': raw LMDB '", path_, "' stores ", width_, "x",
                                                     height_, " images, got ", image.cols, "x", image.rows));
    }
  }
  absl::StatusOr<std::string> record = EncodeRecord(image, options_.encoding, options_.jpeg_quality);
  if (!record.ok()) return absl::InvalidArgumentError(absl::StrCat("'", key, "': ", record.status().message()));
  return PutRecord(key, *std::move(record));
}

absl::Status LmdbWriter::PutRecord(absl::string_view key, std::string value) {
  if (env_ == nullptr) return absl::FailedPreconditionError(absl::StrCat("LMDB '", path_, "' is closed"));
  if (key.empty() || key.size() > 511 || IsReservedKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid LMDB key '", key, "' (empty, > 511 bytes or __reserved)"));
  }
  if (!keys_.emplace(key).second) {
    return absl::AlreadyExistsError(absl::StrCat("key '", key, "' already in LMDB '", path_, "'"));
  }
  pending_bytes_ += int64_t(key.size() + value.size());
  pending_.emplace_back(std::string(key), std::move(value));
  if (int64_t(pending_.size()) >= options_.commit_every) return Commit();
  return absl::OkStatus();
}

absl::Status LmdbWriter::Grow(int64_t at_least) {
  int64_t size = std::max(map_size_ * 2, map_size_ + 2 * at_least);
  const int rc = mdb_env_set_mapsize(env_, size_t(size));
  if (rc != 0) return LmdbError(rc, "set_mapsize", path_);
  MDB_envinfo env_info;
  mdb_env_info(env_, &env_info);
  VLOG(1) << "LMDB " << path_ << ": map size " << map_size_ << " -> " << env_info.me_mapsize;
  map_size_ = int64_t(env_info.me_mapsize);
  return absl::OkStatus();
}

absl::Status LmdbWriter::CommitWithMeta(bool complete, const std::string* labels) {
  if (env_ == nullptr) return absl::FailedPreconditionError(absl::StrCat("LMDB '", path_, "' is closed"));
  LmdbInfo info;
  info.encoding = options_.encoding;
  info.height = height_;
  info.width = width_;
  info.channels = channels_ == 0 ? 3 : channels_;
  info.num_records = int64_t(keys_.size());
  info.complete = complete;
  const std::string meta = FormatMeta(info);
  for (int attempt = 0; attempt < 64; ++attempt) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return LmdbError(rc, "txn_begin", path_);
    auto put = [&](absl::string_view k, absl::string_view v) {
      MDB_val key = Val(k), value = Val(v);
      return mdb_put(txn, dbi_, &key, &value, 0);
    };
    for (const auto& [k, v] : pending_) {
      if ((rc = put(k, v)) != 0) break;
    }
    if (rc == 0) rc = put(kMetaKey, meta);
    if (rc == 0 && labels != nullptr) rc = put(kLabelsKey, *labels);
    if (rc == 0) {
      rc = mdb_txn_commit(txn);  // frees txn
    } else {
      mdb_txn_abort(txn);
    }
    if (rc == MDB_MAP_FULL) {
      RETURN_IF_ERROR(Grow(pending_bytes_ + int64_t(meta.size()) + (labels ? int64_t(labels->size()) : 0)));
      continue;
    }
    if (rc != 0) return LmdbError(rc, "write transaction", path_);
    pending_.clear();
    pending_bytes_ = 0;
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat("LMDB '", path_, "': map keeps filling up"));
}

absl::Status LmdbWriter::Commit() {
  if (pending_.empty()) return absl::OkStatus();
  return CommitWithMeta(false, nullptr);
}

absl::Status LmdbWriter::Finish(const std::vector<LabelEntry>* labels) {
  std::string text;
  if (labels != nullptr) {
    bool with_distribution = false;
    for (const LabelEntry& e : *labels) with_distribution |= !e.distribution.empty();
    text = FormatLabelList(*labels, with_distribution);
  }
  RETURN_IF_ERROR(CommitWithMeta(true, labels != nullptr ? &text : nullptr));
  Close();
  return absl::OkStatus();
}

// ---------------------------------------------------------------- LmdbReader

absl::StatusOr<std::unique_ptr<LmdbReader>> LmdbReader::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(path) / "data.mdb", ec)) {
    return absl::NotFoundError(absl::StrCat("LMDB '", path, "' does not exist (no data.mdb)"));
  }
  std::unique_ptr<LmdbReader> reader(new LmdbReader(path));
  absl::Status status = OpenEnv(path, true, 0, &reader->env_, &reader->dbi_);
  RETURN_IF_ERROR(status);
  ASSIGN_OR_RETURN(Snapshot snapshot, reader->BeginRead());
  MDB_val key = Val(kMetaKey), value;
  int rc = mdb_get(snapshot.txn_, reader->dbi_, &key, &value);
  if (rc == 0) {
    status = ParseMeta(View(value), path, &reader->info_);
    RETURN_IF_ERROR(status);
  } else if (rc != MDB_NOTFOUND) {
    return LmdbError(rc, "get __meta__", path);
  }
  // Count image records (entries minus reserved keys).
  MDB_stat stat;
  mdb_stat(snapshot.txn_, reader->dbi_, &stat);
  int64_t reserved = 0;
  for (absl::string_view k : {kMetaKey, kLabelsKey}) {
    MDB_val kv = Val(k), v;
    reserved += mdb_get(snapshot.txn_, reader->dbi_, &kv, &v) == 0;
  }
  reader->info_.num_records = int64_t(stat.ms_entries) - reserved;
  return reader;
}

LmdbReader::~LmdbReader() {
  if (env_ != nullptr) mdb_env_close(env_);
}

LmdbReader::Snapshot::Snapshot(Snapshot&& other) noexcept : reader_(other.reader_), txn_(other.txn_) {
  other.txn_ = nullptr;
}

LmdbReader::Snapshot& LmdbReader::Snapshot::operator=(Snapshot&& other) noexcept {
  if (this != &other) {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    reader_ = other.reader_;
    txn_ = other.txn_;
    other.txn_ = nullptr;
  }
  return *this;
}

LmdbReader::Snapshot::~Snapshot() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

absl::StatusOr<absl::string_view> LmdbReader::Snapshot::Get(absl::string_view key) const {
  if (key.empty() || key.size() > 511) {
    return absl::InvalidArgumentError(absl::StrCat("invalid key '", key, "' for LMDB '", reader_->path_, "'"));
  }
  MDB_val k = Val(key), v;
  const int rc = mdb_get(txn_, reader_->dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) {
    return absl::NotFoundError(absl::StrCat("key '", key, "' not found in LMDB '", reader_->path_, "'"));
  }
  if (rc != 0) return LmdbError(rc, absl::StrCat("get '", key, "'"), reader_->path_);
  return View(v);
}

absl::StatusOr<cv::Mat> LmdbReader::Snapshot::GetImage(absl::string_view key, bool copy) const {
  ASSIGN_OR_RETURN(absl::string_view value, Get(key));
  return DecodeRecord(value, reader_->info_, absl::StrCat(reader_->path_, ":", key), copy);
}

absl::StatusOr<LmdbReader::Snapshot> LmdbReader::BeginRead() const {
  MDB_txn* txn = nullptr;
  const int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "read txn_begin", path_);
  return Snapshot(this, txn);
}

absl::StatusOr<cv::Mat> LmdbReader::ReadImage(absl::string_view key) const {
  ASSIGN_OR_RETURN(Snapshot snapshot, BeginRead());
  return snapshot.GetImage(key, /*copy=*/true);
}

absl::StatusOr<std::vector<std::string>> LmdbReader::Keys(bool include_reserved) const {
  ASSIGN_OR_RETURN(Snapshot snapshot, BeginRead());
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(snapshot.txn_, dbi_, &cursor);
  if (rc != 0) return LmdbError(rc, "cursor_open", path_);
  std::vector<std::string> keys;
  MDB_val key, value;
  for (rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
    if (include_reserved || !IsReservedKey(View(key))) keys.emplace_back(View(key));
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get", path_);
  return keys;
}

absl::StatusOr<std::vector<LabelEntry>> LmdbReader::Labels() const {
  ASSIGN_OR_RETURN(Snapshot snapshot, BeginRead());
  ASSIGN_OR_RETURN(absl::string_view text, snapshot.Get(kLabelsKey));
  ASSIGN_OR_RETURN(LabelList list, ParseLabelList(text, ListFormat::kReference, absl::StrCat(path_, ":", kLabelsKey)));
  return std::move(list.entries);
}

absl::Status CheckComplete(const LmdbReader& reader, const std::string& path) {
  if (!reader.info().has_meta || reader.info().complete) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "LMDB '", path, "' is incomplete: its packing stopped before the end (", reader.info().num_records,
      " records so far); rerun the same pack_lmdb command to resume and complete it"));
}

absl::StatusOr<VerifyReport> VerifyLmdb(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<LmdbReader> reader, LmdbReader::Open(path));
  RETURN_IF_ERROR(CheckComplete(*reader, path));
  ASSIGN_OR_RETURN(std::vector<std::string> keys, reader->Keys());
  ASSIGN_OR_RETURN(LmdbReader::Snapshot snapshot, reader->BeginRead());
  VerifyReport report;
  for (const std::string& key : keys) {
    ++report.num_records;
    absl::StatusOr<cv::Mat> image = snapshot.GetImage(key, /*copy=*/false);
    if (image.ok()) {
      ++report.num_ok;
    } else {
      report.bad.emplace_back(key, std::string(image.status().message()));
    }
  }
  absl::StatusOr<std::vector<LabelEntry>> labels = reader->Labels();
  if (labels.ok()) {
    for (const LabelEntry& entry : *labels) {
      const std::string key = LmdbKey(entry);
      if (!std::binary_search(keys.begin(), keys.end(), key)) {
        report.bad.emplace_back(key, "listed in __labels__ but missing from the database");
      }
    }
  } else if (!absl::IsNotFound(labels.status())) {
    report.bad.emplace_back(std::string(kLabelsKey), std::string(labels.status().message()));
  }
  return report;
}

}  // namespace dmue::datasets
