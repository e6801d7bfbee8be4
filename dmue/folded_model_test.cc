// The folded model against the unfolded one in eval mode, on random weights
// with random BatchNorm statistics (so every fold does something).
#include "dmue/folded_model.h"

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace dmue {
namespace {

void RandomiseNormalisation(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_buffers()) {
    const std::string& name = item.key();
    torch::Tensor t = item.value();
    if (name.find("running_mean") != std::string::npos) t.copy_(torch::randn_like(t) * 0.2);
    if (name.find("running_var") != std::string::npos) t.copy_(torch::rand_like(t) * 1.5 + 0.25);
  }
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor t = item.value();
    const bool norm = name.find("bn") != std::string::npos || name.find("bottleneck") != std::string::npos ||
                      name.find("downsample.1") != std::string::npos;
    if (norm && name.find(".weight") != std::string::npos) t.copy_(torch::rand_like(t) + 0.5);
    if (norm && name.find(".bias") != std::string::npos) t.copy_(torch::randn_like(t) * 0.1);
  }
}

double RelativeError(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

struct Case {
  ModelConfig::Backbone backbone;
  bool bnneck;
  ModelConfig::Pooling pooling;
  bool bias;
};

class FoldedModelTest : public ::testing::TestWithParam<Case> {};

TEST_P(FoldedModelTest, LogitsMatchTheUnfoldedModel) {
  const Case c = GetParam();
  ModelConfig config;
  config.set_backbone(c.backbone);
  config.set_num_classes(8);
  config.set_bnneck(c.bnneck);
  config.set_pooling(c.pooling);
  config.set_bias_in_classifiers(c.bias);
  torch::manual_seed(1);
  InferenceModel model(config);
  RandomiseNormalisation(*model);
  model->eval();
  const torch::Tensor images = torch::randn({3, 3, 64, 64});
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected = model->forward(images);
  }
  for (bool channels_last : {false, true}) {
    ComputeOptions compute;
    compute.channels_last = channels_last;
    absl::StatusOr<FoldedModel> folded = FoldedModel::Fold(model, compute);
    ASSERT_TRUE(folded.ok()) << folded.status();
    const torch::Tensor logits = folded->Forward(images);
    ASSERT_EQ(logits.sizes(), expected.sizes());
    EXPECT_LT(RelativeError(logits, expected), 1e-4) << "channels_last " << channels_last;
  }
  // bf16 weights and activations: a coarser match, same decisions on these inputs.
  ComputeOptions bf16;
  bf16.precision = Precision::kBFloat16;
  absl::StatusOr<FoldedModel> folded = FoldedModel::Fold(model, bf16);
  ASSERT_TRUE(folded.ok()) << folded.status();
  const torch::Tensor logits = folded->Forward(images);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat);
  EXPECT_LT(RelativeError(logits, expected), 0.1);
}

INSTANTIATE_TEST_SUITE_P(Backbones, FoldedModelTest,
                         ::testing::Values(Case{ModelConfig::RESNET18, true, ModelConfig::GAP, false},
                                           Case{ModelConfig::RESNET18, false, ModelConfig::GEM, true},
                                           Case{ModelConfig::RESNET50_IBN, true, ModelConfig::GAP, false}));

}  // namespace
}  // namespace dmue
