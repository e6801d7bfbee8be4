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

TEST(DmueLossesTest, PairwiseUncertaintyOffUsesThePlainLogits) {
  // Two classes, two samples of each: one auxiliary output per branch.
  torch::manual_seed(3);
  TrainForwardOutput f;
  const torch::Tensor labels = torch::tensor({0, 0, 1, 1}, torch::kLong);
  f.logits = torch::randn({4, 2});
  f.score = torch::full({4, 1}, 0.25);
  f.weighted_logits = f.logits * f.score;
  for (int c = 0; c < 2; ++c) {
    f.aux_logits.push_back(torch::randn({2, 1}));
    f.aux_targets.push_back(torch::zeros({2}, torch::kLong));
    f.latent_logits.push_back(torch::randn({2, 1}));
    f.aux_gram.push_back(torch::eye(4));
    f.main_gram.push_back(torch::eye(4));
  }
  namespace F = torch::nn::functional;
  LossWeights weights;
  const DmueLosses with = ComputeDmueLosses(f, labels, 2, 1.2, weights);
  EXPECT_NEAR(with.ce.item<double>(), F::cross_entropy(f.weighted_logits, labels).item<double>(), 1e-6);
  weights.pairwise_uncertainty = false;
  const DmueLosses without = ComputeDmueLosses(f, labels, 2, 1.2, weights);
  EXPECT_NEAR(without.ce.item<double>(), F::cross_entropy(f.logits, labels).item<double>(), 1e-6);
  EXPECT_NE(with.ce.item<double>(), without.ce.item<double>());
  EXPECT_NEAR(with.soft.item<double>(), without.soft.item<double>(), 1e-9);  // the rest unchanged
}

}  // namespace
}  // namespace dmue
