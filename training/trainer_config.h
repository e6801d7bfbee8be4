// Loading and validation of TrainerConfig (trainer_config.proto): every
// rejected value names its field, including those of the nested model and
// data configs.
#ifndef TRAINING_TRAINER_CONFIG_H_
#define TRAINING_TRAINER_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/model_spec.pb.h"
#include "dmue/schedule.h"
#include "training/trainer_config.pb.h"

namespace dmue::training {

absl::Status ValidateTrainerConfig(const TrainerConfig& config);
// Reads `path`, merges `overrides` (text format, e.g. "max_epoch: 10
// train_data { label_noise_rate: 0.3 }": singular fields replace, repeated
// ones append) and validates the result; errors name the file or "overrides".
absl::StatusOr<TrainerConfig> LoadTrainerConfig(const std::string& path, const std::string& overrides = "");

PiecewiseLr Lr1(const TrainerConfig& config);
PiecewiseLr Lr2(const TrainerConfig& config);

// (lr1, lr2) at fractional epoch t: lr_schedule when it is STEP or COSINE
// (warm-up and cosine counted over [0, max_epoch)), else lr1 / lr2 at
// floor(t).
struct LearningRates {
  double base = 0;        // lr1: backbone
  double classifier = 0;  // lr2: classifiers (and heads)
};
LearningRates LearningRatesAt(const TrainerConfig& config, double t);

// The spec of the inference model this run exports: architecture, class
// names (indices when class_names is empty), the eval transform of val_data
// (else train_data), the precision setting, the config itself.
ModelSpec InferenceSpec(const TrainerConfig& config);

}  // namespace dmue::training

#endif  // TRAINING_TRAINER_CONFIG_H_
