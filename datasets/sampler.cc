#include "datasets/sampler.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "datasets/seed.h"
#include "dmue/base/field_error.h"

namespace dmue::datasets {
namespace {

constexpr FieldErrors kFieldError("SamplerOptions");

}  // namespace

absl::string_view SamplerKindName(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::kSequential: return "sequential";
    case SamplerKind::kShuffled: return "shuffled";
    case SamplerKind::kClassBalanced: return "class_balanced";
  }
  return "unknown";
}

absl::StatusOr<Sampler> Sampler::Create(const SamplerOptions& options, const std::vector<int>& labels) {
  if (options.world_size < 1) return kFieldError("world_size", absl::StrCat("must be >= 1, got ", options.world_size));
  if (options.rank < 0 || options.rank >= options.world_size) {
    return kFieldError("rank", absl::StrCat("must be in [0, ", options.world_size, "), got ", options.rank));
  }
  if (options.num_samples < 0) return kFieldError("num_samples", "must be >= 0");
  if (labels.empty()) return kFieldError("labels", "the dataset is empty");
  if (options.kind != SamplerKind::kClassBalanced && options.num_samples != 0 &&
      options.num_samples != int64_t(labels.size())) {
    return kFieldError("num_samples", "only the class-balanced sampler draws a different number of samples");
  }
  if (options.min_per_class < 0) return kFieldError("min_per_class", "must be >= 0");
  if (options.min_per_class > 0 && options.kind != SamplerKind::kShuffled) {
    return kFieldError("min_per_class", "only the shuffled sampler tops batches up");
  }
  Sampler sampler;
  sampler.options_ = options;
  sampler.dataset_size_ = int64_t(labels.size());
  if (options.kind == SamplerKind::kClassBalanced) {
    for (int64_t i = 0; i < int64_t(labels.size()); ++i) {
      const int label = labels[i];
      if (label < 0) continue;
      if (label >= int(sampler.members_.size())) sampler.members_.resize(label + 1);
      sampler.members_[label].push_back(i);
    }
    sampler.members_.erase(std::remove_if(sampler.members_.begin(), sampler.members_.end(),
                                          [](const std::vector<int64_t>& m) { return m.empty(); }),
                           sampler.members_.end());
    if (sampler.members_.empty()) return kFieldError("labels", "no sample has a label >= 0");
  }
  if (options.min_per_class > 0) {
    int classes = 0;
    for (int64_t i = 0; i < int64_t(labels.size()); ++i) {
      if (labels[i] < 0) continue;
      if (labels[i] >= int(sampler.by_class_.size())) sampler.by_class_.resize(labels[i] + 1);
      classes += sampler.by_class_[labels[i]].empty() ? 1 : 0;
      sampler.by_class_[labels[i]].push_back(i);
    }
    if (options.batch_size < options.min_per_class * classes) {
      return kFieldError("batch_size", absl::StrCat("must be >= min_per_class x classes = ",
                                                    options.min_per_class * classes, ", got ", options.batch_size));
    }
    sampler.labels_ = labels;
  }
  return sampler;
}

int64_t Sampler::epoch_size() const {
  const int64_t global = options_.num_samples > 0 ? options_.num_samples : dataset_size_;
  const int64_t ws = options_.world_size;
  if (options_.even_shards) return (global + ws - 1) / ws;
  return global / ws + (options_.rank < global % ws ? 1 : 0);
}

std::vector<int64_t> Sampler::GlobalIndices(int64_t epoch) const {
  const int64_t global = options_.num_samples > 0 ? options_.num_samples : dataset_size_;
  std::vector<int64_t> indices;
  std::mt19937_64 rng(MixSeed(options_.seed, {uint64_t(epoch)}));
  switch (options_.kind) {
    case SamplerKind::kSequential:
      indices.resize(global);
      std::iota(indices.begin(), indices.end(), 0);
      break;
    case SamplerKind::kShuffled:
      indices.resize(global);
      std::iota(indices.begin(), indices.end(), 0);
      // Explicit Fisher-Yates: std::shuffle's algorithm is library-defined.
      for (int64_t i = global - 1; i > 0; --i) {
        std::swap(indices[i], indices[std::uniform_int_distribution<int64_t>(0, i)(rng)]);
      }
      break;
    case SamplerKind::kClassBalanced: {
      // P(sample i) = (1 / count(label_i)) / num_classes_present: a uniform
      // class, then a uniform member. The same distribution as the reference's
      // weights 1/count with replacement.
      indices.reserve(global);
      std::uniform_int_distribution<size_t> pick_class(0, members_.size() - 1);
      for (int64_t n = 0; n < global; ++n) {
        const std::vector<int64_t>& m = members_[pick_class(rng)];
        indices.push_back(m[std::uniform_int_distribution<size_t>(0, m.size() - 1)(rng)]);
      }
      break;
    }
  }
  return indices;
}

