// Batch normalisation that can pool its training-mode batch statistics over
// data-parallel ranks: synchronised BatchNorm. Each rank normalises with the
// mean and variance of the whole global batch, and gradients flow through
// those statistics to every rank, so N ranks with B/N samples compute what one
// process with B samples would.
#ifndef DMUE_BATCH_NORM_H_
#define DMUE_BATCH_NORM_H_

#include <torch/torch.h>

namespace dmue {

// Element-wise sum over every rank; implemented by the distributed layer
// (kept abstract so the model does not depend on it).
class BatchStatsReducer : public torch::CustomClassHolder {
 public:
  // Replaces `tensor` (contiguous, CPU or the rank's device) by its sum over
  // the ranks. Every rank calls it in the same order.
  virtual void AllReduceSum(at::Tensor& tensor) = 0;
};

// Differentiable sum over ranks: the gradient of a rank's input is the sum of
// every rank's output gradient.
torch::Tensor AllReduceSum(const torch::Tensor& input, const c10::intrusive_ptr<BatchStatsReducer>& reducer);

// Training-mode batch norm of `input` [N, C, ...] with statistics over every
// rank's batch; updates the running statistics (unbiased variance, momentum
// or, when unset, a cumulative average) like torch's BatchNorm.
torch::Tensor SyncBatchNorm(const torch::Tensor& input, const torch::nn::BatchNormOptions& options,
                            const torch::Tensor& weight, const torch::Tensor& bias, torch::Tensor& running_mean,
                            torch::Tensor& running_var, torch::Tensor& num_batches_tracked,
                            const c10::intrusive_ptr<BatchStatsReducer>& reducer);

// torch's BatchNorm1d/2d/3d in one module (same options, parameter and
// buffer names, initialisation and eval behaviour), whose training-mode
// statistics can be pooled over ranks once a reducer is set.
class BatchNormImpl : public torch::nn::Cloneable<BatchNormImpl> {
 public:
  explicit BatchNormImpl(int64_t num_features) : BatchNormImpl(torch::nn::BatchNormOptions(num_features)) {}
  explicit BatchNormImpl(const torch::nn::BatchNormOptions& options);

  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  void set_stats_reducer(c10::intrusive_ptr<BatchStatsReducer> reducer) { reducer_ = std::move(reducer); }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  c10::intrusive_ptr<BatchStatsReducer> reducer_;
};
TORCH_MODULE(BatchNorm);

// Makes every dmue::BatchNorm under `module` synchronise its training
// statistics through `reducer` (null: back to per-rank statistics). Returns
// how many layers it set.
int SetBatchNormSync(torch::nn::Module& module, const c10::intrusive_ptr<BatchStatsReducer>& reducer);

}  // namespace dmue

#endif  // DMUE_BATCH_NORM_H_
