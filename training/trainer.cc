#include "training/trainer.h"

#include <filesystem>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "absl/strings/str_format.h"
#include "datasets/dataset_config.h"
#include "datasets/loader.h"
#include "datasets/seed.h"
#include "dmue/base/files.h"
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
  void Add(double c, double s, double p, double a, double t) {
    ce += c, soft += s, sp += p, aux += a, total += t, ++n;
  }
};

absl::Status WriteMultiBranchSnapshot(const std::string& path, DmueModel& model) {
  io::StateDict state;
  for (const auto& [name, t] : ModuleStateDict(*model)) state.emplace_back(name, t.detach().contiguous());
  return io::WriteStateDict(path, state);
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

// The configured precision and layout, or (AUTO) the fastest measured on this
// CPU for the run's loss and batch shape.
absl::StatusOr<ComputeOptions> ChooseCompute(const TrainerConfig& config) {
  if (config.precision() != TrainerConfig::AUTO) {
    ComputeOptions options;
    options.channels_last = config.channels_last();
    options.precision = config.precision() == TrainerConfig::BF16 ? Precision::kBFloat16 : Precision::kFloat32;
    return options;
  }
  ComputeProbe probe;
  probe.model = config.model();
  // A DMUE run spends nearly all its time in DMUE steps; time those.
  probe.dmue = config.loss() == TrainerConfig::DMUE && config.ce_warmup_epochs() < config.max_epoch();
  probe.batch_size = config.train_data().batch_size();
  probe.image_size = config.train_data().crop();
  absl::StatusOr<ComputeChoice> choice = ChooseTrainingCompute(probe);
  if (!choice.ok()) return choice.status();
  LOG(INFO) << choice->Summary();
  return choice->options;
}

}  // namespace

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
  absl::StatusOr<EvalResult> Evaluate();
  absl::Status AfterEval(const EvalResult& eval, const std::string& tag, bool snapshot);
  absl::Status SaveLast();
};

