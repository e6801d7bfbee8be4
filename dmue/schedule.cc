#include "dmue/schedule.h"

#include <cmath>

#include "absl/strings/str_cat.h"

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

PiecewiseLr ReferenceLr1() {
  return {{6, 1e-4}, {12, 5e-5}, {20, 1e-5}, {22, 1e-5}, {25, 5e-5}, {60, 1e-5}};
}

PiecewiseLr ReferenceLr2() {
  return {{4, 1e-3}, {8, 5e-4}, {14, 1e-4}, {22, 1e-5}, {25, 5e-5}, {60, 1e-5}};
}

}  // namespace dmue
