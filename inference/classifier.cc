#include "inference/classifier.h"

#include <exception>
#include <utility>

#include <ATen/Parallel.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "dmue/model_bundle.h"
#include "glog/logging.h"

namespace dmue::inference {
namespace {

std::string ComputeName(const ComputeOptions& compute) {
  return absl::StrCat(compute.precision == Precision::kBFloat16 ? "bf16" : "fp32",
                      compute.channels_last ? " channels-last" : "");
}

// The summary's device suffix: none for the CPU, " on cuda:0" otherwise.
std::string OnDevice(const torch::Device& device) { return device.is_cpu() ? "" : " on " + device.str(); }

struct FoldResult {
  FoldedModel model;
  std::string summary;
};

// AUTO measures on the caller's batch sizes and input side; FP32 / BF16 are
// taken as given.
absl::StatusOr<FoldResult> FoldWith(InferenceModel& model, int input_side, const torch::Device& device,
                                    const ClassifierOptions& options) {
  model->eval();
  if (options.precision == PrecisionChoice::kAuto) {
    InferenceComputeProbe probe;
    probe.device = device;
    if (!options.auto_batch_sizes.empty()) probe.batch_sizes = options.auto_batch_sizes;
    probe.image_size = input_side;
    ASSIGN_OR_RETURN(InferenceComputeChoice choice, ChooseInferenceCompute(model, probe));
    LOG(INFO) << choice.Summary();
    ASSIGN_OR_RETURN(FoldedModel folded, FoldedModel::Fold(model, choice.options));
    return FoldResult{std::move(folded), choice.Summary() + OnDevice(device)};
  }
  ComputeOptions compute;
  compute.precision = options.precision == PrecisionChoice::kBFloat16 ? Precision::kBFloat16 : Precision::kFloat32;
  compute.channels_last = options.channels_last;
  compute.device = device;
  ASSIGN_OR_RETURN(FoldedModel folded, FoldedModel::Fold(model, compute));
  return FoldResult{std::move(folded),
                    absl::StrCat("inference compute: ", ComputeName(compute), " (fixed)", OnDevice(device))};
}

}  // namespace

absl::StatusOr<PrecisionChoice> ParsePrecision(absl::string_view name, absl::string_view flag) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "auto") return PrecisionChoice::kAuto;
  if (lower == "fp32") return PrecisionChoice::kFloat32;
  if (lower == "bf16") return PrecisionChoice::kBFloat16;
  return absl::InvalidArgumentError(absl::StrCat(flag, ": '", name, "' is not one of auto, fp32, bf16"));
}

absl::StatusOr<std::unique_ptr<Classifier>> Classifier::Load(const std::string& weights_path,
                                                             const std::string& spec_path,
                                                             const ClassifierOptions& options) {
  ASSIGN_OR_RETURN(ModelBundle bundle, LoadModelBundle(weights_path, spec_path));
  ASSIGN_OR_RETURN(std::unique_ptr<Classifier> classifier,
                   FromModel(bundle.model, bundle.spec.model().num_classes(), bundle.spec.input().crop(), options));
  classifier->spec_ = std::move(bundle.spec);
  return classifier;
}

absl::StatusOr<std::unique_ptr<Classifier>> Classifier::FromModel(InferenceModel& model, int num_classes,
                                                                  int input_side, const ClassifierOptions& options) {
  if (num_classes <= 0 || input_side <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Classifier: num_classes (", num_classes, ") and input side (", input_side, ") must be > 0"));
  }
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(options.device, "ClassifierOptions.device"));
  if (options.num_threads > 0) at::set_num_threads(options.num_threads);
  try {
    ASSIGN_OR_RETURN(FoldResult folded, FoldWith(model, input_side, device, options));
    return std::unique_ptr<Classifier>(
        new Classifier(std::move(folded.model), num_classes, input_side, std::move(folded.summary)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("preparing the model for inference failed: ", e.what()));
  }
}

absl::StatusOr<torch::Tensor> Classifier::Probabilities(const torch::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != input_side_ || images.size(3) != input_side_) {
    return absl::InvalidArgumentError(absl::StrCat("expected images [B, 3, ", input_side_, ", ", input_side_,
                                                   "], got ", c10::str(images.sizes())));
  }
  // An exception out of LibTorch fails this call (a served batch answers
  // 500), never the process.
  try {
    torch::InferenceMode inference;
    // Read on the host: back to the CPU (no copy when it ran there).
    return torch::softmax(model_.Forward(images), 1).to(torch::kCPU, torch::kFloat).contiguous();
  } catch (const std::exception& e) {
    LOG(ERROR) << "model call on " << images.size(0) << " inputs failed: " << e.what();
    return absl::InternalError(absl::StrCat("model call failed: ", e.what()));
  }
}

absl::StatusOr<std::vector<float>> Classifier::Classify(const float* inputs, int n) const {
  if (n <= 0) return absl::InvalidArgumentError(absl::StrCat("Classify: ", n, " inputs"));
  const torch::Tensor images =
      torch::from_blob(const_cast<float*>(inputs), {n, 3, input_side_, input_side_}, torch::kFloat32);
  ASSIGN_OR_RETURN(const torch::Tensor probabilities, Probabilities(images));
  return std::vector<float>(probabilities.data_ptr<float>(), probabilities.data_ptr<float>() + probabilities.numel());
}

}  // namespace dmue::inference
