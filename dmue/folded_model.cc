#include "dmue/folded_model.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dmue/base/status_macros.h"
#include "dmue/batch_norm.h"
#include "dmue/bf16_support.h"
#include "dmue/resnet.h"

namespace dmue {
namespace {

// The model's tensors and modules by their state-dict names.
class NamedWeights {
 public:
  explicit NamedWeights(torch::nn::Module& model) {
    for (const auto& item : model.named_parameters()) tensors_[item.key()] = item.value().detach();
    for (const auto& item : model.named_buffers()) tensors_[item.key()] = item.value().detach();
    for (const auto& item : model.named_modules()) modules_[item.key()] = item.value();
  }

  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }

  absl::StatusOr<torch::Tensor> Get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return absl::NotFoundError(absl::StrCat("folding: the model has no '", name, "'"));
    return it->second.to(torch::kFloat);
  }

  // eps of the normalisation module at `prefix` (ours, torch's 1-d, instance).
  absl::StatusOr<double> Eps(const std::string& prefix) const {
    auto it = modules_.find(prefix);
    if (it != modules_.end()) {
      if (auto* bn = it->second->as<BatchNormImpl>()) return bn->options.eps();
      if (auto* bn1d = it->second->as<torch::nn::BatchNorm1dImpl>()) return bn1d->options.eps();
      if (auto* in = it->second->as<torch::nn::InstanceNorm2dImpl>()) return in->options.eps();
    }
    return absl::NotFoundError(absl::StrCat("folding: no normalisation module '", prefix, "'"));
  }

 private:
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules_;
};

// Eval-mode BatchNorm as y = scale * x + shift.
struct Affine {
  torch::Tensor scale, shift;
};

absl::StatusOr<Affine> BatchNormAffine(const NamedWeights& w, const std::string& prefix) {
  absl::StatusOr<torch::Tensor> gamma = w.Get(prefix + ".weight"), beta = w.Get(prefix + ".bias"),
                                mean = w.Get(prefix + ".running_mean"), var = w.Get(prefix + ".running_var");
  absl::StatusOr<double> eps = w.Eps(prefix);
  for (const absl::Status& s : {gamma.status(), beta.status(), mean.status(), var.status(), eps.status()}) {
    RETURN_IF_ERROR(s);
  }
  // In double: the folded weights are then rounded to float once.
  const torch::Tensor scale = gamma->to(torch::kDouble) / (var->to(torch::kDouble) + *eps).sqrt();
  return Affine{scale, beta->to(torch::kDouble) - mean->to(torch::kDouble) * scale};
}

FoldedConv FoldInto(const torch::Tensor& conv_weight, const Affine& bn, int64_t stride) {
  FoldedConv f;
  f.weight = (conv_weight.to(torch::kDouble) * bn.scale.view({-1, 1, 1, 1})).to(torch::kFloat);
  f.bias = bn.shift.to(torch::kFloat);
  f.stride = stride;
  f.padding = conv_weight.size(2) / 2;  // the ResNets' "same" padding
  return f;
}

absl::StatusOr<FoldedConv> FoldConvBn(const NamedWeights& w, const std::string& conv, const std::string& bn,
                                      int64_t stride) {
  ASSIGN_OR_RETURN(torch::Tensor weight, w.Get(conv + ".weight"));
  ASSIGN_OR_RETURN(Affine affine, BatchNormAffine(w, bn));
  return FoldInto(weight, affine, stride);
}

// IBN-a's conv1 -> [InstanceNorm | BatchNorm]: the BatchNorm half is folded,
// the InstanceNorm half passes through unscaled and is normalised at run time.
absl::Status FoldIbnConv1(const NamedWeights& w, const std::string& block, FoldedBlock* out) {
  ASSIGN_OR_RETURN(torch::Tensor weight, w.Get(block + ".conv1.weight"));
  ASSIGN_OR_RETURN(Affine bn, BatchNormAffine(w, block + ".bn1.BN"));
  absl::StatusOr<torch::Tensor> in_weight = w.Get(block + ".bn1.IN.weight"), in_bias = w.Get(block + ".bn1.IN.bias");
  absl::StatusOr<double> in_eps = w.Eps(block + ".bn1.IN");
  for (const absl::Status& s : {in_weight.status(), in_bias.status(), in_eps.status()}) {
    RETURN_IF_ERROR(s);
  }
  const int64_t half = in_weight->size(0);
  const auto dbl = bn.scale.options();  // double, on the model's device
  const Affine whole{torch::cat({torch::ones({half}, dbl), bn.scale}),
                     torch::cat({torch::zeros({half}, dbl), bn.shift})};
  out->conv1 = FoldInto(weight, whole, 1);
  out->instance_channels = half;
  out->instance_weight = *in_weight;
  out->instance_bias = *in_bias;
  out->instance_eps = *in_eps;
  return absl::OkStatus();
}

