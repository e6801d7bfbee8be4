// Whether bfloat16 is worth timing on a device, for the AUTO precision
// choosers (training/auto_compute.h, dmue/folded_model.h). On x86 CPUs
// oneDNN's bf16 convolutions need AVX-512 (BW, VL and DQ: what ATen's own
// mkldnn_bf16_device_check asks for); without it LibTorch runs bf16 through
// fallback loops that are many times slower than fp32, so timing them only
// delays start-up (on an AVX2-only Zen 3, past a test's 3-minute limit).
#ifndef DMUE_BF16_SUPPORT_H_
#define DMUE_BF16_SUPPORT_H_

#include <string>

#include <c10/core/Device.h>

#include "dmue/compute.h"

namespace dmue {

// Empty when bf16 kernels exist for `device`, else why not (for the log).
std::string Bfloat16Unavailable(const c10::Device& device);

// Empty when `options` can run at kernel speed on its device, else why not:
// what the AUTO choosers and the benchmarks skip instead of timing.
std::string ComputeUnavailable(const ComputeOptions& options);

}  // namespace dmue

#endif  // DMUE_BF16_SUPPORT_H_
