#include "datasets/loader.h"

#include <omp.h>

#include <algorithm>
#include <random>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "datasets/example_source.h"
#include "datasets/seed.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"

namespace dmue::datasets {

Loader::Loader(std::shared_ptr<const ExampleSource> source, Sampler sampler, const LoaderOptions& options)
    : source_(std::move(source)), sampler_(std::move(sampler)), options_(options) {}

absl::StatusOr<std::unique_ptr<Loader>> Loader::Create(std::shared_ptr<const ExampleSource> source,
                                                       Sampler sampler, const LoaderOptions& options) {
  constexpr FieldErrors kFieldError("LoaderOptions");
  if (source == nullptr) return kFieldError("source", "is null");
  if (options.batch_size < 1) return kFieldError("batch_size", absl::StrCat("must be >= 1, got ", options.batch_size));
  if (options.num_workers < 1 || options.num_workers > 64) {
    return kFieldError("num_workers", absl::StrCat("must be in [1, 64], got ", options.num_workers));
  }
  if (options.prefetch_batches < 1) return kFieldError("prefetch_batches", "must be >= 1");
  if (options.soft_labels && options.num_classes < 1)
    return kFieldError("num_classes", "must be >= 1 with soft_labels");
  RETURN_IF_ERROR(ValidateTransformOptions(options.transform));
  if (sampler.dataset_size() != source->size()) {
    return kFieldError("sampler",
                       absl::StrCat("covers ", sampler.dataset_size(), " examples, the source has ", source->size()));
  }
  std::unique_ptr<Loader> loader(new Loader(std::move(source), std::move(sampler), options));
  {
    std::lock_guard<std::mutex> lock(loader->mu_);
    loader->Begin(loader->sampler_.state().epoch, loader->sampler_.state().position);
  }
  for (int w = 0; w < options.num_workers; ++w) {
    loader->workers_.emplace_back(&Loader::WorkerLoop, loader.get(), w);
  }
  return loader;
}

Loader::~Loader() { Shutdown(); }

void Loader::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && workers_.empty()) return;
    stop_ = true;
    ++generation_;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void Loader::Begin(int64_t epoch, int64_t position) {
  ++generation_;
  epoch_ = epoch;
  start_position_ = position;
  (void)sampler_.Restore({epoch, position});
  batches_.clear();
  while (!sampler_.epoch_done()) {
    std::vector<int64_t> batch = sampler_.Next(options_.batch_size);
    if (int(batch.size()) < options_.batch_size && options_.drop_last) break;
    batches_.push_back(std::move(batch));
  }
  (void)sampler_.Restore({epoch, position});
  next_to_claim_ = 0;
  next_to_return_ = 0;
  ready_.clear();
}

void Loader::StartEpoch(int64_t epoch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Begin(epoch, 0);
  }
  work_cv_.notify_all();
}

int64_t Loader::batches_per_epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t n = sampler_.epoch_size();
  return options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

SamplerState Loader::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sampler_.state();
}

std::string Loader::SerializeState() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sampler_.SerializeState();
}

absl::Status Loader::RestoreState(absl::string_view serialized) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(sampler_.RestoreFromString(serialized));
    Begin(sampler_.state().epoch, sampler_.state().position);
  }
  work_cv_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Batch>> Loader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) return absl::CancelledError("loader was shut down");
  if (next_to_return_ >= int64_t(batches_.size())) return std::optional<Batch>();
  const int64_t id = next_to_return_;
  ready_cv_.wait(lock, [&] { return stop_ || ready_.count(id) > 0; });
  if (stop_) return absl::CancelledError("loader was shut down");
  Result result = std::move(ready_[id]);
  ready_.erase(id);
  ++next_to_return_;
  (void)sampler_.Restore({epoch_, sampler_.state().position + int64_t(batches_[id].size())});
  lock.unlock();
  work_cv_.notify_all();
  RETURN_IF_ERROR(result.status);
  return std::optional<Batch>(std::move(result.batch));
}

void Loader::WorkerLoop(int worker) {
  // One OpenMP thread for ATen work in this thread. Initialise ATen's
  // thread-local setting first, so a later lazy init does not undo it.
  (void)at::get_num_threads();
  omp_set_num_threads(1);
  absl::StatusOr<std::unique_ptr<ExampleSource::Context>> context = source_->NewContext();
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    work_cv_.wait(lock, [&] {
      return stop_ || (next_to_claim_ < int64_t(batches_.size()) &&
                       next_to_claim_ < next_to_return_ + options_.prefetch_batches);
    });
    if (stop_) return;
    const int64_t id = next_to_claim_++;
    const uint64_t generation = generation_;
    const std::vector<int64_t> indices = batches_[id];
    const int64_t epoch = epoch_;
    const int64_t first_position = start_position_ + id * options_.batch_size;
    const int64_t batch_index = start_position_ / options_.batch_size + id;
    lock.unlock();

    Result result;
    if (!context.ok()) {
      result.status = context.status();
    } else {
      result.status = BuildBatch(context->get(), indices, epoch, first_position, &result.batch);
    }
    result.batch.epoch = epoch;
    result.batch.batch_index = batch_index;
    lock.lock();
    if (generation == generation_ && !stop_) {
      ready_[id] = std::move(result);
      lock.unlock();
      ready_cv_.notify_all();
    }
    VLOG(2) << "loader worker " << worker << " built batch " << id;
  }
}

absl::Status Loader::BuildBatch(void* context, const std::vector<int64_t>& indices, int64_t epoch,
                                int64_t first_position, Batch* batch) const {
  const int64_t b = int64_t(indices.size());
  const int crop = options_.transform.crop;
  batch->images = at::empty({b, 3, crop, crop}, at::kFloat);
  batch->labels = at::empty({b}, at::kLong);
  if (options_.soft_labels) batch->soft_labels = at::zeros({b, options_.num_classes}, at::kFloat);
  batch->indices = indices;
  float* images = batch->images.data_ptr<float>();
  int64_t* labels = batch->labels.data_ptr<int64_t>();
  const size_t per_image = size_t(3) * crop * crop;
  auto* ctx = static_cast<ExampleSource::Context*>(context);
  cv::Mat rgb;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t index = indices[i];
    RETURN_IF_ERROR(source_->Read(index, ctx, &rgb));
    std::mt19937_64 rng(MixSeed(options_.seed, {uint64_t(epoch), uint64_t(sampler_.options().rank),
                                                uint64_t(first_position + i)}));
    RETURN_IF_ERROR(WithContext(ApplyTransform(rgb, options_.transform, &rng, images + i * per_image),
                                absl::StrCat("example ", index)));
    labels[i] = source_->label(index);
    if (options_.soft_labels) {
      float* soft = batch->soft_labels.data_ptr<float>() + i * options_.num_classes;
      const std::vector<float>& d = source_->distribution(index);
      if (!d.empty()) {
        if (int(d.size()) != options_.num_classes) {
          return absl::InvalidArgumentError(absl::StrCat("example ", index, ": distribution has ", d.size(),
                                                         " classes, expected ", options_.num_classes));
        }
        std::copy(d.begin(), d.end(), soft);
      } else if (labels[i] >= 0 && labels[i] < options_.num_classes) {
        soft[labels[i]] = 1.0f;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace dmue::datasets
