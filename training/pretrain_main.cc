// Pretrains a backbone on identity-labelled faces with MV-Softmax, or by
// distilling face-api's identity descriptor on unlabelled faces
// (objective: DESCRIPTOR_DISTILLATION, training/configs/ferplus_distill.pbtxt):
//
//   bazel run //training:pretrain -- --config=pretrain.pbtxt
//
// Then train DMUE from it with TrainerConfig { pretrained: ".../mv_epoch_17.pt"
// pretrained_mapping: MSRA }. A rerun continues after the newest checkpoint.

#include <iostream>

#include "dmue/base/workspace.h"
#include "dmue/config/text_proto.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "training/pretrainer.h"

DEFINE_string(config, "", "PretrainConfig text file");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) {
    std::cerr << "pretrain: " << s.message() << "\n";
    return 2;
  }
  auto config = dmue::LoadTextProto<dmue::training::PretrainConfig>(FLAGS_config);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 2;
  }
  auto summary = dmue::training::RunPretraining(*config);
  if (!summary.ok()) {
    std::cerr << "error: " << summary.status().message() << "\n";
    return 1;
  }
  std::cout << summary->steps << " steps, loss " << summary->first_loss << " -> " << summary->last_loss
            << ", wrote " << summary->last_checkpoint << "\n";
  return 0;
}
