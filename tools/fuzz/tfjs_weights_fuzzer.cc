// Fuzz target: the TF.js weights reader (dmue/io/tfjs_weights.h). The input
// is "<manifest JSON>\0<shard bytes>": every shard the manifest names reads as
// those bytes, so the sizes, offsets and dequantization of many weights over
// one buffer are reached. Small budgets keep hostile shapes cheap. Aborts
// only when an accepted weight's values do not match its shape (the contract
// FaceDescriptorNet relies on).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dmue/io/tfjs_weights.h"

namespace {

void CheckShapes(const dmue::io::TfjsWeights& weights) {
  for (const dmue::io::TfjsWeight& w : weights.weights()) {
    int64_t numel = 1;
    for (const int64_t d : w.shape) numel *= d;
    const size_t values = w.dtype == dmue::io::TfjsWeight::DType::kFloat32 ? w.floats.size() : w.ints.size();
    if (numel != w.numel() || static_cast<size_t>(numel) != values) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string manifest = input.substr(0, split);
  const std::string shard = split == std::string::npos ? std::string() : input.substr(split + 1);
  const auto read_shard = [&](const std::string& path, int64_t max_bytes) -> absl::StatusOr<std::string> {
    if (static_cast<int64_t>(shard.size()) > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ": over ", max_bytes, " bytes"));
    }
    return shard;
  };
  dmue::io::TfjsReadOptions options;
  options.max_shard_bytes = int64_t{1} << 20;
  options.max_decoded_bytes = int64_t{4} << 20;
  options.max_weights = 4096;
  absl::StatusOr<dmue::io::TfjsWeights> weights =
      dmue::io::ParseTfjsWeights(manifest, "fuzz/model.json", read_shard, options);
  if (weights.ok()) CheckShapes(*weights);
  return 0;
}
