// Data parallelism on loopback, with the ranks as threads of one process
// sharing a FileStore: 2 ranks with batch B/2 each follow the same parameters
// as 1 process with batch B.
//
// Equality needs a loss that is a mean over independent samples and BN that
// does not use batch statistics: with per-rank BN (no SyncBN) the two halves
// normalise with different statistics. So the equivalence is checked with
// plain cross entropy and BN in eval mode (running statistics); tolerance
// 1e-5 relative after 3 SGD steps. DMUE's own losses (class means, Gram
// matrices, per-class auxiliary CE) are batch-level, so a DDP DMUE step is
// close to, not equal to, the single-process one — as in the reference.
#include "training/distributed.h"

#include <filesystem>
#include <thread>

#include <torch/torch.h>

#include "dmue/dmue_model.h"
#include "dmue/state_dict.h"
#include "gtest/gtest.h"

namespace dmue::training {
namespace {

ModelConfig Config() {
  ModelConfig config;
  config.set_num_classes(3);
  config.set_dropout(0.0f);
  return config;
}

// SGD, not Adam: Adam's first steps move every element by ~lr * sign(g), so
// float-level differences in near-zero gradients (the allreduce sums in
// another order) would flip signs and hide what is being tested.
void CeStep(DmueModel& model, torch::optim::SGD& adam, const torch::Tensor& images, const torch::Tensor& labels,
            DistributedContext* context) {
  adam.zero_grad();
  torch::nn::functional::cross_entropy(model->ForwardEval(images), labels).backward();
  if (context != nullptr) context->AverageGradients(model->parameters());
  adam.step();
}

TEST(DistributedTest, TwoRanksWithHalfBatchesMatchOneProcess) {
  torch::manual_seed(0);
  const torch::Tensor images = torch::randn({3, 8, 3, 32, 32});
  const torch::Tensor labels = torch::randint(0, 3, {3, 8}, torch::kLong);

  torch::manual_seed(1);
  DmueModel single(Config());
  single->eval();
  torch::optim::SGD single_sgd(single->parameters(), torch::optim::SGDOptions(0.1));
  for (int step = 0; step < 3; ++step) CeStep(single, single_sgd, images[step], labels[step], nullptr);

  const std::string store = ::testing::TempDir() + "/ddp_store";
  std::filesystem::remove(store);
  std::vector<NamedTensors> results(2);
  std::vector<std::string> errors(2);
  // Built before the threads start: the default generator is process-wide.
  // Rank 0 starts from the single-process init, rank 1 from another one that
  // the broadcast must overwrite.
  std::vector<DmueModel> models;
  for (uint64_t seed : {1, 101}) {
    torch::manual_seed(seed);
    models.emplace_back(Config());
  }
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.emplace_back([&, rank] {
      DistributedEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.file_store_path = store;
      auto context = DistributedContext::Create(env, std::chrono::seconds(60));
      if (!context.ok()) {
        errors[rank] = std::string(context.status().message());
        return;
      }
      DmueModel model = models[rank];
      model->eval();
      std::vector<torch::Tensor> state;
      for (auto& [name, t] : ModuleStateDict(*model)) state.push_back(t);
      (*context)->BroadcastFromMain(state);
      torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
      for (int step = 0; step < 3; ++step) {
        CeStep(model, sgd, images[step].slice(0, rank * 4, rank * 4 + 4),
               labels[step].slice(0, rank * 4, rank * 4 + 4), context->get());
      }
      EXPECT_TRUE((*context)->AllTrue(true));
      EXPECT_FALSE((*context)->AllTrue(rank == 0));
      EXPECT_DOUBLE_EQ((*context)->SumAll(rank + 1), 3.0);
      results[rank] = ModuleStateDict(*model);
    });
  }
  for (auto& t : ranks) t.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  ASSERT_EQ(results[0].size(), results[1].size());
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(results[0][i].second, results[1][i].second)) << results[0][i].first;
  }
  const NamedTensors expected = ModuleStateDict(*single);
  ASSERT_EQ(expected.size(), results[0].size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const torch::Tensor a = results[0][i].second.to(torch::kDouble), b = expected[i].second.to(torch::kDouble);
    const double scale = std::max(b.abs().max().item<double>(), 1e-12);
    EXPECT_LT((a - b).abs().max().item<double>() / scale, 1e-5) << expected[i].first;
  }
}

}  // namespace
}  // namespace dmue::training
