// Fuzz target: checkpoint bytes -> value tree -> state dict -> module, the
// path every model load takes (server, predict, resume, inspect):
// ReadCheckpoint (zip and legacy formats, dmue/io/torch_checkpoint.h), the
// tensors ToTensor makes of every tensor value, ToStateDict, and
// LoadStateDict (dmue/state_dict.h) into a small module.
//
// LibTorch is not instrumented, so a view that reaches past its storage
// would go unnoticed inside LibTorch's kernels. Every tensor that comes back
// is therefore read here, element by element through its sizes and strides,
// in instrumented code: AddressSanitizer then sees any byte the view
// promises but the storage lacks. An exception LibTorch throws out of these
// APIs (instead of a Status) ends the run as a crash, which is a finding.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/io/value.h"
#include "dmue/state_dict.h"
#include "tools/fuzz/mem_file.h"
#include "tools/fuzz/tiny_model.h"

namespace dmue::fuzz {
namespace {

// Enough to cover the tensors of a small file; a view of millions of
// elements over a tiny storage is caught at its far corner anyway.
constexpr int64_t kMaxElementsRead = int64_t{1} << 16;

// Reads the elements of `t` in index order (the first kMaxElementsRead),
// then its last element, through its own strides.
void ReadElements(const at::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return;
  const auto* base = static_cast<const unsigned char*>(t.data_ptr());
  const int64_t item = static_cast<int64_t>(t.element_size());
  const std::vector<int64_t> sizes = t.sizes().vec();
  const std::vector<int64_t> strides = t.strides().vec();
  std::vector<int64_t> index(sizes.size(), 0);
  unsigned char sink[16];
  auto read_at = [&](const std::vector<int64_t>& position) {
    int64_t offset = 0;
    for (size_t d = 0; d < position.size(); ++d) {
      offset += position[d] * strides[d];
    }
    std::memcpy(sink, base + offset * item, static_cast<size_t>(item));
  };
  const int64_t n = std::min(t.numel(), kMaxElementsRead);
  for (int64_t i = 0; i < n; ++i) {
    read_at(index);
    for (size_t d = sizes.size(); d-- > 0;) {
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
  for (size_t d = 0; d < sizes.size(); ++d) index[d] = sizes[d] - 1;
  read_at(index);
}

void CheckTensors(const io::Value& root) {
  io::ForEachNode(root, [](const io::Value& node, bool first) {
    if (!first || !node.is_tensor()) return;
    absl::StatusOr<at::Tensor> t = io::ToTensor(node);
    if (t.ok()) ReadElements(*t);
  });
}

void LoadIntoModule(const io::StateDict& state) {
  static torch::nn::Sequential* const model =
      new torch::nn::Sequential(MakeTinyModel());
  LoadOptions options;
  options.strict = false;
  (void)LoadStateDict(**model, state, options);
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Single-threaded LibTorch: the fuzzer runs one input at a time, and
  // intra-op threads would only add noise for the sanitizers.
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = dmue::fuzz::MemFile::Get().Write(data, size);
  // Default options: the limits production runs with are the ones fuzzed.
  absl::StatusOr<dmue::io::Value> root = dmue::io::ReadCheckpoint(path);
  if (!root.ok()) return 0;
  dmue::fuzz::CheckTensors(*root);
  absl::StatusOr<dmue::io::StateDict> state =
      dmue::io::ToStateDict(*root, {}, path);
  if (!state.ok()) return 0;
  for (const auto& [name, tensor] : *state) dmue::fuzz::ReadElements(tensor);
  dmue::fuzz::LoadIntoModule(*state);
  return 0;
}
