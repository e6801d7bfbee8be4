// Index samplers: sequential, shuffled, and the reference's class-balanced
// sampler (WeightedRandomSampler with weight 1 / count(label) per sample, with
// replacement), with DDP sharding and exactly resumable state.
//
// Determinism: an epoch's global index list is a pure function of (seed,
// epoch): its generator is std::mt19937_64(MixSeed(seed, {epoch})). Every rank
// builds the same global list and takes positions rank, rank + world_size, ...
// (like torch's DistributedSampler; with even_shards the list is padded by
// wrapping around so all ranks get the same count). The state is therefore
// (epoch, position); no generator state needs saving.
//
// min_per_class (shuffled only): each batch of this rank's list holds at least
// that many samples of every labelled class, so losses that need every class in
// a batch (DMUE) can train on natural sampling of imbalanced data; a missing
// class replaces samples of the batch's most frequent class with members drawn
// at random (with replacement) from its own list. Everything else stays natural.
#ifndef DATASETS_SAMPLER_H_
#define DATASETS_SAMPLER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue::datasets {

enum class SamplerKind { kSequential, kShuffled, kClassBalanced };
absl::string_view SamplerKindName(SamplerKind kind);

struct SamplerOptions {
  SamplerKind kind = SamplerKind::kClassBalanced;
  uint64_t seed = 0;
  // Global samples per epoch, before sharding. 0 = the dataset size. Only
  // kClassBalanced may use a different value (it samples with replacement).
  int64_t num_samples = 0;
  int rank = 0;
  int world_size = 1;
  // Pad the global list (wrapping around) to a multiple of world_size so each
  // rank gets the same count. Turn off for evaluation (each sample once).
  bool even_shards = true;
  // Guarantee per batch of `batch_size` consecutive indices (kShuffled only;
  // 0 = off). Classes with no sample are ignored.
  int64_t min_per_class = 0;
  int64_t batch_size = 0;
};

struct SamplerState {
  int64_t epoch = 0;
  int64_t position = 0;  // indices of this rank's epoch already handed out
};

class Sampler {
 public:
  // `labels[i]` is sample i's class (needed by kClassBalanced; labels < 0 are
  // never drawn). Errors name the option.
  static absl::StatusOr<Sampler> Create(const SamplerOptions& options, const std::vector<int>& labels);

  int64_t dataset_size() const { return dataset_size_; }
  // Indices this rank gets per epoch.
  int64_t epoch_size() const;
  const SamplerOptions& options() const { return options_; }

  // This rank's indices for `epoch` (pure function; does not touch the state).
  std::vector<int64_t> EpochIndices(int64_t epoch) const;

  // Stateful iteration over the current epoch.
  void SetEpoch(int64_t epoch);  // position 0
  // Up to `max_count` next indices (fewer at the end of the epoch; empty when done).
  std::vector<int64_t> Next(int64_t max_count);
  bool epoch_done() const { return state_.position >= epoch_size(); }

  const SamplerState& state() const { return state_; }
  absl::Status Restore(const SamplerState& state);
  // One line of text naming the options too; RestoreFromString refuses state
  // saved under different options (kind, seed, sizes, rank, world size).
  std::string SerializeState() const;
  absl::Status RestoreFromString(absl::string_view text);

 private:
  Sampler() = default;
  std::vector<int64_t> GlobalIndices(int64_t epoch) const;
  void TopUpClasses(int64_t epoch, std::vector<int64_t>& indices) const;
  void EnsureCache() const;

  SamplerOptions options_;
  int64_t dataset_size_ = 0;
  std::vector<std::vector<int64_t>> members_;  // per class present, for kClassBalanced
  std::vector<int> labels_;                     // for min_per_class
  std::vector<std::vector<int64_t>> by_class_;  // by_class_[label]: its samples, for min_per_class
  SamplerState state_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cache_;
};

}  // namespace dmue::datasets

#endif  // DATASETS_SAMPLER_H_
