// The folded model against the unfolded one in eval mode, on random weights
// with random BatchNorm statistics (so every fold does something).
#include "dmue/folded_model.h"
#include "dmue/bf16_support.h"

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

TEST(ChooseInferenceComputeTest, TimesEveryCandidateAndKeepsOneWithinTheBound) {
  ModelConfig config;
  config.set_num_classes(4);
  torch::manual_seed(2);
  InferenceModel model(config);
  model->eval();
  InferenceComputeProbe probe;
  probe.batch_sizes = {1, 2};
  probe.image_size = 32;
  probe.timed_passes = 1;
  absl::StatusOr<InferenceComputeChoice> choice = ChooseInferenceCompute(model, probe);
  ASSERT_TRUE(choice.ok()) << choice.status();
  ASSERT_EQ(choice->trials.size(), 3u);
  EXPECT_EQ(choice->trials[0].probability_deviation, 0.0);  // fp32 NCHW is the reference
  // bf16 is timed only where its kernels exist (dmue/bf16_support.h).
  EXPECT_EQ(choice->trials[2].skipped, Bfloat16Unavailable(torch::kCPU));
  bool chosen_within = false;
  for (const InferenceComputeTrial& t : choice->trials) {
    EXPECT_GT(t.seconds, 0.0) << t.name;
    if (t.options.precision == choice->options.precision && t.options.channels_last == choice->options.channels_last) {
      chosen_within = t.within_bound;
    }
  }
  EXPECT_TRUE(chosen_within);
  EXPECT_NE(choice->Summary().find("AUTO inference compute: "), std::string::npos);
  // Bound 0: only a candidate with fp32 NCHW's exact probabilities may win.
  probe.max_probability_deviation = 0;
  choice = ChooseInferenceCompute(model, probe);
  ASSERT_TRUE(choice.ok());
  for (const InferenceComputeTrial& t : choice->trials) {
    if (t.options.precision == choice->options.precision && t.options.channels_last == choice->options.channels_last) {
      EXPECT_EQ(t.probability_deviation, 0.0) << t.name;
    }
  }
  probe.batch_sizes.clear();
  EXPECT_FALSE(ChooseInferenceCompute(model, probe).ok());
}

INSTANTIATE_TEST_SUITE_P(Backbones, FoldedModelTest,
                         ::testing::Values(Case{ModelConfig::RESNET18, true, ModelConfig::GAP, false},
                                           Case{ModelConfig::RESNET18, false, ModelConfig::GEM, true},
                                           Case{ModelConfig::RESNET50_IBN, true, ModelConfig::GAP, false}));

}  // namespace
}  // namespace dmue
