// DMUE's losses as the reference's train.py computes them: latent-distribution
// soft labels (sharpened by 1/T), L_soft, auxiliary CE, confidence-weighted
// main CE, SP-KD and their ramped sum.
#ifndef DMUE_LOSSES_H_
#define DMUE_LOSSES_H_

#include <vector>

#include <torch/torch.h>

#include "dmue/dmue_model.h"

namespace dmue {

struct LossWeights {
  double w = 0.5;        // L_soft weight.
  double gamma = 1000;   // SP-KD weight.
  double ramp_up = 1;    // Weight of the main-branch losses.
  double ramp_down = 1;  // Weight of the auxiliary losses.
  // false (an ablation): CEloss on the plain main logits, not the ones scaled
  // by the pairwise uncertainty score.
  bool pairwise_uncertainty = true;
};

struct DmueLosses {
  torch::Tensor soft_labels;  // [B, C] detached targets of L_soft.
  torch::Tensor soft;         // softLoss
  torch::Tensor aux;          // aux_loss (mean over the C auxiliary branches)
  std::vector<torch::Tensor> aux_per_branch;
  torch::Tensor ce;           // CEloss on the confidence-weighted logits
  torch::Tensor sp;           // spLoss
  torch::Tensor total;
};

// Builds the [B, C] soft labels: softmax of each auxiliary branch's latent
// logits raised to 1/T and renormalised, spread over the C classes with 0 at
// the sample's own label.
torch::Tensor LatentSoftLabels(const std::vector<torch::Tensor>& latent_logits,
                               const torch::Tensor& labels, int num_classes, double temperature);

// mean((softmax(logits) masked at the label - soft_labels)^2).
torch::Tensor SoftLoss(const torch::Tensor& logits, const torch::Tensor& labels,
                       const torch::Tensor& soft_labels);

// mean over branches of mse(aux Gram, main Gram).
torch::Tensor SpKdLoss(const std::vector<torch::Tensor>& aux_gram,
                       const std::vector<torch::Tensor>& main_gram);

// Cross entropy of `logits` [B, C] to a target distribution: `soft_targets`
// [B, C] when defined (e.g. FERPlus vote distributions), else the one-hot of
// `labels`; mixed as (1 - label_smoothing) target + label_smoothing / C.
// With hard labels and no smoothing this is torch's cross_entropy.
torch::Tensor TargetCrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels,
                                 const torch::Tensor& soft_targets, double label_smoothing);

DmueLosses ComputeDmueLosses(const TrainForwardOutput& forward, const torch::Tensor& labels,
                             int num_classes, double temperature, const LossWeights& weights);

}  // namespace dmue

#endif  // DMUE_LOSSES_H_
