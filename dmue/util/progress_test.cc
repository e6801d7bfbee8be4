#include "dmue/util/progress.h"

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

}  // namespace
}  // namespace dmue
