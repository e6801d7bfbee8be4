#include "dmue/util/progress.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dmue {

ProgressMeter::ProgressMeter(std::string label, int64_t total, double interval_seconds)
    : label_(std::move(label)),
      total_(total),
      interval_(interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double ProgressMeter::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressMeter::ItemsPerSecond() const {
  const double elapsed = ElapsedSeconds();
  return elapsed > 0 ? (done_ - skipped_) / elapsed : 0.0;
}

std::string ProgressMeter::FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%dh%02dm%02ds", s / 3600, (s / 60) % 60, s % 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string ProgressMeter::Line(absl::string_view detail) const {
  const double rate = ItemsPerSecond();
  std::string line = absl::StrFormat("[%s] %d", label_, done_);
  if (total_ > 0) {
    absl::StrAppendFormat(&line, "/%d (%.1f%%)", total_, 100.0 * done_ / total_);
  }
  absl::StrAppendFormat(&line, " %.1f items/s elapsed %s", rate, FormatDuration(ElapsedSeconds()));
  if (total_ > 0 && rate > 0) {
    absl::StrAppend(&line, " ETA ", FormatDuration((total_ - done_) / rate));
  }
  if (!detail.empty()) absl::StrAppend(&line, " ", detail);
  return line;
}

void ProgressMeter::Add(int64_t count, absl::string_view detail) {
  done_ += count;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() >= interval_) {
    last_print_ = now;
    std::fprintf(stderr, "%s\n", Line(detail).c_str());
  }
}

void ProgressMeter::Skip(int64_t count) {
  done_ += count;
  skipped_ += count;
}

void ProgressMeter::Finish(absl::string_view detail) {
  std::fprintf(stderr, "%s done\n", Line(detail).c_str());
}

}  // namespace dmue
