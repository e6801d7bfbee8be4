// Validation and loading of ModelConfig (model_config.proto). Every rejected
// value is reported with the name of its field.
#ifndef DMUE_MODEL_CONFIG_H_
#define DMUE_MODEL_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/model_config.pb.h"

namespace dmue {

absl::Status ValidateModelConfig(const ModelConfig& config);

// Parses a text-format ModelConfig file and validates it.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

// Channel width of the pooled features: 512 (ResNet-18) or 2048 (ResNet-50-IBN).
int FeatureDim(const ModelConfig& config);

}  // namespace dmue

#endif  // DMUE_MODEL_CONFIG_H_
