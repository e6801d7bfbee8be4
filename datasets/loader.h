// Multi-threaded prefetching batch loader.
//
// N worker threads read, decode and augment examples into [B,3,H,W] float32
// batches (+ int64 labels, + optional [B,C] soft labels). Batches come out in
// sampler order; at most `prefetch_batches` are in flight. Augmentation of the
// sample at position p of epoch e uses std::mt19937_64(MixSeed(seed, {e, rank,
// p})), so a run is reproducible for any worker count, and a resumed run
// (RestoreState) sees exactly the batches the interrupted run would have.
// Workers run ATen with one OpenMP thread (their own, thread-local setting;
// the global intra-op thread count is untouched). Destruction stops and
// joins the workers, discarding batches still in flight.
#ifndef DATASETS_LOADER_H_
#define DATASETS_LOADER_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/sampler.h"
#include "datasets/transforms.h"

namespace dmue::datasets {

class ExampleSource;  // example_source.h

struct LoaderOptions {
  int batch_size = 64;
  int num_workers = 2;
  int prefetch_batches = 4;  // bound on batches decoded ahead of the consumer
  bool drop_last = true;     // drop the last incomplete batch of an epoch
  TransformOptions transform;
  // Also produce [B, num_classes] soft labels (an example without a
  // distribution gets the one-hot of its label).
  bool soft_labels = false;
  int num_classes = 0;  // needed with soft_labels
  uint64_t seed = 0;    // augmentation seed (the sampler has its own)
};

struct Batch {
  at::Tensor images;       // [B, 3, crop, crop] float32
  at::Tensor labels;       // [B] int64
  at::Tensor soft_labels;  // [B, C] float32, undefined unless requested
  std::vector<int64_t> indices;  // example indices
  int64_t epoch = 0;
  int64_t batch_index = 0;  // within the epoch (counting from the epoch start)
};

class Loader {
 public:
  static absl::StatusOr<std::unique_ptr<Loader>> Create(std::shared_ptr<const ExampleSource> source,
                                                        Sampler sampler, const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // (Re)starts at the beginning of `epoch`, dropping anything in flight.
  void StartEpoch(int64_t epoch);
  // Next batch of the current epoch; nullopt when the epoch is done. Errors
  // (e.g. an unreadable record) name the example.
  absl::StatusOr<std::optional<Batch>> Next();

  // Sampler state just after the last batch returned by Next(): saving it and
  // calling RestoreState on a new loader continues exactly from there.
  SamplerState state() const;
  std::string SerializeState() const;
  absl::Status RestoreState(absl::string_view serialized);

  int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return options_; }
  // Stops and joins the workers (idempotent; the destructor calls it).
  void Shutdown();

 private:
  struct Result {
    absl::Status status;
    Batch batch;
  };
  Loader(std::shared_ptr<const ExampleSource> source, Sampler sampler, const LoaderOptions& options);
  void Begin(int64_t epoch, int64_t position);  // requires mu_ held
  void WorkerLoop(int worker);
  absl::Status BuildBatch(void* context, const std::vector<int64_t>& indices, int64_t epoch,
                          int64_t first_position, Batch* batch) const;

  std::shared_ptr<const ExampleSource> source_;
  Sampler sampler_;  // guarded by mu_
  LoaderOptions options_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable ready_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  int64_t epoch_ = 0;
  int64_t start_position_ = 0;  // sampler position at the epoch (re)start
  std::vector<std::vector<int64_t>> batches_;
  int64_t next_to_claim_ = 0;
  int64_t next_to_return_ = 0;
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace dmue::datasets

#endif  // DATASETS_LOADER_H_
