#include "training/pretrainer.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "datasets/dataset_config.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "dmue/compute.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/model_config.h"
#include "dmue/state_dict.h"
#include "dmue/util/progress.h"
#include "glog/logging.h"
#include "training/mv_softmax.h"

namespace dmue::training {
namespace {

namespace fs = std::filesystem;

constexpr FieldErrors kFieldError("PretrainConfig");
constexpr char kTeacherCacheName[] = "teacher_cache.bin";

absl::Status SaveNested(const std::string& path, torch::nn::Module& model, int64_t epoch, int64_t batch_id) {
  ASSIGN_OR_RETURN(io::Value state_dict, io::StateDictToValue(ModuleStateDictForSaving(model)));
  io::Value root = io::Value::MakeDict();
  root.mutable_dict().Set(io::Value::String("state_dict"), std::move(state_dict));
  root.mutable_dict().Set(io::Value::String("epoch"), io::Value::Int(epoch));
  root.mutable_dict().Set(io::Value::String("batch_id"), io::Value::Int(batch_id));
  return io::WriteCheckpoint(path, root);
}

// The mv_epoch_<E>.pt of `dir` with the largest E, if any.
std::optional<std::pair<std::string, int>> NewestCheckpoint(const std::string& dir) {
  std::optional<std::pair<std::string, int>> newest;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    absl::string_view name = entry.path().filename().native();
    int epoch = -1;
    if (!absl::ConsumePrefix(&name, "mv_epoch_") || !absl::ConsumeSuffix(&name, ".pt")) continue;
    if (!absl::SimpleAtoi(name, &epoch) || epoch < 0) continue;
    if (!newest || epoch > newest->second) newest = {{entry.path().string(), epoch}};
  }
  return newest;
}

// Loads the newest checkpoint's weights into `model`; returns the epoch to
// continue at (0 without one).
absl::StatusOr<int> Resume(const std::string& dir, torch::nn::Module& model, int64_t batches_per_epoch,
                           std::string* from) {
  const auto newest = NewestCheckpoint(dir);
  if (!newest) return 0;
  const auto& [path, epoch] = *newest;
  *from = path;
  ASSIGN_OR_RETURN(io::Value root, io::ReadCheckpoint(path));
  ASSIGN_OR_RETURN(StateDict weights, io::ToStateDict(root, {}, path));
  RETURN_IF_ERROR(WithContext(LoadStateDict(model, weights), path));
  const io::Value* batch_id = root.is_dict() ? root.dict().Find("batch_id") : nullptr;
  const bool complete = batch_id != nullptr && batch_id->is_int() && batch_id->as_int() >= batches_per_epoch;
  LOG(INFO) << "Resumed from " << path << (complete ? "" : " (an incomplete epoch: redone)");
  return complete ? epoch + 1 : epoch;
}

// What differs between the objectives: the model, the loader, a batch's loss.
struct Objective {
  std::shared_ptr<torch::nn::Module> model;
  std::unique_ptr<datasets::Loader> loader;
  std::function<torch::Tensor(const datasets::Batch&)> loss;
};

absl::StatusOr<Objective> MvSoftmaxObjective(const PretrainConfig& config, const torch::Device& device) {
  MvSoftmaxOptions head;
  head.is_am = config.is_am();
  head.margin = config.margin();
  head.mask = config.mask();
  head.scale = config.scale();
  head.normalize_features = config.normalize_features();
  MvFace model(config.backbone(), config.num_identities(), head);
  Objective objective;
  objective.model = model.ptr();
  ASSIGN_OR_RETURN(objective.loader, WithContext(datasets::MakeLoader(config.data()), "data"));
  objective.loss = [model, device](const datasets::Batch& batch) mutable {
    const torch::Tensor images = batch.images.to(device), labels = batch.labels.to(device);
    return torch::nn::functional::cross_entropy(model->forward(images, labels), labels);
  };
  return objective;
}

// The student sees the loader's view (its flip turned off), mirrored here
// with probability flip_p, and learns the teacher's descriptor of the same
// face, mirrored alike.
absl::StatusOr<Objective> DistillationObjective(const PretrainConfig& config, const torch::Device& device,
                                                const DescriptorTeacher& teacher) {
  datasets::DatasetConfig data = config.data();
  const double flip_p = data.augmentation().flip_p();
  data.mutable_augmentation()->set_flip_p(0);
  ASSIGN_OR_RETURN(std::shared_ptr<datasets::LmdbSource> source, WithContext(datasets::OpenSource(data), "data"));
  TeacherCacheOptions cache;
  cache.path = absl::StrCat(config.output_dir(), "/", kTeacherCacheName);
  cache.grayscale = data.grayscale();
  cache.batch_size = config.teacher_batch_size();
  cache.save_seconds = config.teacher_cache_save_seconds();
  ASSIGN_OR_RETURN(at::Tensor targets, BuildTeacherCache(*source, teacher, cache));
  targets = targets.to(device);
  DescriptorStudent model(config.backbone(), teacher.descriptor_size());
  Objective objective;
  objective.model = model.ptr();
  ASSIGN_OR_RETURN(objective.loader, WithContext(datasets::MakeLoaderOver(data, source), "data"));
  const uint64_t seed = data.seed();
  objective.loss = [model, device, targets, flip_p, seed](const datasets::Batch& batch) mutable {
    const StudentBatch student = MirrorWithTargets(batch, targets, flip_p, seed);
    return DescriptorLoss(model->forward(student.images.to(device)), student.targets);
  };
  return objective;
}

}  // namespace

