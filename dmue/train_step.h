// One DMUE optimisation step (forward, losses, backward, optimiser update),
// shared by the trainer and the benchmarks, with the CPU speed levers:
// channels-last activations and bf16 autocast (AVX-512 BF16 on this CPU).
#ifndef DMUE_TRAIN_STEP_H_
#define DMUE_TRAIN_STEP_H_

#include <functional>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "dmue/compute.h"
#include "dmue/dmue_model.h"
#include "dmue/losses.h"

namespace dmue {

struct StepSettings {
  double temperature = 1.2;
  LossWeights weights;
  ComputeOptions compute;
  // Runs between backward and the update (e.g. averaging gradients across
  // data-parallel ranks).
  std::function<void()> after_backward;
};

// Runs one step; InvalidArgument (and no update) for a batch CheckBatch rejects.
absl::StatusOr<DmueLosses> TrainStep(DmueModel& model, torch::optim::Optimizer& optimizer,
                                     const torch::Tensor& images, const torch::Tensor& labels,
                                     const StepSettings& settings);

// One cross-entropy step on the main branch (the plain baseline and DMUE's
// warm-up): TargetCrossEntropy to `soft_targets` (undefined: `labels`) with
// label smoothing. Returns the loss.
double CrossEntropyStep(DmueModel& model, torch::optim::Optimizer& optimizer, const torch::Tensor& images,
                        const torch::Tensor& labels, const torch::Tensor& soft_targets, double label_smoothing,
                        const StepSettings& settings);

}  // namespace dmue

#endif  // DMUE_TRAIN_STEP_H_
