#include "dmue/losses.h"

#include <cmath>

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(TargetCrossEntropyTest, HardLabelsMatchTorch) {
  torch::manual_seed(0);
  const torch::Tensor logits = torch::randn({5, 4});
  const torch::Tensor labels = torch::tensor({0, 3, 1, 1, 2}, torch::kLong);
  EXPECT_NEAR(TargetCrossEntropy(logits, labels, {}, 0.0).item<double>(),
              torch::nn::functional::cross_entropy(logits, labels).item<double>(), 1e-6);
  namespace F = torch::nn::functional;
  EXPECT_NEAR(TargetCrossEntropy(logits, labels, {}, 0.1).item<double>(),
              F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(0.1)).item<double>(),
              1e-6);
}

TEST(TargetCrossEntropyTest, SoftTargetsByHand) {
  const torch::Tensor logits = torch::tensor({{0.0f, std::log(3.0f)}});  // softmax (0.25, 0.75)
  const torch::Tensor votes = torch::tensor({{0.5f, 0.5f}});
  const double expected = -(0.5 * std::log(0.25) + 0.5 * std::log(0.75));
  EXPECT_NEAR(TargetCrossEntropy(logits, torch::tensor({1}, torch::kLong), votes, 0.0).item<double>(), expected,
              1e-6);
  // Smoothing mixes the votes with the uniform distribution: (0.5, 0.5) stays.
  EXPECT_NEAR(TargetCrossEntropy(logits, torch::tensor({1}, torch::kLong), votes, 0.2).item<double>(), expected,
              1e-6);
}

TEST(TargetCrossEntropyTest, GradientPullsTowardsTheVotes) {
  torch::Tensor logits = torch::zeros({1, 3}, torch::requires_grad());
  const torch::Tensor votes = torch::tensor({{0.7f, 0.3f, 0.0f}});
  TargetCrossEntropy(logits, torch::tensor({0}, torch::kLong), votes, 0.0).backward();
  // d/dz = softmax(z) - votes = 1/3 - votes.
  EXPECT_NEAR(logits.grad()[0][0].item<double>(), 1.0 / 3 - 0.7, 1e-6);
  EXPECT_NEAR(logits.grad()[0][2].item<double>(), 1.0 / 3, 1e-6);
}

}  // namespace
}  // namespace dmue