absl::Status ValidatePretrainConfig(const PretrainConfig& config) {
  ModelConfig backbone = config.backbone();
  RETURN_IF_ERROR(kFieldError.Nested("backbone", ValidateModelConfig(backbone)));
  if (!config.has_data()) return kFieldError("data", "is required");
  RETURN_IF_ERROR(kFieldError.Nested("data", datasets::ValidateDatasetConfig(config.data())));
  switch (config.objective()) {
    case PretrainConfig::MV_SOFTMAX:
      if (!config.teacher_dir().empty()) {
        return kFieldError("teacher_dir", "is only used with objective DESCRIPTOR_DISTILLATION");
      }
      if (config.num_identities() < 2) return kFieldError("num_identities", "must be >= 2");
      if (config.data().num_classes() != config.num_identities()) {
        return kFieldError("data.num_classes", "must equal num_identities");
      }
      if (!(config.margin() >= 0 && config.margin() < 1.5)) return kFieldError("margin", "must be in [0, 1.5)");
      if (!(config.mask() >= 1.0)) return kFieldError("mask", "must be >= 1");
      if (!(config.scale() > 0)) return kFieldError("scale", "must be > 0");
      break;
    case PretrainConfig::DESCRIPTOR_DISTILLATION:
      if (config.teacher_batch_size() <= 0) return kFieldError("teacher_batch_size", "must be > 0");
      if (!(config.teacher_cache_save_seconds() >= 0)) {
        return kFieldError("teacher_cache_save_seconds", "must be >= 0");
      }
      break;
    default:
      return kFieldError("objective", "must be MV_SOFTMAX or DESCRIPTOR_DISTILLATION");
  }
  if (!(config.lr() > 0)) return kFieldError("lr", "must be > 0");
  if (!(config.momentum() >= 0 && config.momentum() < 1)) return kFieldError("momentum", "must be in [0, 1)");
  if (config.epochs() <= 0) return kFieldError("epochs", "must be > 0");
  if (config.output_dir().empty()) return kFieldError("output_dir", "is required");
  if (config.log_every_batches() <= 0) return kFieldError("log_every_batches", "must be > 0");
  RETURN_IF_ERROR(kFieldError.Nested("device", ParseDevice(config.device()).status()));
  for (int i = 1; i < config.milestones_size(); ++i) {
    if (config.milestones(i) <= config.milestones(i - 1)) return kFieldError("milestones", "must increase");
  }
  return absl::OkStatus();
}

