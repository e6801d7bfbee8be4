// The DMUE training loop: class-balanced batches from the datasets loader,
// the reference's skip rule for batches with a class under 2 samples, the
// per-epoch two-group learning rates and ramps, logging (glog, JSONL/CSV,
// PNG curves), evaluation every N batches and every epoch, checkpoints named
// with epoch and accuracy, exact resume from <output_dir>/last.pth, and a
// clean stop (checkpoint first) when RequestStop() is called, e.g. on Ctrl-C.
#ifndef TRAINING_TRAINER_H_
#define TRAINING_TRAINER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "training/trainer_config.pb.h"

namespace dmue::training {

struct EvalResult {
  double accuracy = 0;
  double mean_class_accuracy = 0;
  int64_t count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

struct TrainSummary {
  int64_t steps = 0;
  int64_t skipped_batches = 0;
  double best_accuracy = -1;
  std::optional<EvalResult> last_eval;
  double images_per_second = 0;  // training throughput incl. data loading
  bool stopped_early = false;    // RequestStop() or max_steps
};

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
