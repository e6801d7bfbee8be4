#include "training/mv_softmax.h"

#include <cmath>

#include "dmue/model_config.h"

namespace dmue::training {

namespace F = torch::nn::functional;

MvSoftmaxImpl::MvSoftmaxImpl(int feat_dim, int num_classes, const MvSoftmaxOptions& options)
    : options_(options) {
  torch::NoGradGuard no_grad;
  // The reference's init: uniform(-1, 1), each column renormed to norm 1e-5, times 1e5.
  torch::Tensor w = torch::empty({feat_dim, num_classes}).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5);
  weight_ = register_parameter("weight", w);
}

torch::Tensor MvSoftmaxImpl::forward(const torch::Tensor& features, const torch::Tensor& labels) {
  torch::Tensor x = options_.normalize_features ? F::normalize(features, F::NormalizeFuncOptions().dim(1)) : features;
  torch::Tensor cos_theta = x.mm(F::normalize(weight_, F::NormalizeFuncOptions().dim(0)));
  const torch::Tensor index = labels.view({-1, 1});
  const torch::Tensor gt = cos_theta.gather(1, index);
  torch::Tensor mask, final_gt;
  if (options_.is_am) {
    mask = cos_theta > gt - options_.margin;
    final_gt = torch::where(gt > options_.margin, gt - options_.margin, gt);
  } else {
    const torch::Tensor sin_theta = torch::sqrt(1.0 - gt.pow(2));
    const torch::Tensor cos_theta_m = gt * std::cos(options_.margin) - sin_theta * std::sin(options_.margin);
    mask = cos_theta > cos_theta_m;
    final_gt = torch::where(gt > 0.0, cos_theta_m, gt);
  }
  torch::Tensor hard = cos_theta * options_.mask + (options_.mask - 1.0);
  torch::Tensor logits = torch::where(mask, hard, cos_theta).scatter(1, index, final_gt);
  return logits * options_.scale;
}

MvFaceImpl::MvFaceImpl(const ModelConfig& backbone, int num_identities, const MvSoftmaxOptions& options) {
  feat_net_ = register_module("feat_net", ResNet(backbone, std::vector<std::string>{"layer4"}));
  loss_layer_ = register_module("loss_layer", MvSoftmax(FeatureDim(backbone), num_identities, options));
}

torch::Tensor MvFaceImpl::Features(const torch::Tensor& images) {
  return torch::adaptive_avg_pool2d(feat_net_->ForwardLayer4(0, feat_net_->ForwardTrunk(images)), {1, 1}).flatten(1);
}

torch::Tensor MvFaceImpl::forward(const torch::Tensor& images, const torch::Tensor& labels) {
  return loss_layer_(Features(images), labels);
}

}  // namespace dmue::training
