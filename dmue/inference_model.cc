#include "dmue/inference_model.h"

#include "dmue/model_config.h"

namespace dmue {

namespace nn = torch::nn;

InferenceModelImpl::InferenceModelImpl(const ModelConfig& config) : config_(config) {
  const int dim = FeatureDim(config);
  base_ = register_module("base", ResNet(config, std::vector<std::string>{"layer4"}));
  classifiers_ = register_module("classifiers", nn::ModuleList());
  classifiers_->push_back(
      nn::Linear(nn::LinearOptions(dim, config.num_classes()).bias(config.bias_in_classifiers())));
  if (config.bnneck()) bottleneck_ = register_module("bottleneck", nn::BatchNorm1d(dim));
}

torch::Tensor InferenceModelImpl::forward(const torch::Tensor& images) {
  torch::Tensor maps = base_->ForwardLayer4(0, base_->ForwardTrunk(images));
  torch::Tensor pooled = config_.pooling() == ModelConfig::GEM
                             ? GemPool(maps, config_.gem_p())
                             : torch::adaptive_avg_pool2d(maps, {1, 1});
  pooled = pooled.flatten(1);
  if (bottleneck_) pooled = bottleneck_(pooled);
  return classifiers_[0]->as<nn::Linear>()->forward(pooled);
}

}  // namespace dmue
