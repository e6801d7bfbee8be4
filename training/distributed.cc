#include "training/distributed.h"

#include <algorithm>
#include <cstdlib>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "dmue/compute.h"

namespace dmue::training {
namespace {

absl::Status ReadInt(const char* name, int* value) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return absl::OkStatus();
  if (!absl::SimpleAtoi(text, value)) {
    return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, "='", text,
                                                   "' is not an integer"));
  }
  return absl::OkStatus();
}

c10::intrusive_ptr<c10d::Store> MakeStore(const DistributedEnv& env, std::chrono::milliseconds timeout) {
  if (!env.file_store_path.empty()) return c10::make_intrusive<c10d::FileStore>(env.file_store_path, env.world_size);
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = env.world_size;
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
}

c10::intrusive_ptr<c10d::ProcessGroup> MakeGlooGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                                     const DistributedEnv& env, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
      env.file_store_path.empty() ? env.master_addr : "127.0.0.1"));
  options->threads = 1;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
}

#ifdef USE_C10D_NCCL
c10::intrusive_ptr<c10d::ProcessGroup> MakeNcclGroup(const c10::intrusive_ptr<c10d::Store>& store,
                                                     const DistributedEnv& env, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, options);
}
#endif

}  // namespace

CollectiveBackend BackendForDevice(const c10::Device& device) {
  return device.is_cuda() ? CollectiveBackend::kNccl : CollectiveBackend::kGloo;
}

const char* BackendName(CollectiveBackend backend) { return backend == CollectiveBackend::kNccl ? "NCCL" : "Gloo"; }

bool BackendCompiledIn(CollectiveBackend backend) {
#ifdef USE_C10D_NCCL
  (void)backend;
  return true;
#else
  return backend == CollectiveBackend::kGloo;
#endif
}

c10::Device RankDevice(const c10::Device& device, const DistributedEnv& env) {
  if (!device.is_cuda() || device.has_index()) return device;
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
}

absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment() {
  DistributedEnv env;
  for (auto [name, field] : {std::pair<const char*, int*>{"RANK", &env.rank},
                             {"WORLD_SIZE", &env.world_size},
                             {"LOCAL_RANK", &env.local_rank},
                             {"MASTER_PORT", &env.master_port}}) {
    RETURN_IF_ERROR(ReadInt(name, field));
  }
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  if (env.world_size < 1) return absl::InvalidArgumentError("WORLD_SIZE must be >= 1");
  if (env.rank < 0 || env.rank >= env.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK=", env.rank, " is outside [0, WORLD_SIZE=", env.world_size, ")"));
  }
  if (env.master_port <= 0 || env.master_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("MASTER_PORT=", env.master_port, " is not a port"));
  }
  return env;
}

DistributedContext::DistributedContext(DistributedEnv env, c10::Device device, c10::intrusive_ptr<c10d::Store> store,
                                       c10::intrusive_ptr<c10d::ProcessGroup> group)
    : env_(std::move(env)), device_(device), store_(std::move(store)), group_(std::move(group)) {}

DistributedContext::~DistributedContext() = default;

absl::StatusOr<std::unique_ptr<DistributedContext>> DistributedContext::Create(
    const DistributedEnv& env, const c10::Device& device, std::chrono::milliseconds timeout) {
  const CollectiveBackend backend = BackendForDevice(device);
  if (!BackendCompiledIn(backend)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data-parallel training on ", device.str(), " needs c10d's ", BackendName(backend),
        " backend, but this LibTorch was built without it (USE_C10D_NCCL is not defined); Gloo is not used in "
        "its place. Use device cpu, or a CUDA LibTorch with NCCL through LIBTORCH_HOME"));
  }
  RETURN_IF_ERROR(CheckDeviceAvailable(device));
  try {
    c10::intrusive_ptr<c10d::Store> store = MakeStore(env, timeout);
#ifdef USE_C10D_NCCL
    auto group = backend == CollectiveBackend::kNccl ? MakeNcclGroup(store, env, timeout)
                                                     : MakeGlooGroup(store, env, timeout);
#else
    auto group = MakeGlooGroup(store, env, timeout);
#endif
    return std::unique_ptr<DistributedContext>(new DistributedContext(env, device, store, group));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot join the process group (rank ", env.rank, " of ",
                                               env.world_size, " at ", env.master_addr, ":", env.master_port,
                                               "): ", e.what()));
  }
}

