// The inference model: DMUE's main branch alone, a plain ResNet + bnneck +
// classifier with the reference target model's names (base.layer4.*,
// classifiers.0.weight, bottleneck.*). No extra cost over a plain ResNet.
#ifndef DMUE_INFERENCE_MODEL_H_
#define DMUE_INFERENCE_MODEL_H_

#include <torch/torch.h>

#include "dmue/model_config.pb.h"
#include "dmue/resnet.h"

namespace dmue {

class InferenceModelImpl : public torch::nn::Module {
 public:
  explicit InferenceModelImpl(const ModelConfig& config);

  // Logits [B, C] for normalised images [B, 3, H, W].
  torch::Tensor forward(const torch::Tensor& images);

  const ModelConfig& config() const { return config_; }

 private:
  ModelConfig config_;
  ResNet base_{nullptr};
  torch::nn::ModuleList classifiers_{nullptr};
  torch::nn::BatchNorm1d bottleneck_{nullptr};
};
TORCH_MODULE(InferenceModel);

}  // namespace dmue

#endif  // DMUE_INFERENCE_MODEL_H_
