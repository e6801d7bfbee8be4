// Indexable sources of training examples (image + label + optional soft
// label) for the loader: an LMDB with a label list, or images in memory.
#ifndef DATASETS_EXAMPLE_SOURCE_H_
#define DATASETS_EXAMPLE_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/label_list.h"
#include "datasets/lmdb_dataset.h"

namespace dmue::datasets {

class ExampleSource {
 public:
  // Per-thread read state (e.g. an LMDB read transaction).
  class Context {
   public:
    virtual ~Context() = default;
  };

  virtual ~ExampleSource() = default;
  virtual int64_t size() const = 0;
  virtual int label(int64_t index) const = 0;
  // Soft label of `index`, empty if none.
  virtual const std::vector<float>& distribution(int64_t index) const = 0;
  virtual absl::StatusOr<std::unique_ptr<Context>> NewContext() const = 0;
  // Sets `rgb` to the 8-bit RGB image of `index`. It may be a view that stays
  // valid only until the next Read with the same context.
  virtual absl::Status Read(int64_t index, Context* context, cv::Mat* rgb) const = 0;

  std::vector<int> Labels() const;
};

// Examples `entries` (keys LmdbKey(entry)) of an LMDB database.
class LmdbSource : public ExampleSource {
 public:
  // Checks that every entry's key is in the database (NotFound naming the
  // first missing key and the path) unless `check_keys` is false.
  static absl::StatusOr<std::shared_ptr<LmdbSource>> Open(const std::string& lmdb_path,
                                                          std::vector<LabelEntry> entries,
                                                          bool check_keys = true);
  int64_t size() const override { return int64_t(entries_.size()); }
  int label(int64_t index) const override { return entries_[index].label; }
  const std::vector<float>& distribution(int64_t index) const override { return entries_[index].distribution; }
  absl::StatusOr<std::unique_ptr<Context>> NewContext() const override;
  absl::Status Read(int64_t index, Context* context, cv::Mat* rgb) const override;
  const std::vector<LabelEntry>& entries() const { return entries_; }
  const LmdbReader& reader() const { return *reader_; }

 private:
  std::unique_ptr<LmdbReader> reader_;
  std::vector<LabelEntry> entries_;
  std::vector<std::string> keys_;
};

// Images held in memory (RGB CV_8UC3; grey is converted on construction).
class InMemorySource : public ExampleSource {
 public:
  InMemorySource(std::vector<cv::Mat> images, std::vector<int> labels,
                 std::vector<std::vector<float>> distributions = {});
  int64_t size() const override { return int64_t(images_.size()); }
  int label(int64_t index) const override { return labels_[index]; }
  const std::vector<float>& distribution(int64_t index) const override;
  absl::StatusOr<std::unique_ptr<Context>> NewContext() const override;
  absl::Status Read(int64_t index, Context* context, cv::Mat* rgb) const override;

 private:
  std::vector<cv::Mat> images_;
  std::vector<int> labels_;
  std::vector<std::vector<float>> distributions_;
};

}  // namespace dmue::datasets

#endif  // DATASETS_EXAMPLE_SOURCE_H_
