// Loading and validation of CropConfig (crop_config.proto). Errors name the
// offending field.
#ifndef PREPROCESSING_CROP_CONFIG_H_
#define PREPROCESSING_CROP_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "preprocessing/crop_config.pb.h"

namespace dmue::preprocessing {

absl::Status ValidateCropConfig(const CropConfig& config);

// Reads a text-format CropConfig and validates it; errors name the file.
absl::StatusOr<CropConfig> LoadCropConfig(const std::string& path);

// config.extensions, or the default list (jpg jpeg png bmp webp).
std::vector<std::string> ImageExtensions(const CropConfig& config);

}  // namespace dmue::preprocessing

#endif  // PREPROCESSING_CROP_CONFIG_H_
