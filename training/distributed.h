// Data-parallel training over c10d (Gloo on the CPU, NCCL on CUDA devices),
// configured like torchrun:
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Gradients are
// averaged in flattened buckets, each sent (asynchronous allreduce) as soon as
// backward has produced all of its gradients, so communication overlaps the
// rest of backward; batch-norm statistics can be pooled over the ranks
// (SyncBN); decisions that must agree (skip this batch? stop now?) are
// reduced too.
#ifndef TRAINING_DISTRIBUTED_H_
#define TRAINING_DISTRIBUTED_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/intrusive_ptr.h>

#include "absl/status/statusor.h"
#include "dmue/batch_norm.h"

namespace c10d {
class ProcessGroup;
class Store;
class Work;
}  // namespace c10d

namespace dmue::training {

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Instead of a TCP rendezvous, a shared file (tests, single machine).
  std::string file_store_path;
};

// Reads the torchrun variables; absent ones keep the single-process defaults.
// Malformed values are errors naming the variable.
absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment();

// The c10d backend for ranks computing on `device`, as torch.distributed
// recommends: Gloo for the CPU, NCCL for CUDA.
enum class CollectiveBackend { kGloo, kNccl };
CollectiveBackend BackendForDevice(const c10::Device& device);
const char* BackendName(CollectiveBackend backend);
// Whether this LibTorch has `backend`: Gloo always; NCCL only in a CUDA
// build compiled with USE_C10D_NCCL (Debian's LibTorch has no NCCL).
bool BackendCompiledIn(CollectiveBackend backend);

// The rank's device: `device`, except that "cuda" without an index means
// cuda:LOCAL_RANK (torchrun's one GPU per local rank).
c10::Device RankDevice(const c10::Device& device, const DistributedEnv& env);

class DistributedContext {
 public:
  // Joins the group with BackendForDevice(device); the ranks' tensors
  // (gradients, buffers, SyncBN statistics) live on `device`. A backend this
  // LibTorch lacks (NCCL here) or a device it cannot use is a
  // FailedPrecondition: Gloo is never substituted for NCCL in silence.
  static absl::StatusOr<std::unique_ptr<DistributedContext>> Create(
      const DistributedEnv& env, const c10::Device& device,
      std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~DistributedContext();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }
  const c10::Device& device() const { return device_; }

  // True only if `flag` is true on every rank.
  bool AllTrue(bool flag);
  // Sum of `value` over the ranks.
  double SumAll(double value);
  // Averages the gradients of `params` (those with a defined gradient on
  // rank 0's layout: every rank must have the same set) across ranks.
  void AverageGradients(const std::vector<at::Tensor>& params, int64_t bucket_bytes = 25 << 20);
  // Copies rank 0's values of `tensors` (parameters, buffers) to every rank.
  void BroadcastFromMain(const std::vector<at::Tensor>& tensors);
  void Barrier();
  // Sums over the ranks for synchronised BatchNorm (dmue::SetBatchNormSync).
  c10::intrusive_ptr<BatchStatsReducer> MakeBatchStatsReducer();

 private:
  friend class GradientSynchronizer;
  DistributedContext(DistributedEnv env, c10::Device device, c10::intrusive_ptr<c10d::Store> store,
                     c10::intrusive_ptr<c10d::ProcessGroup> group);
  // A one-element tensor on the group's device (NCCL reduces CUDA tensors only).
  at::Tensor Scalar(double value, at::ScalarType dtype) const;
  DistributedEnv env_;
  c10::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

// Averages gradients across ranks while backward runs. A hook on every
// trainable parameter copies its gradient into the parameter's bucket when
// autograd produces it; a complete bucket is sent at once, buckets strictly
// in order so that every rank issues the same sequence of collectives.
// Finish() sends the rest, waits, and writes the averages into .grad.
//
// Buckets hold the parameters that received gradients, in reverse
// registration order (close to the order backward produces them). The set is
// learned, and agreed across ranks, from the first step and again whenever a
// step uses parameters outside it (DMUE's auxiliary branches join after the
// cross-entropy warm-up); that step is reduced without overlap. A bucketed
// parameter that gets no gradient in a step counts as zero.
//
// One backward per step: a step's .grad becomes the average of that
// backward's gradients (what was accumulated before is replaced).
class GradientSynchronizer {
 public:
  GradientSynchronizer(DistributedContext* context, std::vector<at::Tensor> params,
                       int64_t bucket_bytes = 4 << 20);
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  void Finish();

  // Counters for tests and logs.
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  int64_t overlapped_buckets() const { return overlapped_buckets_; }
  int rebuilds() const { return rebuilds_; }

 private:
  struct Bucket {
    std::vector<int> params;
    std::vector<int64_t> offsets;
    std::vector<at::Tensor> flat;  // one tensor: the c10d argument
    int pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void OnGradient(int index, const at::Tensor& grad);
  void LaunchReadyBuckets();
  void Launch(Bucket& bucket);
  void Rebuild(const std::vector<int>& used);
  void ResetStep();

  DistributedContext* context_;
  std::vector<at::Tensor> params_;
  int64_t bucket_bytes_;
  std::vector<unsigned> hook_ids_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_, slot_of_;  // per parameter; -1: not bucketed
  std::vector<char> fired_;               // per parameter, this step
  size_t next_bucket_ = 0;
  int64_t overlapped_buckets_ = 0;
  int rebuilds_ = 0;
  bool in_finish_ = false;
};

}  // namespace dmue::training

#endif  // TRAINING_DISTRIBUTED_H_
