// Validation of DatasetConfig (dataset_config.proto) and building a loader
// from it. Rejected values name their field.
#ifndef DATASETS_DATASET_CONFIG_H_
#define DATASETS_DATASET_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/dataset_config.pb.h"
#include "datasets/example_source.h"
#include "datasets/label_list.h"
#include "datasets/loader.h"
#include "datasets/sampler.h"
#include "datasets/transforms.h"

namespace dmue::datasets {

absl::Status ValidateDatasetConfig(const DatasetConfig& config);
// Parses a text-format DatasetConfig file and validates it.
absl::StatusOr<DatasetConfig> LoadDatasetConfig(const std::string& path);

TransformOptions ToTransformOptions(const DatasetConfig& config);
SamplerOptions ToSamplerOptions(const DatasetConfig& config, int rank = 0, int world_size = 1);
LoaderOptions ToLoaderOptions(const DatasetConfig& config);
ListFormat ToListFormat(DatasetConfig::ListFormat format);
ParseOptions ToParseOptions(const DatasetConfig& config);

// An entry whose label label_noise_rate changed.
struct NoisyLabel {
  std::string key;  // LMDB key
  int clean = -1;
  int noisy = -1;
};

// Reads the list, applies the configured label noise (the changed entries go
// to `noisy` when not null), opens the LMDB (checking every key), and builds
// the loader for this rank.
absl::StatusOr<std::unique_ptr<Loader>> MakeLoader(const DatasetConfig& config, int rank = 0, int world_size = 1,
                                                   std::vector<NoisyLabel>* noisy = nullptr);

// MakeLoader in two steps, for callers that also read the examples
// themselves: the validated list (with its label noise) opened as an LMDB
// source, then the loader over it.
absl::StatusOr<std::shared_ptr<LmdbSource>> OpenSource(const DatasetConfig& config,
                                                       std::vector<NoisyLabel>* noisy = nullptr);
absl::StatusOr<std::unique_ptr<Loader>> MakeLoaderOver(const DatasetConfig& config,
                                                       std::shared_ptr<const ExampleSource> source, int rank = 0,
                                                       int world_size = 1);

// "<key> <clean> <noisy>" per line, sorted by key order of the list.
std::string FormatNoisyLabels(const std::vector<NoisyLabel>& noisy);
// The inverse; `source` names the input in errors (which give its line).
absl::StatusOr<std::vector<NoisyLabel>> ParseNoisyLabels(absl::string_view text, absl::string_view source);
// Gives the entries the noisy labels a run trained on: every listed key must
// be an entry whose label is the listed clean one (else an error naming the
// key and `source`), so the flips apply to the list they came from.
absl::Status ApplyNoisyLabels(const std::vector<NoisyLabel>& noisy, absl::string_view source,
                              std::vector<LabelEntry>* entries);

}  // namespace dmue::datasets

#endif  // DATASETS_DATASET_CONFIG_H_
