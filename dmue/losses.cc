#include "dmue/losses.h"

namespace dmue {

namespace F = torch::nn::functional;

torch::Tensor LatentSoftLabels(const std::vector<torch::Tensor>& latent_logits,
                               const torch::Tensor& labels, int num_classes, double temperature) {
  torch::NoGradGuard no_grad;
  // At least float (bf16 under autocast); double stays double.
  const torch::ScalarType dtype =
      latent_logits.at(0).scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor soft =
      torch::zeros({labels.size(0), num_classes}, latent_logits.at(0).options().dtype(dtype));
  for (int c = 0; c < num_classes; ++c) {
    torch::Tensor px = torch::softmax(latent_logits[c].to(dtype), 1);
    torch::Tensor ptx = px.pow(1.0 / temperature);
    torch::Tensor targets = ptx / ptx.sum(1, /*keepdim=*/true);
    torch::Tensor spread = torch::zeros({targets.size(0), num_classes}, targets.options());
    using torch::indexing::Slice;
    spread.index_put_({Slice(), Slice(0, c)}, targets.index({Slice(), Slice(0, c)}));
    spread.index_put_({Slice(), Slice(c + 1, torch::indexing::None)},
                      targets.index({Slice(), Slice(c, torch::indexing::None)}));
    soft.index_copy_(0, (labels == c).nonzero().select(1, 0), spread);
  }
  return soft;
}

torch::Tensor SoftLoss(const torch::Tensor& logits, const torch::Tensor& labels,
                       const torch::Tensor& soft_labels) {
  torch::Tensor probs = torch::softmax(logits, 1);
  torch::Tensor mask = torch::ones_like(probs).scatter_(1, labels.view({-1, 1}), 0);
  return (probs * mask - soft_labels).pow(2).mean();
}

torch::Tensor SpKdLoss(const std::vector<torch::Tensor>& aux_gram,
                       const std::vector<torch::Tensor>& main_gram) {
  torch::Tensor sum = F::mse_loss(aux_gram.at(0), main_gram.at(0));
  for (size_t i = 1; i < aux_gram.size(); ++i) sum = sum + F::mse_loss(aux_gram[i], main_gram[i]);
  return sum / static_cast<int64_t>(main_gram.size());
}

torch::Tensor TargetCrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels,
                                 const torch::Tensor& soft_targets, double label_smoothing) {
  const torch::Tensor log_p = torch::log_softmax(logits.to(torch::kFloat32), 1);
  torch::Tensor targets = soft_targets.defined()
                              ? soft_targets.to(torch::kFloat32)
                              : torch::one_hot(labels, logits.size(1)).to(torch::kFloat32);
  if (label_smoothing > 0) targets = targets * (1.0 - label_smoothing) + label_smoothing / logits.size(1);
  return -(targets * log_p).sum(1).mean();
}

DmueLosses ComputeDmueLosses(const TrainForwardOutput& forward, const torch::Tensor& labels,
                             int num_classes, double temperature, const LossWeights& weights) {
  DmueLosses losses;
  losses.soft_labels = LatentSoftLabels(forward.latent_logits, labels, num_classes, temperature);
  losses.soft = SoftLoss(forward.logits, labels, losses.soft_labels);
  for (int c = 0; c < num_classes; ++c) {
    losses.aux_per_branch.push_back(
        F::cross_entropy(forward.aux_logits[c], forward.aux_targets[c]));
  }
  torch::Tensor aux_sum = losses.aux_per_branch[0];
  for (int c = 1; c < num_classes; ++c) aux_sum = aux_sum + losses.aux_per_branch[c];
  losses.aux = aux_sum / static_cast<int64_t>(num_classes);
  losses.ce = F::cross_entropy(weights.pairwise_uncertainty ? forward.weighted_logits : forward.logits, labels);
  losses.sp = SpKdLoss(forward.aux_gram, forward.main_gram);
  // Same association order as train.py, so the float32 sum matches bit for bit.
  losses.total = losses.ce * weights.ramp_up +
                 (losses.soft * weights.w + losses.sp * weights.gamma) * weights.ramp_up +
                 losses.aux * weights.ramp_down;
  return losses;
}

}  // namespace dmue
