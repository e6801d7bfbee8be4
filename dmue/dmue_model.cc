#include "dmue/dmue_model.h"

#include <cmath>
#include <mutex>
#include <map>
#include <string>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"

namespace dmue {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

std::vector<std::string> MultiBranchLayer4Names(int num_classes) {
  std::vector<std::string> names;
  for (int b = 0; b <= num_classes; ++b) names.push_back(absl::StrCat("layer4_", b));
  return names;
}

// LibTorch's default Linear init computes its uniform bounds one ulp away from
// PyTorch's (sqrt(3) * gain(leaky_relu, sqrt(5)) / sqrt(fan_in) for the weight).
// Redraw from the same generator state with PyTorch's formula so that a seeded
// model equals the reference's bit for bit.
nn::Linear PyTorchInitLinear(int in_features, int out_features) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state = generator.get_state();
  }
  nn::Linear linear(in_features, out_features);
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  }
  const double a = std::sqrt(5.0);
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double weight_bound = std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(in_features)));
  const double bias_bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  torch::NoGradGuard no_grad;
  linear->weight.uniform_(-weight_bound, weight_bound);
  linear->bias.uniform_(-bias_bound, bias_bound);
  return linear;
}

torch::Tensor RowNormalize(const torch::Tensor& x) {
  return F::normalize(x, F::NormalizeFuncOptions().p(2).dim(1));
}

}  // namespace

absl::Status CheckBatch(const torch::Tensor& labels, int num_classes) {
  if (labels.dim() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels must be 1-D, got ", labels.dim(), " dimensions"));
  }
  // Counted on the host (a no-op move for CPU labels): the loop reads them.
  torch::Tensor counts = torch::bincount(labels.to(torch::kCPU, torch::kLong), {}, num_classes);
  if (counts.size(0) > num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels must be in [0, ", num_classes, "), got ", labels.max().item<int64_t>()));
  }
  if (labels.numel() > 0 && labels.min().item<int64_t>() < 0) {
    return absl::InvalidArgumentError("labels must not be negative");
  }
  auto accessor = counts.accessor<int64_t, 1>();
  for (int c = 0; c < num_classes; ++c) {
    if (accessor[c] < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch has ", accessor[c], " sample(s) of class ", c,
          "; every class needs at least 2 (the reference skips such batches)"));
    }
  }
  return absl::OkStatus();
}

DmueModelImpl::DmueModelImpl(const ModelConfig& config) : config_(config) {
  const int num_classes = config.num_classes();
  const int dim = config.backbone() == ModelConfig::RESNET50_IBN ? 2048 : 512;
  base_ = register_module("base", ResNet(config, MultiBranchLayer4Names(num_classes)));
  classifiers_ = register_module("classifiers", nn::ModuleList());
  for (int b = 0; b <= num_classes; ++b) {
    const int outputs = b == num_classes ? num_classes : num_classes - 1;
    nn::Linear linear(nn::LinearOptions(dim, outputs).bias(config.bias_in_classifiers()));
    torch::NoGradGuard no_grad;
    linear->weight.normal_(0.0, 0.001);
    if (config.bias_in_classifiers()) linear->bias.zero_();
    classifiers_->push_back(linear);
  }
  dropout_ = register_module("dropout", nn::Dropout(config.dropout()));
  // Built one statement at a time: argument evaluation order is unspecified in
  // C++, and the draw order must be the reference's.
  nn::Linear project_in = PyTorchInitLinear(2 * num_classes, num_classes);
  nn::Linear project_out = PyTorchInitLinear(num_classes, 1);
  project_w_ = register_module("project_w", nn::Sequential(project_in, nn::PReLU(), project_out));
  if (config.bnneck()) {
    bottleneck_ = register_module("bottleneck", BatchNorm(dim));
    // The reference freezes the bnneck shift.
    bottleneck_->bias.set_requires_grad(false);
  }
}

torch::Tensor DmueModelImpl::Pool(const torch::Tensor& x) {
  torch::Tensor pooled = config_.pooling() == ModelConfig::GEM
                             ? GemPool(x, config_.gem_p())
                             : torch::adaptive_avg_pool2d(x, {1, 1});
  return pooled.flatten(1);
}

torch::Tensor DmueModelImpl::Neck(const torch::Tensor& pooled) {
  return bottleneck_ ? bottleneck_(pooled) : pooled;
}

