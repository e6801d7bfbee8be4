#include "dmue/model_config.h"

#include "absl/strings/str_cat.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/config/text_proto.h"

namespace dmue {
namespace {

constexpr FieldErrors kFieldError("ModelConfig");

}  // namespace

absl::Status ValidateModelConfig(const ModelConfig& config) {
  if (config.backbone() == ModelConfig::BACKBONE_UNSPECIFIED) {
    return kFieldError("backbone", "must be RESNET18 or RESNET50_IBN");
  }
  // Auxiliary branches predict C-1 classes, and the uncertainty head needs at
  // least two class means, so fewer than 3 classes makes no sense for DMUE.
  if (config.num_classes() < 3 || config.num_classes() > 1000) {
    return kFieldError("num_classes", absl::StrCat("must be in [3, 1000], got ", config.num_classes()));
  }
  if (config.last_stride() != 1 && config.last_stride() != 2) {
    return kFieldError("last_stride", absl::StrCat("must be 1 or 2, got ", config.last_stride()));
  }
  if (config.pooling() == ModelConfig::POOLING_UNSPECIFIED) {
    return kFieldError("pooling", "must be GAP or GEM");
  }
  if (config.pooling() == ModelConfig::GEM && !(config.gem_p() >= 1.0f && config.gem_p() <= 16.0f)) {
    return kFieldError("gem_p", absl::StrCat("must be in [1, 16], got ", config.gem_p()));
  }
  if (!(config.dropout() >= 0.0f && config.dropout() < 1.0f)) {
    return kFieldError("dropout", absl::StrCat("must be in [0, 1), got ", config.dropout()));
  }
  if (config.train_mode() != ModelConfig::SP_CONFIDENCE) {
    return kFieldError("train_mode", "only SP_CONFIDENCE is implemented (as in the reference)");
  }
  if (config.second_order_statistic() != ModelConfig::MEAN) {
    return kFieldError("second_order_statistic", "only MEAN is implemented (the reference computes nothing else)");
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadTextProto<ModelConfig>(path));
  absl::Status valid = ValidateModelConfig(config);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", valid.message()));
  }
  return config;
}

int FeatureDim(const ModelConfig& config) {
  return config.backbone() == ModelConfig::RESNET50_IBN ? 2048 : 512;
}

}  // namespace dmue
