// Trains DMUE from a TrainerConfig text file:
//
//   bazel run //training:train -- --config=training/configs/synthetic.pbtxt
//
// Ctrl-C (SIGINT) or SIGTERM saves <output_dir>/last.pth and exits; running
// the same command again resumes exactly where it stopped.

#include <csignal>
#include <iostream>

#include "dmue/base/workspace.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "training/trainer.h"
#include "training/trainer_config.h"

DEFINE_string(config, "", "TrainerConfig text file (see training/configs/)");
DEFINE_string(set, "",
              "TrainerConfig fields in text format merged over --config, e.g. "
              "--set='max_epoch: 10 train_data { label_noise_rate: 0.3 }' (the run's config.pbtxt records the result)");
DEFINE_string(output_dir, "", "overrides TrainerConfig.output_dir");
DEFINE_int64(max_steps, -1, "overrides TrainerConfig.max_steps when >= 0");
DEFINE_int32(max_epoch, 0, "overrides TrainerConfig.max_epoch when > 0 (stop early; rerun with more to go on)");
DEFINE_int32(num_threads, 0, "overrides TrainerConfig.num_threads when > 0 (the launcher sets it)");

namespace {
dmue::training::Trainer* g_trainer = nullptr;
void OnSignal(int) {
  if (g_trainer != nullptr) g_trainer->RequestStop();
}
}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("train DMUE: --config=FILE");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) {
    std::cerr << "train: " << s.message() << "\n";
    return 2;
  }
  if (FLAGS_config.empty()) {
    std::cerr << "--config is required (e.g. training/configs/synthetic.pbtxt)\n";
    return 2;
  }
  absl::StatusOr<dmue::training::TrainerConfig> config = dmue::training::LoadTrainerConfig(FLAGS_config, FLAGS_set);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 2;
  }
  if (!FLAGS_output_dir.empty()) config->set_output_dir(FLAGS_output_dir);
  if (FLAGS_max_steps >= 0) config->set_max_steps(FLAGS_max_steps);
  if (FLAGS_max_epoch > 0) config->set_max_epoch(FLAGS_max_epoch);
  if (FLAGS_num_threads > 0) config->set_num_threads(FLAGS_num_threads);
  absl::StatusOr<std::unique_ptr<dmue::training::Trainer>> trainer = dmue::training::Trainer::Create(*config);
  if (!trainer.ok()) {
    std::cerr << "error: " << trainer.status().message() << "\n";
    return 1;
  }
  g_trainer = trainer->get();
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  absl::StatusOr<dmue::training::TrainSummary> summary = (*trainer)->Run();
  g_trainer = nullptr;
  if (!summary.ok()) {
    std::cerr << "error: " << summary.status().message() << "\n";
    return 1;
  }
  std::cout << "steps " << summary->steps << ", skipped batches " << summary->skipped_batches
            << ", best accuracy " << summary->best_accuracy << ", " << summary->images_per_second
            << " images/s" << (summary->stopped_early ? " (stopped early; rerun to resume)" : "") << "\n";
  return 0;
}
