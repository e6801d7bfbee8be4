#include "dmue/io/tfjs_weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dmue/base/files.h"
#include "dmue/base/json.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/value.h"

namespace dmue::io {
namespace {

using json = nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "TF.js shards are little-endian");

// How a weight's values are stored in the shard.
enum class Storage { kFloat32, kInt32, kUInt8, kUInt16, kFloat16 };

int StorageSize(Storage storage) {
  switch (storage) {
    case Storage::kUInt8:
      return 1;
    case Storage::kUInt16:
    case Storage::kFloat16:
      return 2;
    default:
      return 4;
  }
}

struct WeightSpec {
  std::string name;
  std::string where;  // "<manifest>: weight 'name'" for messages.
  std::vector<int64_t> shape;
  int64_t numel = 1;
  TfjsWeight::DType dtype = TfjsWeight::DType::kFloat32;
  Storage storage = Storage::kFloat32;
  double scale = 1.0;
  double min = 0.0;
  int64_t bytes = 0;
};

struct GroupSpec {
  std::vector<std::string> paths;  // Resolved shard paths.
  std::vector<WeightSpec> weights;
  int64_t bytes = 0;
};

absl::Status Invalid(absl::string_view where, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", why));
}

// a + b or a * b when they fit in int64 (both non-negative), else an error.
absl::Status CheckedAdd(int64_t a, int64_t b, int64_t* out, absl::string_view where) {
  if (__builtin_add_overflow(a, b, out)) return Invalid(where, "byte count overflows int64");
  return absl::OkStatus();
}
absl::Status CheckedMul(int64_t a, int64_t b, int64_t* out, absl::string_view where) {
  if (__builtin_mul_overflow(a, b, out)) return Invalid(where, "size overflows int64");
  return absl::OkStatus();
}

// The manifest is flat (depth 4): a cap far above that refuses hostile nesting.
constexpr int kMaxManifestDepth = 16;

absl::StatusOr<std::vector<int64_t>> ParseShape(const json* shape, absl::string_view where, int64_t* numel) {
  if (shape == nullptr || !shape->is_array()) return Invalid(where, "'shape' must be a list of integers");
  if (shape->size() > static_cast<size_t>(kMaxTensorDims)) {
    return Invalid(where, absl::StrCat("shape has ", shape->size(), " dimensions (at most ", kMaxTensorDims, ")"));
  }
  std::vector<int64_t> dims;
  *numel = 1;
  for (const json& d : *shape) {
    ASSIGN_OR_RETURN(const int64_t dim, JsonInt64(d, absl::StrCat(where, ": dimension")));
    if (dim < 0) return Invalid(where, absl::StrCat("dimension ", dim, " is negative"));
    dims.push_back(dim);
    RETURN_IF_ERROR(CheckedMul(*numel, dim, numel, where));
  }
  return dims;
}

absl::Status ParseDType(const json* dtype, WeightSpec* spec) {
  if (dtype == nullptr || !dtype->is_string()) return Invalid(spec->where, "'dtype' must be a string");
  const std::string name = dtype->get<std::string>();
  if (name == "float32") {
    spec->dtype = TfjsWeight::DType::kFloat32;
    spec->storage = Storage::kFloat32;
  } else if (name == "int32") {
    spec->dtype = TfjsWeight::DType::kInt32;
    spec->storage = Storage::kInt32;
  } else {
    return Invalid(spec->where, absl::StrCat("dtype '", name, "' is not supported (float32, int32)"));
  }
  return absl::OkStatus();
}

absl::Status ParseAffine(const json& q, WeightSpec* spec) {
  const json* scale = JsonMember(q, "scale");
  const json* min = JsonMember(q, "min");
  if (scale == nullptr || min == nullptr || !scale->is_number() || !min->is_number()) {
    return Invalid(spec->where, "uint8/uint16 quantization needs numbers 'scale' and 'min'");
  }
  spec->scale = scale->get<double>();
  spec->min = min->get<double>();
  if (!std::isfinite(spec->scale) || !std::isfinite(spec->min)) {
    return Invalid(spec->where, "quantization 'scale' and 'min' must be finite");
  }
  return absl::OkStatus();
}

absl::Status ParseQuantization(const json& q, WeightSpec* spec) {
  const json* dtype = JsonMember(q, "dtype");
  if (dtype == nullptr || !dtype->is_string()) {
    return Invalid(spec->where, "'quantization' must be an object with a string 'dtype'");
  }
  const std::string name = dtype->get<std::string>();
  if (name == "uint8" || name == "uint16") {
    spec->storage = name == "uint8" ? Storage::kUInt8 : Storage::kUInt16;
    return ParseAffine(q, spec);
  }
  if (name == "float16") {
    if (spec->dtype != TfjsWeight::DType::kFloat32) {
      return Invalid(spec->where, "float16 quantization applies to float32 weights only");
    }
    spec->storage = Storage::kFloat16;
    return absl::OkStatus();
  }
  return Invalid(spec->where, absl::StrCat("quantization dtype '", name, "' is not supported (uint8, uint16, float16)"));
}

absl::StatusOr<WeightSpec> ParseWeightSpec(const json& entry, const std::string& path, size_t group, size_t index) {
  WeightSpec spec;
  const json* name = JsonMember(entry, "name");
  if (name == nullptr || !name->is_string() || name->get<std::string>().empty()) {
    return Invalid(path, absl::StrCat("group ", group, " weight ", index, ": 'name' must be a non-empty string"));
  }
  spec.name = name->get<std::string>();
  spec.where = absl::StrCat(path, ": weight '", spec.name, "'");
  ASSIGN_OR_RETURN(spec.shape, ParseShape(JsonMember(entry, "shape"), spec.where, &spec.numel));
  RETURN_IF_ERROR(ParseDType(JsonMember(entry, "dtype"), &spec));
  if (const json* q = JsonMember(entry, "quantization")) RETURN_IF_ERROR(ParseQuantization(*q, &spec));
  RETURN_IF_ERROR(CheckedMul(spec.numel, StorageSize(spec.storage), &spec.bytes, spec.where));
  return spec;
}

// A shard path relative to the manifest's folder that cannot leave it.
absl::StatusOr<std::string> ResolveShard(const json& entry, const std::filesystem::path& dir, const std::string& path) {
  if (!entry.is_string() || entry.get<std::string>().empty()) {
    return Invalid(path, absl::StrCat("shard path ", entry.dump(), " must be a non-empty string"));
  }
  const std::filesystem::path shard(entry.get<std::string>());
  bool escapes = shard.is_absolute() || entry.get<std::string>().find('\0') != std::string::npos;
  for (const auto& part : shard) escapes |= part == "..";
  if (escapes) return Invalid(path, absl::StrCat("shard path ", entry.dump(), " leaves the manifest's folder"));
  return (dir / shard).string();
}

absl::StatusOr<GroupSpec> ParseGroup(const json& group, size_t g, const std::string& path) {
  const json* paths = JsonMember(group, "paths");
  const json* weights = JsonMember(group, "weights");
  if (paths == nullptr || weights == nullptr || !paths->is_array() || !weights->is_array()) {
    return Invalid(path, absl::StrCat("group ", g, " must be an object with lists 'paths' and 'weights'"));
  }
  GroupSpec spec;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  for (const json& p : *paths) {
    ASSIGN_OR_RETURN(std::string shard, ResolveShard(p, dir, path));
    spec.paths.push_back(std::move(shard));
  }
  for (size_t i = 0; i < weights->size(); ++i) {
    ASSIGN_OR_RETURN(WeightSpec weight, ParseWeightSpec((*weights)[i], path, g, i));
    RETURN_IF_ERROR(CheckedAdd(spec.bytes, weight.bytes, &spec.bytes, weight.where));
    spec.weights.push_back(std::move(weight));
  }
  return spec;
}

// Counts and budgets over all groups, checked before any shard is read.
absl::Status CheckTotals(const std::vector<GroupSpec>& groups, const std::string& path,
                         const TfjsReadOptions& options) {
  std::unordered_set<std::string> names;
  int64_t shard_bytes = 0, decoded_bytes = 0, count = 0;
  for (const GroupSpec& group : groups) {
    RETURN_IF_ERROR(CheckedAdd(shard_bytes, group.bytes, &shard_bytes, path));
    for (const WeightSpec& w : group.weights) {
      if (++count > options.max_weights) {
        return absl::ResourceExhaustedError(absl::StrCat(path, ": more than ", options.max_weights, " weights"));
      }
      if (!names.insert(w.name).second) return Invalid(w.where, "name appears more than once");
      int64_t decoded = 0;
      RETURN_IF_ERROR(CheckedMul(w.numel, 4, &decoded, w.where));
      RETURN_IF_ERROR(CheckedAdd(decoded_bytes, decoded, &decoded_bytes, w.where));
    }
  }
  if (shard_bytes > options.max_shard_bytes || decoded_bytes > options.max_decoded_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": the weights need ", shard_bytes, " shard bytes and ",
                                                     decoded_bytes, " decoded bytes (limits ",
                                                     options.max_shard_bytes, " and ", options.max_decoded_bytes, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GroupSpec>> ParseManifest(const json& manifest, const std::string& path,
                                                     const TfjsReadOptions& options) {
  if (!manifest.is_array()) return Invalid(path, "a weights manifest must be a list of groups");
  std::vector<GroupSpec> groups;
  for (size_t g = 0; g < manifest.size(); ++g) {
    ASSIGN_OR_RETURN(GroupSpec group, ParseGroup(manifest[g], g, path));
    groups.push_back(std::move(group));
  }
  RETURN_IF_ERROR(CheckTotals(groups, path, options));
  return groups;
}

// The group's shards, concatenated; exactly group.bytes of them.
absl::StatusOr<std::string> ReadGroupBytes(const GroupSpec& group, const std::string& path,
                                           const TfjsShardReader& read_shard, int64_t* budget) {
  std::string bytes;
  for (const std::string& shard : group.paths) {
    ASSIGN_OR_RETURN(std::string data, WithContext(read_shard(shard, *budget), path));
    if (static_cast<int64_t>(data.size()) > *budget) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ": shard ", shard, " exceeds the byte budget"));
    }
    *budget -= static_cast<int64_t>(data.size());
    bytes += data;
  }
  const int64_t have = static_cast<int64_t>(bytes.size());
  if (have < group.bytes) {
    int64_t end = 0;
    const WeightSpec* first_short = nullptr;
    for (const WeightSpec& w : group.weights) {
      end += w.bytes;
      if (end > have) {
        first_short = &w;
        break;
      }
    }
    return absl::DataLossError(absl::StrCat(first_short->where, ": shards ", absl::StrJoin(group.paths, ", "),
                                            " hold ", have, " bytes but the weights need ", group.bytes,
                                            " (truncated; this weight ends past the data)"));
  }
  if (have > group.bytes) {
    return Invalid(path, absl::StrCat("shards ", absl::StrJoin(group.paths, ", "), " hold ", have,
                                      " bytes but the weights need only ", group.bytes));
  }
  return bytes;
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// IEEE 754 half to float, exact (subnormals, infinities and NaNs included).
float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ffu, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // Subnormal: normalise.
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Element i of an affine-quantized weight, in double as TF.js computes it.
// (The target is built with -ffp-contract=off so that no FMA changes it.)
double Dequantize(const WeightSpec& spec, const char* data, int64_t i) {
  const double q = spec.storage == Storage::kUInt8 ? static_cast<unsigned char>(data[i])
                                                   : Load<uint16_t>(data + 2 * i);
  return q * spec.scale + spec.min;
}

absl::Status DecodeInts(const WeightSpec& spec, const char* data, std::vector<int32_t>* out) {
  out->resize(static_cast<size_t>(spec.numel));
  for (int64_t i = 0; i < spec.numel; ++i) {
    if (spec.storage == Storage::kInt32) {
      (*out)[i] = Load<int32_t>(data + 4 * i);
      continue;
    }
    const double v = std::floor(Dequantize(spec, data, i) + 0.5);  // JS Math.round.
    if (!(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max())) {
      return Invalid(spec.where, absl::StrCat("dequantized value ", v, " at element ", i, " is beyond int32"));
    }
    (*out)[i] = static_cast<int32_t>(v);
  }
  return absl::OkStatus();
}

void DecodeFloats(const WeightSpec& spec, const char* data, std::vector<float>* out) {
  out->resize(static_cast<size_t>(spec.numel));
  for (int64_t i = 0; i < spec.numel; ++i) {
    switch (spec.storage) {
      case Storage::kFloat32:
        (*out)[i] = Load<float>(data + 4 * i);
        break;
      case Storage::kFloat16:
        (*out)[i] = HalfToFloat(Load<uint16_t>(data + 2 * i));
        break;
      default:
        (*out)[i] = static_cast<float>(Dequantize(spec, data, i));
    }
  }
}

absl::StatusOr<TfjsWeight> DecodeWeight(const WeightSpec& spec, const char* data) {
  TfjsWeight weight;
  weight.name = spec.name;
  weight.shape = spec.shape;
  weight.dtype = spec.dtype;
  if (spec.dtype == TfjsWeight::DType::kInt32) {
    RETURN_IF_ERROR(DecodeInts(spec, data, &weight.ints));
  } else {
    DecodeFloats(spec, data, &weight.floats);
  }
  return weight;
}

}  // namespace

