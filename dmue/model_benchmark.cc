// Speed and memory of the model at the reference-baseline settings (224x224,
// 8 classes, ResNet-18, 2 threads): training step at batch 72 and 32, eval
// forward at batch 16, inference latency (batch 1) and throughput (batch 32),
// each in fp32 NCHW (the reference's mode), fp32 channels-last and bf16, and
// the inference model with BatchNorm folded (FoldedInference).
//
//   bazel run -c opt //dmue:model_benchmark -- --benchmark_filter=TrainStep
//
// Peak RSS is process-wide: run one filter at a time to attribute it.
#include <sys/resource.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "dmue/bf16_support.h"
#include "dmue/dmue_model.h"
#include "dmue/folded_model.h"
#include "dmue/inference_model.h"
#include "dmue/optimizer.h"
#include "dmue/train_step.h"

namespace dmue {
namespace {

constexpr int kClasses = 8;
constexpr int kSize = 224;

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

ComputeOptions ComputeFor(int64_t mode) {
  // 0: fp32 NCHW, 1: fp32 channels-last, 2: bf16 channels-last.
  ComputeOptions options;
  options.channels_last = mode >= 1;
  options.precision = mode == 2 ? Precision::kBFloat16 : Precision::kFloat32;
  return options;
}

// Skips the bf16 mode where oneDNN has no bf16 kernels, as AUTO does: its
// fallback loops take minutes a step and measure nothing anyone would run.
bool SkippedOnThisCpu(benchmark::State& state) {
  const std::string why = ComputeUnavailable(ComputeFor(state.range(1)));
  if (why.empty()) return false;
  state.SkipWithError(("not timed: " + why).c_str());
  return true;
}

// Labels with >= 2 samples per class in every batch, as the sampler ensures.
torch::Tensor BalancedLabels(int64_t batch) {
  return torch::arange(batch, torch::kLong).remainder(kClasses);
}

void BM_TrainStep(benchmark::State& state) {
  if (SkippedOnThisCpu(state)) return;
  torch::set_num_threads(2);
  const int64_t batch = state.range(0);
  ModelConfig config;
  config.set_num_classes(kClasses);
  torch::manual_seed(0);
  DmueModel model(config);
  model->train();
  StepSettings settings;
  settings.compute = ComputeFor(state.range(1));
  SetChannelsLast(*model, settings.compute.channels_last);
  auto optimizer = MakeReferenceAdam(model, OptimizerSettings{});
  const torch::Tensor images = torch::randn({batch, 3, kSize, kSize});
  const torch::Tensor labels = BalancedLabels(batch);
  for (auto _ : state) {
    auto losses = TrainStep(model, *optimizer, images, labels, settings);
    if (!losses.ok()) state.SkipWithError(std::string(losses.status().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["peak_rss_mb"] = PeakRssMb();
}
BENCHMARK(BM_TrainStep)
    ->ArgsProduct({{72, 32}, {0, 1, 2}})
    ->ArgNames({"batch", "mode"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(10);

// Forward-only throughput of `forward` on a [batch, 3, 224, 224] input.
template <typename Model, typename Forward>
void RunForward(benchmark::State& state, Model model, Forward forward) {
  if (SkippedOnThisCpu(state)) return;
  torch::set_num_threads(2);
  const int64_t batch = state.range(0);
  model->eval();
  const ComputeOptions compute = ComputeFor(state.range(1));
  SetChannelsLast(*model, compute.channels_last);
  const torch::Tensor images = PrepareImages(torch::randn({batch, 3, kSize, kSize}), compute);
  torch::InferenceMode inference_mode;
  for (auto _ : state) {
    ScopedAutocast autocast(compute);
    benchmark::DoNotOptimize(forward(model, images));
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["peak_rss_mb"] = PeakRssMb();
}

ModelConfig BenchConfig() {
  ModelConfig config;
  config.set_num_classes(kClasses);
  return config;
}

// The multi-branch model in eval mode: main branch only (the reference's eval
// forward runs all C + 1 branches).
void BM_EvalForward(benchmark::State& state) {
  RunForward(state, DmueModel(BenchConfig()),
             [](DmueModel& m, const torch::Tensor& x) { return m->ForwardEval(x); });
}
BENCHMARK(BM_EvalForward)
    ->ArgsProduct({{16}, {0, 1, 2}})
    ->ArgNames({"batch", "mode"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3);

void BM_Inference(benchmark::State& state) {
  RunForward(state, InferenceModel(BenchConfig()),
             [](InferenceModel& m, const torch::Tensor& x) { return m->forward(x); });
}
BENCHMARK(BM_Inference)
    ->ArgsProduct({{1, 32}, {0, 1, 2}})
    ->ArgNames({"batch", "mode"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3);

// The same inference model with BatchNorm folded into the convolutions and
// the weights laid out once (dmue/folded_model.h).
void BM_FoldedInference(benchmark::State& state) {
  if (SkippedOnThisCpu(state)) return;
  torch::set_num_threads(2);
  const int64_t batch = state.range(0);
  InferenceModel model(BenchConfig());
  model->eval();
  absl::StatusOr<FoldedModel> folded = FoldedModel::Fold(model, ComputeFor(state.range(1)));
  if (!folded.ok()) {
    state.SkipWithError(std::string(folded.status().message()).c_str());
    return;
  }
  const torch::Tensor images = torch::randn({batch, 3, kSize, kSize});
  for (auto _ : state) benchmark::DoNotOptimize(folded->Forward(images));
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["peak_rss_mb"] = PeakRssMb();
}
BENCHMARK(BM_FoldedInference)
    ->ArgsProduct({{1, 32}, {0, 1, 2}})
    ->ArgNames({"batch", "mode"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3);

}  // namespace
}  // namespace dmue

BENCHMARK_MAIN();
