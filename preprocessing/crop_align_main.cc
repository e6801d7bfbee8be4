// Crops a whole dataset the way DMUE's preprocess/crop_align.py (or
// crop_msra.py) does, in C++:
//   bazel run //preprocessing:crop_align -- --config=/abs/path/crop.pbtxt
// The config is a text-format dmue.preprocessing.CropConfig
// (preprocessing/crop_config.proto); the flags below override its fields.
// Failures (unreadable files, no face, ...) are listed in
// output_root/failures.tsv; a second run resumes, skipping finished crops.
#include <iostream>

#include <gflags/gflags.h>

#include "absl/strings/str_cat.h"
#include "dmue/config/text_proto.h"
#include "preprocessing/crop_config.h"
#include "preprocessing/crop_dataset.h"
#include "third_party/shared_data.h"

DEFINE_string(config, "", "Text-format CropConfig (required).");
DEFINE_string(input_root, "", "Overrides CropConfig.input_root.");
DEFINE_string(output_root, "", "Overrides CropConfig.output_root.");
DEFINE_string(label_list, "", "Overrides CropConfig.label_list.");
DEFINE_int64(limit, -1, "Overrides CropConfig.limit.");
DEFINE_int32(workers, 0, "Overrides CropConfig.workers.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("crop_align --config=crop.pbtxt [--input_root=... --output_root=...]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_config.empty()) {
    std::cerr << "crop_align: --config is required (see preprocessing/crop_config.proto)\n";
    return 2;
  }
  auto config = dmue::LoadTextProto<dmue::preprocessing::CropConfig>(FLAGS_config);
  if (!config.ok()) {
    std::cerr << "crop_align: " << config.status().message() << "\n";
    return 2;
  }
  if (!FLAGS_input_root.empty()) config->set_input_root(FLAGS_input_root);
  if (!FLAGS_output_root.empty()) config->set_output_root(FLAGS_output_root);
  if (!FLAGS_label_list.empty()) config->set_label_list(FLAGS_label_list);
  if (FLAGS_limit >= 0) config->set_limit(FLAGS_limit);
  if (FLAGS_workers > 0) config->set_workers(FLAGS_workers);
  if (config->mtcnn_dir().empty()) {
    auto dir = dmue::SharedPath("models/mtcnn");
    if (!dir.ok()) {
      std::cerr << "crop_align: CropConfig.mtcnn_dir is empty and " << dir.status().message()
                << "\n";
      return 2;
    }
    config->set_mtcnn_dir(*dir);
  }
  if (absl::Status valid = dmue::preprocessing::ValidateCropConfig(*config); !valid.ok()) {
    std::cerr << "crop_align: " << FLAGS_config << ": " << valid.message() << "\n";
    return 2;
  }
  auto stats = dmue::preprocessing::RunCropDataset(*config, std::cerr);
  if (!stats.ok()) {
    std::cerr << "crop_align: " << stats.status().message() << "\n";
    return 1;
  }
  std::cout << "images " << stats->total << ", written " << stats->written << ", resumed "
            << stats->skipped_existing << ", failed " << stats->failures.size() << " in "
            << stats->seconds << " s\n";
  for (const auto& [reason, count] : stats->failures_by_reason) {
    std::cout << "  " << reason << ": " << count << "\n";
  }
  std::cout << "failure list: " << config->output_root() << "/" << config->failure_list() << "\n";
  return 0;
}
