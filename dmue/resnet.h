// ResNet backbones of DMUE with the reference's module names and quirks:
// a shared trunk (conv1, bn1, layer1-3) and any number of named layer4 copies
// ("layer4_0".."layer4_C" in the multi-branch model, "layer4" once converted).
//
// Reference quirks kept on purpose (weights trained by it depend on them):
// ResNet-18's stem has no ReLU and a 2x2/2 max-pool; ResNet-50-IBN-a has the
// usual ReLU and 3x3/2 max-pool, and IBN (half InstanceNorm, half BatchNorm)
// in the first norm of every block of layer1-3.
#ifndef DMUE_RESNET_H_
#define DMUE_RESNET_H_

#include <string>
#include <vector>

#include <torch/torch.h>

#include "dmue/batch_norm.h"
#include "dmue/model_config.pb.h"

namespace dmue {

class ResNetImpl : public torch::nn::Module {
 public:
  // Modules are created in the reference's order, so that the same seed gives
  // the same default initialisation as PyTorch.
  ResNetImpl(const ModelConfig& config, const std::vector<std::string>& layer4_names);

  // conv1 .. layer3, shared by every branch.
  torch::Tensor ForwardTrunk(const torch::Tensor& x);
  // One layer4 copy, by its index in `layer4_names`.
  torch::Tensor ForwardLayer4(int branch, const torch::Tensor& x);

  int num_layer4() const { return static_cast<int>(layer4_.size()); }

 private:
  torch::nn::Sequential MakeLayer(int planes, int blocks, int stride);

  ModelConfig::Backbone backbone_;
  int inplanes_ = 64;
  torch::nn::Conv2d conv1_{nullptr};
  BatchNorm bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr};
  std::vector<torch::nn::Sequential> layer4_;
};
TORCH_MODULE(ResNet);

// Generalised-mean pooling with a frozen exponent, as the reference's GeM.
torch::Tensor GemPool(const torch::Tensor& x, double p, double eps = 1e-6);

}  // namespace dmue

#endif  // DMUE_RESNET_H_