at::Tensor DistributedContext::Scalar(double value, at::ScalarType dtype) const {
  return at::full({1}, value, at::TensorOptions().dtype(dtype).device(device_));
}

bool DistributedContext::AllTrue(bool flag) {
  std::vector<at::Tensor> t = {Scalar(flag ? 1 : 0, at::kInt)};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MIN;
  group_->allreduce(t, options)->wait();
  return t[0].item<int>() == 1;
}

double DistributedContext::SumAll(double value) {
  std::vector<at::Tensor> t = {Scalar(value, at::kDouble)};
  group_->allreduce(t)->wait();
  return t[0].item<double>();
}

void DistributedContext::AverageGradients(const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (world_size() == 1) return;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  // Buckets of consecutive same-dtype gradients, flattened, reduced
  // concurrently (one async allreduce each), then copied back.
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t bytes = 0;
  for (const at::Tensor& g : grads) {
    if (buckets.empty() || bytes >= bucket_bytes || buckets.back().front().scalar_type() != g.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += g.numel() * g.element_size();
  }
  std::vector<std::vector<at::Tensor>> flat(buckets.size());
  std::vector<c10::intrusive_ptr<c10d::Work>> work;
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<at::Tensor> pieces;
    for (const at::Tensor& g : buckets[b]) pieces.push_back(g.reshape({-1}));
    flat[b] = {at::cat(pieces)};
    work.push_back(group_->allreduce(flat[b]));
  }
  const double scale = 1.0 / world_size();
  for (size_t b = 0; b < buckets.size(); ++b) {
    work[b]->wait();
    flat[b][0].mul_(scale);
    int64_t offset = 0;
    for (const at::Tensor& g : buckets[b]) {
      at::Tensor source = flat[b][0].narrow(0, offset, g.numel()).view(g.sizes());
      const_cast<at::Tensor&>(g).copy_(source);
      offset += g.numel();
    }
  }
}

void DistributedContext::BroadcastFromMain(const std::vector<at::Tensor>& tensors) {
  if (world_size() == 1) return;
  for (const at::Tensor& t : tensors) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> buffer = {t.contiguous()};
    group_->broadcast(buffer)->wait();
    if (!buffer[0].is_same(t)) const_cast<at::Tensor&>(t).copy_(buffer[0]);
  }
}

void DistributedContext::Barrier() {
  if (world_size() == 1) return;
  group_->barrier()->wait();
}

namespace {

class GroupBatchStatsReducer : public BatchStatsReducer {
 public:
  explicit GroupBatchStatsReducer(c10::intrusive_ptr<c10d::ProcessGroup> group) : group_(std::move(group)) {}
  void AllReduceSum(at::Tensor& tensor) override {
    std::vector<at::Tensor> buffer = {tensor};
    group_->allreduce(buffer)->wait();
  }

