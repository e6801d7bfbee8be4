#include "training/trainer_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "datasets/dataset_config.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/compute.h"
#include "dmue/config/text_proto.h"
#include "dmue/model_config.h"

namespace dmue::training {
namespace {

constexpr FieldErrors kFieldError("TrainerConfig");

PiecewiseLr ToPiecewise(const google::protobuf::RepeatedPtrField<LrStep>& steps, PiecewiseLr fallback) {
  if (steps.empty()) return fallback;
  PiecewiseLr out;
  for (const LrStep& s : steps) out.emplace_back(s.until_epoch(), s.lr());
  return out;
}

bool UsesStepSchedule(const TrainerConfig& config) {
  return config.has_lr_schedule() && config.lr_schedule().kind() != LrSchedule::PIECEWISE;
}

StepSchedule ToStepSchedule(const TrainerConfig& config) {
  const LrSchedule& l = config.lr_schedule();
  StepSchedule s;
  s.kind = l.kind() == LrSchedule::STEP ? StepSchedule::Kind::kStep : StepSchedule::Kind::kCosine;
  s.base_lr = l.base_lr();
  s.warmup_epochs = l.warmup_epochs();
  s.min_lr = l.min_lr();
  s.gamma = l.step_gamma();
  s.milestones.assign(l.step_milestones().begin(), l.step_milestones().end());
  s.total_epochs = config.max_epoch();
  return s;
}

}  // namespace

LearningRates LearningRatesAt(const TrainerConfig& config, double t) {
  if (UsesStepSchedule(config)) {
    const double lr = LrAt(ToStepSchedule(config), t);
    return {lr, lr * config.lr_schedule().classifier_lr_scale()};
  }
  const int epoch = static_cast<int>(std::floor(t));
  return {LrAt(Lr1(config), epoch), LrAt(Lr2(config), epoch)};
}

ModelSpec InferenceSpec(const TrainerConfig& config) {
  ModelSpec spec;
  *spec.mutable_model() = config.model();
  for (int c = 0; c < config.model().num_classes(); ++c) {
    spec.add_class_names(c < config.class_names_size() ? config.class_names(c) : absl::StrCat(c));
  }
  const datasets::DatasetConfig& data = config.has_val_data() ? config.val_data() : config.train_data();
  InputSpec* input = spec.mutable_input();
  input->set_face_crop(InputSpec::CROP_ALIGN);
  input->set_resize(data.resize());
  input->set_crop(data.crop());
  input->set_mean(data.normalize_mean());
  input->set_std(data.normalize_std());
  input->set_grayscale(data.grayscale());
  input->set_channel_order(InputSpec::RGB);
  switch (config.precision()) {
    case TrainerConfig::FP32: spec.mutable_compute()->set_precision(ComputeHints::FP32); break;
    case TrainerConfig::BF16: spec.mutable_compute()->set_precision(ComputeHints::BF16); break;
    default: spec.mutable_compute()->set_precision(ComputeHints::AUTO); break;
  }
  spec.mutable_compute()->set_channels_last(config.precision() == TrainerConfig::AUTO || config.channels_last());
  google::protobuf::TextFormat::PrintToString(config, spec.mutable_training_config());
  return spec;
}

PiecewiseLr Lr1(const TrainerConfig& config) { return ToPiecewise(config.lr1(), ReferenceLr1()); }
PiecewiseLr Lr2(const TrainerConfig& config) { return ToPiecewise(config.lr2(), ReferenceLr2()); }

absl::Status ValidateTrainerConfig(const TrainerConfig& config) {
  RETURN_IF_ERROR(kFieldError.Nested("model", ValidateModelConfig(config.model())));
  if (!config.has_train_data()) return kFieldError("train_data", "is required");
  RETURN_IF_ERROR(kFieldError.Nested("train_data", datasets::ValidateDatasetConfig(config.train_data())));
  if (config.train_data().num_classes() != config.model().num_classes()) {
    return kFieldError("train_data.num_classes",
                      absl::StrCat(config.train_data().num_classes(), " differs from model.num_classes ",
                                   config.model().num_classes()));
  }
  if (config.has_val_data()) {
    RETURN_IF_ERROR(kFieldError.Nested("val_data", datasets::ValidateDatasetConfig(config.val_data())));
    if (config.val_data().num_classes() != config.model().num_classes()) {
      return kFieldError("val_data.num_classes", "differs from model.num_classes");
    }
  }
  if (config.loss() == TrainerConfig::LOSS_UNSPECIFIED) return kFieldError("loss", "must be DMUE or CROSS_ENTROPY");
  if (config.loss() == TrainerConfig::DMUE &&
      config.train_data().batch_size() < 2 * config.model().num_classes()) {
    return kFieldError("train_data.batch_size",
                      absl::StrCat("DMUE needs >= 2 samples of every class per batch, so at least ",
                                   2 * config.model().num_classes()));
  }
  RETURN_IF_ERROR(ValidatePiecewiseLr(Lr1(config), "TrainerConfig.lr1"));
  RETURN_IF_ERROR(ValidatePiecewiseLr(Lr2(config), "TrainerConfig.lr2"));
  if (config.has_lr_schedule()) {
    if (config.lr_schedule().kind() == LrSchedule::KIND_UNSPECIFIED) {
      return kFieldError("lr_schedule.kind", "must be PIECEWISE, STEP or COSINE");
    }
    if (UsesStepSchedule(config)) {
      RETURN_IF_ERROR(ValidateStepSchedule(ToStepSchedule(config), "TrainerConfig.lr_schedule"));
      const double scale = config.lr_schedule().classifier_lr_scale();
      if (!(scale > 0) || !std::isfinite(scale)) return kFieldError("lr_schedule.classifier_lr_scale", "must be > 0");
    }
  }
  if (config.optimizer() == TrainerConfig::OPTIMIZER_UNSPECIFIED) {
    return kFieldError("optimizer", "must be ADAM or SGD");
  }
  if (!(config.momentum() >= 0 && config.momentum() < 1)) return kFieldError("momentum", "must be in [0, 1)");
  if (config.nesterov() && config.optimizer() != TrainerConfig::SGD) {
    return kFieldError("nesterov", "applies to optimizer SGD only");
  }
  if (config.nesterov() && config.momentum() == 0) return kFieldError("nesterov", "needs momentum > 0");
  if (!(config.label_smoothing() >= 0 && config.label_smoothing() < 1)) {
    return kFieldError("label_smoothing", "must be in [0, 1)");
  }
  if (config.snapshot_every_epochs() < 0) return kFieldError("snapshot_every_epochs", "must be >= 0");
  if (config.train_data().soft_labels() && config.loss() == TrainerConfig::DMUE && config.ce_warmup_epochs() == 0) {
    return kFieldError("train_data.soft_labels", "soft targets feed cross-entropy steps; DMUE mines its own");
  }
  auto non_negative = [](double v) { return std::isfinite(v) && v >= 0; };
  if (!non_negative(config.weight_decay())) return kFieldError("weight_decay", "must be >= 0");
  if (!non_negative(config.w())) return kFieldError("w", "must be >= 0");
  if (!non_negative(config.gamma())) return kFieldError("gamma", "must be >= 0");
  if (!(config.temperature() > 0)) return kFieldError("temperature", "must be > 0");
  if (!(config.ramp_a() > 0)) return kFieldError("ramp_a", "must be > 0");
  if (config.start_epoch() < 0) return kFieldError("start_epoch", "must be >= 0");
  if (config.max_epoch() <= config.start_epoch()) {
    return kFieldError("max_epoch", absl::StrCat("must exceed start_epoch (", config.start_epoch(), ")"));
  }
  if (config.ce_warmup_epochs() < 0) return kFieldError("ce_warmup_epochs", "must be >= 0");
  if (config.output_dir().empty()) return kFieldError("output_dir", "is required");
  if (config.eval_every_batches() < 0) return kFieldError("eval_every_batches", "must be >= 0");
  if (config.log_every_batches() <= 0) return kFieldError("log_every_batches", "must be > 0");
  if (config.num_threads() <= 0 || config.num_threads() > 256) return kFieldError("num_threads", "must be in [1, 256]");
  if (config.ddp_bucket_mb() <= 0 || config.ddp_bucket_mb() > 1024) {
    return kFieldError("ddp_bucket_mb", "must be in [1, 1024]");
  }
  RETURN_IF_ERROR(kFieldError.Nested("device", ParseDevice(config.device()).status()));
  if (config.precision() == TrainerConfig::PRECISION_UNSPECIFIED) {
    return kFieldError("precision", "must be FP32, BF16 or AUTO");
  }
  if (config.max_steps() < 0) return kFieldError("max_steps", "must be >= 0");
  if (!config.pretrained().empty() &&
      config.pretrained_mapping() == TrainerConfig::PRETRAINED_MAPPING_UNSPECIFIED) {
    return kFieldError("pretrained_mapping", "must be STATE_DICT or MSRA");
  }
  if (config.class_names_size() != 0 && config.class_names_size() != config.model().num_classes()) {
    return kFieldError("class_names", absl::StrCat("has ", config.class_names_size(), " names for ",
                                                  config.model().num_classes(), " classes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainerConfig> LoadTrainerConfig(const std::string& path, const std::string& overrides) {
  ASSIGN_OR_RETURN(TrainerConfig config, LoadTextProto<TrainerConfig>(path));
  RETURN_IF_ERROR(MergeTextProto(overrides, "overrides", &config));
  if (absl::Status s = ValidateTrainerConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, overrides.empty() ? "" : " with the overrides", ": ", s.message()));
  }
  return config;
}

}  // namespace dmue::training