int64_t TfjsWeight::numel() const {
  return dtype == DType::kInt32 ? static_cast<int64_t>(ints.size()) : static_cast<int64_t>(floats.size());
}

const TfjsWeight* TfjsWeights::Find(absl::string_view name) const {
  for (const TfjsWeight& w : weights_) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

absl::StatusOr<const TfjsWeight*> TfjsWeights::GetFloat(absl::string_view name, const std::vector<int64_t>& shape,
                                                        absl::string_view source) const {
  const TfjsWeight* w = Find(name);
  if (w == nullptr) return absl::NotFoundError(absl::StrCat(source, ": no weight '", name, "'"));
  if (w->dtype != TfjsWeight::DType::kFloat32 || w->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": weight '", name, "' is ", w->dtype == TfjsWeight::DType::kFloat32 ? "float32" : "int32", " [",
        absl::StrJoin(w->shape, ", "), "], expected float32 [", absl::StrJoin(shape, ", "), "]"));
  }
  return w;
}

absl::StatusOr<TfjsWeights> ReadTfjsWeights(const std::string& manifest_path, const TfjsReadOptions& options) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(manifest_path, options.max_manifest_bytes));
  return ParseTfjsWeights(text, manifest_path, ReadFileBytes, options);
}

absl::StatusOr<TfjsWeights> ParseTfjsWeights(const std::string& manifest_text, const std::string& manifest_path,
                                             const TfjsShardReader& read_shard, const TfjsReadOptions& options) {
  if (static_cast<int64_t>(manifest_text.size()) > options.max_manifest_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(manifest_path, ": manifest exceeds ",
                                                     options.max_manifest_bytes, " bytes"));
  }
  ASSIGN_OR_RETURN(const json manifest, ParseBoundedJson(manifest_text, kMaxManifestDepth, manifest_path));
  ASSIGN_OR_RETURN(const std::vector<GroupSpec> groups, ParseManifest(manifest, manifest_path, options));
  std::vector<TfjsWeight> weights;
  int64_t budget = options.max_shard_bytes;
  for (const GroupSpec& group : groups) {
    ASSIGN_OR_RETURN(const std::string bytes, ReadGroupBytes(group, manifest_path, read_shard, &budget));
    int64_t offset = 0;
    for (const WeightSpec& spec : group.weights) {
      ASSIGN_OR_RETURN(TfjsWeight weight, DecodeWeight(spec, bytes.data() + offset));
      weights.push_back(std::move(weight));
      offset += spec.bytes;
    }
  }
  return TfjsWeights(std::move(weights));
}

}  // namespace dmue::io
