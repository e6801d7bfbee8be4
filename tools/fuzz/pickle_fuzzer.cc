// Fuzz target: the restricted unpickler (dmue/io/pickle.h) on arbitrary
// bytes, then every walk a loaded value meets in the tools (DebugString,
// Outline, ForEachNode, HasCycle) and a round trip through the pickler.
//
// Refusals are the expected outcome for almost every input; only crashes,
// sanitizer reports, timeouts and memory beyond the fuzzer's limit count.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dmue/io/pickle.h"
#include "dmue/io/value.h"

namespace dmue::fuzz {
namespace {

using ::dmue::io::DType;
using ::dmue::io::Value;

// What torch.load's persistent_load sees: ('storage', torch.<X>Storage, key,
// location, numel). Builds the flat view torch_checkpoint.cc builds, without
// data (the unpickler only needs the metadata). Anything else is refused,
// as the real reader does, so a malformed id is a Status, never a throw.
absl::StatusOr<Value> LoadStorage(const Value& pid) {
  if (!pid.is_tuple() || pid.items().size() < 5) {
    return absl::InvalidArgumentError("persistent id is not a 5-tuple");
  }
  const Value::List& f = pid.items();
  DType dtype;
  if (!f[1].is_global() || f[1].global_name().rfind("torch.", 0) != 0 ||
      !io::DTypeFromStorageName(f[1].global_name().substr(6), &dtype) ||
      !f[2].is_string() || !f[4].is_int() || f[4].as_int() < 0) {
    return absl::InvalidArgumentError("malformed storage persistent id");
  }
  auto storage = std::make_shared<io::Storage>();
  storage->key = f[2].as_string();
  storage->dtype = dtype;
  storage->numel = f[4].as_int();
  auto ref = std::make_shared<io::TensorRef>();
  ref->storage = std::move(storage);
  ref->sizes = {ref->storage->numel};
  ref->strides = {1};
  return Value::Tensor(std::move(ref));
}

absl::StatusOr<io::PickledTensor> DescribeTensor(const Value& tensor) {
  const io::TensorRef& ref = tensor.tensor();
  io::PickledTensor out;
  out.persistent_id =
      Value::MakeTuple({Value::String("storage"),
                        Value::Global(std::string("torch.") +
                                      io::DTypeStorageName(ref.storage->dtype)),
                        Value::String(ref.storage->key), Value::String("cpu"),
                        Value::Int(ref.storage->numel)});
  out.storage_offset = ref.storage_offset;
  out.sizes = ref.sizes;
  out.strides = ref.strides;
  out.requires_grad = ref.requires_grad;
  return out;
}

// Bytes of strings and bytes the pickler would write for `root`: it shares
// containers through the memo but writes a repeated string each time, so a
// value that repeats one string a million times (which the reader shares
// cheaply) would make it write gigabytes. That is the pickler's contract,
// not a reader bug; such values skip the round trip.
uint64_t WrittenStringBytes(const Value& root) {
  uint64_t total = 0;
  io::ForEachNode(root, [&total](const Value& node, bool /*first*/) {
    if (node.is_string() || node.is_bytes()) total += node.as_string().size();
  });
  return total;
}

void RoundTrip(const Value& value) {
  constexpr uint64_t kMaxRoundTripBytes = uint64_t{1} << 20;
  if (WrittenStringBytes(value) > kMaxRoundTripBytes) return;
  io::PickleOptions write_options;
  write_options.describe_tensor = DescribeTensor;
  absl::StatusOr<std::string> bytes = io::Pickle(value, write_options);
  if (!bytes.ok()) return;  // Cycles, deep nesting: refused, not a bug.
  io::UnpickleOptions read_options;
  read_options.filename = "roundtrip.pkl";
  read_options.persistent_load = LoadStorage;
  (void)io::Unpickle(*bytes, read_options);
}

void Exercise(const Value& value) {
  (void)value.DebugString();
  io::OutlineOptions outline;
  outline.max_lines = 10000;
  outline.max_bytes = 1 << 20;
  size_t emitted = 0;
  io::Outline(value, outline,
              [&emitted](const std::string& line) { emitted += line.size(); });
  (void)io::HasCycle({value});
  RoundTrip(value);
}

}  // namespace
}  // namespace dmue::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dmue::io::UnpickleOptions options;
  options.filename = "fuzz.pkl";
  options.persistent_load = dmue::fuzz::LoadStorage;
  absl::StatusOr<dmue::io::UnpickleResult> result = dmue::io::Unpickle(
      absl::string_view(reinterpret_cast<const char*>(data), size), options);
  if (result.ok()) dmue::fuzz::Exercise(result->value);
  return 0;
}
