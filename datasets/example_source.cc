#include "datasets/example_source.h"

#include <algorithm>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"

namespace dmue::datasets {
namespace {

class LmdbContext : public ExampleSource::Context {
 public:
  explicit LmdbContext(LmdbReader::Snapshot snapshot) : snapshot(std::move(snapshot)) {}
  LmdbReader::Snapshot snapshot;
};

const std::vector<float>& Empty() {
  static const auto* empty = new std::vector<float>();
  return *empty;
}

}  // namespace

std::vector<int> ExampleSource::Labels() const {
  std::vector<int> labels(size());
  for (int64_t i = 0; i < size(); ++i) labels[i] = label(i);
  return labels;
}

absl::StatusOr<std::shared_ptr<LmdbSource>> LmdbSource::Open(const std::string& lmdb_path,
                                                             std::vector<LabelEntry> entries, bool check_keys) {
  ASSIGN_OR_RETURN(std::unique_ptr<LmdbReader> reader, LmdbReader::Open(lmdb_path));
  RETURN_IF_ERROR(CheckComplete(*reader, lmdb_path));
  if (entries.empty()) return absl::InvalidArgumentError(absl::StrCat("no label entries for LMDB '", lmdb_path, "'"));
  auto source = std::shared_ptr<LmdbSource>(new LmdbSource());
  source->reader_ = std::move(reader);
  source->keys_.reserve(entries.size());
  for (const LabelEntry& e : entries) source->keys_.push_back(LmdbKey(e));
  source->entries_ = std::move(entries);
  if (check_keys) {
    ASSIGN_OR_RETURN(LmdbReader::Snapshot snapshot, source->reader_->BeginRead());
    for (const std::string& key : source->keys_) {
      RETURN_IF_ERROR(snapshot.Get(key));  // Every listed key must be in the database.
    }
  }
  return source;
}

absl::StatusOr<std::unique_ptr<ExampleSource::Context>> LmdbSource::NewContext() const {
  ASSIGN_OR_RETURN(LmdbReader::Snapshot snapshot, reader_->BeginRead());
  return std::unique_ptr<Context>(new LmdbContext(std::move(snapshot)));
}

absl::Status LmdbSource::Read(int64_t index, Context* context, cv::Mat* rgb) const {
  if (index < 0 || index >= size()) return absl::OutOfRangeError(absl::StrCat("example index ", index, " out of range"));
  ASSIGN_OR_RETURN(cv::Mat image, static_cast<LmdbContext*>(context)->snapshot.GetImage(keys_[index]));
  *rgb = std::move(image);
  return absl::OkStatus();
}

InMemorySource::InMemorySource(std::vector<cv::Mat> images, std::vector<int> labels,
                               std::vector<std::vector<float>> distributions)
    : images_(std::move(images)), labels_(std::move(labels)), distributions_(std::move(distributions)) {
  for (cv::Mat& image : images_) {
    if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2RGB);
  }
  labels_.resize(images_.size(), -1);
}

const std::vector<float>& InMemorySource::distribution(int64_t index) const {
  return index < int64_t(distributions_.size()) ? distributions_[index] : Empty();
}

absl::StatusOr<std::unique_ptr<ExampleSource::Context>> InMemorySource::NewContext() const {
  return std::make_unique<Context>();
}

absl::Status InMemorySource::Read(int64_t index, Context*, cv::Mat* rgb) const {
  if (index < 0 || index >= size()) return absl::OutOfRangeError(absl::StrCat("example index ", index, " out of range"));
  *rgb = images_[index];
  return absl::OkStatus();
}

}  // namespace dmue::datasets
