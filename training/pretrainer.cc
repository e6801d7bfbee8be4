#include "training/pretrainer.h"

#include <filesystem>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

constexpr FieldErrors kFieldError("PretrainConfig");

absl::Status SaveNested(const std::string& path, MvFace& model, int64_t epoch, int64_t batch_id) {
  ASSIGN_OR_RETURN(io::Value state_dict, io::StateDictToValue(ModuleStateDictForSaving(*model)));
  io::Value root = io::Value::MakeDict();
  root.mutable_dict().Set(io::Value::String("state_dict"), std::move(state_dict));
  root.mutable_dict().Set(io::Value::String("epoch"), io::Value::Int(epoch));
  root.mutable_dict().Set(io::Value::String("batch_id"), io::Value::Int(batch_id));
  return io::WriteCheckpoint(path, root);
}

}  // namespace

absl::Status ValidatePretrainConfig(const PretrainConfig& config) {
  ModelConfig backbone = config.backbone();
  RETURN_IF_ERROR(kFieldError.Nested("backbone", ValidateModelConfig(backbone)));
  if (!config.has_data()) return kFieldError("data", "is required");
  RETURN_IF_ERROR(kFieldError.Nested("data", datasets::ValidateDatasetConfig(config.data())));
  if (config.num_identities() < 2) return kFieldError("num_identities", "must be >= 2");
  if (config.data().num_classes() != config.num_identities()) {
    return kFieldError("data.num_classes", "must equal num_identities");
  }
  if (!(config.margin() >= 0 && config.margin() < 1.5)) return kFieldError("margin", "must be in [0, 1.5)");
  if (!(config.mask() >= 1.0)) return kFieldError("mask", "must be >= 1");
  if (!(config.scale() > 0)) return kFieldError("scale", "must be > 0");
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
  RETURN_IF_ERROR(ValidatePretrainConfig(config));
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(config.device(), "PretrainConfig.device"));
  std::error_code ec;
  std::filesystem::create_directories(config.output_dir(), ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create '", config.output_dir(), "'"));
  torch::set_num_threads(config.num_threads());
  torch::manual_seed(config.seed());
  MvSoftmaxOptions head;
  head.is_am = config.is_am();
  head.margin = config.margin();
  head.mask = config.mask();
  head.scale = config.scale();
  head.normalize_features = config.normalize_features();
  MvFace model(config.backbone(), config.num_identities(), head);
  MoveToDevice(*model, device);  // before the optimiser: its state follows
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(config.lr())
                                                 .momentum(config.momentum())
                                                 .weight_decay(config.weight_decay()));
  std::vector<int> milestones(config.milestones().begin(), config.milestones().end());
  if (milestones.empty()) milestones = {10, 13, 16};
  ASSIGN_OR_RETURN(std::unique_ptr<datasets::Loader> loader, WithContext(datasets::MakeLoader(config.data()), "data"));

  PretrainSummary summary;
  double window = 0;
  int64_t window_n = 0;
  bool first_window = true;
  for (int epoch = 0; epoch < config.epochs(); ++epoch) {
    double lr = config.lr();
    for (int m : milestones) lr *= epoch >= m ? 0.1 : 1.0;
    for (auto& group : sgd.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    loader->StartEpoch(epoch);
    ProgressMeter progress(absl::StrCat("pretrain epoch ", epoch),
                           loader->batches_per_epoch() * config.data().batch_size(), 10.0);
    int64_t batch_id = 0;
    while (true) {
      ASSIGN_OR_RETURN(auto next, loader->Next());
      if (!next.has_value()) break;
      const torch::Tensor images = next->images.to(device), labels = next->labels.to(device);
      torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(images, labels), labels);
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
                                     loader->batches_per_epoch(), lr, window / window_n);
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
