#include "training/auto_compute.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "dmue/base/status_macros.h"
#include "dmue/bf16_support.h"
#include "dmue/dmue_model.h"
#include "dmue/optimizer.h"

namespace dmue::training {
namespace {

// The candidates, all on the run's device.
std::vector<ComputeTrial> Candidates(const torch::Device& device) {
  std::vector<ComputeTrial> trials(3);
  trials[0].name = "fp32";
  trials[0].options = {Precision::kFloat32, false, device};
  trials[1].name = "fp32 channels-last";
  trials[1].options = {Precision::kFloat32, true, device};
  trials[2].name = "bf16 channels-last";
  trials[2].options = {Precision::kBFloat16, true, device};
  return trials;
}

// Eval-mode logits of a freshly seeded model (equal weights for every
// trial), in float on the CPU.
torch::Tensor EvalLogits(DmueModel& model, const torch::Tensor& images, const ComputeOptions& options) {
  torch::NoGradGuard no_grad;
  model->eval();
  ScopedAutocast autocast(options);
  torch::Tensor logits = model->ForwardEval(PrepareImages(images, options)).to(torch::kCPU, torch::kFloat);
  model->train();
  return logits;
}

absl::Status RunTrial(const ComputeProbe& probe, const torch::Tensor& images, const torch::Tensor& labels,
                      ComputeTrial* trial, torch::Tensor* logits) {
  torch::manual_seed(0);
  DmueModel model(probe.model);
  MoveToDevice(*model, trial->options.device);
  SetChannelsLast(*model, trial->options.channels_last);
  *logits = EvalLogits(model, images, trial->options);
  OptimizerSettings settings;
  settings.kind = OptimizerSettings::Kind::kSgd;
  settings.lr1 = settings.lr2 = 0.0;  // timing only: the weights stay put
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(model, settings);
  StepSettings step;
  step.loss = probe.dmue ? StepLoss::kDmue : StepLoss::kCrossEntropy;
  step.compute = trial->options;
  trial->seconds_per_step = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= probe.timed_steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(TrainStep(model, *optimizer, images, labels, step));
    SynchronizeDevice(trial->options.device);  // CUDA steps return before they finish
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i > 0) trial->seconds_per_step = std::min(trial->seconds_per_step, seconds);
  }
  return absl::OkStatus();
}

}  // namespace

std::string ComputeChoice::Summary() const {
  std::vector<std::string> parts;
  for (const ComputeTrial& t : trials) {
    if (!t.skipped.empty()) {
      parts.push_back(absl::StrCat(t.name, " not timed: ", t.skipped));
      continue;
    }
    parts.push_back(absl::StrFormat("%s %.3f s/step (logit deviation %.2g%s)", t.name, t.seconds_per_step,
                                    t.output_deviation, t.within_bound ? "" : ", out of bound"));
  }
  const auto chosen = std::find_if(trials.begin(), trials.end(), [this](const ComputeTrial& t) {
    return t.options.precision == options.precision && t.options.channels_last == options.channels_last;
  });
  return absl::StrCat("AUTO compute: ", chosen != trials.end() ? chosen->name : "?", " [",
                      absl::StrJoin(parts, "; "), "]");
}

absl::StatusOr<ComputeChoice> ChooseTrainingCompute(const ComputeProbe& probe) {
  const int C = probe.model.num_classes();
  torch::manual_seed(1);
  const torch::Tensor images = torch::randn({probe.batch_size, 3, probe.image_size, probe.image_size});
  // Every class at least twice when the batch allows (DMUE's step needs it).
  const torch::Tensor labels = torch::arange(probe.batch_size, torch::kInt64).remainder(C);
  ComputeChoice choice;
  choice.trials = Candidates(probe.device);
  torch::Tensor reference_logits;
  for (ComputeTrial& trial : choice.trials) {
    trial.skipped = ComputeUnavailable(trial.options);
    if (!trial.skipped.empty()) {
      trial.seconds_per_step = std::numeric_limits<double>::infinity();
      trial.within_bound = false;
      continue;
    }
    torch::Tensor logits;
    RETURN_IF_ERROR(RunTrial(probe, images, labels, &trial, &logits));
    if (&trial == &choice.trials.front()) reference_logits = logits;
    trial.output_deviation =
        (logits - reference_logits).norm().item<double>() / std::max(reference_logits.norm().item<double>(), 1e-30);
    // NaN (an overflow) is out of bound too.
    trial.within_bound = trial.output_deviation <= probe.max_output_deviation;
  }
  const ComputeTrial* best = &choice.trials.front();
  for (const ComputeTrial& t : choice.trials) {
    if (t.within_bound && t.seconds_per_step < best->seconds_per_step) best = &t;
  }
  choice.options = best->options;
  return choice;
}

}  // namespace dmue::training
