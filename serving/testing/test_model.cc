#include "serving/testing/test_model.h"

#include <filesystem>

#include <torch/torch.h>

#include "dmue/inference_model.h"
#include "dmue/io/torch_checkpoint.h"
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
  io::StateDict state;
  for (const auto& [name, t] : ModuleStateDict(*model)) state.emplace_back(name, t.detach().contiguous());
  const std::string path = dir + "/random_inference.pth";
  if (absl::Status s = io::WriteStateDict(path, state); !s.ok()) return s;
  return path;
}

}  // namespace dmue::serving::testing
