// A restricted pickle VM for PyTorch checkpoints, and a matching pickler.
//
// Unpickle() understands the opcodes of protocols 2-4 that torch.save emits
// and builds a Value tree. It never imports or calls anything: GLOBAL/
// STACK_GLOBAL resolve only a fixed whitelist (tensor rebuild functions,
// OrderedDict, storage classes, torch.Size, torch.device) whose effect is
// emulated here; any other global (os.system, builtins.eval, ...) stops the
// load with an error that names it. Every read is bounds-checked, so a
// truncated or corrupt pickle gives an error instead of a crash, and no length
// field can allocate more than the input holds.
//
// Hostile pickles are held to a memory budget tied to their size: strings
// are shared, never copied, when the memo or DUP repeats them, and what each
// opcode may allocate (values, containers, memo entries, the entries and
// dimensions that calls copy) is charged against the budget, so a small file
// cannot ask for gigabytes. Self-referential values (a list that appends
// itself through the memo, a dict inside itself) are refused, and their
// memory freed; the tensor views that rebuild calls describe are checked
// with ComputeViewExtent (value.h) against their storage.
//
// Pickle() writes a protocol-2 pickle (3 if it holds bytes) that Python's
// pickle module and torch.load read. Both are torch-free: tensors appear only
// as TensorRef metadata and persistent ids.
#ifndef DMUE_IO_PICKLE_H_
#define DMUE_IO_PICKLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/io/value.h"

namespace dmue::io {

struct UnpickleOptions {
  // Named in every error message.
  std::string filename;
  // Offset of the pickle inside `filename`, so messages give file offsets.
  uint64_t base_offset = 0;
  // Resolves a persistent id (the tuple a BINPERSID pops). torch checkpoints
  // use it for storages; the result should be a tensor Value describing the
  // storage (or a slice of one) as a flat 1-D view. Null: persistent ids are
  // an error.
  std::function<absl::StatusOr<Value>(const Value& pid)> persistent_load;
  // Memory budget in bytes; 0 means kBudgetPerInputByte times the input's
  // size plus kBudgetAllowance. Callers whose input was decompressed should
  // tie it to the compressed size instead.
  uint64_t max_memory_bytes = 0;
};

// The default budget. Opcodes are charged about what they allocate (a value
// is 32 bytes, a new list or memo entry some more), so a legitimate pickle,
// whose opcodes are at least a byte long, stays well under 64 bytes per
// input byte; the allowance covers small files.
inline constexpr uint64_t kBudgetPerInputByte = 64;
inline constexpr uint64_t kBudgetAllowance = uint64_t{64} << 20;

// The budget for `input_bytes` of input: kBudgetPerInputByte * input_bytes +
// kBudgetAllowance, saturating.
uint64_t DefaultUnpickleBudget(uint64_t input_bytes);

struct UnpickleResult {
  Value value;
  // Bytes of `data` up to and including the STOP opcode; the next pickle of
  // a legacy checkpoint starts there.
  uint64_t consumed = 0;
};

// Runs the pickle that starts at `data[0]`. A pickle cut short returns an
// OutOfRange error whose message says "truncated" and gives the offset; one
// over its memory budget a ResourceExhausted error. Errors name the file, the
// offset and the opcode.
absl::StatusOr<UnpickleResult> Unpickle(absl::string_view data,
                                        const UnpickleOptions& options);

// How the pickler writes one tensor: torch._utils._rebuild_tensor_v2(
// <persistent_id>, storage_offset, sizes, strides, requires_grad, {}).
struct PickledTensor {
  Value persistent_id;  // e.g. ('storage', torch.FloatStorage, '0', 'cpu', n)
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;
};

struct PickleOptions {
  // Called once per tensor in the tree (in pickling order). Required when the
  // tree holds tensors.
  std::function<absl::StatusOr<PickledTensor>(const Value& tensor)>
      describe_tensor;
};

// Serialises `root`. Dicts marked ordered become collections.OrderedDict.
// Containers and tensors that occur more than once are written once and
// then referenced through the memo, as Python's pickler does, so the output
// is linear in the distinct values (and torch.load restores the sharing).
// Fails on cycles/very deep nesting and on globals outside the whitelist.
absl::StatusOr<std::string> Pickle(const Value& root,
                                   const PickleOptions& options);

// True when Unpickle() would honour the global "module.name".
bool IsAllowedGlobal(absl::string_view qualified_name);

}  // namespace dmue::io

#endif  // DMUE_IO_PICKLE_H_
