// Compute options of a forward or training pass on the CPU: dtype (float32,
// or bf16 autocast: fast on AVX-512 BF16 / AMX CPUs) and activation layout
// (channels-last, oneDNN's faster convolution layout), with the helpers that
// apply them. Shared by training, evaluation and serving.
#ifndef DMUE_COMPUTE_H_
#define DMUE_COMPUTE_H_

#include <torch/torch.h>

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

}  // namespace dmue

#endif  // DMUE_COMPUTE_H_
