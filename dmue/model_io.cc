#include "dmue/model_io.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dmue/convert.h"
#include "dmue/io/torch_checkpoint.h"

namespace dmue {

absl::StatusOr<NamedTensors> ReadWeights(const std::string& path) {
  absl::StatusOr<io::StateDict> state = io::ReadStateDict(path);
  if (!state.ok()) return state.status();
  return NamedTensors(state->begin(), state->end());
}

bool IsMultiBranch(const NamedTensors& weights) {
  for (const auto& [name, tensor] : weights) {
    if (absl::StartsWith(name, "base.layer4_")) return true;
  }
  return false;
}

absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& path,
                                                  const ModelConfig& config) {
  absl::StatusOr<NamedTensors> weights = ReadWeights(path);
  if (!weights.ok()) return weights.status();
  if (IsMultiBranch(*weights)) {
    absl::StatusOr<NamedTensors> converted = ConvertToInference(*weights, config.num_classes());
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
  absl::StatusOr<NamedTensors> weights = ReadWeights(path);
  if (!weights.ok()) return weights.status();
  if (absl::Status status = LoadStateDict(*model, *weights); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::Status ExportInferenceWeights(const NamedTensors& multi_branch, int num_classes,
                                    const std::string& path) {
  absl::StatusOr<NamedTensors> converted = ConvertToInference(multi_branch, num_classes);
  if (!converted.ok()) return converted.status();
  io::StateDict state;
  for (const auto& [name, tensor] : *converted) state.emplace_back(name, tensor.contiguous());
  return io::WriteStateDict(path, state);
}

}  // namespace dmue
