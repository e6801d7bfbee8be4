// Compute options of a forward or training pass: the device (the CPU, or a
// CUDA GPU), dtype (float32, or bf16 autocast: fast on AVX-512 BF16 / AMX
// CPUs and on recent GPUs) and activation layout (channels-last, oneDNN's and
// cuDNN's faster convolution layout), with the helpers that apply them. The
// one owner of the device contract: parsing a device name, checking that
// this LibTorch can run on it, moving modules and inputs there. Shared by
// training, evaluation and serving.
//
// Only the CPU path is tested: these machines have no GPU and Debian's
// LibTorch is built without CUDA, so CheckDeviceAvailable refuses cuda:N.
#ifndef DMUE_COMPUTE_H_
#define DMUE_COMPUTE_H_

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue {

enum class Precision { kFloat32, kBFloat16 };

struct ComputeOptions {
  Precision precision = Precision::kFloat32;
  // NHWC activations: oneDNN's faster convolution layout on this CPU.
  bool channels_last = true;
  // Where parameters, buffers and inputs live.
  torch::Device device = torch::kCPU;
};

// "cpu", "cuda" (the current CUDA device) or "cuda:N"; anything else is an
// InvalidArgument naming the text. Callers add the field or flag name.
absl::StatusOr<torch::Device> ParseDevice(absl::string_view text);

// OK for the CPU. For CUDA a FailedPrecondition saying why it cannot run:
// this LibTorch was built without CUDA, no CUDA device is visible, or the
// index is past the K devices there are.
absl::Status CheckDeviceAvailable(const torch::Device& device);

// ParseDevice, then CheckDeviceAvailable: what a config or flag is turned
// into. Errors read "<what>: ..." (e.g. "ServerConfig.device: ...").
absl::StatusOr<torch::Device> ResolveDevice(absl::string_view text, absl::string_view what);

// Scoped bf16 autocast on the options' device type, CPU or CUDA (a no-op for
// kFloat32).
class ScopedAutocast {
 public:
  explicit ScopedAutocast(const ComputeOptions& options);
  ~ScopedAutocast();
  ScopedAutocast(const ScopedAutocast&) = delete;
  ScopedAutocast& operator=(const ScopedAutocast&) = delete;

 private:
  bool enabled_;
  bool cuda_;
  bool previous_enabled_;
  at::ScalarType previous_dtype_;
};

// Moves the module's parameters and buffers to `device` in place; a module
// already there is left untouched (not even re-set).
void MoveToDevice(torch::nn::Module& module, const torch::Device& device);

// Converts the module's 4-D parameters and buffers to channels-last (or back).
void SetChannelsLast(torch::nn::Module& module, bool channels_last);

// Prepares a [B, 3, H, W] batch for `options`: on its device, in its memory
// format (no copy when it is already both).
torch::Tensor PrepareImages(const torch::Tensor& images, const ComputeOptions& options);

// Waits for the device's queued work (CUDA kernels run asynchronously), so
// that a timer around a pass measures the pass. A no-op on the CPU.
void SynchronizeDevice(const torch::Device& device);

}  // namespace dmue

#endif  // DMUE_COMPUTE_H_
