// Writes a Chrome trace (chrome://tracing) of DMUE training steps, to see
// where a step's time goes:
//
//   bazel run //tools:profile_train_step -- --batch=32 --size=224 --out=/tmp/step.json
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "dmue/dmue_model.h"
#include "dmue/optimizer.h"
#include "dmue/train_step.h"
#include "gflags/gflags.h"

DEFINE_int32(batch, 32, "batch size");
DEFINE_int32(size, 224, "input side");
DEFINE_int32(classes, 8, "number of classes");
DEFINE_int32(steps, 2, "profiled steps (after one warm-up step)");
DEFINE_bool(channels_last, false, "channels-last activations");
DEFINE_bool(bf16, false, "bf16 autocast");
DEFINE_string(out, "/tmp/dmue_train_step_trace.json", "trace file");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  torch::set_num_threads(2);
  dmue::ModelConfig config;
  config.set_num_classes(FLAGS_classes);
  dmue::DmueModel model(config);
  model->train();
  dmue::StepSettings settings;
  settings.compute.channels_last = FLAGS_channels_last;
  settings.compute.precision = FLAGS_bf16 ? dmue::Precision::kBFloat16 : dmue::Precision::kFloat32;
  dmue::SetChannelsLast(*model, FLAGS_channels_last);
  auto adam = dmue::MakeReferenceAdam(model, dmue::OptimizerSettings{});
  torch::Tensor images = torch::randn({FLAGS_batch, 3, FLAGS_size, FLAGS_size});
  torch::Tensor labels = torch::arange(FLAGS_batch, torch::kLong).remainder(FLAGS_classes);
  if (!dmue::TrainStep(model, *adam, images, labels, settings).ok()) return 1;
  {
    torch::autograd::profiler::RecordProfile profile(FLAGS_out);
    for (int i = 0; i < FLAGS_steps; ++i) {
      if (!dmue::TrainStep(model, *adam, images, labels, settings).ok()) return 1;
    }
  }
  std::printf("wrote %s\n", FLAGS_out.c_str());
  return 0;
}
