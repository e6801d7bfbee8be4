// AUTO precision and layout for training: like cudnn.benchmark, times one
// training step of each candidate (fp32 NCHW, fp32 channels-last, bf16
// channels-last) on the run's real batch shape with a scratch model, and keeps
// the fastest whose eval-mode logits stay within `max_output_deviation`
// (relative L2) of fp32's, on the run's device. Logits, not the loss: a
// scratch model's classifier (std 0.001) makes every loss log(C) to seven
// digits, whatever the precision, while its logits carry the trunk's
// rounding. Which is fastest depends on the CPU (bf16 was 2x faster than
// fp32 on an AMD EPYC, slower on one Intel Xeon and 2.5x faster on another
// with AMX), so it is measured, not assumed.
#ifndef TRAINING_AUTO_COMPUTE_H_
#define TRAINING_AUTO_COMPUTE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dmue/model_config.pb.h"
#include "dmue/train_step.h"

namespace dmue::training {

struct ComputeTrial {
  std::string name;  // "fp32", "fp32 channels-last", "bf16 channels-last"
  ComputeOptions options;
  double seconds_per_step = 0;  // best of the timed steps
  double output_deviation = 0;  // |logits - fp32 logits| / |fp32 logits|, eval mode
  bool within_bound = true;
  std::string skipped;  // why it was not timed (empty: it was); never chosen then
};

struct ComputeChoice {
  ComputeOptions options;
  std::vector<ComputeTrial> trials;
  std::string Summary() const;  // one line for the log
};

struct ComputeProbe {
  ModelConfig model;
  bool dmue = false;  // time DMUE's step (else the cross-entropy step)
  int batch_size = 64;
  int image_size = 64;
  int timed_steps = 2;  // after one untimed warm-up step
  // bf16 autocast measured 0.005 on ResNet-18 at 64x64 (fp32 channels-last ~1e-7).
  double max_output_deviation = 0.02;
  torch::Device device = torch::kCPU;  // every trial runs here (the run's device)
};

// Runs the trials; leaves the global RNG seeded differently (call before
// seeding the real model).
absl::StatusOr<ComputeChoice> ChooseTrainingCompute(const ComputeProbe& probe);

}  // namespace dmue::training

#endif  // TRAINING_AUTO_COMPUTE_H_
