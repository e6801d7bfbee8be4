#include "dmue/util/progress.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(ProgressMeterTest, FormatsDurations) {
  EXPECT_EQ(ProgressMeter::FormatDuration(7.2), "7s");
  EXPECT_EQ(ProgressMeter::FormatDuration(245), "4m05s");
  EXPECT_EQ(ProgressMeter::FormatDuration(3723), "1h02m03s");
  EXPECT_EQ(ProgressMeter::FormatDuration(-1), "?");
}

TEST(ProgressMeterTest, CountsItems) {
  ProgressMeter meter("test", 10, /*interval_seconds=*/0.0);
  meter.Add(3);
  meter.Add(4, "loss 1.0");
  EXPECT_EQ(meter.done(), 7);
  EXPECT_GT(meter.ItemsPerSecond(), 0.0);
  meter.Finish();
}

TEST(ProgressMeterTest, SkippedItemsAdvanceButDoNotCountAsSpeed) {
  ProgressMeter meter("resumed", 100, /*interval_seconds=*/1e9);
  meter.Skip(90);
  EXPECT_EQ(meter.done(), 90);
  EXPECT_EQ(meter.ItemsPerSecond(), 0.0);  // nothing processed in this run yet
  meter.Add(1);
  EXPECT_EQ(meter.done(), 91);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // The rate is of the 1 item processed, not of the 91 done.
  const double rate = meter.ItemsPerSecond();
  const double elapsed = meter.ElapsedSeconds();
  EXPECT_NEAR(rate * elapsed, 1.0, 0.1);
}

}  // namespace
}  // namespace dmue
