// The pretraining loop: MVFace + cross entropy, SGD with momentum and a
// multi-step learning rate, checkpoints `mv_epoch_<E>.pt` holding
// {'state_dict': feat_net.* + loss_layer.weight, 'epoch', 'batch_id'} like the
// reference's, which TrainerConfig.pretrained_mapping MSRA loads into DMUE.
#ifndef TRAINING_PRETRAINER_H_
#define TRAINING_PRETRAINER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "training/pretrain_config.pb.h"

namespace dmue::training {

absl::Status ValidatePretrainConfig(const PretrainConfig& config);

struct PretrainSummary {
  int64_t steps = 0;
  double first_loss = 0;   // mean loss of the first logged window
  double last_loss = 0;    // mean loss of the last logged window
  std::string last_checkpoint;
};

absl::StatusOr<PretrainSummary> RunPretraining(const PretrainConfig& config);

}  // namespace dmue::training

#endif  // TRAINING_PRETRAINER_H_
