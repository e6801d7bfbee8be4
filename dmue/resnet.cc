#include "dmue/resnet.h"

#include <utility>

namespace dmue {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv(int in, int out, int kernel, int stride, int padding) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// Half InstanceNorm (affine), half BatchNorm over the channels: IBN-a.
class IbnImpl : public nn::Module {
 public:
  explicit IbnImpl(int planes) : half_(planes / 2) {
    in_ = register_module("IN", nn::InstanceNorm2d(nn::InstanceNorm2dOptions(half_).affine(true)));
    bn_ = register_module("BN", BatchNorm(planes - half_));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> parts = torch::split(x, half_, 1);
    return torch::cat({in_(parts[0].contiguous()), bn_(parts[1].contiguous())}, 1);
  }

 private:
  int half_;
  nn::InstanceNorm2d in_{nullptr};
  BatchNorm bn_{nullptr};
};
TORCH_MODULE(Ibn);

class BasicBlockImpl : public nn::Module {
 public:
  static constexpr int kExpansion = 1;
  BasicBlockImpl(int inplanes, int planes, int stride, nn::Sequential downsample) {
    conv1_ = register_module("conv1", Conv(inplanes, planes, 3, stride, 1));
    bn1_ = register_module("bn1", BatchNorm(planes));
    conv2_ = register_module("conv2", Conv(planes, planes, 3, 1, 1));
    bn2_ = register_module("bn2", BatchNorm(planes));
    if (downsample) downsample_ = register_module("downsample", std::move(downsample));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = bn1_(conv1_(x)).relu_();
    out = bn2_(conv2_(out));
    out += downsample_ ? downsample_->forward(x) : x;
    return torch::relu_(out);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  BatchNorm bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public nn::Module {
 public:
  static constexpr int kExpansion = 4;
  BottleneckImpl(int inplanes, int planes, bool ibn, int stride, nn::Sequential downsample) {
    conv1_ = register_module("conv1", Conv(inplanes, planes, 1, 1, 0));
    if (ibn) {
      bn1_ = nn::AnyModule(register_module("bn1", Ibn(planes)));
    } else {
      bn1_ = nn::AnyModule(register_module("bn1", BatchNorm(planes)));
    }
    conv2_ = register_module("conv2", Conv(planes, planes, 3, stride, 1));
    bn2_ = register_module("bn2", BatchNorm(planes));
    conv3_ = register_module("conv3", Conv(planes, planes * kExpansion, 1, 1, 0));
    bn3_ = register_module("bn3", BatchNorm(planes * kExpansion));
    if (downsample) downsample_ = register_module("downsample", std::move(downsample));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = bn1_.forward<torch::Tensor>(conv1_(x)).relu_();
    out = bn2_(conv2_(out)).relu_();
    out = bn3_(conv3_(out));
    out += downsample_ ? downsample_->forward(x) : x;
    return torch::relu_(out);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  nn::AnyModule bn1_;
  BatchNorm bn2_{nullptr}, bn3_{nullptr};
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

}  // namespace

ResNetImpl::ResNetImpl(const ModelConfig& config, const std::vector<std::string>& layer4_names)
    : backbone_(config.backbone()) {
  conv1_ = register_module("conv1", Conv(3, 64, 7, 2, 3));
  bn1_ = register_module("bn1", BatchNorm(64));
  const bool resnet18 = backbone_ == ModelConfig::RESNET18;
  const std::vector<int> blocks = resnet18 ? std::vector<int>{2, 2, 2, 2}
                                           : std::vector<int>{3, 4, 6, 3};
  layer1_ = register_module("layer1", MakeLayer(64, blocks[0], 1));
  layer2_ = register_module("layer2", MakeLayer(128, blocks[1], 2));
  layer3_ = register_module("layer3", MakeLayer(256, blocks[2], 2));
  const int trunk_planes = inplanes_;
  for (const std::string& name : layer4_names) {
    inplanes_ = trunk_planes;
    layer4_.push_back(register_module(name, MakeLayer(512, blocks[3], config.last_stride())));
  }
}

nn::Sequential ResNetImpl::MakeLayer(int planes, int blocks, int stride) {
  const bool resnet18 = backbone_ == ModelConfig::RESNET18;
  const int expansion = resnet18 ? BasicBlockImpl::kExpansion : BottleneckImpl::kExpansion;
  // The reference builds the downsample branch before the block's own convs;
  // the order matters for seeded initialisation.
  nn::Sequential downsample{nullptr};
  if (stride != 1 || inplanes_ != planes * expansion) {
    downsample = nn::Sequential(Conv(inplanes_, planes * expansion, 1, stride, 0),
                                BatchNorm(planes * expansion));
  }
  const bool ibn = !resnet18 && planes != 512;
  nn::Sequential layer;
  for (int i = 0; i < blocks; ++i) {
    const int block_stride = i == 0 ? stride : 1;
    nn::Sequential block_downsample = i == 0 ? downsample : nn::Sequential{nullptr};
    if (resnet18) {
      layer->push_back(BasicBlock(inplanes_, planes, block_stride, block_downsample));
    } else {
      layer->push_back(Bottleneck(inplanes_, planes, ibn, block_stride, block_downsample));
    }
    inplanes_ = planes * expansion;
  }
  return layer;
}

torch::Tensor ResNetImpl::ForwardTrunk(const torch::Tensor& x) {
  torch::Tensor out = bn1_(conv1_(x));
  if (backbone_ == ModelConfig::RESNET18) {
    out = torch::max_pool2d(out, /*kernel_size=*/{2, 2}, /*stride=*/{2, 2});
  } else {
    out = torch::max_pool2d(out.relu_(), {3, 3}, {2, 2}, /*padding=*/{1, 1});
  }
  out = layer1_->forward(out);
  out = layer2_->forward(out);
  return layer3_->forward(out);
}

torch::Tensor ResNetImpl::ForwardLayer4(int branch, const torch::Tensor& x) {
  return layer4_.at(branch)->forward(x);
}

torch::Tensor GemPool(const torch::Tensor& x, double p, double eps) {
  return torch::adaptive_avg_pool2d(x.clamp_min(eps).pow(p), {1, 1}).pow(1.0 / p);
}

}  // namespace dmue