absl::StatusOr<TrainForwardOutput> DmueModelImpl::ForwardTrain(const torch::Tensor& images,
                                                               const torch::Tensor& labels) {
  const int num_classes = config_.num_classes();
  if (images.dim() != 4 || images.size(1) != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("images must be [B, 3, H, W], got ", c10::str(images.sizes())));
  }
  if (labels.size(0) != images.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("got ", images.size(0), " images but ",
                                                   labels.size(0), " labels"));
  }
  RETURN_IF_ERROR(CheckBatch(labels, num_classes));

  TrainForwardOutput out;
  const torch::Tensor trunk = base_->ForwardTrunk(images);

  // Sample indices outside / inside each class, in batch order.
  std::vector<torch::Tensor> others(num_classes), members(num_classes);
  for (int c = 0; c < num_classes; ++c) {
    others[c] = (labels != c).nonzero().select(1, 0);
    members[c] = (labels == c).nonzero().select(1, 0);
    torch::Tensor t = labels.index_select(0, others[c]);
    out.aux_targets.push_back(torch::where(t < c, t, t - 1));
  }

  // layer4 passes in the reference's order (it fixes the BN running-stat EMA):
  // auxiliary branches, main branch, then the latent-distribution passes.
  std::vector<torch::Tensor> aux_maps(num_classes), latent_maps(num_classes);
  for (int c = 0; c < num_classes; ++c) {
    aux_maps[c] = base_->ForwardLayer4(c, trunk.index_select(0, others[c]));
  }
  const torch::Tensor main_map = base_->ForwardLayer4(num_classes, trunk);
  {
    // The latent distributions are detached targets: building their graph
    // (as the reference does) costs memory and time for nothing.
    torch::NoGradGuard no_grad;
    for (int c = 0; c < num_classes; ++c) {
      latent_maps[c] = base_->ForwardLayer4(c, trunk.index_select(0, members[c]));
    }
  }

  // Heads, again in the reference's order of bnneck calls.
  std::vector<torch::Tensor> aux_features(num_classes);
  for (int c = 0; c < num_classes; ++c) aux_features[c] = dropout_(Pool(aux_maps[c]));
  for (int c = 0; c < num_classes; ++c) aux_features[c] = Neck(aux_features[c]);
  for (int c = 0; c < num_classes; ++c) {
    out.aux_logits.push_back(classifiers_[c]->as<nn::Linear>()->forward(aux_features[c]));
  }

  out.main_pooled = Pool(main_map);
  const torch::Tensor dot = out.main_pooled.mm(out.main_pooled.t());
  const torch::Tensor norms = torch::linalg_vector_norm(out.main_pooled, 2, {1}).unsqueeze(1);
  const torch::Tensor cos_similarity = dot / norms.mm(norms.t());
  out.main_bnneck = Neck(dropout_(out.main_pooled));

  {
    torch::NoGradGuard no_grad;
    for (int c = 0; c < num_classes; ++c) {
      torch::Tensor feature = Neck(Pool(latent_maps[c]));
      out.latent_logits.push_back(classifiers_[c]->as<nn::Linear>()->forward(feature));
    }
  }

  const torch::Tensor main_gram = out.main_bnneck.mm(out.main_bnneck.t());
  for (int c = 0; c < num_classes; ++c) {
    out.aux_gram.push_back(RowNormalize(out.aux_logits[c].mm(out.aux_logits[c].t())));
    out.main_gram.push_back(
        RowNormalize(main_gram.index_select(0, others[c]).index_select(1, others[c])));
  }

  out.logits = classifiers_[num_classes]->as<nn::Linear>()->forward(out.main_bnneck);
  const torch::Tensor one_hot = torch::zeros({labels.size(0), num_classes}, out.logits.options())
                                    .scatter_(1, labels.unsqueeze(1), 1);
  std::vector<torch::Tensor> class_means;
  for (int c = 0; c < num_classes; ++c) {
    class_means.push_back(cos_similarity.index_select(1, members[c]).mean(1, /*keepdim=*/true));
  }
  torch::Tensor cos_mean = torch::cat(class_means, 1);
  const torch::Tensor row_min = std::get<0>(cos_mean.min(1, /*keepdim=*/true));
  const torch::Tensor row_max = std::get<0>(cos_mean.max(1, /*keepdim=*/true));
  cos_mean = (cos_mean - row_min) / (row_max - row_min);
  out.statics = torch::cat({cos_mean, one_hot}, 1);
  out.score = torch::sigmoid(project_w_->forward(out.statics));
  out.weighted_logits = out.logits * out.score;
  return out;
}

torch::Tensor DmueModelImpl::ForwardEval(const torch::Tensor& images) {
  const torch::Tensor features = Pool(base_->ForwardLayer4(main_branch(), base_->ForwardTrunk(images)));
  return classifiers_[main_branch()]->as<nn::Linear>()->forward(Neck(dropout_(features)));
}

void DmueModelImpl::CopyMainLayer4ToAuxiliaryBranches() {
  const std::string main_prefix = absl::StrCat("layer4_", main_branch(), ".");
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : base_->named_parameters()) tensors[item.key()] = item.value();
  for (const auto& item : base_->named_buffers()) tensors[item.key()] = item.value();
  torch::NoGradGuard no_grad;
  for (const auto& [name, source] : tensors) {
    if (name.rfind(main_prefix, 0) != 0) continue;
    const std::string rest = name.substr(main_prefix.size());
    for (int b = 0; b < main_branch(); ++b) {
      tensors.at(absl::StrCat("layer4_", b, ".", rest)).copy_(source);
    }
  }
}

std::vector<torch::Tensor> DmueModelImpl::BaseParameters() { return base_->parameters(); }

std::vector<torch::Tensor> DmueModelImpl::ClassifierParameters() {
  return classifiers_->parameters();
}

std::vector<torch::Tensor> DmueModelImpl::HeadParameters() {
  std::vector<torch::Tensor> params = project_w_->parameters();
  if (bottleneck_) params.push_back(bottleneck_->weight);
  return params;
}

}  // namespace dmue