 private:
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

}  // namespace

c10::intrusive_ptr<BatchStatsReducer> DistributedContext::MakeBatchStatsReducer() {
  return c10::make_intrusive<GroupBatchStatsReducer>(group_);
}

GradientSynchronizer::GradientSynchronizer(DistributedContext* context, std::vector<at::Tensor> params,
                                           int64_t bucket_bytes)
    : context_(context), bucket_bytes_(bucket_bytes) {
  for (at::Tensor& p : params) {
    if (p.requires_grad()) params_.push_back(p);
  }
  bucket_of_.assign(params_.size(), -1);
  slot_of_.assign(params_.size(), -1);
  fired_.assign(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const int index = static_cast<int>(i);
    hook_ids_.push_back(params_[i].register_hook([this, index](const at::Tensor& grad) { OnGradient(index, grad); }));
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  for (Bucket& bucket : buckets_) {
    if (bucket.work) bucket.work->wait();
  }
  for (size_t i = 0; i < params_.size(); ++i) params_[i].remove_hook(hook_ids_[i]);
}

void GradientSynchronizer::OnGradient(int index, const at::Tensor& grad) {
  const int b = bucket_of_[index];
  if (b < 0) {
    fired_[index] = 1;
    return;
  }
  Bucket& bucket = buckets_[b];
  const at::Tensor& p = params_[index];
  at::Tensor slot = bucket.flat[0].narrow(0, bucket.offsets[slot_of_[index]], p.numel());
  if (fired_[index]) {
    TORCH_CHECK(!bucket.work, "GradientSynchronizer: a second backward before Finish() reached a parameter "
                              "whose bucket was already sent; run one backward per step");
    slot.add_(grad.reshape({-1}));
    return;
  }
  fired_[index] = 1;
  slot.copy_(grad.reshape({-1}));
  if (--bucket.pending == 0) LaunchReadyBuckets();
}

void GradientSynchronizer::Launch(Bucket& bucket) {
  bucket.work = context_->group_->allreduce(bucket.flat);
  if (!in_finish_) ++overlapped_buckets_;
}

void GradientSynchronizer::LaunchReadyBuckets() {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) Launch(buckets_[next_bucket_++]);
}

void GradientSynchronizer::Finish() {
  if (context_->world_size() == 1) {
    ResetStep();
    return;
  }
  in_finish_ = true;
  for (; next_bucket_ < buckets_.size(); ++next_bucket_) {
    Bucket& bucket = buckets_[next_bucket_];
    for (size_t s = 0; s < bucket.params.size(); ++s) {
      const int index = bucket.params[s];
      if (!fired_[index]) bucket.flat[0].narrow(0, bucket.offsets[s], params_[index].numel()).zero_();
    }
    bucket.pending = 0;
    Launch(bucket);
  }
  bool unbucketed_gradients = false;
  for (size_t i = 0; i < params_.size(); ++i) unbucketed_gradients |= fired_[i] && bucket_of_[i] < 0;
  const bool rebuild = !context_->AllTrue(!unbucketed_gradients);

  const double scale = 1.0 / context_->world_size();
  for (Bucket& bucket : buckets_) {
    bucket.work->wait();
    bucket.work.reset();
    bucket.flat[0].mul_(scale);
    for (size_t s = 0; s < bucket.params.size(); ++s) {
      at::Tensor& p = params_[bucket.params[s]];
      at::Tensor average = bucket.flat[0].narrow(0, bucket.offsets[s], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(average);
      } else {
        p.mutable_grad() = average.clone();
      }
    }
  }
  if (rebuild) {
    // The union of the parameters that got gradients on any rank.
    std::vector<at::Tensor> used_mask = {
        at::tensor(std::vector<int>(fired_.begin(), fired_.end()), at::kInt).to(context_->device())};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::MAX;
    context_->group_->allreduce(used_mask, options)->wait();
    const at::Tensor used_on_host = used_mask[0].to(at::kCPU);
    const auto used_on_any_rank = used_on_host.accessor<int, 1>();
    std::vector<int> used;
    std::vector<at::Tensor> unbucketed;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (used_on_any_rank[i] == 0) continue;
      used.push_back(static_cast<int>(i));
      if (bucket_of_[i] >= 0) continue;
      at::Tensor& p = params_[i];
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      unbucketed.push_back(p);
    }
    context_->AverageGradients(unbucketed, bucket_bytes_);
    Rebuild(used);
  }
  ResetStep();
  in_finish_ = false;
}

void GradientSynchronizer::Rebuild(const std::vector<int>& used) {
  ++rebuilds_;
  buckets_.clear();
  std::fill(bucket_of_.begin(), bucket_of_.end(), -1);
  std::fill(slot_of_.begin(), slot_of_.end(), -1);
  int64_t bytes = 0;
  for (auto it = used.rbegin(); it != used.rend(); ++it) {
    const at::Tensor& p = params_[*it];
    if (buckets_.empty() || bytes >= bucket_bytes_ ||
        params_[buckets_.back().params.front()].scalar_type() != p.scalar_type()) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket_of_[*it] = static_cast<int>(buckets_.size() - 1);
    slot_of_[*it] = static_cast<int>(bucket.params.size());
    bucket.offsets.push_back(bucket.params.empty() ? 0 : bucket.offsets.back() + params_[bucket.params.back()].numel());
    bucket.params.push_back(*it);
    bytes += p.numel() * p.element_size();
  }
  for (Bucket& bucket : buckets_) {
    const at::Tensor& last = params_[bucket.params.back()];
    bucket.flat = {at::zeros({bucket.offsets.back() + last.numel()}, last.options().requires_grad(false))};
  }
}

void GradientSynchronizer::ResetStep() {
  std::fill(fired_.begin(), fired_.end(), 0);
  for (Bucket& bucket : buckets_) bucket.pending = static_cast<int>(bucket.params.size());
  next_bucket_ = 0;
}

}  // namespace dmue::training
