#include "dmue/compute.h"

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

}  // namespace dmue
