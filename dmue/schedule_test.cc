#include "dmue/schedule.h"

#include "dmue/testing/golden.h"
#include "gtest/gtest.h"
#include "third_party/shared_data.h"

namespace dmue {
namespace {

TEST(ScheduleTest, RampsMatchTheReference) {
  DMUE_SHARED_OR_SKIP(path, "golden/ramp.pt");
  auto golden = testing::LoadGoldenTensors(path);
  ASSERT_TRUE(golden.ok()) << golden.status();
  const torch::Tensor epochs = golden->at("epoch");
  for (int alpha : {4, 6, 10}) {
    const torch::Tensor up = golden->at("ramp_up.alpha" + std::to_string(alpha));
    const torch::Tensor down = golden->at("ramp_down.alpha" + std::to_string(alpha));
    for (int64_t i = 0; i < epochs.size(0); ++i) {
      const double e = static_cast<double>(epochs[i].item<int64_t>());
      EXPECT_NEAR(RampUp(e, alpha), up[i].item<double>(), 1e-15) << "epoch " << e;
      EXPECT_NEAR(RampDown(e, alpha), down[i].item<double>(), 1e-15) << "epoch " << e;
    }
  }
}

TEST(ScheduleTest, PiecewiseLrFollowsConfigPy) {
  const PiecewiseLr lr1 = ReferenceLr1(), lr2 = ReferenceLr2();
  EXPECT_DOUBLE_EQ(LrAt(lr1, 0), 1e-4);
  EXPECT_DOUBLE_EQ(LrAt(lr2, 3), 1e-3);
  EXPECT_DOUBLE_EQ(LrAt(lr1, 3), 1e-4);
  EXPECT_DOUBLE_EQ(LrAt(lr2, 4), 5e-4);
  EXPECT_DOUBLE_EQ(LrAt(lr1, 6), 5e-5);
  EXPECT_DOUBLE_EQ(LrAt(lr1, 24), 5e-5);
  EXPECT_DOUBLE_EQ(LrAt(lr1, 100), 1e-5);  // Past the end: last rate.
}

TEST(ScheduleTest, ValidationNamesTheField) {
  absl::Status bad = ValidatePiecewiseLr({{4, 1e-3}, {2, 1e-4}}, "lr1");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("lr1[1]"), std::string::npos);
  EXPECT_FALSE(ValidatePiecewiseLr({}, "lr2").ok());
  EXPECT_FALSE(ValidatePiecewiseLr({{4, -1}}, "lr2").ok());
  EXPECT_TRUE(ValidatePiecewiseLr(ReferenceLr1(), "lr1").ok());
}

TEST(ScheduleTest, CosineWarmsUpLinearlyThenDecaysToMinLr) {
  StepSchedule s;
  s.kind = StepSchedule::Kind::kCosine;
  s.base_lr = 0.1;
  s.warmup_epochs = 2;
  s.min_lr = 0.001;
  s.total_epochs = 12;
  ASSERT_TRUE(ValidateStepSchedule(s, "lr").ok());
  EXPECT_DOUBLE_EQ(LrAt(s, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(LrAt(s, 1.0), 0.05);
  EXPECT_DOUBLE_EQ(LrAt(s, 2.0), 0.1);
  EXPECT_NEAR(LrAt(s, 7.0), 0.001 + 0.099 * 0.5, 1e-12);  // half way: cos = 0
  EXPECT_NEAR(LrAt(s, 12.0), 0.001, 1e-12);
  EXPECT_NEAR(LrAt(s, 20.0), 0.001, 1e-12);  // past the end it stays at the floor
  for (double t = 2.0; t < 12.0; t += 0.25) EXPECT_GE(LrAt(s, t), LrAt(s, t + 0.25)) << t;
}

TEST(ScheduleTest, StepDecaysAtEachMilestone) {
  StepSchedule s;
  s.kind = StepSchedule::Kind::kStep;
  s.base_lr = 0.1;
  s.gamma = 0.5;
  s.milestones = {3, 6};
  s.total_epochs = 10;
  ASSERT_TRUE(ValidateStepSchedule(s, "lr").ok());
  EXPECT_DOUBLE_EQ(LrAt(s, 2.99), 0.1);
  EXPECT_DOUBLE_EQ(LrAt(s, 3.0), 0.05);
  EXPECT_DOUBLE_EQ(LrAt(s, 6.5), 0.025);
}

TEST(ScheduleTest, StepScheduleErrorsNameTheField) {
  StepSchedule s;
  s.total_epochs = 10;
  s.base_lr = 0;
  EXPECT_NE(ValidateStepSchedule(s, "cfg").message().find("cfg.base_lr"), std::string::npos);
  s.base_lr = 0.1;
  s.warmup_epochs = 10;
  EXPECT_NE(ValidateStepSchedule(s, "cfg").message().find("cfg.warmup_epochs"), std::string::npos);
  s.warmup_epochs = 0;
  s.milestones = {4, 2};
  EXPECT_NE(ValidateStepSchedule(s, "cfg").message().find("cfg.step_milestones"), std::string::npos);
  s.milestones = {};
  s.min_lr = 1;
  EXPECT_NE(ValidateStepSchedule(s, "cfg").message().find("cfg.min_lr"), std::string::npos);
}

}  // namespace
}  // namespace dmue