absl::StatusOr<FoldedBlock> FoldBlock(const NamedWeights& w, const std::string& block, bool bottleneck,
                                      int64_t stride) {
  FoldedBlock out;
  absl::Status status;
  if (bottleneck && w.Has(block + ".bn1.IN.weight")) {
    status = FoldIbnConv1(w, block, &out);
  } else {
    absl::StatusOr<FoldedConv> conv1 = FoldConvBn(w, block + ".conv1", block + ".bn1", bottleneck ? 1 : stride);
    status = conv1.status();
    if (conv1.ok()) out.conv1 = *std::move(conv1);
  }
  RETURN_IF_ERROR(status);
  ASSIGN_OR_RETURN(FoldedConv conv2, FoldConvBn(w, block + ".conv2", block + ".bn2", bottleneck ? stride : 1));
  out.conv2 = std::move(conv2);
  if (bottleneck) {
    ASSIGN_OR_RETURN(FoldedConv conv3, FoldConvBn(w, block + ".conv3", block + ".bn3", 1));
    out.conv3 = std::move(conv3);
  }
  if (w.Has(block + ".downsample.0.weight")) {
    ASSIGN_OR_RETURN(FoldedConv shortcut, FoldConvBn(w, block + ".downsample.0", block + ".downsample.1", stride));
    out.downsample = std::move(shortcut);
  }
  return out;
}

// The weights on the device, in the layout and dtype every call will use.
void Place(FoldedConv& conv, const ComputeOptions& compute) {
  const auto dtype = compute.precision == Precision::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
  conv.weight = conv.weight.to(compute.device, dtype)
                    .contiguous(compute.channels_last ? torch::MemoryFormat::ChannelsLast
                                                      : torch::MemoryFormat::Contiguous);
  conv.bias = conv.bias.to(compute.device, dtype);
}

void Place(FoldedBlock& block, const ComputeOptions& compute) {
  for (FoldedConv* conv : {&block.conv1, &block.conv2}) Place(*conv, compute);
  if (block.conv3) Place(*block.conv3, compute);
  if (block.downsample) Place(*block.downsample, compute);
  // Instance statistics stay float32 (FoldedBlock::Apply).
  if (block.instance_channels > 0) {
    block.instance_weight = block.instance_weight.to(compute.device);
    block.instance_bias = block.instance_bias.to(compute.device);
  }
}

}  // namespace

torch::Tensor FoldedConv::Apply(const torch::Tensor& x) const {
  return torch::conv2d(x, weight, bias, stride, padding);
}

torch::Tensor FoldedBlock::Apply(const torch::Tensor& x) const {
  torch::Tensor out = conv1.Apply(x);
  if (instance_channels > 0) {
    // Instance statistics in float32 whatever the compute dtype.
    const torch::Tensor head = torch::instance_norm(out.narrow(1, 0, instance_channels).to(torch::kFloat),
                                                    instance_weight, instance_bias, {}, {}, /*use_input_stats=*/true,
                                                    /*momentum=*/0.0, instance_eps, /*cudnn_enabled=*/false);
    out = torch::cat({head.to(out.scalar_type()), out.narrow(1, instance_channels, out.size(1) - instance_channels)}, 1);
  }
  out = conv2.Apply(out.relu_());
  if (conv3) out = conv3->Apply(out.relu_());
  out += downsample ? downsample->Apply(x) : x;
  return out.relu_();
}

absl::StatusOr<FoldedModel> FoldedModel::Fold(InferenceModel& model, const ComputeOptions& compute) {
  const NamedWeights w(*model);
  FoldedModel folded;
  folded.config_ = model->config();
  folded.compute_ = compute;
  ASSIGN_OR_RETURN(FoldedConv stem, FoldConvBn(w, "base.conv1", "base.bn1", 2));
  folded.stem_ = std::move(stem);
  const bool bottleneck = folded.config_.backbone() != ModelConfig::RESNET18;
  const int64_t strides[] = {1, 2, 2, folded.config_.last_stride()};
  for (int layer = 1; layer <= 4; ++layer) {
    for (int i = 0; w.Has(absl::StrCat("base.layer", layer, ".", i, ".conv1.weight")); ++i) {
      ASSIGN_OR_RETURN(FoldedBlock block, FoldBlock(w, absl::StrCat("base.layer", layer, ".", i), bottleneck,
                                                    i == 0 ? strides[layer - 1] : 1));
      folded.blocks_.push_back(std::move(block));
    }
  }
  if (folded.blocks_.empty()) return absl::InvalidArgumentError("folding: the model has no residual blocks");

  ASSIGN_OR_RETURN(torch::Tensor classifier, w.Get("classifiers.0.weight"));
  torch::Tensor weight = classifier.to(torch::kDouble);
  torch::Tensor bias = w.Has("classifiers.0.bias") ? w.Get("classifiers.0.bias")->to(torch::kDouble)
                                                   : torch::zeros({weight.size(0)}, weight.options());
  if (folded.config_.bnneck()) {
    // W (s x + t) + b = (W s) x + (W t + b).
    ASSIGN_OR_RETURN(Affine neck, BatchNormAffine(w, "bottleneck"));
    bias = bias + weight.mv(neck.shift);
    weight = weight * neck.scale.unsqueeze(0);
  }
  folded.classifier_weight_ = weight.to(compute.device, torch::kFloat).t().contiguous();
  folded.classifier_bias_ = bias.to(compute.device, torch::kFloat);

  Place(folded.stem_, compute);
  for (FoldedBlock& block : folded.blocks_) Place(block, compute);
  return folded;
}

