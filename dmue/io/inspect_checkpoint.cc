// Prints every entry of a PyTorch checkpoint (zip or legacy torch.save file):
// tensors with dtype and shape, other leaves with their value.
//
//   bazel run //dmue/io:inspect_checkpoint -- --path=/abs/model.pth
//
// The listing comes from dmue::io::Outline, which lists shared or cyclic
// values once and stops at --max_lines, so a hostile file cannot make it
// print without end.
#include <cstdint>
#include <cstdio>
#include <string>

#include "dmue/io/torch_checkpoint.h"
#include "dmue/io/value.h"
#include "gflags/gflags.h"

DEFINE_string(path, "", "checkpoint file to inspect");
DEFINE_int64(max_lines, 100000, "stop the listing after this many lines");

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
  dmue::io::OutlineOptions options;
  options.max_lines = FLAGS_max_lines;
  const dmue::io::OutlineStats stats = dmue::io::Outline(
      *root, options,
      [](const std::string& line) { std::printf("%s\n", line.c_str()); });
  std::printf("# %lld tensors, %lld elements%s\n",
              static_cast<long long>(stats.tensors),
              static_cast<long long>(stats.elements),
              stats.truncated ? " (listing truncated)" : "");
  return 0;
}
