#include "dmue/compute.h"

#include <string>

#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace dmue {

absl::StatusOr<torch::Device> ParseDevice(absl::string_view text) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text == "cuda") return torch::Device(torch::kCUDA);
  absl::string_view index_text = text;
  int index = -1;
  // SimpleAtoi accepts signs and spaces; a device index is plain digits.
  if (absl::ConsumePrefix(&index_text, "cuda:") && !index_text.empty() &&
      index_text.find_first_not_of("0123456789") == absl::string_view::npos &&
      absl::SimpleAtoi(index_text, &index) && index <= 127) {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a device: expected cpu, cuda or cuda:N"));
}

absl::Status CheckDeviceAvailable(const torch::Device& device) {
  if (device.is_cpu()) return absl::OkStatus();
  const std::string name = device.str();
  if (!device.is_cuda()) return absl::InvalidArgumentError(absl::StrCat("device ", name, " is not supported"));
  // hasCUDART() is false exactly when no CUDA library is linked in.
  if (!at::detail::getCUDAHooks().hasCUDART()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", name, ": this LibTorch was built without CUDA (use device cpu, or build with a "
                     "CUDA LibTorch through LIBTORCH_HOME)"));
  }
  const int64_t count = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (count == 0) {
    return absl::FailedPreconditionError(absl::StrCat("device ", name, ": no CUDA device is visible"));
  }
  if (device.has_index() && device.index() >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", name, ": only ", count, " CUDA device", count == 1 ? "" : "s", " (cuda:0",
                     count > 1 ? absl::StrCat("..cuda:", count - 1) : "", ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Device> ResolveDevice(absl::string_view text, absl::string_view what) {
  absl::StatusOr<torch::Device> device = ParseDevice(text);
  absl::Status status = device.ok() ? CheckDeviceAvailable(*device) : device.status();
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  return device;
}

ScopedAutocast::ScopedAutocast(const ComputeOptions& options)
    : enabled_(options.precision == Precision::kBFloat16),
      cuda_(options.device.is_cuda()),
      previous_enabled_(cuda_ ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled()),
      previous_dtype_(cuda_ ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype()) {
  if (!enabled_) return;
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

ScopedAutocast::~ScopedAutocast() {
  if (!enabled_) return;
  // Cached bf16 weight copies must not outlive the region (weights change).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  }
}

void MoveToDevice(torch::nn::Module& module, const torch::Device& device) {
  bool moved = true;
  for (const torch::Tensor& t : module.parameters()) moved = moved && t.device() == device;
  for (const torch::Tensor& t : module.buffers()) moved = moved && t.device() == device;
  if (!moved) module.to(device);
}

void SetChannelsLast(torch::nn::Module& module, bool channels_last) {
  const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(format));
  }
}

torch::Tensor PrepareImages(const torch::Tensor& images, const ComputeOptions& options) {
  const torch::Tensor on_device = images.to(options.device);
  return options.channels_last ? on_device.contiguous(torch::MemoryFormat::ChannelsLast) : on_device.contiguous();
}

void SynchronizeDevice(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

}  // namespace dmue
