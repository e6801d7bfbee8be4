// One DMUE optimisation step (forward, losses, backward, optimiser update),
// shared by the trainer and the benchmarks, with the CPU speed levers:
// channels-last activations and bf16 autocast (AVX-512 BF16 on this CPU).
#ifndef DMUE_TRAIN_STEP_H_
#define DMUE_TRAIN_STEP_H_

#include <functional>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "dmue/dmue_model.h"
#include "dmue/losses.h"

namespace dmue {

enum class Precision { kFloat32, kBFloat16 };

struct ComputeOptions {
  Precision precision = Precision::kFloat32;
  // NHWC activations: oneDNN's faster convolution layout on this CPU.
  bool channels_last = true;
};

// Scoped bf16 autocast on the CPU (a no-op for kFloat32).
class ScopedAutocast {
 public:
  explicit ScopedAutocast(Precision precision);
  ~ScopedAutocast();
  ScopedAutocast(const ScopedAutocast&) = delete;
  ScopedAutocast& operator=(const ScopedAutocast&) = delete;

 private:
  bool enabled_;
  bool previous_enabled_;
  at::ScalarType previous_dtype_;
};

// Converts the module's 4-D parameters and buffers to channels-last (or back).
void SetChannelsLast(torch::nn::Module& module, bool channels_last);

// Prepares a [B, 3, H, W] batch for `options` (memory format).
torch::Tensor PrepareImages(const torch::Tensor& images, const ComputeOptions& options);

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
