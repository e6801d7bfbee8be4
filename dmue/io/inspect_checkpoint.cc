// Prints every entry of a PyTorch checkpoint (zip or legacy torch.save file):
// tensors with dtype and shape, other leaves with their value.
//
//   bazel run //dmue/io:inspect_checkpoint -- --path=/abs/model.pth
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/io/value.h"
#include "gflags/gflags.h"

DEFINE_string(path, "", "checkpoint file to inspect");

namespace dmue::io {
namespace {

struct Totals {
  int64_t tensors = 0;
  int64_t elements = 0;
};

void Print(const std::string& name, const Value& v, int depth, Totals* totals) {
  const std::string label = name.empty() ? "<root>" : name;
  if (depth > 64) {
    std::printf("%s  ... (nested too deeply)\n", label.c_str());
    return;
  }
  auto child = [&](const std::string& key) {
    return name.empty() ? key : absl::StrCat(name, ".", key);
  };
  switch (v.kind()) {
    case Value::Kind::kDict:
      if (v.dict().empty()) std::printf("%s  {}\n", label.c_str());
      for (const auto& [key, value] : v.dict()) {
        Print(child(key.is_string() ? key.as_string() : key.DebugString()),
              value, depth + 1, totals);
      }
      return;
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      if (v.items().empty()) {
        std::printf("%s  %s\n", label.c_str(), v.is_list() ? "[]" : "()");
      }
      int i = 0;
      for (const Value& item : v.items()) {
        Print(child(std::to_string(i++)), item, depth + 1, totals);
      }
      return;
    }
    case Value::Kind::kTensor: {
      const TensorRef& t = v.tensor();
      int64_t numel = 1;
      for (int64_t s : t.sizes) numel *= s;
      totals->tensors += 1;
      totals->elements += numel;
      std::printf("%s  %s [%s]\n", label.c_str(),
                  t.storage ? DTypeName(t.storage->dtype) : "?",
                  absl::StrJoin(t.sizes, ", ").c_str());
      return;
    }
    default:
      std::printf("%s  %s = %s\n", label.c_str(), v.kind_name(),
                  v.DebugString().c_str());
  }
}

}  // namespace
}  // namespace dmue::io

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Lists the keys, dtypes and shapes of a checkpoint");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_path.empty()) {
    std::fprintf(stderr, "usage: inspect_checkpoint --path=FILE\n");
    return 2;
  }
  absl::StatusOr<dmue::io::Value> root = dmue::io::ReadCheckpoint(FLAGS_path);
  if (!root.ok()) {
    std::fprintf(stderr, "error: %s\n", root.status().ToString().c_str());
    return 1;
  }
  dmue::io::Totals totals;
  dmue::io::Print("", *root, 0, &totals);
  std::printf("# %lld tensors, %lld elements\n",
              static_cast<long long>(totals.tensors),
              static_cast<long long>(totals.elements));
  return 0;
}
