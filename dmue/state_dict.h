// PyTorch-style state dicts for LibTorch modules: the ordered (name, tensor)
// list `model.state_dict()` gives in Python (per module: parameters, buffers,
// then children), strict loading with named mismatches, and the replay of a
// logged PyTorch init sequence (golden/init_sequence_c*.tsv).
#ifndef DMUE_STATE_DICT_H_
#define DMUE_STATE_DICT_H_

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"

namespace dmue {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

NamedTensors ModuleStateDict(const torch::nn::Module& module);

struct LoadOptions {
  bool strict = true;  // Missing or unexpected keys are errors.
  // Keys to ignore when they are not in the module (e.g. "fc." heads).
  std::vector<std::string> ignore_substrings;
};

// Copies `state` into the module's parameters and buffers (shapes must agree;
// dtypes are converted). Errors list the offending keys.
absl::Status LoadStateDict(torch::nn::Module& module, const NamedTensors& state,
                           const LoadOptions& options = {});

// Replays "step key shape op a b a_hex b_hex" rows (uniform_/normal_ with the
// exact doubles) and the "const" rows, after torch::manual_seed(seed).
absl::Status ReplayInitSequence(torch::nn::Module& module, const std::string& tsv_path,
                                uint64_t seed = 0);

}  // namespace dmue

#endif  // DMUE_STATE_DICT_H_
