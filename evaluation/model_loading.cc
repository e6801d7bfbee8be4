#include "evaluation/model_loading.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dmue/convert.h"
#include "dmue/model_config.h"
#include "dmue/model_io.h"

namespace dmue::evaluation {
namespace {

absl::StatusOr<ModelConfig> BaseConfig(const ModelSpec& spec) {
  if (spec.model_config.empty()) return ModelConfig();
  return LoadModelConfig(spec.model_config);
}

absl::StatusOr<NamedTensors> ReadCheckpointWeights(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no checkpoint given (--checkpoint)");
  absl::StatusOr<NamedTensors> weights = ReadWeights(path);
  if (!weights.ok()) {
    const std::string message(weights.status().message());
    if (absl::StrContains(message, path)) return weights.status();
    return absl::Status(weights.status().code(), absl::StrCat(path, ": ", message));
  }
  if (weights->empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": the checkpoint holds no tensors"));
  return weights;
}

}  // namespace

absl::StatusOr<CheckpointInfo> InspectWeights(const NamedTensors& weights, const ModelSpec& spec) {
  const std::string& path = spec.checkpoint;
  CheckpointInfo info;
  info.multi_branch = IsMultiBranch(weights);
  std::map<int, torch::Tensor> classifiers;
  bool bottleneck_blocks = false;
  for (const auto& [name, tensor] : weights) {
    if (absl::StartsWith(name, "base.layer1.0.conv3.")) bottleneck_blocks = true;
    if (!absl::StartsWith(name, "classifiers.") || !absl::EndsWith(name, ".weight")) continue;
    const std::string middle = name.substr(12, name.size() - 12 - 7);
    int branch = 0;
    if (absl::SimpleAtoi(middle, &branch)) classifiers[branch] = tensor;
  }
  if (classifiers.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no classifiers.<n>.weight tensor; not a DMUE model checkpoint"));
  }
  const int head = info.multi_branch ? classifiers.rbegin()->first : 0;
  if (!classifiers.count(head) || classifiers[head].dim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": classifiers.", head, ".weight is missing or not 2-D"));
  }
  info.num_classes = int(classifiers[head].size(0));
  if (info.multi_branch && info.num_classes != head) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": multi-branch checkpoint with main classifier classifiers.",
                                                   head, " of ", info.num_classes, " outputs (expected ", head, ")"));
  }
  if (spec.num_classes > 0 && spec.num_classes != info.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " has ", info.num_classes, " classes (classifiers.", head, ".weight is ",
        c10::str(classifiers[head].sizes()), ") but --num_classes is ", spec.num_classes));
  }
  absl::StatusOr<ModelConfig> config = BaseConfig(spec);
  if (!config.ok()) return config.status();
  info.config = *config;
  const std::string backbone = absl::AsciiStrToLower(spec.backbone);
  if (backbone == "auto" || backbone.empty()) {
    info.config.set_backbone(bottleneck_blocks ? ModelConfig::RESNET50_IBN : ModelConfig::RESNET18);
  } else if (backbone == "resnet18") {
    info.config.set_backbone(ModelConfig::RESNET18);
  } else if (backbone == "resnet50_ibn") {
    info.config.set_backbone(ModelConfig::RESNET50_IBN);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--backbone: '", spec.backbone, "' is not one of auto, resnet18, resnet50_ibn"));
  }
  info.config.set_num_classes(info.num_classes);
  if (absl::Status s = ValidateModelConfig(info.config); !s.ok()) return s;
  return info;
}

absl::StatusOr<LoadedClassifier> LoadClassifier(const ModelSpec& spec) {
  absl::StatusOr<NamedTensors> weights = ReadCheckpointWeights(spec.checkpoint);
  if (!weights.ok()) return weights.status();
  absl::StatusOr<CheckpointInfo> info = InspectWeights(*weights, spec);
  if (!info.ok()) return info.status();
  if (info->multi_branch) {
    absl::StatusOr<NamedTensors> converted = ConvertToInference(*weights, info->num_classes);
    if (!converted.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(spec.checkpoint, ": ", converted.status().message()));
    }
    weights = std::move(converted);
  }
  LoadedClassifier loaded{*info, InferenceModel(info->config)};
  LoadOptions options;
  options.ignore_substrings = {"fc."};
  if (absl::Status s = LoadStateDict(*loaded.model, *weights, options); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " does not fit the model (backbone ", ModelConfig::Backbone_Name(info->config.backbone()),
        ", ", info->num_classes, " classes): ", s.message()));
  }
  loaded.model->eval();
  return loaded;
}

absl::StatusOr<LoadedDmue> LoadMultiBranch(const ModelSpec& spec) {
  absl::StatusOr<NamedTensors> weights = ReadCheckpointWeights(spec.checkpoint);
  if (!weights.ok()) return weights.status();
  absl::StatusOr<CheckpointInfo> info = InspectWeights(*weights, spec);
  if (!info.ok()) return info.status();
  if (!info->multi_branch) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " is an inference (single-branch) model; the audit needs a multi-branch checkpoint "
                         "(runs/<x>/snapshots/*.pth or last.pth)"));
  }
  LoadedDmue loaded{*info, DmueModel(info->config)};
  if (absl::Status s = LoadStateDict(*loaded.model, *weights); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " does not fit the multi-branch model (backbone ",
        ModelConfig::Backbone_Name(info->config.backbone()), ", ", info->num_classes, " classes): ", s.message()));
  }
  loaded.model->eval();
  return loaded;
}

}  // namespace dmue::evaluation
