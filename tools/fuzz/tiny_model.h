// The small module whose state dict seeds the checkpoint fuzzer
// (make_seeds.cc writes it; checkpoint_fuzzer.cc loads into it), so seeds
// reach LoadStateDict's matching path and not only its refusals. A Linear
// and a BatchNorm cover float parameters and buffers and the int64
// num_batches_tracked buffer in a checkpoint of about 2 KB.
#ifndef TOOLS_FUZZ_TINY_MODEL_H_
#define TOOLS_FUZZ_TINY_MODEL_H_

#include <torch/torch.h>

namespace dmue::fuzz {

inline torch::nn::Sequential MakeTinyModel() {
  return torch::nn::Sequential(torch::nn::Linear(3, 2),
                               torch::nn::BatchNorm1d(2));
}

}  // namespace dmue::fuzz

#endif  // TOOLS_FUZZ_TINY_MODEL_H_
