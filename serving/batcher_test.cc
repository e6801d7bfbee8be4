#include "serving/batcher.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace dmue::serving {
namespace {

// Output of an item: its first value + 1, and its batch's size.
class Recorder {
 public:
  absl::StatusOr<std::vector<float>> Run(const float* items, int n) {
    {
      absl::MutexLock lock(&mutex_);
      sizes_.push_back(n);
    }
    std::vector<float> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(items[i * 2] + 1);
      out.push_back(static_cast<float>(n));
    }
    return out;
  }
  std::vector<int> sizes() {
    absl::MutexLock lock(&mutex_);
    return sizes_;
  }

 private:
  absl::Mutex mutex_;
  std::vector<int> sizes_;
};

BatcherOptions Options(int max_batch, absl::Duration delay) {
  BatcherOptions o;
  o.max_batch_size = max_batch;
  o.max_delay = delay;
  o.item_size = 2;
  o.output_size = 2;
  return o;
}

TEST(BatcherTest, ConcurrentRequestsShareBatchesAndGetTheirOwnOutputs) {
  Recorder recorder;
  MetricsRegistry metrics;
  Metric* sizes = metrics.AddHistogram("sizes", "s", {1, 2, 4, 8});
  DynamicBatcher batcher(Options(4, absl::Milliseconds(200)),
                         [&](const float* items, int n) { return recorder.Run(items, n); }, sizes);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const int n = 1 + t % 3;
      std::vector<float> items;
      for (int i = 0; i < n; ++i) items.insert(items.end(), {static_cast<float>(100 * t + i), 0.f});
      absl::StatusOr<std::vector<float>> out = batcher.Run(items, n);
      if (!out.ok() || out->size() != 2u * n) {
        ++wrong;
        return;
      }
      for (int i = 0; i < n; ++i) {
        if ((*out)[2 * i] != 100 * t + i + 1) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
  int total = 0, largest = 0;
  for (int n : recorder.sizes()) {
    EXPECT_LE(n, 4);
    total += n;
    largest = std::max(largest, n);
  }
  EXPECT_EQ(total, 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2);
  EXPECT_GT(largest, 1) << "items of concurrent requests were never batched together";
  EXPECT_EQ(sizes->Value(), recorder.sizes().size());
}

TEST(BatcherTest, FullBatchRunsWithoutWaitingForTheDelay) {
  Recorder recorder;
  DynamicBatcher batcher(Options(4, absl::Seconds(30)), [&](const float* items, int n) { return recorder.Run(items, n); });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(batcher.Run(std::vector<float>(8, 0.f), 4).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(BatcherTest, LoneRequestWaitsAtMostTheDelay) {
  Recorder recorder;
  DynamicBatcher batcher(Options(64, absl::Milliseconds(100)),
                         [&](const float* items, int n) { return recorder.Run(items, n); });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(batcher.Run({1.f, 0.f}, 1).ok());
  const absl::Duration waited = absl::Now() - start;
  EXPECT_GE(waited, absl::Milliseconds(95));
  EXPECT_LT(waited, absl::Seconds(10));
}

TEST(BatcherTest, ErrorsReachEveryRequestOfTheBatch) {
  DynamicBatcher batcher(Options(4, absl::Milliseconds(1)), [](const float*, int) -> absl::StatusOr<std::vector<float>> {
    return absl::InternalError("model failed");
  });
  absl::StatusOr<std::vector<float>> out = batcher.Run({1.f, 2.f}, 1);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(), "model failed");
  // A wrongly sized reply is an error too, not garbage.
  DynamicBatcher short_reply(Options(4, absl::Milliseconds(1)),
                             [](const float*, int) -> absl::StatusOr<std::vector<float>> { return std::vector<float>{1}; });
  EXPECT_FALSE(short_reply.Run({1.f, 2.f}, 1).ok());
}

TEST(BatcherTest, WrongInputSizeAndStoppedBatcherAreRefused) {
  Recorder recorder;
  DynamicBatcher batcher(Options(4, absl::Milliseconds(1)), [&](const float* items, int n) { return recorder.Run(items, n); });
  EXPECT_EQ(batcher.Run({1.f, 2.f, 3.f}, 1).status().code(), absl::StatusCode::kInvalidArgument);
  batcher.Stop();
  EXPECT_EQ(batcher.Run({1.f, 2.f}, 1).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace dmue::serving
