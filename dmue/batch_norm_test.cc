#include "dmue/batch_norm.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace dmue {
namespace {

class LocalReducer : public BatchStatsReducer {
 public:
  void AllReduceSum(at::Tensor&) override { ++calls; }
  int calls = 0;
};

// `ranks` threads of one process summing through shared memory: the
// collective semantics of an allreduce, without a process group.
class ThreadReducer : public BatchStatsReducer {
 public:
  explicit ThreadReducer(int ranks) : ranks_(ranks) {}
  void AllReduceSum(at::Tensor& tensor) override {
    std::unique_lock<std::mutex> lock(mutex_);
    // Wait until the previous collective has been read by everyone.
    cv_.wait(lock, [&] { return readers_ == 0; });
    sum_ = arrived_ == 0 ? tensor.clone() : sum_ + tensor;
    const int64_t generation = generation_;
    if (++arrived_ == ranks_) {
      arrived_ = 0;
      readers_ = ranks_;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
    tensor.copy_(sum_);
    if (--readers_ == 0) cv_.notify_all();
  }

 private:
  const int ranks_;
  std::mutex mutex_;
  std::condition_variable cv_;
  at::Tensor sum_;
  int arrived_ = 0, readers_ = 0;
  int64_t generation_ = 0;
};

void ExpectClose(const torch::Tensor& a, const torch::Tensor& b, double tolerance, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_LT((a - b).abs().max().item<double>(), tolerance) << what;
}

struct Case {
  c10::optional<double> momentum;
  bool two_d;
};

class SyncBatchNormTest : public ::testing::TestWithParam<Case> {
 protected:
  torch::nn::BatchNormOptions Options() const {
    return torch::nn::BatchNormOptions(6).momentum(GetParam().momentum).eps(1e-5);
  }
  torch::Tensor Input(int64_t seed) const {
    torch::manual_seed(seed);
    // An offset mean: two-pass variance must keep its precision.
    return GetParam().two_d ? torch::randn({8, 6, 5, 4}) * 3 + 7 : torch::randn({8, 6}) * 3 + 7;
  }
  // A loss whose gradient differs per element, so every term of BN's backward matters.
  static torch::Tensor Loss(const torch::Tensor& out) {
    torch::manual_seed(99);
    return (out * torch::randn(out.sizes()) + out * out * 0.1).sum();
  }
  template <typename Module>
  void Randomise(Module& m) {
    torch::NoGradGuard no_grad;
    m->weight.uniform_(0.5, 1.5);
    m->bias.uniform_(-0.5, 0.5);
  }
};

template <typename Ours, typename Theirs>
void CompareOneRank(const torch::nn::BatchNormOptions& options, const std::function<torch::Tensor(int64_t)>& input,
                    const std::function<torch::Tensor(const torch::Tensor&)>& loss) {
  Ours ours(options);
  Theirs theirs(options);
  {
    torch::NoGradGuard no_grad;
    ours->weight.uniform_(0.5, 1.5);
    ours->bias.uniform_(-0.5, 0.5);
    theirs->weight.copy_(ours->weight);
    theirs->bias.copy_(ours->bias);
  }
  auto reducer = c10::make_intrusive<LocalReducer>();
  EXPECT_EQ(SetBatchNormSync(*ours, reducer), 1);
  for (int step = 0; step < 3; ++step) {
    torch::Tensor a = input(step).requires_grad_(), b = a.detach().clone().requires_grad_();
    torch::Tensor out_ours = ours(a), out_theirs = theirs(b);
    ExpectClose(out_ours, out_theirs, 1e-5, "output");
    loss(out_ours).backward();
    loss(out_theirs).backward();
    ExpectClose(a.grad(), b.grad(), 1e-4, "input gradient");
    ExpectClose(ours->weight.grad(), theirs->weight.grad(), 1e-3, "weight gradient");
    ExpectClose(ours->bias.grad(), theirs->bias.grad(), 1e-3, "bias gradient");
    ExpectClose(ours->running_mean, theirs->running_mean, 1e-5, "running_mean");
    ExpectClose(ours->running_var, theirs->running_var, 1e-4, "running_var");
  }
  EXPECT_EQ(ours->num_batches_tracked.template item<int64_t>(), 3);
  EXPECT_EQ(reducer->calls, 3 * 4);  // 2 reductions forward, 2 backward
  // Evaluation ignores the reducer and uses the running statistics.
  ours->eval();
  theirs->eval();
  torch::Tensor x = input(7);
  ExpectClose(ours(x), theirs(x), 1e-5, "eval output");
  EXPECT_EQ(reducer->calls, 3 * 4);
}

TEST_P(SyncBatchNormTest, OneRankMatchesTorchBatchNorm) {
  auto input = [this](int64_t seed) { return Input(seed); };
  if (GetParam().two_d) {
    CompareOneRank<BatchNorm, torch::nn::BatchNorm2d>(Options(), input, Loss);
  } else {
    CompareOneRank<BatchNorm, torch::nn::BatchNorm1d>(Options(), input, Loss);
  }
}

// Two ranks with 4 samples each compute what one BN over the 8 samples does:
// same outputs and input gradients, parameter gradients that sum to the
// single-process ones (DDP then averages them with the loss scaled to match),
// same running statistics on both ranks.
TEST_P(SyncBatchNormTest, TwoRanksWithHalfBatchesMatchTheFullBatch) {
  if (!GetParam().two_d) GTEST_SKIP() << "the 2-d case covers the shared code";
  torch::nn::BatchNorm2d full(Options());
  Randomise(full);
  const torch::Tensor x = Input(3).requires_grad_();
  const torch::Tensor out = full(x);
  Loss(out).backward();

  auto reducer = c10::make_intrusive<ThreadReducer>(2);
  std::vector<BatchNorm> ranks = {BatchNorm(Options()), BatchNorm(Options())};
  std::vector<torch::Tensor> inputs(2), outputs(2);
  for (int r = 0; r < 2; ++r) {
    torch::NoGradGuard no_grad;
    ranks[r]->weight.copy_(full->weight);
    ranks[r]->bias.copy_(full->bias);
    SetBatchNormSync(*ranks[r], reducer);
    inputs[r] = x.detach().slice(0, 4 * r, 4 * r + 4).clone().requires_grad_();
  }
  // The loss's per-element weights for the whole batch, sliced per rank.
  torch::manual_seed(99);
  const torch::Tensor loss_weights = torch::randn(out.sizes());
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      outputs[r] = ranks[r](inputs[r]);
      const torch::Tensor o = outputs[r];
      (o * loss_weights.slice(0, 4 * r, 4 * r + 4) + o * o * 0.1).sum().backward();
    });
  }
  for (auto& t : threads) t.join();
  ExpectClose(torch::cat({outputs[0], outputs[1]}), out, 1e-5, "output");
  ExpectClose(torch::cat({inputs[0].grad(), inputs[1].grad()}), x.grad(), 1e-4, "input gradient");
  ExpectClose(ranks[0]->weight.grad() + ranks[1]->weight.grad(), full->weight.grad(), 1e-3, "weight gradient");
  ExpectClose(ranks[0]->bias.grad() + ranks[1]->bias.grad(), full->bias.grad(), 1e-3, "bias gradient");
  for (int r = 0; r < 2; ++r) {
    ExpectClose(ranks[r]->running_mean, full->running_mean, 1e-5, "running_mean");
    ExpectClose(ranks[r]->running_var, full->running_var, 1e-4, "running_var");
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SyncBatchNormTest,
                         ::testing::Values(Case{0.1, true}, Case{c10::nullopt, true}, Case{0.1, false},
                                           Case{c10::nullopt, false}));

