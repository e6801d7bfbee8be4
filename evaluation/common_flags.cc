#include "evaluation/common_flags.h"

#include <iostream>

#include <gflags/gflags.h>

#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dmue/compute.h"

DEFINE_string(checkpoint, "", "Model checkpoint: inference model, multi-branch snapshot or training checkpoint "
                              "(kind auto-detected).");
DEFINE_string(backbone, "auto", "auto | resnet18 | resnet50_ibn.");
DEFINE_string(spec, "", "ModelSpec text file of the checkpoint (dmue/model_spec.proto: classes, resize, crop, "
                        "mean/std, grey); default: <checkpoint without extension>.spec.pbtxt when it exists.");
DEFINE_int32(num_classes, 0, "Number of classes; 0 = the checkpoint's (a different value is an error).");
DEFINE_string(model_config, "", "Optional ModelConfig text file (pooling, last_stride, bnneck, ...).");
DEFINE_string(data_config, "", "DatasetConfig text file (evaluated in order, without augmentation).");
DEFINE_string(lmdb, "", "LMDB directory (with --list).");
DEFINE_string(list, "", "Label list (with --lmdb).");
DEFINE_string(list_format, "reference", "reference | rafdb | ferplus.");
DEFINE_string(label_mode, "majority", "FERPlus labels: majority | plurality | distribution.");
DEFINE_string(split, "", "Keep only this split of the list ('' = all).");
DEFINE_string(image_folder, "", "Folder-per-class image tree <root>/<class>/<image>.");
DEFINE_int32(resize, 0, "Resize side (0 = the spec's, else the config's, default 256; must agree with a spec).");
DEFINE_int32(crop, 0, "Centre-crop side (0 = the spec's, else the config's, default 224; must agree with a spec).");
DEFINE_int32(batch_size, 0, "Batch size (0 = 64, or the config's).");
DEFINE_int32(num_workers, 0, "Loader threads (0 = 2, or the config's).");
DEFINE_int64(max_examples, 0, "Only the first N examples (0 = all).");
DEFINE_string(class_names, "", "Comma-separated class names in label order (also the folder class order); "
                               "default: the spec's, else 0..C-1. Must agree with a spec.");
DEFINE_string(output_dir, "", "Where outputs go (required).");
DEFINE_int32(num_threads, 0, "LibTorch intra-op threads (0 = default).");
DEFINE_string(device, "cpu", "cpu | cuda | cuda:N: where the model runs (cuda needs a CUDA LibTorch; only cpu is "
                             "tested).");

namespace dmue::evaluation {

absl::StatusOr<std::optional<SpecFile>> SpecFileFromFlags() { return FindModelSpec(FLAGS_checkpoint, FLAGS_spec); }

CheckpointSpec CheckpointSpecFromFlags(const std::optional<SpecFile>& spec) {
  CheckpointSpec checkpoint;
  checkpoint.checkpoint = FLAGS_checkpoint;
  checkpoint.backbone = FLAGS_backbone;
  checkpoint.num_classes = FLAGS_num_classes;
  checkpoint.model_config = FLAGS_model_config;
  checkpoint.spec = spec;
  return checkpoint;
}

absl::StatusOr<ModelContract> ContractFromFlags(const std::optional<SpecFile>& spec, int num_classes) {
  absl::StatusOr<ModelContract> contract = ResolveContract(FLAGS_checkpoint, spec, ClassNamesFlag(), num_classes);
  if (contract.ok() && !contract->warning.empty()) std::cerr << contract->warning << "\n";
  return contract;
}

DataSpec DataSpecFromFlags(const ModelContract& contract) {
  DataSpec spec;
  spec.data_config = FLAGS_data_config;
  spec.lmdb = FLAGS_lmdb;
  spec.list = FLAGS_list;
  spec.list_format = FLAGS_list_format;
  spec.label_mode = FLAGS_label_mode;
  spec.split = FLAGS_split;
  spec.image_folder = FLAGS_image_folder;
  // Named classes are the folder names; unnamed ones are the sorted folders.
  if (!contract.index_names) spec.folder_classes = contract.class_names;
  spec.contract = contract.input;
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

std::string OutputDirFlag() { return FLAGS_output_dir; }

void ApplyThreadFlag() {
  if (FLAGS_num_threads > 0) at::set_num_threads(FLAGS_num_threads);
}

absl::StatusOr<std::string> DeviceFlag() {
  absl::StatusOr<torch::Device> device = ResolveDevice(FLAGS_device, "--device");
  if (!device.ok()) return device.status();
  return FLAGS_device;
}

}  // namespace dmue::evaluation
