#include "serving/batcher.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"

namespace dmue::serving {

struct DynamicBatcher::Request {
  const float* inputs = nullptr;
  std::vector<float> outputs;
  absl::Mutex mutex;
  int remaining ABSL_GUARDED_BY(mutex) = 0;
  absl::Status status ABSL_GUARDED_BY(mutex);
};

DynamicBatcher::DynamicBatcher(BatcherOptions options, BatchFunction run, Metric* batch_sizes,
                               Metric* queue_seconds)
    : options_(options),
      run_(std::move(run)),
      batch_sizes_(batch_sizes),
      queue_seconds_(queue_seconds),
      worker_([this] { WorkerLoop(); }) {}

DynamicBatcher::~DynamicBatcher() { Stop(); }

void DynamicBatcher::Stop() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

absl::StatusOr<std::vector<float>> DynamicBatcher::Run(const std::vector<float>& items, int n) {
  if (n <= 0) return std::vector<float>{};
  if (static_cast<int64_t>(items.size()) != static_cast<int64_t>(n) * options_.item_size) {
    return absl::InvalidArgumentError(absl::StrCat("batcher: ", items.size(), " floats for ", n,
                                                   " items of ", options_.item_size));
  }
  Request request;
  request.inputs = items.data();
  request.outputs.assign(static_cast<size_t>(n) * options_.output_size, 0.f);
  {
    absl::MutexLock lock(&request.mutex);
    request.remaining = n;
  }
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    const absl::Time now = absl::Now();
    for (int i = 0; i < n; ++i) queue_.push_back({&request, i, now});
  }
  absl::MutexLock lock(&request.mutex);
  request.mutex.Await(absl::Condition(
      +[](int* remaining) { return *remaining == 0; }, &request.remaining));
  RETURN_IF_ERROR(request.status);
  return std::move(request.outputs);
}

void DynamicBatcher::WorkerLoop() {
  const size_t max_batch = static_cast<size_t>(std::max(1, options_.max_batch_size));
  std::vector<float> inputs;
  while (true) {
    std::vector<Item> batch;
    {
      absl::MutexLock lock(&mutex_);
      auto has_work = [this] { return stopping_ || !queue_.empty(); };
      mutex_.Await(absl::Condition(&has_work));
      if (queue_.empty()) return;  // stopping, nothing left
      const absl::Time deadline = queue_.front().enqueued + options_.max_delay;
      auto full_or_stopping = [this, max_batch] { return stopping_ || queue_.size() >= max_batch; };
      mutex_.AwaitWithDeadline(absl::Condition(&full_or_stopping), deadline);
      const size_t take = std::min(max_batch, queue_.size());
      batch.assign(queue_.begin(), queue_.begin() + take);
      queue_.erase(queue_.begin(), queue_.begin() + take);
    }
    const absl::Time start = absl::Now();
    const int n = static_cast<int>(batch.size());
    const size_t in = options_.item_size, out = options_.output_size;
    inputs.resize(n * in);
    for (int i = 0; i < n; ++i) {
      std::memcpy(inputs.data() + i * in, batch[i].request->inputs + batch[i].index * in, in * sizeof(float));
      if (queue_seconds_ != nullptr) queue_seconds_->Observe(absl::ToDoubleSeconds(start - batch[i].enqueued));
    }
    if (batch_sizes_ != nullptr) batch_sizes_->Observe(n);
    absl::StatusOr<std::vector<float>> outputs = run_(inputs.data(), n);
    if (outputs.ok() && outputs->size() != n * out) {
      outputs = absl::InternalError(absl::StrCat("batch function returned ", outputs->size(),
                                                 " floats for ", n, " items"));
    }
    for (int i = 0; i < n; ++i) {
      Request* r = batch[i].request;
      if (outputs.ok()) {
        std::memcpy(r->outputs.data() + batch[i].index * out, outputs->data() + i * out, out * sizeof(float));
      }
      absl::MutexLock lock(&r->mutex);
      if (!outputs.ok()) r->status = outputs.status();
      --r->remaining;
    }
  }
}

}  // namespace dmue::serving