absl::StatusOr<PretrainSummary> RunPretraining(const PretrainConfig& config) {
  if (config.objective() != PretrainConfig::DESCRIPTOR_DISTILLATION) return RunPretraining(config, nullptr);
  RETURN_IF_ERROR(ValidatePretrainConfig(config));
  absl::StatusOr<std::unique_ptr<DescriptorTeacher>> teacher = LoadFaceApiTeacher(config.teacher_dir());
  if (!teacher.ok()) return kFieldError.Nested("teacher_dir", teacher.status());
  return RunPretraining(config, teacher->get());
}

absl::StatusOr<PretrainSummary> RunPretraining(const PretrainConfig& config, const DescriptorTeacher* teacher) {
  RETURN_IF_ERROR(ValidatePretrainConfig(config));
  const bool distill = config.objective() == PretrainConfig::DESCRIPTOR_DISTILLATION;
  if (distill && teacher == nullptr) return absl::InvalidArgumentError("DESCRIPTOR_DISTILLATION needs a teacher");
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(config.device(), "PretrainConfig.device"));
  std::error_code ec;
  fs::create_directories(config.output_dir(), ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create '", config.output_dir(), "'"));
  torch::set_num_threads(config.num_threads());
  torch::manual_seed(config.seed());
  ASSIGN_OR_RETURN(Objective objective,
                   distill ? DistillationObjective(config, device, *teacher) : MvSoftmaxObjective(config, device));
  torch::nn::Module& model = *objective.model;
  datasets::Loader& loader = *objective.loader;
  int start_epoch = 0;
  PretrainSummary summary;
  if (config.resume()) {
    ASSIGN_OR_RETURN(start_epoch,
                     Resume(config.output_dir(), model, loader.batches_per_epoch(), &summary.last_checkpoint));
  }
  MoveToDevice(model, device);  // before the optimiser: its state follows
  model.train();
  torch::optim::SGD sgd(model.parameters(), torch::optim::SGDOptions(config.lr())
                                                .momentum(config.momentum())
                                                .weight_decay(config.weight_decay()));
  std::vector<int> milestones(config.milestones().begin(), config.milestones().end());
  if (milestones.empty()) milestones = {10, 13, 16};

  double window = 0;
  int64_t window_n = 0;
  bool first_window = true;
  for (int epoch = start_epoch; epoch < config.epochs(); ++epoch) {
    double lr = config.lr();
    for (int m : milestones) lr *= epoch >= m ? 0.1 : 1.0;
    for (auto& group : sgd.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    loader.StartEpoch(epoch);
    ProgressMeter progress(absl::StrCat("pretrain epoch ", epoch), loader.batches_per_epoch() * config.data().batch_size(),
                           10.0);
    int64_t batch_id = 0;
    while (true) {
      ASSIGN_OR_RETURN(auto next, loader.Next());
      if (!next.has_value()) break;
      torch::Tensor loss = objective.loss(*next);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      ++summary.steps;
      ++batch_id;
      window += loss.item<double>();
      ++window_n;
      progress.Add(config.data().batch_size(), absl::StrFormat("loss %.4f", window / window_n));
      if (window_n == config.log_every_batches()) {
        LOG(INFO) << absl::StrFormat("Epoch %d, iter %d/%d, lr %f, loss %f", epoch, batch_id,
                                     loader.batches_per_epoch(), lr, window / window_n);
        if (first_window) summary.first_loss = window / window_n;
        first_window = false;
        summary.last_loss = window / window_n;
        window = 0;
        window_n = 0;
      }
      if (config.max_steps() > 0 && summary.steps >= config.max_steps()) break;
    }
    summary.last_checkpoint = absl::StrCat(config.output_dir(), "/mv_epoch_", epoch, ".pt");
    RETURN_IF_ERROR(SaveNested(summary.last_checkpoint, model, epoch, batch_id));
    LOG(INFO) << "Save checkpoint " << summary.last_checkpoint;
    if (config.max_steps() > 0 && summary.steps >= config.max_steps()) break;
  }
  return summary;
}

}  // namespace dmue::training
