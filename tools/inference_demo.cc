// Classifies one face image with an inference (or multi-branch) checkpoint and
// prints the label and probabilities like the reference's inference.py:
//
//   bazel run //tools:inference_demo -- --checkpoint=runs/synthetic_dmue/best_inference.pth \
//       --num_classes=7 --resize=72 --crop=64 --class_names=surprise,fear,... --image=face.png
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <unistd.h>

#include "absl/strings/str_split.h"
#include "dmue/model_io.h"
#include "gflags/gflags.h"
#include "tools/inference_demo_lib.h"

DEFINE_string(checkpoint, "", "inference .pth (or a multi-branch checkpoint, converted on the fly)");
DEFINE_string(image, "", "face image (JPEG/PNG/...)");
DEFINE_int32(num_classes, 8, "number of classes of the model");
DEFINE_string(backbone, "RESNET18", "RESNET18 or RESNET50_IBN");
DEFINE_int32(resize, 256, "eval transform resize");
DEFINE_int32(crop, 224, "eval transform centre crop");
DEFINE_string(class_names, "", "comma-separated names (default: the reference's AffectNet order)");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("classify one face image like the reference's inference.py");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    if (chdir(workspace) != 0) return 2;
  }
  if (FLAGS_checkpoint.empty() || FLAGS_image.empty()) {
    std::cerr << "--checkpoint and --image are required\n";
    return 2;
  }
  dmue::ModelConfig config;
  config.set_num_classes(FLAGS_num_classes);
  dmue::ModelConfig::Backbone backbone;
  if (!dmue::ModelConfig::Backbone_Parse(FLAGS_backbone, &backbone)) {
    std::cerr << "--backbone: unknown value '" << FLAGS_backbone << "'\n";
    return 2;
  }
  config.set_backbone(backbone);
  std::vector<std::string> names = FLAGS_class_names.empty()
                                       ? dmue::tools::AffectNetClassNames()
                                       : std::vector<std::string>(absl::StrSplit(FLAGS_class_names, ','));
  if (static_cast<int>(names.size()) < FLAGS_num_classes) {
    std::cerr << "--class_names has " << names.size() << " names for " << FLAGS_num_classes << " classes\n";
    return 2;
  }
  std::cout << "Building model......\n";
  absl::StatusOr<dmue::InferenceModel> model = dmue::LoadInferenceModel(FLAGS_checkpoint, config);
  if (!model.ok()) {
    std::cerr << "error: " << model.status().message() << "\n";
    return 1;
  }
  std::cout << "Loaded pretrained model from " << FLAGS_checkpoint << "\n";
  absl::StatusOr<dmue::tools::Prediction> prediction =
      dmue::tools::ClassifyImageFile(*model, FLAGS_image, FLAGS_resize, FLAGS_crop);
  if (!prediction.ok()) {
    std::cerr << "error: " << prediction.status().message() << "\n";
    return 1;
  }
  std::cout << "Predicted: " << names[prediction->label] << "\nProbabilities:\n";
  for (int c = 0; c < FLAGS_num_classes; ++c) {
    std::printf("%s ----> %.4f\n", names[c].c_str(), std::round(prediction->probabilities[c] * 1e4) / 1e4);
  }
  return 0;
}
