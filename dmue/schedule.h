// Epoch schedules of the reference: the ramp-up / ramp-down weights that move
// training from the auxiliary losses to the main ones, and the piecewise-
// constant two-group learning rate (backbone lr1, classifiers lr2).
#ifndef DMUE_SCHEDULE_H_
#define DMUE_SCHEDULE_H_

#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace dmue {

// 1 for epoch > a, else exp(-5 (1 - epoch/a)^2).
double RampUp(double epoch, double a);
// 1 for epoch < a, else exp(-(1 - a/epoch)^2).
double RampDown(double epoch, double a);

// (epoch bound, lr) pairs: the lr of the first bound the epoch is below.
using PiecewiseLr = std::vector<std::pair<int, double>>;

absl::Status ValidatePiecewiseLr(const PiecewiseLr& schedule, const char* field);

// Past the last bound the reference raises; we keep the last rate.
double LrAt(const PiecewiseLr& schedule, int epoch);

// Per-step schedules FER users expect beside the reference's: a linear
// warm-up from 0, then step decay or a cosine to min_lr at total_epochs.
struct StepSchedule {
  enum class Kind { kStep, kCosine };
  Kind kind = Kind::kCosine;
  double base_lr = 0.1;
  double warmup_epochs = 0;
  double min_lr = 0;                // kCosine
  double gamma = 0.1;               // kStep
  std::vector<int> milestones;      // kStep, increasing epochs
  double total_epochs = 1;          // where the cosine reaches min_lr
};

// `field` prefixes the errors (e.g. "TrainerConfig.lr_schedule").
absl::Status ValidateStepSchedule(const StepSchedule& schedule, const char* field);

// The rate at fractional epoch t (epoch + batch / batches_per_epoch).
double LrAt(const StepSchedule& schedule, double t);

// The reference's config.py defaults.
PiecewiseLr ReferenceLr1();
PiecewiseLr ReferenceLr2();

}  // namespace dmue

#endif  // DMUE_SCHEDULE_H_
