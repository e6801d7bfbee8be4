#include "dmue/base/status_macros.h"
#include "dmue/train_step.h"

namespace dmue {

absl::StatusOr<DmueLosses> TrainStep(DmueModel& model, torch::optim::Optimizer& optimizer,
                                     const torch::Tensor& images, const torch::Tensor& labels,
                                     const StepSettings& settings) {
  absl::StatusOr<DmueLosses> losses;
  {
    ScopedAutocast autocast(settings.compute.precision);
    ASSIGN_OR_RETURN(TrainForwardOutput forward, model->ForwardTrain(PrepareImages(images, settings.compute), labels));
    losses = ComputeDmueLosses(forward, labels, model->num_classes(), settings.temperature, settings.weights);
  }
  optimizer.zero_grad();
  losses->total.backward();
  if (settings.after_backward) settings.after_backward();
  optimizer.step();
  return losses;
}

double CrossEntropyStep(DmueModel& model, torch::optim::Optimizer& optimizer, const torch::Tensor& images,
                        const torch::Tensor& labels, const torch::Tensor& soft_targets, double label_smoothing,
                        const StepSettings& settings) {
  torch::Tensor loss;
  {
    ScopedAutocast autocast(settings.compute.precision);
    loss = TargetCrossEntropy(model->ForwardEval(PrepareImages(images, settings.compute)), labels, soft_targets,
                              label_smoothing);
  }
  optimizer.zero_grad();
  loss.backward();
  if (settings.after_backward) settings.after_backward();
  optimizer.step();
  return loss.item<double>();
}

}  // namespace dmue
