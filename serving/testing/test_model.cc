#include "serving/testing/test_model.h"

#include <filesystem>

#include <torch/torch.h>

#include "dmue/base/status_macros.h"
#include "dmue/inference_model.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/model_bundle.h"
#include "dmue/state_dict.h"

namespace dmue::serving::testing {

absl::StatusOr<std::string> WriteRandomInferenceModel(const std::string& dir, int num_classes,
                                                      uint64_t seed) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  torch::manual_seed(seed);
  ModelConfig config;
  config.set_backbone(ModelConfig::RESNET18);
  config.set_num_classes(num_classes);
  InferenceModel model(config);
  const std::string path = dir + "/random_inference.pth";
  RETURN_IF_ERROR(io::WriteStateDict(path, ModuleStateDictForSaving(*model)));
  return path;
}

ModelSpec TestSpec(const std::vector<std::string>& class_names, int resize, int crop, bool grayscale) {
  ModelSpec spec;
  spec.mutable_model()->set_backbone(ModelConfig::RESNET18);
  spec.mutable_model()->set_num_classes(static_cast<int>(class_names.size()));
  for (const std::string& name : class_names) spec.add_class_names(name);
  spec.mutable_input()->set_resize(resize);
  spec.mutable_input()->set_crop(crop);
  spec.mutable_input()->set_grayscale(grayscale);
  spec.set_description("random weights, for tests");
  return spec;
}

absl::StatusOr<std::string> WriteRandomModelBundle(const std::string& dir, const ModelSpec& spec, uint64_t seed) {
  ASSIGN_OR_RETURN(std::string path, WriteRandomInferenceModel(dir, spec.model().num_classes(), seed));
  RETURN_IF_ERROR(WriteModelSpec(SpecPathFor(path), spec));
  return path;
}

}  // namespace dmue::serving::testing
