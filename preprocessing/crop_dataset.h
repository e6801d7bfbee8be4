// Runs a crop flow (crop_align or crop_msra) over a whole dataset, as the
// crop_align tool does: parallel workers, failure list, resume, progress,
// contact sheet. See crop_config.proto for the options.
#ifndef PREPROCESSING_CROP_DATASET_H_
#define PREPROCESSING_CROP_DATASET_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "preprocessing/crop_config.pb.h"

namespace dmue::preprocessing {

// Relative paths of the images to process: the label list's first column, or
// the sorted folder walk of input_root (then `limit`).
absl::StatusOr<std::vector<std::string>> ListImages(const CropConfig& config);

// Where the crop of `relative` goes, relative to output_root.
std::string OutputRelativePath(const CropConfig& config, const std::string& relative);

struct CropFailure {
  std::string path;    // Relative to input_root.
  std::string reason;  // unreadable, no_face, ... (crop_config.proto).
  std::string detail;
};

struct CropRunStats {
  int64_t total = 0;
  int64_t written = 0;           // Crops written by this run.
  int64_t skipped_existing = 0;  // Finished by an earlier run (resume).
  std::vector<CropFailure> failures;
  std::map<std::string, int64_t> failures_by_reason;
  double seconds = 0;
};

// Processes every listed image; per-image problems become failure records,
// only setup problems (config, models, output folder) are errors.
// config.mtcnn_dir must be set. Progress lines go to `log`.
absl::StatusOr<CropRunStats> RunCropDataset(const CropConfig& config, std::ostream& log);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_CROP_DATASET_H_
