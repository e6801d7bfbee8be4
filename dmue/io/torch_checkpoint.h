// Reads and writes PyTorch checkpoints (torch.save files) without Python.
//
// ReadCheckpoint() accepts both container formats torch.save has used: the
// zip archive of torch >= 1.6 and the legacy stream of pickles of torch <=
// 1.5 (the released DMUE and MTCNN weights). Unpickling goes through the
// restricted VM of pickle.h, so files that reference anything but tensors and
// plain containers are refused rather than executed.
//
// WriteCheckpoint() writes the zip format that Python's torch.load (1.13)
// reads; the file is written next to the target and renamed into place, so an
// interrupted write never leaves a corrupt checkpoint behind.
//
// Limitations: little-endian data only (what every torch build writes on
// x86/ARM); tensors come back on the CPU whatever their saved location;
// requires_grad is recorded in TensorRef but not applied to the tensors.
#ifndef DMUE_IO_TORCH_CHECKPOINT_H_
#define DMUE_IO_TORCH_CHECKPOINT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/io/value.h"

namespace dmue::io {

// Parameter and buffer names with their tensors, in file order.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

struct ReadOptions {
  // Largest accepted pickle (data.pkl, or one legacy pickle). Real ones are
  // kilobytes to a few megabytes; the cap only stops corrupt length fields.
  uint64_t max_pickle_bytes = uint64_t{1} << 30;
};

// Reads a checkpoint into a value tree. Tensors that shared a storage in the
// file come back as views of one shared at::Tensor. Errors name `path`.
absl::StatusOr<Value> ReadCheckpoint(const std::string& path,
                                     const ReadOptions& options = {});

// The tensor that a tensor Value (from ReadCheckpoint or FromTensor) denotes.
absl::StatusOr<at::Tensor> ToTensor(const Value& value);

// Wraps `tensor` (moved to the CPU and made dense if needed) so that it can
// be placed in a value tree for WriteCheckpoint. Fails for dtypes that the
// format support here lacks (complex, quantized, ...).
absl::StatusOr<Value> FromTensor(const at::Tensor& tensor);

struct StateDictOptions {
  // Strip the "module." prefix that nn.DataParallel snapshots carry.
  bool strip_module_prefix = true;
};

// Reads a state dict: a dict/OrderedDict of tensors, or a checkpoint whose
// top level holds other things too and keeps the tensors under "state_dict"
// (preferred) or "model". Anything else is an error that says what was found.
absl::StatusOr<StateDict> ReadStateDict(const std::string& path,
                                        const StateDictOptions& options = {},
                                        const ReadOptions& read_options = {});

// The same selection for a tree already read; `path` only labels errors.
absl::StatusOr<StateDict> ToStateDict(const Value& root,
                                      const StateDictOptions& options,
                                      const std::string& path);

// An OrderedDict value holding the tensors of `state_dict`.
absl::StatusOr<Value> StateDictToValue(const StateDict& state_dict);

// Writes `root` (dicts, lists, tuples, numbers, strings, bytes, None and
// tensors) in torch's zip format. Tensors that are views of one storage are
// written once, as torch does.
absl::Status WriteCheckpoint(const std::string& path, const Value& root);

// Writes `state_dict` as an OrderedDict, as torch.save(model.state_dict()).
absl::Status WriteStateDict(const std::string& path,
                            const StateDict& state_dict);

}  // namespace dmue::io

#endif  // DMUE_IO_TORCH_CHECKPOINT_H_
