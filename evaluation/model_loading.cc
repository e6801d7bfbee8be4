#include "evaluation/model_loading.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "dmue/convert.h"
#include "dmue/model_config.h"
#include "dmue/model_io.h"

namespace dmue::evaluation {
namespace {

// The spec's model, or --model_config's, or the defaults. Both a spec and
// --model_config would be two sources of truth for one architecture.
absl::StatusOr<ModelConfig> BaseConfig(const CheckpointSpec& spec) {
  if (spec.spec.has_value()) {
    if (!spec.model_config.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--model_config ", spec.model_config, " and the model spec ",
                                                     spec.spec->path, " both give the architecture; give one"));
    }
    return spec.spec->spec.model();
  }
  if (spec.model_config.empty()) return ModelConfig();
  return LoadModelConfig(spec.model_config);
}

// The backbone --backbone names; nullopt for "auto".
absl::StatusOr<std::optional<ModelConfig::Backbone>> BackboneFlag(const std::string& name) {
  const std::string backbone = absl::AsciiStrToLower(name);
  if (backbone == "auto" || backbone.empty()) return std::nullopt;
  if (backbone == "resnet18") return ModelConfig::RESNET18;
  if (backbone == "resnet50_ibn") return ModelConfig::RESNET50_IBN;
  return absl::InvalidArgumentError(
      absl::StrCat("--backbone: '", name, "' is not one of auto, resnet18, resnet50_ibn"));
}

// Without a spec: --backbone, else what the checkpoint's blocks say. With one:
// the spec's, which --backbone and the checkpoint must agree with (refused
// here, before a state dict mismatch buries the reason in tensor names).
absl::StatusOr<ModelConfig::Backbone> ChooseBackbone(const CheckpointSpec& spec, bool bottleneck_blocks) {
  ASSIGN_OR_RETURN(std::optional<ModelConfig::Backbone> asked, BackboneFlag(spec.backbone));
  const ModelConfig::Backbone found = bottleneck_blocks ? ModelConfig::RESNET50_IBN : ModelConfig::RESNET18;
  if (!spec.spec.has_value()) return asked.value_or(found);
  const ModelConfig::Backbone specified = spec.spec->spec.model().backbone();
  if (asked.has_value() && *asked != specified) {
    return absl::InvalidArgumentError(absl::StrCat("--backbone=", spec.backbone, " disagrees with the model spec ",
                                                   spec.spec->path, " (model.backbone ",
                                                   ModelConfig::Backbone_Name(specified), ")"));
  }
  if (found != specified) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " holds a ", ModelConfig::Backbone_Name(found), " backbone but its model spec ",
        spec.spec->path, " says model.backbone ", ModelConfig::Backbone_Name(specified)));
  }
  return specified;
}

// The checkpoint's class count against --num_classes and the spec's.
absl::Status CheckClassCount(const CheckpointSpec& spec, int num_classes, int head, const torch::Tensor& classifier) {
  const std::string found = absl::StrCat(spec.checkpoint, " has ", num_classes, " classes (classifiers.", head,
                                         ".weight is ", c10::str(classifier.sizes()), ")");
  if (spec.num_classes > 0 && spec.num_classes != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(found, " but --num_classes is ", spec.num_classes));
  }
  if (spec.spec.has_value() && spec.spec->spec.model().num_classes() != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(found, " but its model spec ", spec.spec->path,
                                                   " has model.num_classes ", spec.spec->spec.model().num_classes()));
  }
  return absl::OkStatus();
}

// " of the model spec Y" when there is one, for errors about the architecture.
std::string ModelOrigin(const CheckpointSpec& spec) {
  return spec.spec.has_value() ? absl::StrCat(" of the model spec ", spec.spec->path) : "";
}

absl::StatusOr<StateDict> ReadCheckpointWeights(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no checkpoint given (--checkpoint)");
  absl::StatusOr<StateDict> weights = ReadWeights(path);
  if (!weights.ok()) {
    const std::string message(weights.status().message());
    if (absl::StrContains(message, path)) return weights.status();
    return absl::Status(weights.status().code(), absl::StrCat(path, ": ", message));
  }
  if (weights->empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": the checkpoint holds no tensors"));
  return weights;
}

}  // namespace

absl::StatusOr<CheckpointInfo> InspectWeights(const StateDict& weights, const CheckpointSpec& spec) {
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
  RETURN_IF_ERROR(CheckClassCount(spec, info.num_classes, head, classifiers[head]));
  ASSIGN_OR_RETURN(ModelConfig config, BaseConfig(spec));
  info.config = config;
  ASSIGN_OR_RETURN(ModelConfig::Backbone backbone, ChooseBackbone(spec, bottleneck_blocks));
  info.config.set_backbone(backbone);
  info.config.set_num_classes(info.num_classes);
  RETURN_IF_ERROR(ValidateModelConfig(info.config));
  return info;
}

absl::StatusOr<LoadedClassifier> LoadClassifier(const CheckpointSpec& spec) {
  ASSIGN_OR_RETURN(StateDict weights, ReadCheckpointWeights(spec.checkpoint));
  ASSIGN_OR_RETURN(CheckpointInfo info, InspectWeights(weights, spec));
  if (info.multi_branch) {
    absl::StatusOr<StateDict> converted = ConvertToInference(weights, info.num_classes);
    if (!converted.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(spec.checkpoint, ": ", converted.status().message()));
    }
    weights = *std::move(converted);
  }
  LoadedClassifier loaded{info, InferenceModel(info.config)};
  LoadOptions options;
  options.ignore_substrings = {"fc."};
  if (absl::Status s = LoadStateDict(*loaded.model, weights, options); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " does not fit the model", ModelOrigin(spec), " (backbone ",
        ModelConfig::Backbone_Name(info.config.backbone()), ", ", info.num_classes, " classes): ", s.message()));
  }
  loaded.model->eval();
  return loaded;
}

absl::StatusOr<LoadedDmue> LoadMultiBranch(const CheckpointSpec& spec) {
  ASSIGN_OR_RETURN(StateDict weights, ReadCheckpointWeights(spec.checkpoint));
  ASSIGN_OR_RETURN(CheckpointInfo info, InspectWeights(weights, spec));
  if (!info.multi_branch) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " is an inference (single-branch) model; the audit needs a multi-branch checkpoint "
                         "(runs/<x>/snapshots/*.pth or last.pth)"));
  }
  LoadedDmue loaded{info, DmueModel(info.config)};
  if (absl::Status s = LoadStateDict(*loaded.model, weights); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.checkpoint, " does not fit the multi-branch model", ModelOrigin(spec), " (backbone ",
        ModelConfig::Backbone_Name(info.config.backbone()), ", ", info.num_classes, " classes): ", s.message()));
  }
  loaded.model->eval();
  return loaded;
}

}  // namespace dmue::evaluation