Trainer::Trainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainerConfig& config) {
  if (absl::Status s = ValidateTrainerConfig(config); !s.ok()) return s;
  auto state = std::make_unique<State>();
  state->config = config;
  absl::StatusOr<DistributedEnv> env = DistributedEnvFromEnvironment();
  if (!env.ok()) return env.status();
  if (env->world_size > 1) {
    absl::StatusOr<std::unique_ptr<DistributedContext>> context = DistributedContext::Create(*env);
    if (!context.ok()) return context.status();
    state->distributed = std::move(*context);
    LOG(INFO) << "Data-parallel rank " << env->rank << " of " << env->world_size;
  }
  const int rank = env->rank, world_size = env->world_size;
  google::protobuf::TextFormat::PrintToString(config, &state->config_text);
  const std::string& out = config.output_dir();
  std::error_code ec;
  fs::create_directories(fs::path(out) / "snapshots", ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create output_dir '", out, "': ", ec.message()));
  if (state->is_main()) {
    if (auto s = WriteTextProtoFile(out + "/config.pbtxt", config); !s.ok()) return s;
  }

  torch::set_num_threads(config.num_threads());
  absl::StatusOr<ComputeOptions> compute = ChooseCompute(config);
  if (!compute.ok()) return compute.status();
  state->compute = *compute;
  torch::manual_seed(config.seed());
  state->model = DmueModel(config.model());
  if (!config.pretrained().empty()) {
    absl::Status loaded = config.pretrained_mapping() == TrainerConfig::MSRA
                              ? LoadMsraPretrained(config.pretrained(), state->model)
                              : LoadDmueWeights(config.pretrained(), state->model);
    if (!loaded.ok()) return loaded;
    LOG(INFO) << "Loaded pretrained weights from " << config.pretrained();
  }
  SetChannelsLast(*state->model, state->compute.channels_last);
  state->model->train();
  state->optimizer = MakeOptimizer(state->model, ToOptimizerSettings(config));

  std::vector<datasets::NoisyLabel> noisy;
  absl::StatusOr<std::unique_ptr<datasets::Loader>> train =
      datasets::MakeLoader(config.train_data(), rank, world_size, &noisy);
  if (!train.ok()) return absl::Status(train.status().code(), absl::StrCat("train_data: ", train.status().message()));
  if (!noisy.empty() && state->is_main()) {
    // Which labels were flipped, for the label audit to score its ranking.
    if (auto s = WriteFileAtomically(out + "/noisy_labels.txt", datasets::FormatNoisyLabels(noisy)); !s.ok()) return s;
    LOG(INFO) << "label_noise_rate " << config.train_data().label_noise_rate() << ": " << noisy.size()
              << " labels flipped, listed in " << out << "/noisy_labels.txt";
  }
  state->train_loader = std::move(*train);
  if (config.has_val_data() && state->is_main()) {
    absl::StatusOr<std::unique_ptr<datasets::Loader>> val = datasets::MakeLoader(config.val_data());
    if (!val.ok()) return absl::Status(val.status().code(), absl::StrCat("val_data: ", val.status().message()));
    state->val_loader = std::move(*val);
  }
  absl::StatusOr<MetricsLog> metrics = MetricsLog::Open(out);
  if (!metrics.ok()) return metrics.status();
  state->metrics.emplace(std::move(*metrics));

  state->progress.epoch = config.start_epoch();
  const std::string last = out + "/last.pth";
  if (config.resume() && fs::exists(last)) {
    absl::StatusOr<TrainingState> resumed = LoadTrainingCheckpoint(last, state->model, *state->optimizer);
    if (!resumed.ok()) return resumed.status();
    state->progress = *resumed;
    if (!state->progress.sampler_state.empty() && state->progress.batch_in_epoch > 0) {
      if (auto s = state->train_loader->RestoreState(state->progress.sampler_state); !s.ok()) return s;
      state->resumed_mid_epoch = true;
    }
    LOG(INFO) << "Resumed from " << last << " at epoch " << state->progress.epoch << " batch "
              << state->progress.batch_in_epoch << " (step " << state->progress.global_step << ")";
  }
  state->summary.best_accuracy = state->progress.best_accuracy;
  if (state->distributed) {
    // Every rank starts from rank 0's weights (init, pretrained or resumed).
    std::vector<at::Tensor> tensors;
    for (const auto& [name, t] : ModuleStateDict(*state->model)) tensors.push_back(t);
    state->distributed->BroadcastFromMain(tensors);
    if (config.ddp_overlap_backward()) {
      state->gradients = std::make_unique<GradientSynchronizer>(state->distributed.get(),
                                                                state->model->parameters(), state->ddp_bucket_bytes());
    }
    if (config.sync_batch_norm()) {
      const int layers = SetBatchNormSync(*state->model, state->distributed->MakeBatchStatsReducer());
      LOG_IF(INFO, state->is_main()) << "SyncBN: " << layers << " BatchNorm layers pool their statistics over "
                                     << state->distributed->world_size() << " ranks";
    }
  } else if (config.sync_batch_norm()) {
    LOG(WARNING) << "sync_batch_norm is set but this is a single-process run: nothing to synchronise";
  }
  return std::unique_ptr<Trainer>(new Trainer(std::move(state)));
}

absl::StatusOr<EvalResult> Trainer::State::Evaluate() {
  const int C = config.model().num_classes();
  EvalResult result;
  result.confusion.assign(C, std::vector<int64_t>(C, 0));
  model->eval();
  val_loader->StartEpoch(0);
  {
    torch::NoGradGuard no_grad;
    ScopedAutocast autocast(compute.precision);
    while (true) {
      absl::StatusOr<std::optional<datasets::Batch>> batch = val_loader->Next();
      if (!batch.ok()) {
        model->train();
        return batch.status();
      }
      if (!batch->has_value()) break;
      torch::Tensor predictions = model->ForwardEval(PrepareImages((*batch)->images, compute)).argmax(1);
      auto p = predictions.accessor<int64_t, 1>();
      auto l = (*batch)->labels.accessor<int64_t, 1>();
      for (int64_t i = 0; i < p.size(0); ++i) ++result.confusion[l[i]][p[i]];
    }
  }
  model->train();
  int64_t correct = 0, classes_seen = 0;
  double class_acc_sum = 0;
  for (int c = 0; c < C; ++c) {
    int64_t row = 0;
    for (int k = 0; k < C; ++k) row += result.confusion[c][k];
    result.count += row;
    correct += result.confusion[c][c];
    if (row > 0) {
      class_acc_sum += static_cast<double>(result.confusion[c][c]) / row;
      ++classes_seen;
    }
  }
  result.accuracy = result.count ? static_cast<double>(correct) / result.count : 0.0;
  result.mean_class_accuracy = classes_seen ? class_acc_sum / classes_seen : 0.0;
  return result;
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
  summary.last_eval = eval;
  LOG(INFO) << tag << ": Acc is " << absl::StrFormat("%.4f", eval.accuracy) << " (mean per-class "
            << absl::StrFormat("%.4f", eval.mean_class_accuracy) << ", " << eval.count << " images)";
  if (auto s = metrics->Append({"eval", progress.epoch, progress.global_step,
                                {{"accuracy", eval.accuracy}, {"mean_class_accuracy", eval.mean_class_accuracy}}});
      !s.ok()) {
    return s;
  }
  const std::string out = config.output_dir();
  const std::string name = absl::StrFormat("%s_acc%.4f.pth", tag, eval.accuracy);
  if (snapshot) {
    if (auto s = WriteMultiBranchSnapshot(out + "/snapshots/" + name, model); !s.ok()) return s;
  }
  HeatMap confusion;
  confusion.title = absl::StrFormat("%s confusion (row-normalised), acc %.4f", tag, eval.accuracy);
  confusion.row_labels = confusion.col_labels = ClassNames(config);
  for (const auto& row : eval.confusion) {
    int64_t total = 0;
    for (int64_t v : row) total += v;
    std::vector<double> normalised;
    for (int64_t v : row) normalised.push_back(total ? static_cast<double>(v) / total : 0.0);
    confusion.values.push_back(normalised);
  }
  if (auto s = WriteHeatMap(out + "/confusion_latest.png", confusion); !s.ok()) return s;
  if (eval.accuracy > summary.best_accuracy) {
    summary.best_accuracy = eval.accuracy;
    if (auto s = ExportInferenceWeights(ModuleStateDict(*model), config.model().num_classes(),
                                        out + "/best_inference.pth");
        !s.ok()) {
      return s;
    }
    const std::string weights = out + "/best_inference.pth";
    if (auto s = WriteModelSpec(SpecPathFor(weights), InferenceSpec(config)); !s.ok()) return s;
    LOG(INFO) << "New best accuracy " << absl::StrFormat("%.4f", eval.accuracy) << ": wrote " << weights
              << " and its spec " << SpecPathFor(weights);
  }
  return metrics->WriteCurves();
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  State& s = *state_;
  const TrainerConfig& config = s.config;
  const int C = config.model().num_classes();
  const bool dmue = config.loss() == TrainerConfig::DMUE;
  const int64_t batches = s.train_loader->batches_per_epoch();
  const int64_t batch_size = config.train_data().batch_size();
  StepSettings step;
  step.temperature = config.temperature();
  step.compute = s.compute;
  if (s.distributed) step.after_backward = [&s] { s.AverageGradients(); };
  int64_t images_seen = 0;
  ProgressMeter overall("train", (config.max_epoch() - s.progress.epoch) * batches * batch_size, 1e9);

  for (int64_t epoch = s.progress.epoch; epoch < config.max_epoch(); ++epoch) {
    s.progress.epoch = epoch;
    const bool warmup = !dmue || epoch < config.ce_warmup_epochs();
    if (dmue && config.ce_warmup_epochs() > 0 && epoch == config.ce_warmup_epochs() && !s.resumed_mid_epoch) {
      s.model->CopyMainLayer4ToAuxiliaryBranches();
      LOG(INFO) << "CE warm-up done: main layer4 copied into the " << C << " auxiliary branches";
    }
    const double dmue_epoch = static_cast<double>(epoch - config.ce_warmup_epochs());
    step.weights.w = config.w();
    step.weights.gamma = config.gamma();
    step.weights.pairwise_uncertainty = config.pairwise_uncertainty();
    step.weights.ramp_up = RampUp(dmue_epoch, config.ramp_a());
    step.weights.ramp_down = RampDown(dmue_epoch, config.ramp_a());
    const LearningRates epoch_lr = LearningRatesAt(config, static_cast<double>(epoch));
    LOG(INFO) << "Epoch " << epoch << (warmup ? " (cross entropy)" : " (DMUE)") << ": lr1 " << epoch_lr.base
              << " lr2 " << epoch_lr.classifier << (warmup ? "" : absl::StrFormat(", ramp_up_w %.4f ramp_down_w %.4f",
                                                                      step.weights.ramp_up, step.weights.ramp_down));
    if (!s.resumed_mid_epoch) {
      s.train_loader->StartEpoch(epoch);
      s.progress.batch_in_epoch = 0;
    }
    s.resumed_mid_epoch = false;
    ProgressMeter progress(absl::StrCat("epoch ", epoch), batches * batch_size, 10.0);
    progress.Skip(s.progress.batch_in_epoch * batch_size);
    LossSums sums;
    while (true) {
      absl::StatusOr<std::optional<datasets::Batch>> next = s.train_loader->Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) break;
      datasets::Batch& batch = **next;
      // Per-step rates: warm-up and cosine move within an epoch.
      const LearningRates lr =
          LearningRatesAt(config, epoch + static_cast<double>(batch.batch_index) / std::max<int64_t>(batches, 1));
      SetLearningRates(*s.optimizer, lr.base, lr.classifier);
      s.SeedStep();
      s.progress.batch_in_epoch = batch.batch_index + 1;
      if (warmup) {
        const double v = CrossEntropyStep(s.model, *s.optimizer, batch.images, batch.labels, batch.soft_labels,
                                          config.label_smoothing(), step);
        sums.Add(v, 0, 0, 0, v);
      } else {
        // The reference skips a batch in which some class has < 2 samples;
        // with several ranks, all skip together (as its DDP script agrees).
        bool usable = CheckBatch(batch.labels, C).ok();
        if (s.distributed) usable = s.distributed->AllTrue(usable);
        absl::StatusOr<DmueLosses> losses =
            usable ? TrainStep(s.model, *s.optimizer, batch.images, batch.labels, step)
                   : absl::StatusOr<DmueLosses>(absl::InvalidArgumentError("a rank's batch lacks a class"));
        if (!losses.ok()) {
          if (losses.status().code() != absl::StatusCode::kInvalidArgument) return losses.status();
          ++s.summary.skipped_batches;
          VLOG(1) << "Skipped batch " << batch.batch_index << ": " << losses.status().message();
          progress.Add(batch_size);
          continue;
        }
        sums.Add(losses->ce.item<double>(), losses->soft.item<double>(), losses->sp.item<double>(),
                 losses->aux.item<double>(), losses->total.item<double>());
      }
      ++s.progress.global_step;
      ++s.summary.steps;
      images_seen += batch_size;
      overall.Add(batch_size);
      progress.Add(batch_size, absl::StrFormat("loss %.4f", sums.n ? sums.total / sums.n : 0.0));

      if (s.is_main() && s.progress.batch_in_epoch % config.log_every_batches() == 0 && sums.n > 0) {
        const double n = static_cast<double>(sums.n);
        LOG(INFO) << absl::StrFormat(
            "Epoch %d Batch %d/%d: CEloss %.6f, softLoss %.6f, spLoss %.6f, aux_loss %.6f, loss %.6f%s", epoch,
            s.progress.batch_in_epoch, batches, sums.ce / n, sums.soft / n, sums.sp / n, sums.aux / n,
            sums.total / n,
            s.summary.skipped_batches ? absl::StrCat(" (", s.summary.skipped_batches, " batches skipped)") : "");
        std::map<std::string, double> values = {{"loss", sums.total / n}, {"ce", sums.ce / n}, {"lr", lr.base}};
        if (!warmup) {
          values["soft"] = sums.soft / n;
          values["sp"] = sums.sp / n;
          values["aux"] = sums.aux / n;
        }
        if (auto st = s.metrics->Append({"train", epoch, s.progress.global_step, values}); !st.ok()) return st;
        sums = LossSums();
      }
      if (s.val_loader && config.eval_every_batches() > 0 &&
          s.progress.batch_in_epoch % config.eval_every_batches() == 0) {
        absl::StatusOr<EvalResult> eval = s.Evaluate();
        if (!eval.ok()) return eval.status();
        if (auto st = s.AfterEval(*eval, absl::StrCat("ep", epoch, "_b", s.progress.batch_in_epoch),
                                   config.snapshot_every_epochs() > 0);
            !st.ok()) {
          return st;
        }
      }
      const bool step_limit = config.max_steps() > 0 && s.progress.global_step >= config.max_steps();
      bool stop = stop_requested_.load();
      if (s.distributed) stop = !s.distributed->AllTrue(!stop);
      if (stop || step_limit) {
        if (auto st = s.SaveLast(); !st.ok()) return st;
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
    if (s.is_main()) {
      const double seconds = progress.ElapsedSeconds();
      if (auto st = s.metrics->Append({"epoch", epoch, s.progress.global_step,
                                       // A resumed epoch: the part this process ran.
                                       {{"seconds", seconds},
                                        {"images_per_second", progress.ItemsPerSecond()},
                                        {"lr", epoch_lr.base}}});
          !st.ok()) {
        return st;
      }
    }
    s.progress.epoch = epoch + 1;
    s.progress.batch_in_epoch = 0;
    if (s.val_loader) {
      absl::StatusOr<EvalResult> eval = s.Evaluate();
      if (!eval.ok()) return eval.status();
      const int every = config.snapshot_every_epochs();
      if (auto st = s.AfterEval(*eval, absl::StrCat("ep", epoch), every > 0 && (epoch + 1) % every == 0); !st.ok()) {
        return st;
      }
    }
    if (auto st = s.SaveLast(); !st.ok()) return st;
    if (s.distributed) s.distributed->Barrier();
  }
  s.summary.images_per_second = images_seen / std::max(overall.ElapsedSeconds(), 1e-9);
  LOG(INFO) << "Training done: " << s.summary.steps << " steps, " << s.summary.skipped_batches
            << " skipped batches, " << absl::StrFormat("%.1f", s.summary.images_per_second)
            << " images/s, best accuracy " << absl::StrFormat("%.4f", s.summary.best_accuracy);
  return s.summary;
}

}  // namespace dmue::training
