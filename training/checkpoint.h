// Training checkpoints: the multi-branch weights, the optimiser state (Adam or SGD) and the loop
// position in one torch.save-compatible zip file, so a run resumes exactly
// and Python can still read the weights (torch.load(f)['state_dict']).
// Files are written to a temp name and renamed: an interrupted save never
// damages the previous checkpoint.
#ifndef TRAINING_CHECKPOINT_H_
#define TRAINING_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/dmue_model.h"

namespace dmue::training {

struct TrainingState {
  int64_t epoch = 0;           // Epoch to continue in.
  int64_t batch_in_epoch = 0;  // Batches of `epoch` already consumed.
  int64_t global_step = 0;     // Optimiser steps taken.
  double best_accuracy = -1;
  std::string sampler_state;   // Opaque bytes from the sampler.
  std::string config_text;     // The trainer config that produced the run.
  std::string model_spec_text; // ModelSpec of the exported model (text proto).
};

absl::Status SaveTrainingCheckpoint(const std::string& path, DmueModel& model,
                                    torch::optim::Optimizer& optimizer, const TrainingState& state);

// Restores weights, optimiser moments and the loop position. The optimiser
// must have been built over the same parameter groups and be of the kind
// that wrote the file. Every value read is type-checked (DataLoss if not).
absl::StatusOr<TrainingState> LoadTrainingCheckpoint(const std::string& path, DmueModel& model,
                                                     torch::optim::Optimizer& optimizer);

}  // namespace dmue::training

#endif  // TRAINING_CHECKPOINT_H_
