// Reads TensorFlow.js weights: a weights manifest (JSON: a list of groups, each
// with "paths" to binary shards and "weights" {name, shape, dtype,
// quantization?}) and its shards, into named, decoded weights.
//
// The shards of a group are concatenated and its weights lie back to back in
// manifest order, as tf.io.decodeWeights reads them. Values are decoded the
// way TF.js does, so a model run on them sees what TF.js would:
//  - float32 and int32: little-endian, as stored;
//  - quantization uint8/uint16: value = q * scale + min, computed in double
//    and rounded to float32 (Math.round of it for int32 weights);
//  - quantization float16: IEEE half to float32 (float32 weights only).
// Other dtypes (bool, string, complex64) are refused.
//
// The files are untrusted: every field is type-checked, shapes are
// non-negative integers whose products are computed in int64 with overflow
// checks, names are unique, shard paths stay inside the manifest's folder,
// the shards hold exactly the bytes the manifest declares, and the bytes read
// and decoded stay within a budget. Errors name the file and the weight.
// Torch-free; callers wrap the values in tensors.
#ifndef DMUE_IO_TFJS_WEIGHTS_H_
#define DMUE_IO_TFJS_WEIGHTS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue::io {

struct TfjsWeight {
  enum class DType { kFloat32, kInt32 };

  std::string name;
  std::vector<int64_t> shape;  // As declared (TF.js filters are HWIO).
  DType dtype = DType::kFloat32;
  std::vector<float> floats;   // Row-major values of a float32 weight.
  std::vector<int32_t> ints;   // Row-major values of an int32 weight.

  int64_t numel() const;
};

struct TfjsReadOptions {
  int64_t max_manifest_bytes = int64_t{16} << 20;
  // Bytes of all shards together, and bytes of the decoded values (a uint8
  // weight takes 4 bytes per element once decoded).
  int64_t max_shard_bytes = int64_t{1} << 30;
  int64_t max_decoded_bytes = int64_t{2} << 30;
  int64_t max_weights = 100000;
};

// Weights in manifest order.
class TfjsWeights {
 public:
  explicit TfjsWeights(std::vector<TfjsWeight> weights) : weights_(std::move(weights)) {}

  const std::vector<TfjsWeight>& weights() const { return weights_; }
  // Null when absent.
  const TfjsWeight* Find(absl::string_view name) const;
  // The float32 weight `name` with exactly `shape`; NotFound or
  // InvalidArgument naming `source` and the weight otherwise.
  absl::StatusOr<const TfjsWeight*> GetFloat(absl::string_view name, const std::vector<int64_t>& shape,
                                             absl::string_view source) const;

 private:
  std::vector<TfjsWeight> weights_;
};

// Reads `manifest_path` and the shards it lists (relative to its folder).
absl::StatusOr<TfjsWeights> ReadTfjsWeights(const std::string& manifest_path, const TfjsReadOptions& options = {});

// Returns the bytes of the shard at `path` (the manifest's folder joined with
// a checked relative path), refusing more than `max_bytes` (ReadFileBytes'
// contract; the fuzz target serves shards from memory).
using TfjsShardReader = std::function<absl::StatusOr<std::string>(const std::string& path, int64_t max_bytes)>;

// ReadTfjsWeights on manifest text already read; `manifest_path` names it in
// errors and anchors the shard paths.
absl::StatusOr<TfjsWeights> ParseTfjsWeights(const std::string& manifest_text, const std::string& manifest_path,
                                             const TfjsShardReader& read_shard, const TfjsReadOptions& options = {});

}  // namespace dmue::io

#endif  // DMUE_IO_TFJS_WEIGHTS_H_
