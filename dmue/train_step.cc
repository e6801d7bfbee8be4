#include "dmue/train_step.h"

#include <ATen/autocast_mode.h>

namespace dmue {

ScopedAutocast::ScopedAutocast(Precision precision)
    : enabled_(precision == Precision::kBFloat16),
      previous_enabled_(at::autocast::is_cpu_enabled()),
      previous_dtype_(at::autocast::get_autocast_cpu_dtype()) {
  if (!enabled_) return;
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
  at::autocast::increment_nesting();
}

ScopedAutocast::~ScopedAutocast() {
  if (!enabled_) return;
  // Cached bf16 weight copies must not outlive the region (weights change).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(previous_enabled_);
  at::autocast::set_autocast_cpu_dtype(previous_dtype_);
}

void SetChannelsLast(torch::nn::Module& module, bool channels_last) {
  const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(format));
  }
}

torch::Tensor PrepareImages(const torch::Tensor& images, const ComputeOptions& options) {
  return options.channels_last ? images.contiguous(torch::MemoryFormat::ChannelsLast)
                               : images.contiguous();
}

absl::StatusOr<DmueLosses> TrainStep(DmueModel& model, torch::optim::Optimizer& optimizer,
                                     const torch::Tensor& images, const torch::Tensor& labels,
                                     const StepSettings& settings) {
  absl::StatusOr<DmueLosses> losses;
  {
    ScopedAutocast autocast(settings.compute.precision);
    absl::StatusOr<TrainForwardOutput> forward =
        model->ForwardTrain(PrepareImages(images, settings.compute), labels);
    if (!forward.ok()) return forward.status();
    losses = ComputeDmueLosses(*forward, labels, model->num_classes(), settings.temperature,
                               settings.weights);
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
