// Dynamic batching: faces from concurrent requests are gathered into one
// model call. A batch runs as soon as it holds max_batch_size items, or
// max_delay after its oldest item arrived, so no item waits longer than the
// delay for others (it may still wait for the batch ahead of it to finish).
// Torch-free: items are flat float arrays; the batch function does the work.
#ifndef SERVING_BATCHER_H_
#define SERVING_BATCHER_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "serving/metrics.h"

namespace dmue::serving {

struct BatcherOptions {
  int max_batch_size = 16;
  absl::Duration max_delay = absl::Milliseconds(2);
  int item_size = 0;    // floats per input item
  int output_size = 0;  // floats per output item
};

// Runs `n` items laid out contiguously (n * item_size floats) and returns
// n * output_size floats.
using BatchFunction = std::function<absl::StatusOr<std::vector<float>>(const float* items, int n)>;

class DynamicBatcher {
 public:
  // `batch_sizes` and `queue_seconds` (histograms) may be null.
  DynamicBatcher(BatcherOptions options, BatchFunction run, Metric* batch_sizes = nullptr,
                 Metric* queue_seconds = nullptr);
  // Stops (see Stop()).
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Blocks until the `n` items (n * item_size floats) have been run; returns
  // their n * output_size outputs. Unavailable once stopped.
  absl::StatusOr<std::vector<float>> Run(const std::vector<float>& items, int n);

  // Runs what is queued, then ends the worker. Idempotent.
  void Stop();

  const BatcherOptions& options() const { return options_; }

 private:
  struct Request;
  struct Item {
    Request* request;
    int index;  // within the request
    absl::Time enqueued;
  };
  void WorkerLoop();

  const BatcherOptions options_;
  const BatchFunction run_;
  Metric* const batch_sizes_;
  Metric* const queue_seconds_;
  absl::Mutex mutex_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread worker_;
};

}  // namespace dmue::serving

#endif  // SERVING_BATCHER_H_
