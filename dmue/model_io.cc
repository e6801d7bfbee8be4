#include "dmue/model_io.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "dmue/convert.h"
#include "dmue/io/torch_checkpoint.h"

namespace dmue {

absl::StatusOr<StateDict> ReadWeights(const std::string& path) {
  ASSIGN_OR_RETURN(StateDict state, io::ReadStateDict(path));
  return StateDict(state.begin(), state.end());
}

bool IsMultiBranch(const StateDict& weights) {
  for (const auto& [name, tensor] : weights) {
    if (absl::StartsWith(name, "base.layer4_")) return true;
  }
  return false;
}

absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& path,
                                                  const ModelConfig& config) {
  absl::StatusOr<StateDict> weights = ReadWeights(path);
  RETURN_IF_ERROR(weights);
  if (IsMultiBranch(*weights)) {
    absl::StatusOr<StateDict> converted = ConvertToInference(*weights, config.num_classes());
    if (!converted.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", converted.status().message()));
    }
    weights = std::move(converted);
  }
  InferenceModel model(config);
  LoadOptions options;
  options.ignore_substrings = {"fc."};  // As the reference's load_param.
  if (absl::Status status = LoadStateDict(*model, *weights, options); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " does not fit the configured model (backbone ",
        ModelConfig::Backbone_Name(config.backbone()), ", ", config.num_classes(),
        " classes): ", status.message()));
  }
  model->eval();
  return model;
}

absl::Status LoadDmueWeights(const std::string& path, DmueModel& model) {
  ASSIGN_OR_RETURN(StateDict weights, ReadWeights(path));
  if (absl::Status status = LoadStateDict(*model, weights); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::Status LoadMsraPretrained(const std::string& path, DmueModel& model) {
  ASSIGN_OR_RETURN(StateDict weights, ReadWeights(path));
  StateDict mapped;
  for (const auto& [name, tensor] : weights) {
    if (name.find("loss_layer") != std::string::npos || name.find("fc") != std::string::npos) continue;
    if (!absl::StartsWith(name, "feat_net.")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key '", name, "' is not under feat_net. (not a pretraining checkpoint?)"));
    }
    const std::string rest = name.substr(std::string("feat_net.").size());
    if (absl::StartsWith(rest, "layer4.")) {
      for (int b = 0; b <= model->num_classes(); ++b) {
        mapped.emplace_back(absl::StrCat("base.layer4_", b, rest.substr(6)), tensor);
      }
    } else {
      mapped.emplace_back("base." + rest, tensor);
    }
  }
  LoadOptions options;
  options.strict = false;  // Heads (classifiers, project_w, bnneck) keep their init.
  if (absl::Status s = LoadStateDict(*model, mapped, options); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  size_t trunk = 0;
  for (const auto& [name, t] : ModuleStateDict(*model)) trunk += absl::StartsWith(name, "base.");
  if (mapped.size() != trunk) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the pretraining checkpoint provides ",
                                                   mapped.size(), " of the backbone's ", trunk, " tensors"));
  }
  return absl::OkStatus();
}

absl::Status ExportInferenceWeights(const StateDict& multi_branch, int num_classes, const std::string& path) {
  ASSIGN_OR_RETURN(StateDict converted, ConvertToInference(multi_branch, num_classes));
  return io::WriteStateDict(path, ForSaving(std::move(converted)));
}

}  // namespace dmue