torch::Tensor FoldedModel::Pool(const torch::Tensor& maps) const {
  const torch::Tensor x = maps.to(torch::kFloat);
  const torch::Tensor pooled = config_.pooling() == ModelConfig::GEM ? GemPool(x, config_.gem_p())
                                                                     : torch::adaptive_avg_pool2d(x, {1, 1});
  return pooled.flatten(1);
}

torch::Tensor FoldedModel::Forward(const torch::Tensor& images) const {
  torch::InferenceMode inference;
  const auto dtype = compute_.precision == Precision::kBFloat16 ? torch::kBFloat16 : torch::kFloat;
  torch::Tensor x = PrepareImages(images.to(compute_.device, dtype), compute_);
  x = stem_.Apply(x);
  if (config_.backbone() == ModelConfig::RESNET18) {
    x = torch::max_pool2d(x, {2, 2}, {2, 2});  // the reference's stem: no ReLU, 2x2 pool
  } else {
    x = torch::max_pool2d(x.relu_(), {3, 3}, {2, 2}, {1, 1});
  }
  for (const FoldedBlock& block : blocks_) x = block.Apply(x);
  return torch::addmm(classifier_bias_, Pool(x), classifier_weight_);
}

namespace {

double BestSeconds(const FoldedModel& model, const torch::Tensor& images, int passes) {
  model.Forward(images);  // untimed: first-call allocations and oneDNN primitive creation
  const torch::Device& device = model.compute().device;
  SynchronizeDevice(device);
  double best = 1e30;
  for (int i = 0; i < passes; ++i) {
    const auto start = std::chrono::steady_clock::now();
    model.Forward(images);
    SynchronizeDevice(device);  // CUDA kernels run asynchronously
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

std::string InferenceComputeChoice::Summary() const {
  std::vector<std::string> parts;
  std::string chosen;
  for (const InferenceComputeTrial& t : trials) {
    if (!t.skipped.empty()) {
      parts.push_back(absl::StrCat(t.name, " not timed: ", t.skipped));
      continue;
    }
    parts.push_back(absl::StrFormat("%s %.2f ms (probability deviation %.1e%s)", t.name, 1000 * t.seconds,
                                    t.probability_deviation, t.within_bound ? "" : ", over the bound"));
    if (t.options.precision == options.precision && t.options.channels_last == options.channels_last) chosen = t.name;
  }
  return absl::StrCat("AUTO inference compute: ", chosen, " [", absl::StrJoin(parts, "; "), "]");
}

absl::StatusOr<InferenceComputeChoice> ChooseInferenceCompute(InferenceModel& model,
                                                              const InferenceComputeProbe& probe) {
  if (probe.batch_sizes.empty() || probe.image_size <= 0 || probe.timed_passes <= 0) {
    return absl::InvalidArgumentError("InferenceComputeProbe: batch_sizes, image_size and timed_passes must be set");
  }
  const std::vector<std::pair<std::string, ComputeOptions>> candidates = {
      {"fp32", {Precision::kFloat32, false, probe.device}},
      {"fp32 channels-last", {Precision::kFloat32, true, probe.device}},
      {"bf16 channels-last", {Precision::kBFloat16, true, probe.device}}};
  // A fixed probe input from its own generator (the global one is left alone).
  const torch::Tensor check = torch::randn({8, 3, probe.image_size, probe.image_size},
                                           at::detail::createCPUGenerator(/*seed_val=*/0));
  InferenceComputeChoice choice;
  torch::Tensor reference;
  double best = 1e30;
  for (const auto& [name, options] : candidates) {
    InferenceComputeTrial trial{name, options};
    trial.skipped = ComputeUnavailable(options);
    if (!trial.skipped.empty()) {
      trial.seconds = std::numeric_limits<double>::infinity();
      trial.within_bound = false;
      choice.trials.push_back(trial);
      continue;
    }
    ASSIGN_OR_RETURN(FoldedModel folded, FoldedModel::Fold(model, options));
    const torch::Tensor probabilities = torch::softmax(folded.Forward(check), 1);
    if (!reference.defined()) reference = probabilities;
    trial.probability_deviation = (probabilities - reference).abs().max().item<double>();
    trial.within_bound = trial.probability_deviation <= probe.max_probability_deviation;
    for (int64_t batch : probe.batch_sizes) {
      trial.seconds +=
          BestSeconds(folded, check.narrow(0, 0, 1).expand({batch, -1, -1, -1}).contiguous(), probe.timed_passes);
    }
    if (trial.within_bound && trial.seconds < best) {
      best = trial.seconds;
      choice.options = options;
    }
    choice.trials.push_back(trial);
  }
  return choice;
}

}  // namespace dmue
