// The training loop, DMUE (after an optional cross-entropy warm-up) or plain
// cross entropy, each batch one dmue/train_step step: class-balanced batches
// from the datasets loader, the reference's skip rule for DMUE batches with a
// class under 2 samples, per-step learning rates and per-epoch ramps, logging
// (glog, JSONL/CSV, PNG curves), validation every N batches and every epoch
// (dmue/metrics' confusion matrix and accuracies), checkpoints named with epoch
// and accuracy, exact resume from <output_dir>/last.pth, and a clean stop
// (checkpoint first) when RequestStop() is called, e.g. on Ctrl-C.
#ifndef TRAINING_TRAINER_H_
#define TRAINING_TRAINER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dmue/compute.h"
#include "dmue/metrics/metrics.h"
#include "dmue/train_step.h"
#include "training/trainer_config.pb.h"

namespace dmue::training {

// One validation pass: its confusion matrix and what dmue/metrics makes of it
// (accuracy, mean per-class accuracy, per-class precision / recall / F1).
struct EvalResult {
  ConfusionMatrix confusion;
  ClassificationSummary metrics;
};

struct TrainSummary {
  int64_t steps = 0;
  int64_t skipped_batches = 0;
  double best_accuracy = -1;
  std::optional<EvalResult> last_eval;
  double images_per_second = 0;  // training throughput incl. data loading
  bool stopped_early = false;    // RequestStop() or max_steps
};

// The settings of every step of `epoch`: cross entropy during the warm-up (and
// for a plain cross-entropy run), DMUE with the epoch's ramps after it (ramps
// count DMUE epochs; `ramps: false` holds both at 1).
StepSettings EpochStepSettings(const TrainerConfig& config, int64_t epoch, const ComputeOptions& compute);

class Trainer {
 public:
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const TrainerConfig& config);
  ~Trainer();

  absl::StatusOr<TrainSummary> Run();

  // Thread- and signal-safe: the loop saves a checkpoint and returns.
  void RequestStop() { stop_requested_.store(true); }

 private:
  struct State;
  explicit Trainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace dmue::training

#endif  // TRAINING_TRAINER_H_
