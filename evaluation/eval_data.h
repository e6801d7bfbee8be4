// The data an evaluation or an audit runs on: a DatasetConfig file, or an
// LMDB + label list given by flags, or a folder-per-class image tree; always
// read in order (sequential sampler, every example once, no augmentation, the
// eval transform [grey] -> Resize -> CenterCrop -> Normalize). The model's
// input contract (its ModelSpec), when given, sets that transform: the model
// is measured on what it saw in training.
//
// Errors name the input: a missing LMDB key names the key and the database,
// an empty selection names the list and the split, a class count that does
// not match the model names both.
#ifndef EVALUATION_EVAL_DATA_H_
#define EVALUATION_EVAL_DATA_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "datasets/example_source.h"
#include "datasets/loader.h"
#include "datasets/transforms.h"
#include "dmue/model_spec.pb.h"

namespace dmue::evaluation {

// How a model wants its input (ModelSpec.input, evaluation/model_contract.h).
// The data are face crops already, so its face_crop does not apply here. The
// transform is inference's (inference/face_input.h) of `spec`; the fields
// below are its values for the agreement checks and messages.
struct InputContract {
  std::string origin;  // the spec file, for errors
  InputSpec spec;
  int resize = 0;      // 0 keeps the image size
  int crop = 0;
  float mean = 0.5f;
  float std = 0.5f;
  bool grayscale = false;
};

struct DataSpec {
  // Either a DatasetConfig text file ...
  std::string data_config;
  // ... or an LMDB and a label list ...
  std::string lmdb;
  std::string list;
  std::string list_format = "reference";  // reference | rafdb | ferplus
  std::string label_mode = "majority";    // majority | plurality | distribution (FERPlus)
  std::string split;                      // keep only this split ("" = all)
  // ... or a folder-per-class tree (<root>/<class>/<image>).
  std::string image_folder;
  // Folder class names in label order (empty: sorted sub-folder names).
  std::vector<std::string> folder_classes;

  // The model's input contract: it replaces the transform settings of the
  // config, and a config value or a resize / crop override that differs
  // from it is an error naming both.
  std::optional<InputContract> contract;
  // Overrides (<= 0: the config's value; defaults 256 / 224 / 64 / 2).
  int resize = 0;  // --resize
  int crop = 0;    // --crop
  int batch_size = 0;
  int num_workers = 0;
  int64_t max_examples = 0;  // first N examples only (0: all)
  // A run's noisy_labels.txt ("<key> <clean> <noisy>", label_noise_rate):
  // those entries get the noisy label the run trained on.
  std::string noisy_labels;
};

struct EvalData {
  std::shared_ptr<const datasets::ExampleSource> source;
  std::vector<std::string> keys;  // LMDB key or folder-relative path per example
  int num_classes = 0;
  datasets::TransformOptions transform;
  int batch_size = 64;
  int num_workers = 2;
  bool has_distributions = false;  // some example carries a soft label / votes
  // With DataSpec::noisy_labels: per example, its label before the flip (-1:
  // not flipped); empty otherwise.
  std::vector<int> clean_labels;
  std::string description;
};

// Opens the data for a model of `model_classes` classes.
absl::StatusOr<EvalData> OpenEvalData(const DataSpec& spec, int model_classes);

// A sequential loader over every example (last batch kept).
absl::StatusOr<std::unique_ptr<datasets::Loader>> MakeEvalLoader(const EvalData& data);

// Untransformed RGB image of one example (for pictures).
absl::StatusOr<cv::Mat> ReadExampleImage(const EvalData& data, int64_t index);

// Images read from files under a root folder.
class FileSource : public datasets::ExampleSource {
 public:
  FileSource(std::string root, std::vector<datasets::LabelEntry> entries);
  int64_t size() const override { return int64_t(entries_.size()); }
  int label(int64_t index) const override { return entries_[index].label; }
  const std::vector<float>& distribution(int64_t index) const override { return entries_[index].distribution; }
  absl::StatusOr<std::unique_ptr<Context>> NewContext() const override;
  absl::Status Read(int64_t index, Context* context, cv::Mat* rgb) const override;

 private:
  std::string root_;
  std::vector<datasets::LabelEntry> entries_;
};

}  // namespace dmue::evaluation

#endif  // EVALUATION_EVAL_DATA_H_
