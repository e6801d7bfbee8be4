#include "dmue/batch_norm.h"

#include <vector>

namespace dmue {
namespace {

class AllReduceSumFunction : public torch::autograd::Function<AllReduceSumFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const c10::intrusive_ptr<BatchStatsReducer>& reducer) {
    ctx->saved_data["reducer"] = c10::IValue::make_capsule(reducer);
    torch::Tensor sum = input.contiguous().clone();
    reducer->AllReduceSum(sum);
    return sum;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto reducer = c10::static_intrusive_pointer_cast<BatchStatsReducer>(ctx->saved_data["reducer"].toCapsule());
    torch::Tensor grad = grad_outputs[0].contiguous().clone();
    reducer->AllReduceSum(grad);
    return {grad, torch::Tensor()};
  }
};

// Counts the batch and returns the running-statistics update factor: the
// momentum, or 1 / batches seen for a cumulative average (torch's rule).
double NextRunningStatsFactor(const torch::nn::BatchNormOptions& options, torch::Tensor& num_batches_tracked) {
  double factor = options.momentum().value_or(0.0);
  if (num_batches_tracked.defined()) {
    num_batches_tracked += 1;
    if (!options.momentum().has_value()) factor = 1.0 / num_batches_tracked.item<double>();
  }
  return factor;
}

}  // namespace

torch::Tensor AllReduceSum(const torch::Tensor& input, const c10::intrusive_ptr<BatchStatsReducer>& reducer) {
  return AllReduceSumFunction::apply(input, reducer);
}

torch::Tensor SyncBatchNorm(const torch::Tensor& input, const torch::nn::BatchNormOptions& options,
                            const torch::Tensor& weight, const torch::Tensor& bias, torch::Tensor& running_mean,
                            torch::Tensor& running_var, torch::Tensor& num_batches_tracked,
                            const c10::intrusive_ptr<BatchStatsReducer>& reducer) {
  const int64_t channels = input.size(1);
  std::vector<int64_t> reduce_dims = {0};
  std::vector<int64_t> shape = {1, channels};
  for (int64_t d = 2; d < input.dim(); ++d) {
    reduce_dims.push_back(d);
    shape.push_back(1);
  }
  // Statistics in float even under bf16 autocast, as torch's batch_norm.
  const torch::Tensor x = input.to(torch::kFloat);
  const double local_count = static_cast<double>(input.numel() / channels);
  // One reduction for the sums and the sample count; the count carries no gradient.
  torch::Tensor sums_and_count =
      AllReduceSum(torch::cat({x.sum(reduce_dims), torch::full({1}, local_count, x.options())}), reducer);
  const torch::Tensor sums = sums_and_count.narrow(0, 0, channels);
  const double count = sums_and_count[channels].item<double>();
  TORCH_CHECK(count > 1, "SyncBatchNorm: expected more than 1 value per channel over all ranks, got ", count);
  const torch::Tensor mean = sums / count;
  const torch::Tensor centred = x - mean.view(shape);
  // Two passes (mean, then centred squares) rather than E[x^2] - E[x]^2,
  // which loses precision when the mean is large.
  const torch::Tensor var = AllReduceSum((centred * centred).sum(reduce_dims), reducer) / count;
  torch::Tensor out = centred * torch::rsqrt(var + options.eps()).view(shape);
  if (options.affine()) out = out * weight.view(shape) + bias.view(shape);

  if (options.track_running_stats()) {
    torch::NoGradGuard no_grad;
    const double factor = NextRunningStatsFactor(options, num_batches_tracked);
    running_mean.mul_(1.0 - factor).add_(mean.detach().to(running_mean.dtype()), factor);
    running_var.mul_(1.0 - factor).add_((var.detach() * (count / (count - 1))).to(running_var.dtype()), factor);
  }
  return out.to(input.scalar_type());
}

BatchNormImpl::BatchNormImpl(const torch::nn::BatchNormOptions& options) : options(options) { reset(); }

void BatchNormImpl::reset() {
  const int64_t n = options.num_features();
  if (options.affine()) {
    weight = register_parameter("weight", torch::ones({n}));
    bias = register_parameter("bias", torch::zeros({n}));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({n}));
    running_var = register_buffer("running_var", torch::ones({n}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  }
}

torch::Tensor BatchNormImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() >= 2 && input.size(1) == options.num_features(), "BatchNorm(",
              options.num_features(), "): expected input [N, ", options.num_features(), ", ...], got ",
              input.sizes());
  if (reducer_ && is_training()) {
    return SyncBatchNorm(input, options, weight, bias, running_mean, running_var, num_batches_tracked, reducer_);
  }
  // torch's BatchNormImplBase::forward.
  const double factor = is_training() && options.track_running_stats()
                            ? NextRunningStatsFactor(options, num_batches_tracked)
                            : options.momentum().value_or(0.0);
  return torch::batch_norm(input, weight, bias, running_mean, running_var,
                           is_training() || !options.track_running_stats(), factor, options.eps(),
                           at::globalContext().userEnabledCuDNN());
}

void BatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << "dmue::BatchNorm(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=" << (options.momentum() ? std::to_string(*options.momentum()) : "None")
         << ", affine=" << options.affine() << ", track_running_stats=" << options.track_running_stats()
         << (reducer_ ? ", synchronised" : "") << ")";
}

int SetBatchNormSync(torch::nn::Module& module, const c10::intrusive_ptr<BatchStatsReducer>& reducer) {
  int count = 0;
  for (const std::shared_ptr<torch::nn::Module>& child : module.modules()) {
    if (auto* norm = child->as<BatchNormImpl>()) {
      norm->set_stats_reducer(reducer);
      ++count;
    }
  }
  return count;
}

}  // namespace dmue