TEST(SyncBatchNormTest, WithoutReducerIsTorchBatchNorm) {
  BatchNorm ours(4);
  torch::nn::BatchNorm2d theirs(4);
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({3, 4, 2, 2});
  for (bool training : {true, false}) {
    ours->train(training);
    theirs->train(training);
    EXPECT_TRUE(torch::equal(ours(x), theirs(x)));
    EXPECT_TRUE(torch::equal(ours->running_var, theirs->running_var));
  }
  EXPECT_EQ(ours->num_batches_tracked.item<int64_t>(), 1);
  std::vector<std::string> ours_names, theirs_names;
  for (const auto& p : ours->named_parameters()) ours_names.push_back(p.key());
  for (const auto& p : ours->named_buffers()) ours_names.push_back(p.key());
  for (const auto& p : theirs->named_parameters()) theirs_names.push_back(p.key());
  for (const auto& p : theirs->named_buffers()) theirs_names.push_back(p.key());
  EXPECT_EQ(ours_names, theirs_names);
  EXPECT_THROW(ours(torch::randn({3, 5, 2, 2})), c10::Error);
}

TEST(SyncBatchNormTest, OneValuePerChannelIsAnError) {
  BatchNorm norm(3);
  SetBatchNormSync(*norm, c10::make_intrusive<LocalReducer>());
  EXPECT_THROW(norm(torch::randn({1, 3})), c10::Error);
}

}  // namespace
}  // namespace dmue
