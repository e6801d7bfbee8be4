// Progress lines for long work: done/total, items/s and ETA, printed to
// stderr at most every `interval` seconds (and once at the end).
#ifndef DMUE_UTIL_PROGRESS_H_
#define DMUE_UTIL_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace dmue {

class ProgressMeter {
 public:
  ProgressMeter(std::string label, int64_t total, double interval_seconds = 5.0);

  // Records `count` more items; `detail` is appended to the line if printed.
  void Add(int64_t count, absl::string_view detail = "");
  // Counts `count` items as already done before this run (a resumed epoch):
  // they advance done/total but not the items/s rate, so ETAs stay true.
  void Skip(int64_t count);
  // Prints the final line.
  void Finish(absl::string_view detail = "");

  double ItemsPerSecond() const;
  double ElapsedSeconds() const;
  int64_t done() const { return done_; }

  // "1h02m03s" / "4m05s" / "7s".
  static std::string FormatDuration(double seconds);

 private:
  std::string Line(absl::string_view detail) const;

  std::string label_;
  int64_t total_;
  double interval_;
  int64_t done_ = 0;
  int64_t skipped_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace dmue

#endif  // DMUE_UTIL_PROGRESS_H_
