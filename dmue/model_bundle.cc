#include "dmue/model_bundle.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/config/text_proto.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/model_config.h"
#include "dmue/model_io.h"
#include "dmue/state_dict.h"

namespace dmue {
namespace {

constexpr FieldErrors kFieldError("ModelSpec");

absl::Status ValidateInput(const InputSpec& input) {
  if (input.face_crop() == InputSpec::FACE_CROP_UNSPECIFIED) {
    return kFieldError("input.face_crop", "must be CROP_ALIGN or NONE");
  }
  if (!input.has_crop()) return kFieldError("input.crop", "is required");
  if (input.crop() < 1 || input.crop() > 4096) {
    return kFieldError("input.crop", absl::StrCat("must be in [1, 4096], got ", input.crop()));
  }
  if (!input.has_resize()) return kFieldError("input.resize", "is required (0 keeps the image size)");
  if (input.resize() < 0 || input.resize() > 4096) {
    return kFieldError("input.resize", absl::StrCat("must be in [0, 4096], got ", input.resize()));
  }
  if (input.resize() > 0 && input.resize() < input.crop()) {
    return kFieldError("input.resize", absl::StrCat(input.resize(), " is smaller than crop ", input.crop()));
  }
  if (!(input.std() > 0)) return kFieldError("input.std", "must be > 0");
  if (input.channel_order() == InputSpec::CHANNEL_ORDER_UNSPECIFIED) {
    return kFieldError("input.channel_order", "must be RGB or BGR");
  }
  return absl::OkStatus();
}

}  // namespace

std::string SpecPathFor(const std::string& weights_path) {
  return std::filesystem::path(weights_path).replace_extension(".spec.pbtxt").string();
}

absl::Status ValidateModelSpec(const ModelSpec& spec) {
  if (!spec.has_model()) return kFieldError("model", "is required");
  if (absl::Status s = ValidateModelConfig(spec.model()); !s.ok()) {
    return kFieldError("model", s.message());
  }
  if (spec.class_names_size() != spec.model().num_classes()) {
    return kFieldError("class_names", absl::StrCat("has ", spec.class_names_size(), " names for ",
                                                   spec.model().num_classes(), " classes (model.num_classes)"));
  }
  for (int c = 0; c < spec.class_names_size(); ++c) {
    if (spec.class_names(c).empty()) return kFieldError(absl::StrCat("class_names[", c, "]"), "is empty");
  }
  if (!spec.has_input()) return kFieldError("input", "is required");
  RETURN_IF_ERROR(ValidateInput(spec.input()));
  if (spec.compute().precision() == ComputeHints::PRECISION_UNSPECIFIED) {
    return kFieldError("compute.precision", "must be FP32, BF16 or AUTO");
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelSpec> LoadModelSpec(const std::string& path) {
  ASSIGN_OR_RETURN(ModelSpec spec, LoadTextProto<ModelSpec>(path));
  if (absl::Status s = ValidateModelSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return spec;
}

absl::Status WriteModelSpec(const std::string& path, const ModelSpec& spec) {
  if (absl::Status s = ValidateModelSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not writing ", path, ": ", s.message()));
  }
  return WriteTextProtoFile(path, spec);
}

absl::StatusOr<ModelBundle> LoadModelBundle(const std::string& weights_path, const std::string& spec_path) {
  ModelBundle bundle;
  bundle.weights_path = weights_path;
  bundle.spec_path = spec_path.empty() ? SpecPathFor(weights_path) : spec_path;
  std::error_code ec;
  if (!std::filesystem::exists(bundle.spec_path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "'", weights_path, "' has no model spec ('", bundle.spec_path,
        "' does not exist): give one that says its classes and input (a ModelSpec text file, see "
        "dmue/model_spec.proto)"));
  }
  ASSIGN_OR_RETURN(ModelSpec spec, LoadModelSpec(bundle.spec_path));
  bundle.spec = std::move(spec);
  absl::StatusOr<InferenceModel> model = LoadInferenceModel(weights_path, bundle.spec.model());
  if (!model.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the spec '", bundle.spec_path, "' does not fit the weights: ",
                                                   model.status().message()));
  }
  bundle.model = *std::move(model);
  return bundle;
}

absl::Status WriteModelBundle(const std::string& weights_path, const InferenceModel& model, const ModelSpec& spec,
                              bool half_storage) {
  if (absl::Status s = ValidateModelSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not writing ", weights_path, ": ", s.message()));
  }
  StateDict state = ModuleStateDictForSaving(*model);
  for (auto& [name, value] : state) {
    // Integer buffers (num_batches_tracked) keep their type.
    if (half_storage && value.is_floating_point()) value = value.to(torch::kHalf);
  }
  RETURN_IF_ERROR(io::WriteStateDict(weights_path, state));
  return WriteTextProtoFile(SpecPathFor(weights_path), spec);
}

}  // namespace dmue
