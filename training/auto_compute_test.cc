#include "training/auto_compute.h"

#include <cmath>
#include <string>

#include "dmue/bf16_support.h"
#include "gtest/gtest.h"

namespace dmue::training {
namespace {

ComputeProbe SmallProbe(bool dmue) {
  ComputeProbe probe;
  probe.model.set_num_classes(3);
  probe.dmue = dmue;
  probe.batch_size = 6;
  probe.image_size = 32;
  probe.timed_steps = 1;
  return probe;
}

TEST(AutoComputeTest, TimesEveryCandidateAndPicksTheFastestWithinBound) {
  for (bool dmue : {false, true}) {
    absl::StatusOr<ComputeChoice> choice = ChooseTrainingCompute(SmallProbe(dmue));
    ASSERT_TRUE(choice.ok()) << choice.status();
    ASSERT_EQ(choice->trials.size(), 3u);
    EXPECT_EQ(choice->trials[0].output_deviation, 0.0);  // fp32 is the reference
    const ComputeTrial* chosen = nullptr;
    for (const ComputeTrial& t : choice->trials) {
      EXPECT_GT(t.seconds_per_step, 0) << t.name;
      if (t.options.precision == choice->options.precision && t.options.channels_last == choice->options.channels_last) {
        chosen = &t;
      }
    }
    ASSERT_NE(chosen, nullptr);
    EXPECT_TRUE(chosen->within_bound);
    for (const ComputeTrial& t : choice->trials) {
      if (t.within_bound) EXPECT_LE(chosen->seconds_per_step, t.seconds_per_step) << t.name;
    }
    EXPECT_NE(choice->Summary().find("AUTO compute: " + chosen->name), std::string::npos) << choice->Summary();
  }
}

TEST(AutoComputeTest, Bfloat16IsTimedOnlyWhereItsKernelsExist) {
  absl::StatusOr<ComputeChoice> choice = ChooseTrainingCompute(SmallProbe(false));
  ASSERT_TRUE(choice.ok()) << choice.status();
  const ComputeTrial& bf16 = choice->trials.at(2);
  ASSERT_EQ(bf16.options.precision, Precision::kBFloat16);
  const std::string why = Bfloat16Unavailable(torch::kCPU);
  EXPECT_EQ(bf16.skipped, why);
  if (why.empty()) {
    EXPECT_TRUE(std::isfinite(bf16.seconds_per_step));
  } else {
    EXPECT_FALSE(bf16.within_bound);
    EXPECT_NE(choice->options.precision, Precision::kBFloat16);
    EXPECT_NE(choice->Summary().find("bf16 channels-last not timed: " + why), std::string::npos)
        << choice->Summary();
  }
}

// The deviation sees bf16's rounding (a scratch model's loss would not: its
// tiny classifier makes every loss log(C)) and not channels-last's reordering.
TEST(AutoComputeTest, DeviationSeesPrecisionNotLayout) {
  absl::StatusOr<ComputeChoice> choice = ChooseTrainingCompute(SmallProbe(false));
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_LT(choice->trials[1].output_deviation, 1e-4) << choice->Summary();
  const ComputeTrial& bf16 = choice->trials[2];
  if (!bf16.skipped.empty()) GTEST_SKIP() << "bf16 not timed here: " << bf16.skipped;
  EXPECT_GT(bf16.output_deviation, 1e-4) << choice->Summary();
  EXPECT_LT(bf16.output_deviation, 0.02) << choice->Summary();
}

TEST(AutoComputeTest, OutOfBoundCandidatesAreNotChosen) {
  ComputeProbe probe = SmallProbe(false);
  probe.max_output_deviation = -1;  // no candidate qualifies
  absl::StatusOr<ComputeChoice> choice = ChooseTrainingCompute(probe);
  ASSERT_TRUE(choice.ok());
  // The fallback is the fp32 reference itself.
  EXPECT_EQ(choice->options.precision, Precision::kFloat32);
  EXPECT_FALSE(choice->options.channels_last);
}

}  // namespace
}  // namespace dmue::training
