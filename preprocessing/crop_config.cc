#include "preprocessing/crop_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/config/text_proto.h"

namespace dmue::preprocessing {
namespace {

constexpr FieldErrors kFieldError("CropConfig");

}  // namespace

absl::Status ValidateCropConfig(const CropConfig& c) {
  if (c.flow() == CropConfig::FLOW_UNSPECIFIED) {
    return kFieldError("flow", "must be CROP_ALIGN or CROP_MSRA");
  }
  if (c.input_root().empty()) return kFieldError("input_root", "must be set");
  if (c.output_root().empty()) return kFieldError("output_root", "must be set");
  if (c.output_root() == c.input_root()) {
    return kFieldError("output_root", "must differ from input_root (crops would overwrite photos)");
  }
  if (c.failure_list().empty() || c.failure_list().find('/') != std::string::npos) {
    return kFieldError("failure_list", "must be a plain file name inside output_root");
  }
  if (c.contact_sheet().find('/') != std::string::npos) {
    return kFieldError("contact_sheet", "must be a plain file name inside output_root (or empty)");
  }
  if (c.contact_sheet_count() < 1 || c.contact_sheet_count() > 1024) {
    return kFieldError("contact_sheet_count", absl::StrCat("must be in [1, 1024], got ", c.contact_sheet_count()));
  }
  if (c.multi_face() == CropConfig::MULTI_FACE_UNSPECIFIED) {
    return kFieldError("multi_face", "must be LARGEST or MOST_CONFIDENT");
  }
  if (c.workers() < 1 || c.workers() > 64) {
    return kFieldError("workers", absl::StrCat("must be in [1, 64], got ", c.workers()));
  }
  if (c.intra_op_threads() < 1 || c.intra_op_threads() > 64) {
    return kFieldError("intra_op_threads", absl::StrCat("must be in [1, 64], got ", c.intra_op_threads()));
  }
  if (c.landmark_model().empty() != c.landmark_template().empty()) {
    return kFieldError(c.landmark_model().empty() ? "landmark_model" : "landmark_template",
                       "landmark_model and landmark_template must be set together");
  }
  if (c.flow() == CropConfig::CROP_MSRA && !c.landmark_model().empty()) {
    return kFieldError("landmark_model", "CROP_MSRA does not use landmarks");
  }
  if (c.output_size() < 0 || c.output_size() > 4096) {
    return kFieldError("output_size", absl::StrCat("must be in [0, 4096], got ", c.output_size()));
  }
  if (c.output_format() == CropConfig::OUTPUT_FORMAT_UNSPECIFIED) {
    return kFieldError("output_format", "must be KEEP, PNG or JPEG");
  }
  if (c.jpeg_quality() < 1 || c.jpeg_quality() > 100) {
    return kFieldError("jpeg_quality", absl::StrCat("must be in [1, 100], got ", c.jpeg_quality()));
  }
  if (c.max_decoded_side() < 0 || (c.max_decoded_side() > 0 && c.max_decoded_side() < 64)) {
    return kFieldError("max_decoded_side", absl::StrCat("must be 0 (no limit) or >= 64, got ", c.max_decoded_side()));
  }
  if (c.max_image_bytes() < 1) {
    return kFieldError("max_image_bytes", absl::StrCat("must be >= 1, got ", c.max_image_bytes()));
  }
  if (c.max_image_pixels() < 1) {
    return kFieldError("max_image_pixels", absl::StrCat("must be >= 1, got ", c.max_image_pixels()));
  }
  if (!(c.min_face_prob() >= 0 && c.min_face_prob() <= 1)) {
    return kFieldError("min_face_prob", absl::StrCat("must be in [0, 1], got ", c.min_face_prob()));
  }
  if (!(c.min_face_size() >= 12 && c.min_face_size() <= 10000)) {
    return kFieldError("min_face_size", absl::StrCat("must be in [12, 10000], got ", c.min_face_size()));
  }
  for (const std::string& ext : c.extensions()) {
    if (ext.empty() || ext[0] == '.' || ext != absl::AsciiStrToLower(ext)) {
      return kFieldError("extensions", absl::StrCat("entries are lower case without a dot, got '", ext, "'"));
    }
  }
  if (c.limit() < 0) return kFieldError("limit", absl::StrCat("must be >= 0, got ", c.limit()));
  if (!(c.progress_interval_s() >= 0)) {
    return kFieldError("progress_interval_s", "must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<CropConfig> LoadCropConfig(const std::string& path) {
  ASSIGN_OR_RETURN(CropConfig config, LoadTextProto<CropConfig>(path));
  absl::Status valid = ValidateCropConfig(config);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", valid.message()));
  }
  return config;
}

std::vector<std::string> ImageExtensions(const CropConfig& config) {
  if (config.extensions_size() > 0) {
    return {config.extensions().begin(), config.extensions().end()};
  }
  return {"jpg", "jpeg", "png", "bmp", "webp"};
}

}  // namespace dmue::preprocessing
