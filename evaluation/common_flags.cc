#include "evaluation/common_flags.h"

#include <gflags/gflags.h>

#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "evaluation/report.h"

DEFINE_string(checkpoint, "", "Model checkpoint: inference model, multi-branch snapshot or training checkpoint "
                              "(kind auto-detected).");
DEFINE_string(backbone, "auto", "auto | resnet18 | resnet50_ibn.");
DEFINE_int32(num_classes, 0, "Number of classes; 0 = the checkpoint's (a different value is an error).");
DEFINE_string(model_config, "", "Optional ModelConfig text file (pooling, last_stride, bnneck, ...).");
DEFINE_string(data_config, "", "DatasetConfig text file (evaluated in order, without augmentation).");
DEFINE_string(lmdb, "", "LMDB directory (with --list).");
DEFINE_string(list, "", "Label list (with --lmdb).");
DEFINE_string(list_format, "reference", "reference | rafdb | ferplus.");
DEFINE_string(label_mode, "majority", "FERPlus labels: majority | plurality | distribution.");
DEFINE_string(split, "", "Keep only this split of the list ('' = all).");
DEFINE_string(image_folder, "", "Folder-per-class image tree <root>/<class>/<image>.");
DEFINE_int32(resize, 0, "Resize side (0 = the config's, default 256).");
DEFINE_int32(crop, 0, "Centre-crop side (0 = the config's, default 224).");
DEFINE_int32(batch_size, 0, "Batch size (0 = 64, or the config's).");
DEFINE_int32(num_workers, 0, "Loader threads (0 = 2, or the config's).");
DEFINE_int64(max_examples, 0, "Only the first N examples (0 = all).");
DEFINE_string(class_names, "", "Comma-separated class names in label order (also the folder class order).");
DEFINE_string(output_dir, "", "Where outputs go (required).");
DEFINE_int32(num_threads, 0, "LibTorch intra-op threads (0 = default).");

namespace dmue::evaluation {

ModelSpec ModelSpecFromFlags() {
  ModelSpec spec;
  spec.checkpoint = FLAGS_checkpoint;
  spec.backbone = FLAGS_backbone;
  spec.num_classes = FLAGS_num_classes;
  spec.model_config = FLAGS_model_config;
  return spec;
}

DataSpec DataSpecFromFlags() {
  DataSpec spec;
  spec.data_config = FLAGS_data_config;
  spec.lmdb = FLAGS_lmdb;
  spec.list = FLAGS_list;
  spec.list_format = FLAGS_list_format;
  spec.label_mode = FLAGS_label_mode;
  spec.split = FLAGS_split;
  spec.image_folder = FLAGS_image_folder;
  spec.folder_classes = ClassNamesFlag();
  spec.resize = FLAGS_resize;
  spec.crop = FLAGS_crop;
  spec.batch_size = FLAGS_batch_size;
  spec.num_workers = FLAGS_num_workers;
  spec.max_examples = FLAGS_max_examples;
  return spec;
}

std::vector<std::string> ClassNamesFlag() {
  if (FLAGS_class_names.empty()) return {};
  return absl::StrSplit(FLAGS_class_names, ',');
}

absl::StatusOr<std::vector<std::string>> ResolveClassNames(int num_classes) {
  std::vector<std::string> given = ClassNamesFlag();
  if (!given.empty() && int(given.size()) != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat("--class_names has ", given.size(),
                                                   " names but the checkpoint has ", num_classes, " classes"));
  }
  return DefaultClassNames(num_classes, given);
}

std::string OutputDirFlag() { return FLAGS_output_dir; }

void ApplyThreadFlag() {
  if (FLAGS_num_threads > 0) at::set_num_threads(FLAGS_num_threads);
}

}  // namespace dmue::evaluation
