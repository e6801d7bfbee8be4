#include "training/trainer.h"

#include <filesystem>

#include <torch/torch.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "datasets/dataset_config.h"
#include "datasets/loader.h"
#include "datasets/seed.h"
#include "dmue/base/files.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "dmue/config/text_proto.h"
#include "dmue/dmue_model.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/model_bundle.h"
#include "dmue/model_io.h"
#include "dmue/optimizer.h"
#include "dmue/schedule.h"
#include "dmue/state_dict.h"
#include "dmue/train_step.h"
#include "dmue/util/plot.h"
#include "dmue/util/progress.h"
#include "glog/logging.h"
#include "google/protobuf/text_format.h"
#include "training/auto_compute.h"
#include "training/checkpoint.h"
#include "training/distributed.h"
#include "training/metrics_log.h"
#include "training/trainer_config.h"

namespace dmue::training {
namespace {

namespace fs = std::filesystem;

struct LossSums {
  double ce = 0, soft = 0, sp = 0, aux = 0, total = 0;
  int64_t n = 0;
  void Add(const DmueLosses& losses) {
    ce += losses.ce.item<double>();
    soft += losses.soft.item<double>();
    sp += losses.sp.item<double>();
    aux += losses.aux.item<double>();
    total += losses.total.item<double>();
    ++n;
  }
};

absl::Status WriteMultiBranchSnapshot(const std::string& path, DmueModel& model) {
  return io::WriteStateDict(path, ModuleStateDictForSaving(*model));
}

std::vector<std::string> ClassNames(const TrainerConfig& config) {
  std::vector<std::string> names(config.class_names().begin(), config.class_names().end());
  for (int c = static_cast<int>(names.size()); c < config.model().num_classes(); ++c) {
    names.push_back(absl::StrCat(c));
  }
  return names;
}

OptimizerSettings ToOptimizerSettings(const TrainerConfig& config) {
  OptimizerSettings settings;
  const LearningRates lr = LearningRatesAt(config, config.start_epoch());
  settings.lr1 = lr.base;
  settings.lr2 = lr.classifier;
  settings.weight_decay = config.weight_decay();
  settings.train_heads = config.train_heads();
  settings.kind = config.optimizer() == TrainerConfig::SGD ? OptimizerSettings::Kind::kSgd
                                                           : OptimizerSettings::Kind::kAdam;
  settings.momentum = config.momentum();
  settings.nesterov = config.nesterov();
  return settings;
}

// The configured precision and layout, or (AUTO) the fastest measured on
// `device` for the run's loss and batch shape.
absl::StatusOr<ComputeOptions> ChooseCompute(const TrainerConfig& config, const torch::Device& device) {
  if (config.precision() != TrainerConfig::AUTO) {
    ComputeOptions options;
    options.channels_last = config.channels_last();
    options.precision = config.precision() == TrainerConfig::BF16 ? Precision::kBFloat16 : Precision::kFloat32;
    options.device = device;
    return options;
  }
  ComputeProbe probe;
  probe.device = device;
  probe.model = config.model();
  // A DMUE run spends nearly all its time in DMUE steps; time those.
  probe.dmue = config.loss() == TrainerConfig::DMUE && config.ce_warmup_epochs() < config.max_epoch();
  probe.batch_size = config.train_data().batch_size();
  probe.image_size = config.train_data().crop();
  ASSIGN_OR_RETURN(const ComputeChoice choice, ChooseTrainingCompute(probe));
  LOG(INFO) << choice.Summary();
  return choice.options;
}

HeatMap ConfusionHeatMap(const EvalResult& eval, const std::string& tag, std::vector<std::string> class_names) {
  HeatMap map;
  map.title = absl::StrFormat("%s confusion (row-normalised), acc %.4f", tag, eval.metrics.accuracy);
  map.row_labels = map.col_labels = std::move(class_names);
  map.values = eval.confusion.RowNormalized();
  return map;
}

}  // namespace

StepSettings EpochStepSettings(const TrainerConfig& config, int64_t epoch, const ComputeOptions& compute) {
  StepSettings step;
  const bool dmue = config.loss() == TrainerConfig::DMUE && epoch >= config.ce_warmup_epochs();
  step.loss = dmue ? StepLoss::kDmue : StepLoss::kCrossEntropy;
  step.label_smoothing = config.label_smoothing();
  step.temperature = config.temperature();
  const double dmue_epoch = static_cast<double>(epoch - config.ce_warmup_epochs());
  step.weights.w = config.w();
  step.weights.gamma = config.gamma();
  step.weights.pairwise_uncertainty = config.pairwise_uncertainty();
  step.weights.ramp_up = config.ramps() ? RampUp(dmue_epoch, config.ramp_a()) : 1.0;
  step.weights.ramp_down = config.ramps() ? RampDown(dmue_epoch, config.ramp_a()) : 1.0;
  step.compute = compute;
  return step;
}

struct Trainer::State {
  TrainerConfig config;
  std::string config_text;
  DmueModel model{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<datasets::Loader> train_loader;
  std::unique_ptr<datasets::Loader> val_loader;
  std::optional<MetricsLog> metrics;
  TrainingState progress;
  bool resumed_mid_epoch = false;
  ComputeOptions compute;
  torch::Device device = torch::kCPU;  // of this rank
  TrainSummary summary;
  std::unique_ptr<DistributedContext> distributed;  // null: single process
  std::unique_ptr<GradientSynchronizer> gradients;  // with `distributed`
  bool is_main() const { return !distributed || distributed->is_main(); }
  int64_t ddp_bucket_bytes() const { return int64_t{config.ddp_bucket_mb()} << 20; }
  void AverageGradients() {
    if (gradients) {
      gradients->Finish();
    } else if (distributed) {
      distributed->AverageGradients(model->parameters(), ddp_bucket_bytes());
    }
  }

  // Dropout masks come from LibTorch's global generator; seeding it from
  // (seed, rank, step) before every step makes them a function of the step,
  // so a run resumed from last.pth draws what the uninterrupted run drew.
  void SeedStep() const {
    const uint64_t rank = distributed ? uint64_t(distributed->rank()) : 0;
    torch::manual_seed(datasets::MixSeed(config.seed(), {0x64726f70ULL, rank, uint64_t(progress.global_step)}));
  }

  // Set-up, in the order Create runs them.
  absl::Status JoinDataParallelGroup();  // and resolves `device`
  absl::Status BuildModel();
  absl::Status OpenData();
  absl::Status ResumeFromLast();
  void ShareWeightsAcrossRanks();

  // The loop.
  StepSettings StartEpoch(int64_t epoch);
  absl::StatusOr<DmueLosses> StepBatch(const datasets::Batch& batch, const StepSettings& step);
  absl::Status LogLosses(const LossSums& sums, double lr, StepLoss loss);
  absl::Status EndEpoch(int64_t epoch, const ProgressMeter& meter);
  absl::StatusOr<ConfusionMatrix> ValidationConfusion();
  absl::StatusOr<EvalResult> Evaluate();
  absl::Status Validate(const std::string& tag, bool snapshot);
  absl::Status AfterEval(const EvalResult& eval, const std::string& tag, bool snapshot);
  absl::Status ExportBest(double accuracy);
  absl::Status SaveLast();
};

Trainer::Trainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainerConfig& config) {
  RETURN_IF_ERROR(ValidateTrainerConfig(config));
  auto state = std::make_unique<State>();
  state->config = config;
  RETURN_IF_ERROR(state->JoinDataParallelGroup());
  google::protobuf::TextFormat::PrintToString(config, &state->config_text);
  const std::string& out = config.output_dir();
  std::error_code ec;
  fs::create_directories(fs::path(out) / "snapshots", ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create output_dir '", out, "': ", ec.message()));
  if (state->is_main()) RETURN_IF_ERROR(WriteTextProtoFile(out + "/config.pbtxt", config));

  torch::set_num_threads(config.num_threads());
  ASSIGN_OR_RETURN(state->compute, ChooseCompute(config, state->device));
  RETURN_IF_ERROR(state->BuildModel());
  RETURN_IF_ERROR(state->OpenData());
  ASSIGN_OR_RETURN(MetricsLog metrics, MetricsLog::Open(out));
  state->metrics.emplace(std::move(metrics));
  RETURN_IF_ERROR(state->ResumeFromLast());
  state->summary.best_accuracy = state->progress.best_accuracy;
  state->ShareWeightsAcrossRanks();
  return std::unique_ptr<Trainer>(new Trainer(std::move(state)));
}

absl::Status Trainer::State::JoinDataParallelGroup() {
  ASSIGN_OR_RETURN(const DistributedEnv env, DistributedEnvFromEnvironment());
  // Before anything is written: a device this LibTorch cannot use fails here.
  ASSIGN_OR_RETURN(const torch::Device configured, ParseDevice(config.device()));
  device = env.world_size > 1 ? RankDevice(configured, env) : configured;
  RETURN_IF_ERROR(WithContext(CheckDeviceAvailable(device), "TrainerConfig.device"));
  LOG_IF(INFO, !device.is_cpu()) << "Training on " << device.str();
  if (env.world_size <= 1) return absl::OkStatus();
  ASSIGN_OR_RETURN(distributed, DistributedContext::Create(env, device));
  LOG(INFO) << "Data-parallel rank " << env.rank << " of " << env.world_size << " over "
            << BackendName(BackendForDevice(device));
  return absl::OkStatus();
}

absl::Status Trainer::State::BuildModel() {
  torch::manual_seed(config.seed());
  model = DmueModel(config.model());
  if (!config.pretrained().empty()) {
    RETURN_IF_ERROR(config.pretrained_mapping() == TrainerConfig::MSRA ? LoadMsraPretrained(config.pretrained(), model)
                                                                       : LoadDmueWeights(config.pretrained(), model));
    LOG(INFO) << "Loaded pretrained weights from " << config.pretrained();
  }
  // Before the optimiser is built, so that its state follows the parameters.
  MoveToDevice(*model, compute.device);
  SetChannelsLast(*model, compute.channels_last);
  model->train();
  optimizer = MakeOptimizer(model, ToOptimizerSettings(config));
  return absl::OkStatus();
}

absl::Status Trainer::State::OpenData() {
  const int rank = distributed ? distributed->rank() : 0;
  const int world_size = distributed ? distributed->world_size() : 1;
  std::vector<datasets::NoisyLabel> noisy;
  ASSIGN_OR_RETURN(train_loader,
                   WithContext(datasets::MakeLoader(config.train_data(), rank, world_size, &noisy), "train_data"));
  const std::string& out = config.output_dir();
  if (!noisy.empty() && is_main()) {
    // Which labels were flipped, for the label audit to score its ranking.
    RETURN_IF_ERROR(WriteFileAtomically(out + "/noisy_labels.txt", datasets::FormatNoisyLabels(noisy)));
    LOG(INFO) << "label_noise_rate " << config.train_data().label_noise_rate() << ": " << noisy.size()
              << " labels flipped, listed in " << out << "/noisy_labels.txt";
  }
  if (!config.has_val_data() || !is_main()) return absl::OkStatus();
  ASSIGN_OR_RETURN(val_loader, WithContext(datasets::MakeLoader(config.val_data()), "val_data"));
  return absl::OkStatus();
}

absl::Status Trainer::State::ResumeFromLast() {
  progress.epoch = config.start_epoch();
  const std::string last = config.output_dir() + "/last.pth";
  if (!config.resume() || !fs::exists(last)) return absl::OkStatus();
  ASSIGN_OR_RETURN(progress, LoadTrainingCheckpoint(last, model, *optimizer));
  if (!progress.sampler_state.empty() && progress.batch_in_epoch > 0) {
    RETURN_IF_ERROR(train_loader->RestoreState(progress.sampler_state));
    resumed_mid_epoch = true;
  }
  LOG(INFO) << "Resumed from " << last << " at epoch " << progress.epoch << " batch " << progress.batch_in_epoch
            << " (step " << progress.global_step << ")";
  return absl::OkStatus();
}

void Trainer::State::ShareWeightsAcrossRanks() {
  if (!distributed) {
    LOG_IF(WARNING, config.sync_batch_norm())
        << "sync_batch_norm is set but this is a single-process run: nothing to synchronise";
    return;
  }
  // Every rank starts from rank 0's weights (init, pretrained or resumed).
  std::vector<at::Tensor> tensors;
  for (const auto& [name, t] : ModuleStateDict(*model)) tensors.push_back(t);
  distributed->BroadcastFromMain(tensors);
  if (config.ddp_overlap_backward()) {
    gradients = std::make_unique<GradientSynchronizer>(distributed.get(), model->parameters(), ddp_bucket_bytes());
  }
  if (config.sync_batch_norm()) {
    const int layers = SetBatchNormSync(*model, distributed->MakeBatchStatsReducer());
    LOG_IF(INFO, is_main()) << "SyncBN: " << layers << " BatchNorm layers pool their statistics over "
                            << distributed->world_size() << " ranks";
  }
}

StepSettings Trainer::State::StartEpoch(int64_t epoch) {
  progress.epoch = epoch;
  const int warmup_epochs = config.ce_warmup_epochs();
  if (config.loss() == TrainerConfig::DMUE && warmup_epochs > 0 && epoch == warmup_epochs && !resumed_mid_epoch) {
    model->CopyMainLayer4ToAuxiliaryBranches();
    LOG(INFO) << "CE warm-up done: main layer4 copied into the " << config.model().num_classes()
              << " auxiliary branches";
  }
  StepSettings step = EpochStepSettings(config, epoch, compute);
  if (distributed) step.after_backward = [this] { AverageGradients(); };
  const bool ce = step.loss == StepLoss::kCrossEntropy;
  const LearningRates lr = LearningRatesAt(config, static_cast<double>(epoch));
  LOG(INFO) << "Epoch " << epoch << (ce ? " (cross entropy)" : " (DMUE)") << ": lr1 " << lr.base << " lr2 "
            << lr.classifier
            << (ce ? "" : absl::StrFormat(", ramp_up_w %.4f ramp_down_w %.4f", step.weights.ramp_up,
                                          step.weights.ramp_down));
  if (!resumed_mid_epoch) {
    train_loader->StartEpoch(epoch);
    progress.batch_in_epoch = 0;
  }
  resumed_mid_epoch = false;
  return step;
}

absl::StatusOr<DmueLosses> Trainer::State::StepBatch(const datasets::Batch& batch, const StepSettings& step) {
  if (step.loss == StepLoss::kDmue) {
    // The reference skips a batch in which some class has < 2 samples;
    // with several ranks, all skip together (as its DDP script agrees).
    absl::Status usable = CheckBatch(batch.labels, config.model().num_classes());
    if (distributed && !distributed->AllTrue(usable.ok()) && usable.ok()) {
      usable = absl::InvalidArgumentError("another rank's batch lacks a class");
    }
    RETURN_IF_ERROR(usable);
  }
  return TrainStep(model, *optimizer, batch.images, batch.labels, step, batch.soft_labels);
}

absl::Status Trainer::State::LogLosses(const LossSums& sums, double lr, StepLoss loss) {
  const double n = static_cast<double>(sums.n);
  LOG(INFO) << absl::StrFormat(
      "Epoch %d Batch %d/%d: CEloss %.6f, softLoss %.6f, spLoss %.6f, aux_loss %.6f, loss %.6f%s", progress.epoch,
      progress.batch_in_epoch, train_loader->batches_per_epoch(), sums.ce / n, sums.soft / n, sums.sp / n,
      sums.aux / n, sums.total / n,
      summary.skipped_batches ? absl::StrCat(" (", summary.skipped_batches, " batches skipped)") : "");
  std::map<std::string, double> values = {{"loss", sums.total / n}, {"ce", sums.ce / n}, {"lr", lr}};
  if (loss == StepLoss::kDmue) {
    values["soft"] = sums.soft / n;
    values["sp"] = sums.sp / n;
    values["aux"] = sums.aux / n;
  }
  return metrics->Append({"train", progress.epoch, progress.global_step, values});
}

absl::Status Trainer::State::EndEpoch(int64_t epoch, const ProgressMeter& meter) {
  if (is_main()) {
    RETURN_IF_ERROR(metrics->Append({"epoch", epoch, progress.global_step,
                                     // A resumed epoch: the part this process ran.
                                     {{"seconds", meter.ElapsedSeconds()},
                                      {"images_per_second", meter.ItemsPerSecond()},
                                      {"lr", LearningRatesAt(config, static_cast<double>(epoch)).base}}}));
  }
  progress.epoch = epoch + 1;
  progress.batch_in_epoch = 0;
  if (val_loader) {
    const int every = config.snapshot_every_epochs();
    RETURN_IF_ERROR(Validate(absl::StrCat("ep", epoch), every > 0 && (epoch + 1) % every == 0));
  }
  RETURN_IF_ERROR(SaveLast());
  if (distributed) distributed->Barrier();
  return absl::OkStatus();
}

absl::StatusOr<ConfusionMatrix> Trainer::State::ValidationConfusion() {
  ConfusionMatrix confusion(config.model().num_classes());
  val_loader->StartEpoch(0);
  torch::NoGradGuard no_grad;
  ScopedAutocast autocast(compute);
  while (true) {
    ASSIGN_OR_RETURN(std::optional<datasets::Batch> batch, val_loader->Next());
    if (!batch.has_value()) return confusion;
    // Read on the host (no copy on the CPU).
    const torch::Tensor predicted =
        model->ForwardEval(PrepareImages(batch->images, compute)).argmax(1).to(torch::kCPU);
    auto p = predicted.accessor<int64_t, 1>();
    auto l = batch->labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < p.size(0); ++i) RETURN_IF_ERROR(confusion.Add(int(l[i]), int(p[i])));
  }
}

absl::StatusOr<EvalResult> Trainer::State::Evaluate() {
  model->eval();
  absl::Cleanup back_to_training = [this] { model->train(); };
  ASSIGN_OR_RETURN(ConfusionMatrix confusion, ValidationConfusion());
  ClassificationSummary summary = Summarize(confusion);
  return EvalResult{std::move(confusion), std::move(summary)};
}

absl::Status Trainer::State::Validate(const std::string& tag, bool snapshot) {
  ASSIGN_OR_RETURN(const EvalResult eval, Evaluate());
  return AfterEval(eval, tag, snapshot);
}

absl::Status Trainer::State::SaveLast() {
  if (!is_main()) return absl::OkStatus();
  progress.sampler_state = train_loader->SerializeState();
  progress.config_text = config_text;
  google::protobuf::TextFormat::PrintToString(InferenceSpec(config), &progress.model_spec_text);
  progress.best_accuracy = summary.best_accuracy;
  return SaveTrainingCheckpoint(config.output_dir() + "/last.pth", model, *optimizer, progress);
}

absl::Status Trainer::State::AfterEval(const EvalResult& eval, const std::string& tag, bool snapshot) {
  const double accuracy = eval.metrics.accuracy, mean_class_accuracy = eval.metrics.mean_class_accuracy;
  summary.last_eval = eval;
  LOG(INFO) << tag << ": Acc is " << absl::StrFormat("%.4f", accuracy) << " (mean per-class "
            << absl::StrFormat("%.4f", mean_class_accuracy) << ", " << eval.metrics.count << " images)";
  RETURN_IF_ERROR(metrics->Append({"eval", progress.epoch, progress.global_step,
                                   {{"accuracy", accuracy}, {"mean_class_accuracy", mean_class_accuracy}}}));
  const std::string& out = config.output_dir();
  if (snapshot) {
    RETURN_IF_ERROR(
        WriteMultiBranchSnapshot(absl::StrFormat("%s/snapshots/%s_acc%.4f.pth", out, tag, accuracy), model));
  }
  RETURN_IF_ERROR(WriteHeatMap(out + "/confusion_latest.png", ConfusionHeatMap(eval, tag, ClassNames(config))));
  if (accuracy > summary.best_accuracy) RETURN_IF_ERROR(ExportBest(accuracy));
  return metrics->WriteCurves();
}

absl::Status Trainer::State::ExportBest(double accuracy) {
  summary.best_accuracy = accuracy;
  const std::string weights = config.output_dir() + "/best_inference.pth";
  RETURN_IF_ERROR(ExportInferenceWeights(ModuleStateDict(*model), config.model().num_classes(), weights));
  RETURN_IF_ERROR(WriteModelSpec(SpecPathFor(weights), InferenceSpec(config)));
  LOG(INFO) << "New best accuracy " << absl::StrFormat("%.4f", accuracy) << ": wrote " << weights << " and its spec "
            << SpecPathFor(weights);
  return absl::OkStatus();
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  State& s = *state_;
  const TrainerConfig& config = s.config;
  const int64_t batches = s.train_loader->batches_per_epoch();
  const int64_t batch_size = config.train_data().batch_size();
  int64_t images_seen = 0;
  ProgressMeter overall("train", (config.max_epoch() - s.progress.epoch) * batches * batch_size, 1e9);

  for (int64_t epoch = s.progress.epoch; epoch < config.max_epoch(); ++epoch) {
    const StepSettings step = s.StartEpoch(epoch);
    ProgressMeter progress(absl::StrCat("epoch ", epoch), batches * batch_size, 10.0);
    progress.Skip(s.progress.batch_in_epoch * batch_size);
    LossSums sums;
    while (true) {
      ASSIGN_OR_RETURN(std::optional<datasets::Batch> next, s.train_loader->Next());
      if (!next.has_value()) break;
      const datasets::Batch& batch = *next;
      // Per-step rates: warm-up and cosine move within an epoch.
      const LearningRates lr =
          LearningRatesAt(config, epoch + static_cast<double>(batch.batch_index) / std::max<int64_t>(batches, 1));
      SetLearningRates(*s.optimizer, lr.base, lr.classifier);
      s.SeedStep();
      s.progress.batch_in_epoch = batch.batch_index + 1;
      absl::StatusOr<DmueLosses> losses = s.StepBatch(batch, step);
      if (!losses.ok()) {
        if (losses.status().code() != absl::StatusCode::kInvalidArgument) return losses.status();
        ++s.summary.skipped_batches;
        VLOG(1) << "Skipped batch " << batch.batch_index << ": " << losses.status().message();
        progress.Add(batch_size);
        continue;
      }
      sums.Add(*losses);
      ++s.progress.global_step;
      ++s.summary.steps;
      images_seen += batch_size;
      overall.Add(batch_size);
      progress.Add(batch_size, absl::StrFormat("loss %.4f", sums.n ? sums.total / sums.n : 0.0));

      if (s.is_main() && s.progress.batch_in_epoch % config.log_every_batches() == 0 && sums.n > 0) {
        RETURN_IF_ERROR(s.LogLosses(sums, lr.base, step.loss));
        sums = LossSums();
      }
      if (s.val_loader && config.eval_every_batches() > 0 &&
          s.progress.batch_in_epoch % config.eval_every_batches() == 0) {
        RETURN_IF_ERROR(s.Validate(absl::StrCat("ep", epoch, "_b", s.progress.batch_in_epoch),
                                   config.snapshot_every_epochs() > 0));
      }
      const bool step_limit = config.max_steps() > 0 && s.progress.global_step >= config.max_steps();
      bool stop = stop_requested_.load();
      if (s.distributed) stop = !s.distributed->AllTrue(!stop);
      if (stop || step_limit) {
        RETURN_IF_ERROR(s.SaveLast());
        LOG_IF(INFO, s.is_main()) << (step_limit ? "Reached max_steps" : "Stop requested") << ": saved "
                                  << config.output_dir() << "/last.pth at epoch " << epoch << " batch "
                                  << s.progress.batch_in_epoch;
        s.summary.stopped_early = true;
        s.summary.images_per_second = images_seen / std::max(overall.ElapsedSeconds(), 1e-9);
        (void)s.metrics->WriteCurves();
        return s.summary;
      }
    }
    progress.Finish();
    RETURN_IF_ERROR(s.EndEpoch(epoch, progress));
  }
  s.summary.images_per_second = images_seen / std::max(overall.ElapsedSeconds(), 1e-9);
  LOG(INFO) << "Training done: " << s.summary.steps << " steps, " << s.summary.skipped_batches
            << " skipped batches, " << absl::StrFormat("%.1f", s.summary.images_per_second)
            << " images/s, best accuracy " << absl::StrFormat("%.4f", s.summary.best_accuracy);
  return s.summary;
}

}  // namespace dmue::training
