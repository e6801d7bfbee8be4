// One optimisation step of the multi-branch model (forward, loss, backward,
// optimiser update), shared by the trainer, its AUTO compute probe and the
// benchmarks. The loss is a setting, not a second step: DMUE's losses over all
// branches, or cross entropy on the main branch (the plain baseline and DMUE's
// warm-up). With the CPU speed levers: channels-last activations and bf16
// autocast (AVX-512 BF16 on this CPU), on the CPU or a CUDA device.
#ifndef DMUE_TRAIN_STEP_H_
#define DMUE_TRAIN_STEP_H_

#include <functional>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "dmue/compute.h"
#include "dmue/dmue_model.h"
#include "dmue/losses.h"

namespace dmue {

enum class StepLoss {
  kDmue,          // ComputeDmueLosses on ForwardTrain; every class twice in the batch
  kCrossEntropy,  // TargetCrossEntropy on the main branch's logits
};

struct StepSettings {
  StepLoss loss = StepLoss::kDmue;
  double temperature = 1.2;    // DMUE only
  LossWeights weights;         // DMUE only
  double label_smoothing = 0;  // cross entropy only
  ComputeOptions compute;
  // Runs between backward and the update (e.g. averaging gradients across
  // data-parallel ranks).
  std::function<void()> after_backward;
};

// Runs one step and returns its losses. DMUE: InvalidArgument (and no update)
// for a batch CheckBatch rejects. Cross entropy: to `soft_targets` ([B, C]
// distributions such as FERPlus votes; undefined: the hard `labels`), which
// DMUE ignores (it mines its own); `ce` and `total` hold the loss, `soft`,
// `sp` and `aux` are 0. The model must be on `settings.compute.device`;
// images, labels and soft targets are moved there, and the losses stay there.
absl::StatusOr<DmueLosses> TrainStep(DmueModel& model, torch::optim::Optimizer& optimizer,
                                     const torch::Tensor& images, const torch::Tensor& labels,
                                     const StepSettings& settings, const torch::Tensor& soft_targets = {});

}  // namespace dmue

#endif  // DMUE_TRAIN_STEP_H_
