#include "dmue/bf16_support.h"

namespace dmue {

std::string Bfloat16Unavailable(const c10::Device& device) {
  if (!device.is_cpu()) return "";
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    return "";
  }
  return "this CPU has no AVX-512, which oneDNN's bf16 kernels need";
#else
  return "";  // Other architectures: timed like any candidate.
#endif
}

std::string ComputeUnavailable(const ComputeOptions& options) {
  return options.precision == Precision::kBFloat16 ? Bfloat16Unavailable(options.device) : "";
}

}  // namespace dmue
