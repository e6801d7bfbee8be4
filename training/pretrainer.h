// The pretraining loop: MVFace + cross entropy on identity labels, or
// (objective DESCRIPTOR_DISTILLATION, descriptor_distill.h) the trunk + a
// projection "fc" learning a face-identity teacher's descriptor; SGD with
// momentum and a multi-step learning rate; checkpoints `mv_epoch_<E>.pt`
// holding {'state_dict': feat_net.* + loss_layer.weight (or fc.*), 'epoch',
// 'batch_id'} like the reference's, which TrainerConfig.pretrained_mapping
// MSRA loads into DMUE. A rerun continues after the newest checkpoint.
#ifndef TRAINING_PRETRAINER_H_
#define TRAINING_PRETRAINER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "training/descriptor_distill.h"
#include "training/pretrain_config.pb.h"

namespace dmue::training {

absl::Status ValidatePretrainConfig(const PretrainConfig& config);

struct PretrainSummary {
  int64_t steps = 0;  // taken by this run
  double first_loss = 0;   // mean loss of the first logged window
  double last_loss = 0;    // mean loss of the last logged window
  std::string last_checkpoint;  // written by this run, or resumed from
};

// Distillation loads face-api's net from teacher_dir (errors name it).
absl::StatusOr<PretrainSummary> RunPretraining(const PretrainConfig& config);
// With the given teacher (needed for, and only used by, distillation).
absl::StatusOr<PretrainSummary> RunPretraining(const PretrainConfig& config, const DescriptorTeacher* teacher);

}  // namespace dmue::training

#endif  // TRAINING_PRETRAINER_H_
