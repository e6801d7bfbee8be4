#include "dmue/schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "dmue/base/field_error.h"

namespace dmue {

double RampUp(double epoch, double a) {
  if (epoch > a) return 1.0;
  const double t = 1.0 - epoch / a;
  return std::exp(-5.0 * t * t);
}

double RampDown(double epoch, double a) {
  if (epoch < a) return 1.0;
  const double t = 1.0 - a / epoch;
  return std::exp(-(t * t));
}

absl::Status ValidatePiecewiseLr(const PiecewiseLr& schedule, const char* field) {
  if (schedule.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": is empty"));
  for (size_t i = 0; i < schedule.size(); ++i) {
    if (!(schedule[i].second > 0.0) || !std::isfinite(schedule[i].second)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "].lr: must be positive, got ", schedule[i].second));
    }
    if (i > 0 && schedule[i].first <= schedule[i - 1].first) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "].until_epoch: bounds must increase"));
    }
  }
  return absl::OkStatus();
}

double LrAt(const PiecewiseLr& schedule, int epoch) {
  for (const auto& [bound, lr] : schedule) {
    if (epoch < bound) return lr;
  }
  return schedule.back().second;
}

absl::Status ValidateStepSchedule(const StepSchedule& s, const char* field) {
  const FieldErrors field_error(field);
  if (!(s.base_lr > 0) || !std::isfinite(s.base_lr))
    return field_error("base_lr", absl::StrCat("must be > 0, got ", s.base_lr));
  if (!(s.warmup_epochs >= 0) || s.warmup_epochs >= s.total_epochs) {
    return field_error("warmup_epochs", absl::StrCat("must be in [0, ", s.total_epochs, "), got ", s.warmup_epochs));
  }
  if (!(s.min_lr >= 0) || s.min_lr > s.base_lr) return field_error("min_lr", "must be in [0, base_lr]");
  if (!(s.gamma > 0) || s.gamma > 1) return field_error("step_gamma", "must be in (0, 1]");
  for (size_t i = 0; i < s.milestones.size(); ++i) {
    if (s.milestones[i] <= 0 || (i > 0 && s.milestones[i] <= s.milestones[i - 1])) {
      return field_error("step_milestones", "must be positive and increasing");
    }
  }
  return absl::OkStatus();
}

double LrAt(const StepSchedule& s, double t) {
  if (t < s.warmup_epochs) return s.base_lr * t / s.warmup_epochs;
  if (s.kind == StepSchedule::Kind::kStep) {
    double lr = s.base_lr;
    for (int m : s.milestones) {
      if (t >= m) lr *= s.gamma;
    }
    return lr;
  }
  const double span = s.total_epochs - s.warmup_epochs;
  const double p = std::min(1.0, (t - s.warmup_epochs) / span);
  return s.min_lr + (s.base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
}

PiecewiseLr ReferenceLr1() {
  return {{6, 1e-4}, {12, 5e-5}, {20, 1e-5}, {22, 1e-5}, {25, 5e-5}, {60, 1e-5}};
}

PiecewiseLr ReferenceLr2() {
  return {{4, 1e-3}, {8, 5e-4}, {14, 1e-4}, {22, 1e-5}, {25, 5e-5}, {60, 1e-5}};
}

}  // namespace dmue
