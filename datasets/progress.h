// Progress lines for long-running tools: count, percentage, items/s and ETA,
// written to stderr at most every `interval_s` seconds and at Finish().
#ifndef DATASETS_PROGRESS_H_
#define DATASETS_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace dmue::datasets {

class Progress {
 public:
  Progress(std::string label, int64_t total, double interval_s = 1.0);
  void Add(int64_t n = 1);
  void Finish();
  // "label: 1200/5000 (24.0%) 3456 items/s ETA 0:00:01".
  std::string Line() const;
  double items_per_second() const;

 private:
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace dmue::datasets

#endif  // DATASETS_PROGRESS_H_
