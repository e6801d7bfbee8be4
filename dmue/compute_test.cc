// The device contract (dmue/compute.h): which names parse, what a CUDA device
// this LibTorch cannot use returns (written to pass on a CUDA machine too),
// the autocast scope per device type, and that the CPU helpers copy nothing
// already in place.
#include "dmue/compute.h"
#include "dmue/bf16_support.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(ParseDeviceTest, AcceptsCpuCudaAndCudaN) {
  absl::StatusOr<torch::Device> cpu = ParseDevice("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(cpu->is_cpu());
  absl::StatusOr<torch::Device> cuda = ParseDevice("cuda");
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  EXPECT_TRUE(cuda->is_cuda());
  EXPECT_FALSE(cuda->has_index());
  absl::StatusOr<torch::Device> cuda3 = ParseDevice("cuda:3");
  ASSERT_TRUE(cuda3.ok()) << cuda3.status();
  EXPECT_TRUE(cuda3->is_cuda());
  EXPECT_EQ(cuda3->index(), 3);
  EXPECT_EQ(cuda3->str(), "cuda:3");
}

TEST(ParseDeviceTest, RejectsAnythingElseNamingTheText) {
  for (const char* text : {"", "gpu", "CPU", "cpu:0", "cuda:", "cuda:-1", "cuda:+1", "cuda: 1", "cuda:1x",
                           "cuda:999", "mps", " cpu"}) {
    absl::StatusOr<torch::Device> device = ParseDevice(text);
    ASSERT_FALSE(device.ok()) << "'" << text << "' parsed as " << device->str();
    EXPECT_EQ(device.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(device.status().message().find(std::string("'") + text + "'"), absl::string_view::npos)
        << device.status();
    EXPECT_NE(device.status().message().find("cpu, cuda or cuda:N"), absl::string_view::npos) << device.status();
  }
}

TEST(CheckDeviceAvailableTest, CpuIsAlwaysAvailable) { EXPECT_TRUE(CheckDeviceAvailable(torch::kCPU).ok()); }

// On these machines (Debian's CPU LibTorch) cuda:0 is refused with the
// reason; on a CUDA machine it is available.
TEST(CheckDeviceAvailableTest, CudaZeroIsAvailableOrRefusedWithTheReason) {
  const absl::Status status = CheckDeviceAvailable(torch::Device(torch::kCUDA, 0));
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(status.ok()) << status;
    return;
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("device cuda:0: "), absl::string_view::npos) << status;
  const bool reason = status.message().find("this LibTorch was built without CUDA") != absl::string_view::npos ||
                      status.message().find("no CUDA device is visible") != absl::string_view::npos;
  EXPECT_TRUE(reason) << status;
}

TEST(CheckDeviceAvailableTest, AnIndexPastTheDevicesNamesHowManyThereAre) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA here: covered by CudaZeroIsAvailable...";
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  const absl::Status status = CheckDeviceAvailable(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(count)));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(absl::StrCat("only ", count, " CUDA device")), absl::string_view::npos) << status;
}

TEST(ResolveDeviceTest, PrefixesErrorsAndKeepsTheirCodes) {
  absl::StatusOr<torch::Device> cpu = ResolveDevice("cpu", "X.device");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(cpu->is_cpu());
  absl::StatusOr<torch::Device> bad = ResolveDevice("gpu", "X.device");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().rfind("X.device: 'gpu'", 0), 0u) << bad.status();
  if (!torch::cuda::is_available()) {
    absl::StatusOr<torch::Device> cuda = ResolveDevice("cuda:0", "X.device");
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(cuda.status().message().rfind("X.device: device cuda:0: ", 0), 0u) << cuda.status();
  }
}

TEST(ScopedAutocastTest, Bf16OnTheCpuEnablesCpuAutocastOnlyAndRestores) {
  ASSERT_FALSE(at::autocast::is_cpu_enabled());
  const at::ScalarType cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  const at::ScalarType gpu_dtype = at::autocast::get_autocast_gpu_dtype();
  {
    ComputeOptions options;
    options.precision = Precision::kBFloat16;
    ScopedAutocast autocast(options);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), at::kBFloat16);
    EXPECT_FALSE(at::autocast::is_enabled());  // CUDA autocast untouched
    const torch::Tensor y = torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));
    EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), cpu_dtype);
  EXPECT_EQ(at::autocast::get_autocast_gpu_dtype(), gpu_dtype);
}

TEST(ScopedAutocastTest, Bf16OnCudaSetsCudaAutocastOnlyAndRestores) {
  // Only the flags: no CUDA kernel runs, so this holds on a CPU-only build.
  const at::ScalarType cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  const at::ScalarType gpu_dtype = at::autocast::get_autocast_gpu_dtype();
  {
    ComputeOptions options;
    options.precision = Precision::kBFloat16;
    options.device = torch::Device(torch::kCUDA, 0);
    ScopedAutocast autocast(options);
    EXPECT_TRUE(at::autocast::is_enabled());
    EXPECT_EQ(at::autocast::get_autocast_gpu_dtype(), at::kBFloat16);
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
    EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), cpu_dtype);
  }
  EXPECT_FALSE(at::autocast::is_enabled());
  EXPECT_EQ(at::autocast::get_autocast_gpu_dtype(), gpu_dtype);
}

TEST(ScopedAutocastTest, Float32IsANoOp) {
  ComputeOptions options;
  options.device = torch::Device(torch::kCUDA, 0);
  ScopedAutocast autocast(options);
  EXPECT_FALSE(at::autocast::is_enabled());
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
}

TEST(PrepareImagesTest, OnTheCpuCopiesNothingAlreadyInPlace) {
  const torch::Tensor images = torch::randn({2, 3, 4, 4});
  ComputeOptions nchw;
  nchw.channels_last = false;
  EXPECT_TRUE(PrepareImages(images, nchw).is_same(images));
  ComputeOptions nhwc;
  const torch::Tensor prepared = PrepareImages(images, nhwc);
  EXPECT_TRUE(prepared.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(prepared.device().is_cpu());
  EXPECT_TRUE(PrepareImages(prepared, nhwc).is_same(prepared));
}

TEST(MoveToDeviceTest, OnTheCpuLeavesTheModuleAsItIs) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3));
  torch::nn::BatchNorm2d bn(4);
  conv->register_module("bn", bn);
  const void* weight = conv->weight.data_ptr();
  const void* running_mean = bn->running_mean.data_ptr();
  MoveToDevice(*conv, torch::kCPU);
  EXPECT_EQ(conv->weight.data_ptr(), weight);
  EXPECT_EQ(bn->running_mean.data_ptr(), running_mean);
  EXPECT_TRUE(conv->weight.device().is_cpu());
}

TEST(Bfloat16UnavailableTest, OnlyCpusWithoutAvx512LackTheKernels) {
  EXPECT_EQ(Bfloat16Unavailable(torch::Device(torch::kCUDA, 0)), "");
  const std::string cpu = Bfloat16Unavailable(torch::kCPU);
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512dq");
  EXPECT_EQ(cpu.empty(), avx512) << cpu;
#endif
}

}  // namespace
}  // namespace dmue
