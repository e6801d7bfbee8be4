#include "dmue/state_dict.h"

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(StateDictTest, ModuleStateDictListsParametersBuffersThenChildren) {
  torch::nn::Sequential model(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  std::vector<std::string> names;
  for (const auto& [name, tensor] : ModuleStateDict(*model)) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                             "1.running_var", "1.num_batches_tracked"}));
}

TEST(StateDictTest, ForSavingDetachesAndMakesContiguousWithoutChangingValues) {
  torch::nn::Linear linear(4, 3);
  const StateDict live = ModuleStateDict(*linear);
  ASSERT_TRUE(live[0].second.requires_grad());
  const StateDict saved = ModuleStateDictForSaving(*linear);
  ASSERT_EQ(saved.size(), live.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    EXPECT_EQ(saved[i].first, live[i].first);
    EXPECT_FALSE(saved[i].second.requires_grad()) << saved[i].first;
    EXPECT_TRUE(saved[i].second.is_contiguous()) << saved[i].first;
    EXPECT_TRUE(torch::equal(saved[i].second, live[i].second)) << saved[i].first;
  }

  const torch::Tensor transposed = torch::arange(6, torch::kFloat).reshape({2, 3}).t();
  ASSERT_FALSE(transposed.is_contiguous());
  const StateDict state = ForSaving({{"w", transposed}});
  EXPECT_TRUE(state[0].second.is_contiguous());
  EXPECT_TRUE(torch::equal(state[0].second, transposed));
}

TEST(StateDictTest, LoadStateDictNamesMissingAndUnexpectedKeys) {
  torch::nn::Linear linear(2, 2);
  StateDict state = ModuleStateDictForSaving(*linear);
  state[1].first = "extra";
  const absl::Status status = LoadStateDict(*linear, state);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("bias"), std::string::npos) << status;
  EXPECT_NE(status.message().find("extra"), std::string::npos) << status;
}

}  // namespace
}  // namespace dmue
