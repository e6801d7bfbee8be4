#include "dmue/train_step.h"

#include "dmue/base/status_macros.h"

namespace dmue {
namespace {

DmueLosses CrossEntropyLosses(const torch::Tensor& loss) {
  DmueLosses losses;
  losses.ce = losses.total = loss;
  losses.soft = losses.sp = losses.aux = torch::zeros_like(loss);
  return losses;
}

// The forward pass and the chosen loss, under the compute options' autocast.
absl::StatusOr<DmueLosses> ForwardLosses(DmueModel& model, const torch::Tensor& images, const torch::Tensor& labels,
                                         const StepSettings& settings, const torch::Tensor& soft_targets) {
  ScopedAutocast autocast(settings.compute);
  const torch::Tensor input = PrepareImages(images, settings.compute);
  if (settings.loss == StepLoss::kCrossEntropy) {
    return CrossEntropyLosses(
        TargetCrossEntropy(model->ForwardEval(input), labels, soft_targets, settings.label_smoothing));
  }
  ASSIGN_OR_RETURN(const TrainForwardOutput forward, model->ForwardTrain(input, labels));
  return ComputeDmueLosses(forward, labels, model->num_classes(), settings.temperature, settings.weights);
}

}  // namespace

absl::StatusOr<DmueLosses> TrainStep(DmueModel& model, torch::optim::Optimizer& optimizer,
                                     const torch::Tensor& images, const torch::Tensor& labels,
                                     const StepSettings& settings, const torch::Tensor& soft_targets) {
  // The batch on the model's device (no copy on the CPU); images move in
  // PrepareImages.
  const torch::Device& device = settings.compute.device;
  const torch::Tensor soft = soft_targets.defined() ? soft_targets.to(device) : soft_targets;
  ASSIGN_OR_RETURN(DmueLosses losses, ForwardLosses(model, images, labels.to(device), settings, soft));
  optimizer.zero_grad();
  losses.total.backward();
  if (settings.after_backward) settings.after_backward();
  optimizer.step();
  return losses;
}

}  // namespace dmue
