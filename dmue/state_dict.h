// PyTorch-style state dicts for LibTorch modules: the ordered (name, tensor)
// list `model.state_dict()` gives in Python (per module: parameters, buffers,
// then children), the one module -> writable state dict conversion, strict
// loading with named mismatches, and the replay of a logged PyTorch init
// sequence (golden/init_sequence_c*.tsv).
#ifndef DMUE_STATE_DICT_H_
#define DMUE_STATE_DICT_H_

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "dmue/io/torch_checkpoint.h"

namespace dmue {

// The one state-dict type: (name, tensor) pairs in order, as dmue/io reads
// and writes them.
using io::StateDict;

// The module's live parameters and buffers (shared with the module).
StateDict ModuleStateDict(const torch::nn::Module& module);

// `state` ready to write (io::WriteStateDict, io::StateDictToValue): every
// tensor detached from autograd and contiguous.
StateDict ForSaving(StateDict state);

// ForSaving(ModuleStateDict(module)): a module's state as a checkpoint holds it.
StateDict ModuleStateDictForSaving(const torch::nn::Module& module);

struct LoadOptions {
  bool strict = true;  // Missing or unexpected keys are errors.
  // Keys to ignore when they are not in the module (e.g. "fc." heads).
  std::vector<std::string> ignore_substrings;
};

// Copies `state` into the module's parameters and buffers (shapes must agree;
// dtypes are converted). Errors list the offending keys.
absl::Status LoadStateDict(torch::nn::Module& module, const StateDict& state, const LoadOptions& options = {});

// Replays "step key shape op a b a_hex b_hex" rows (uniform_/normal_ with the
// exact doubles) and the "const" rows, after torch::manual_seed(seed).
absl::Status ReplayInitSequence(torch::nn::Module& module, const std::string& tsv_path,
                                uint64_t seed = 0);

}  // namespace dmue

#endif  // DMUE_STATE_DICT_H_
