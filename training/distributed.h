// Data-parallel training over c10d (Gloo on CPU), configured like torchrun:
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Gradients are
// averaged in flattened buckets with one asynchronous allreduce per bucket;
// decisions that must agree (skip this batch? stop now?) are reduced too.
#ifndef TRAINING_DISTRIBUTED_H_
#define TRAINING_DISTRIBUTED_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>

#include "absl/status/statusor.h"

namespace c10d {
class ProcessGroupGloo;
class Store;
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

class DistributedContext {
 public:
  static absl::StatusOr<std::unique_ptr<DistributedContext>> Create(
      const DistributedEnv& env, std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~DistributedContext();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }

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

 private:
  DistributedContext(DistributedEnv env, c10::intrusive_ptr<c10d::Store> store,
                     c10::intrusive_ptr<c10d::ProcessGroupGloo> group);
  DistributedEnv env_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace dmue::training

#endif  // TRAINING_DISTRIBUTED_H_
