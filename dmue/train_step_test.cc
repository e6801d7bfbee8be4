// TrainStep with either loss: cross entropy is exactly the hand-written step
// (same loss, same update), DMUE refuses a batch without two samples of every
// class and leaves the weights alone, and after_backward runs between
// backward and the update.
#include "dmue/train_step.h"

#include <cmath>
#include <memory>
#include <vector>

#include "dmue/optimizer.h"
#include "dmue/state_dict.h"
#include "dmue/testing/model_configs.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

ModelConfig Config() { return testing::DeterministicModelConfig(); }

DmueModel SeededModel() {
  torch::manual_seed(0);
  return DmueModel(Config());
}

torch::Tensor Images() {
  torch::manual_seed(1);
  return torch::randn({6, 3, 32, 32});
}

torch::Tensor Labels() { return torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong); }

std::unique_ptr<torch::optim::Optimizer> Sgd(DmueModel& model) {
  OptimizerSettings settings;
  settings.kind = OptimizerSettings::Kind::kSgd;
  settings.lr1 = settings.lr2 = 0.05;
  return MakeOptimizer(model, settings);
}

StepSettings Settings(StepLoss loss) {
  StepSettings settings;
  settings.loss = loss;
  settings.compute.channels_last = false;
  return settings;
}

// Parameters only: a training-mode forward also moves BatchNorm's buffers.
bool SameParameters(DmueModel& a, DmueModel& b) {
  const std::vector<torch::Tensor> x = a->parameters(), y = b->parameters();
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!torch::equal(x[i], y[i])) return false;
  }
  return true;
}

// Parameters and buffers.
bool SameWeights(DmueModel& a, DmueModel& b) {
  const StateDict x = ModuleStateDict(*a), y = ModuleStateDict(*b);
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].first != y[i].first || !torch::equal(x[i].second, y[i].second)) return false;
  }
  return true;
}

class TrainStepTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }
};

TEST_F(TrainStepTest, CrossEntropyIsTheHandWrittenStep) {
  const torch::Tensor soft = torch::softmax(torch::arange(18, torch::kFloat32).reshape({6, 3}), 1);
  DmueModel stepped = SeededModel(), by_hand = SeededModel(), untouched = SeededModel();
  auto stepped_sgd = Sgd(stepped), by_hand_sgd = Sgd(by_hand);
  StepSettings settings = Settings(StepLoss::kCrossEntropy);
  settings.label_smoothing = 0.1;
  absl::StatusOr<DmueLosses> losses = TrainStep(stepped, *stepped_sgd, Images(), Labels(), settings, soft);
  ASSERT_TRUE(losses.ok()) << losses.status();

  const torch::Tensor expected = TargetCrossEntropy(by_hand->ForwardEval(Images()), Labels(), soft, 0.1);
  by_hand_sgd->zero_grad();
  expected.backward();
  by_hand_sgd->step();

  EXPECT_EQ(losses->total.item<double>(), expected.item<double>());
  EXPECT_EQ(losses->ce.item<double>(), expected.item<double>());
  EXPECT_EQ(losses->soft.item<double>(), 0.0);
  EXPECT_EQ(losses->sp.item<double>(), 0.0);
  EXPECT_EQ(losses->aux.item<double>(), 0.0);
  EXPECT_TRUE(SameWeights(stepped, by_hand));
  EXPECT_FALSE(SameWeights(stepped, untouched));
}

TEST_F(TrainStepTest, DmueStepsOnABatchWithEveryClassTwice) {
  DmueModel model = SeededModel(), untouched = SeededModel();
  auto sgd = Sgd(model);
  absl::StatusOr<DmueLosses> losses = TrainStep(model, *sgd, Images(), Labels(), Settings(StepLoss::kDmue));
  ASSERT_TRUE(losses.ok()) << losses.status();
  for (const torch::Tensor* t : {&losses->ce, &losses->soft, &losses->sp, &losses->aux, &losses->total}) {
    ASSERT_TRUE(t->defined());
    EXPECT_TRUE(std::isfinite(t->item<double>()));
  }
  EXPECT_FALSE(SameWeights(model, untouched));
}

TEST_F(TrainStepTest, DmueRefusesABatchWithoutTwoOfEveryClass) {
  DmueModel model = SeededModel(), untouched = SeededModel();
  auto sgd = Sgd(model);
  int calls = 0;
  StepSettings settings = Settings(StepLoss::kDmue);
  settings.after_backward = [&calls] { ++calls; };
  const torch::Tensor one_of_class_2 = torch::tensor({0, 1, 2, 0, 1, 1}, torch::kLong);
  absl::StatusOr<DmueLosses> losses = TrainStep(model, *sgd, Images(), one_of_class_2, settings);
  EXPECT_EQ(losses.status().code(), absl::StatusCode::kInvalidArgument) << losses.status();
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(SameWeights(model, untouched));
}

TEST_F(TrainStepTest, AfterBackwardRunsBetweenBackwardAndUpdate) {
  DmueModel model = SeededModel(), untouched = SeededModel();
  auto sgd = Sgd(model);
  int calls = 0;
  bool gradients_ready = false, weights_unchanged = false;
  StepSettings settings = Settings(StepLoss::kCrossEntropy);
  settings.after_backward = [&] {
    ++calls;
    gradients_ready = model->parameters().front().grad().defined();
    weights_unchanged = SameParameters(model, untouched);
  };
  ASSERT_TRUE(TrainStep(model, *sgd, Images(), Labels(), settings).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(gradients_ready);
  EXPECT_TRUE(weights_unchanged);
  EXPECT_FALSE(SameParameters(model, untouched));
}

}  // namespace
}  // namespace dmue