std::vector<int64_t> Sampler::EpochIndices(int64_t epoch) const {
  std::vector<int64_t> mine = GlobalIndices(epoch);
  const int64_t ws = options_.world_size;
  if (ws > 1) {
    std::vector<int64_t> global = std::move(mine);
    const int64_t count = epoch_size();
    mine.clear();
    mine.reserve(count);
    for (int64_t k = 0; k < count; ++k) {
      const int64_t position = options_.rank + k * ws;
      mine.push_back(global[position % int64_t(global.size())]);
    }
  }
  if (options_.min_per_class > 0) TopUpClasses(epoch, mine);
  return mine;
}

void Sampler::TopUpClasses(int64_t epoch, std::vector<int64_t>& indices) const {
  // Its own stream per rank, so the shuffle itself stays the plain one.
  std::mt19937_64 rng(MixSeed(options_.seed, {uint64_t(epoch), 0x746f7075ULL, uint64_t(options_.rank)}));
  const int num_classes = int(by_class_.size());
  const int64_t k = options_.min_per_class;
  for (int64_t begin = 0; begin + options_.batch_size <= int64_t(indices.size()); begin += options_.batch_size) {
    const int64_t end = begin + options_.batch_size;
    std::vector<int64_t> counts(num_classes, 0);
    for (int64_t p = begin; p < end; ++p) {
      if (labels_[indices[p]] >= 0) ++counts[labels_[indices[p]]];
    }
    for (int c = 0; c < num_classes; ++c) {
      const std::vector<int64_t>& members = by_class_[c];
      while (!members.empty() && counts[c] < k) {
        // Give up one sample of the class that has the most (always > k,
        // since batch_size >= k x classes).
        const int donor = int(std::max_element(counts.begin(), counts.end()) - counts.begin());
        if (counts[donor] <= k) break;  // unlabelled entries crowd the batch: leave it
        int64_t p = begin;
        while (labels_[indices[p]] != donor) ++p;
        indices[p] = members[std::uniform_int_distribution<size_t>(0, members.size() - 1)(rng)];
        --counts[donor];
        ++counts[c];
      }
    }
  }
}

void Sampler::EnsureCache() const {
  if (cached_epoch_ != state_.epoch) {
    cache_ = EpochIndices(state_.epoch);
    cached_epoch_ = state_.epoch;
  }
}

void Sampler::SetEpoch(int64_t epoch) {
  state_.epoch = epoch;
  state_.position = 0;
}

std::vector<int64_t> Sampler::Next(int64_t max_count) {
  EnsureCache();
  const int64_t begin = std::min<int64_t>(state_.position, int64_t(cache_.size()));
  const int64_t end = std::min<int64_t>(begin + std::max<int64_t>(max_count, 0), int64_t(cache_.size()));
  state_.position = end;
  return std::vector<int64_t>(cache_.begin() + begin, cache_.begin() + end);
}

absl::Status Sampler::Restore(const SamplerState& state) {
  if (state.epoch < 0) return absl::InvalidArgumentError("SamplerState.epoch must be >= 0");
  if (state.position < 0 || state.position > epoch_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SamplerState.position ", state.position, " outside [0, ", epoch_size(), "]"));
  }
  state_ = state;
  return absl::OkStatus();
}

std::string Sampler::SerializeState() const {
  return absl::StrCat("dmue_sampler_v1 kind=", SamplerKindName(options_.kind), " seed=", options_.seed,
                      " num_samples=", options_.num_samples, " dataset_size=", dataset_size_,
                      " rank=", options_.rank, " world_size=", options_.world_size,
                      " even_shards=", options_.even_shards ? 1 : 0,
                      // Only when set, so states saved before the option still restore.
                      options_.min_per_class > 0 ? absl::StrCat(" min_per_class=", options_.min_per_class,
                                                                " batch_size=", options_.batch_size)
                                                 : "",
                      " epoch=", state_.epoch,
                      " position=", state_.position);
}

absl::Status Sampler::RestoreFromString(absl::string_view text) {
  std::vector<absl::string_view> fields = absl::StrSplit(text, ' ', absl::SkipEmpty());
  if (fields.empty() || fields[0] != "dmue_sampler_v1") {
    return absl::InvalidArgumentError("sampler state: not a dmue_sampler_v1 string");
  }
  const std::string expected = SerializeState();
  std::vector<absl::string_view> mine = absl::StrSplit(expected, ' ');
  SamplerState state;
  bool have_epoch = false, have_position = false;
  for (size_t i = 1; i < fields.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
    if (kv.first == "epoch") {
      have_epoch = absl::SimpleAtoi(kv.second, &state.epoch);
      continue;
    }
    if (kv.first == "position") {
      have_position = absl::SimpleAtoi(kv.second, &state.position);
      continue;
    }
    const std::string want = absl::StrCat(kv.first, "=");
    auto it = std::find_if(mine.begin(), mine.end(), [&](absl::string_view f) { return absl::StartsWith(f, want); });
    if (it == mine.end()) return absl::InvalidArgumentError(absl::StrCat("sampler state: unknown field '", kv.first, "'"));
    if (*it != fields[i]) {
      return absl::FailedPreconditionError(absl::StrCat("sampler state was saved with ", fields[i],
                                                        " but this sampler has ", *it));
    }
  }
  if (!have_epoch || !have_position) {
    return absl::InvalidArgumentError("sampler state: missing or invalid epoch/position");
  }
  return Restore(state);
}

}  // namespace dmue::datasets
