#include "datasets/progress.h"

#include <cstdio>

#include "absl/strings/str_format.h"

namespace dmue::datasets {

Progress::Progress(std::string label, int64_t total, double interval_s)
    : label_(std::move(label)), total_(total), interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

double Progress::items_per_second() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? done_ / elapsed : 0.0;
}

std::string Progress::Line() const {
  const double rate = items_per_second();
  std::string eta = "?";
  if (rate > 0 && total_ > 0) {
    const int64_t left = int64_t((total_ - done_) / rate + 0.5);
    eta = absl::StrFormat("%d:%02d:%02d", left / 3600, (left / 60) % 60, left % 60);
  }
  const double percent = total_ > 0 ? 100.0 * done_ / total_ : 0.0;
  return absl::StrFormat("%s: %d/%d (%.1f%%) %.0f items/s ETA %s", label_, done_, total_, percent, rate, eta);
}

void Progress::Add(int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() >= interval_s_) {
    last_print_ = now;
    std::fprintf(stderr, "%s\n", Line().c_str());
  }
}

void Progress::Finish() { std::fprintf(stderr, "%s\n", Line().c_str()); }

}  // namespace dmue::datasets
