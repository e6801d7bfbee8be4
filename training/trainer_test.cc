// End-to-end trainer tests on a tiny synthetic LMDB made in the test: DMUE
// with a CE warm-up runs, evaluates, writes its artefacts, resumes where it
// stopped, stops cleanly on request, and rejects inconsistent configs; each
// epoch's step settings follow the warm-up and the ramps (or hold them off); an
// explicit device "cpu" trains exactly as the default, and a CUDA device this
// LibTorch cannot use fails Create with the reason.
#include "training/trainer.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <torch/cuda.h>

#include "datasets/testing/synthetic_lmdb.h"
#include "dmue/schedule.h"
#include "gtest/gtest.h"
#include "training/metrics_log.h"

namespace dmue::training {
namespace {

// TEST_TMPDIR is shared by concurrent runs of a test (--runs_per_test) and
// pids repeat inside the sandbox's PID namespace: use a random folder.
std::string UniqueTempDir() {
  static const std::string dir = ::testing::TempDir() + "/run" + std::to_string(std::random_device{}());
  return dir;
}

namespace fs = std::filesystem;
constexpr int kClasses = 3;

std::string MakeData() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = UniqueTempDir() + "/trainer_data";
  EXPECT_TRUE(datasets::testing::WriteSyntheticLmdb(dir, kClasses, 32, {{"train", 90}, {"val", 30}}).ok());
  return dir;
}

TrainerConfig SmallConfig(const std::string& output_dir) {
  const std::string data = MakeData();
  TrainerConfig config;
  config.mutable_model()->set_num_classes(kClasses);
  auto* train = config.mutable_train_data();
  train->set_lmdb_path(data + "/lmdb");
  train->set_list_path(data + "/train.txt");
  train->set_split("train");
  train->set_num_classes(kClasses);
  train->set_resize(36);
  train->set_crop(32);
  train->set_batch_size(12);
  train->set_num_workers(1);
  train->set_num_samples(36);
  auto* val = config.mutable_val_data();
  *val = *train;
  val->set_list_path(data + "/val.txt");
  val->set_split("val");
  val->set_augment(false);
  val->set_drop_last(false);
  val->set_sampler(datasets::DatasetConfig::SEQUENTIAL);
  val->set_num_samples(0);
  config.set_ce_warmup_epochs(1);
  config.set_max_epoch(3);
  config.set_ramp_a(1);
  config.set_output_dir(output_dir);
  config.set_eval_every_batches(2);
  config.set_log_every_batches(1);
  config.set_num_threads(1);
  return config;
}

TEST(EpochStepSettingsTest, WarmUpThenDmueWithRampsCountedFromItsFirstEpoch) {
  TrainerConfig config;
  config.set_ce_warmup_epochs(2);
  config.set_ramp_a(3);
  config.set_label_smoothing(0.1);
  const ComputeOptions compute;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const StepSettings step = EpochStepSettings(config, epoch, compute);
    EXPECT_EQ(step.loss, StepLoss::kCrossEntropy) << "epoch " << epoch;
    EXPECT_DOUBLE_EQ(step.label_smoothing, 0.1);
  }
  for (int64_t epoch = 2; epoch < 7; ++epoch) {
    const StepSettings step = EpochStepSettings(config, epoch, compute);
    EXPECT_EQ(step.loss, StepLoss::kDmue) << "epoch " << epoch;
    EXPECT_DOUBLE_EQ(step.weights.ramp_up, RampUp(epoch - 2, 3)) << "epoch " << epoch;
    EXPECT_DOUBLE_EQ(step.weights.ramp_down, RampDown(epoch - 2, 3)) << "epoch " << epoch;
  }
  EXPECT_NEAR(EpochStepSettings(config, 2, compute).weights.ramp_up, std::exp(-5.0), 1e-12);
}

TEST(EpochStepSettingsTest, RampsOffGiveBothLossesFullWeightFromTheStart) {
  TrainerConfig config;
  config.set_ramp_a(3);
  config.set_ramps(false);
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    const StepSettings step = EpochStepSettings(config, epoch, ComputeOptions{});
    EXPECT_EQ(step.loss, StepLoss::kDmue);
    EXPECT_EQ(step.weights.ramp_up, 1.0) << "epoch " << epoch;
    EXPECT_EQ(step.weights.ramp_down, 1.0) << "epoch " << epoch;
  }
}

TEST(EpochStepSettingsTest, CrossEntropyRunsNeverTakeADmueStep) {
  TrainerConfig config;
  config.set_loss(TrainerConfig::CROSS_ENTROPY);
  EXPECT_EQ(EpochStepSettings(config, 5, ComputeOptions{}).loss, StepLoss::kCrossEntropy);
}

TEST(TrainerTest, TrainsEvaluatesAndWritesArtefacts) {
  const std::string out = UniqueTempDir() + "/run_full";
  fs::remove_all(out);
  auto trainer = Trainer::Create(SmallConfig(out));
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  absl::StatusOr<TrainSummary> summary = (*trainer)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->steps + summary->skipped_batches, 9);  // 3 epochs x 3 batches
  ASSERT_TRUE(summary->last_eval.has_value());
  const EvalResult& eval = *summary->last_eval;
  EXPECT_EQ(eval.metrics.count, 30);
  EXPECT_EQ(eval.confusion.total(), 30);
  ASSERT_EQ(eval.metrics.per_class.size(), size_t{kClasses});
  EXPECT_GE(summary->best_accuracy, 0.0);
  for (const char* file : {"last.pth", "best_inference.pth", "config.pbtxt", "metrics.jsonl", "metrics.csv",
                           "curves_train_loss.png", "curves_eval_accuracy.png", "confusion_latest.png"}) {
    EXPECT_TRUE(fs::exists(out + "/" + file)) << file;
  }
  EXPECT_TRUE(fs::exists(out + "/snapshots"));
  int snapshots = 0;
  for (const auto& entry : fs::directory_iterator(out + "/snapshots")) {
    snapshots += entry.path().filename().string().find("_acc") != std::string::npos;
  }
  EXPECT_GE(snapshots, 3);
  // DMUE epochs log the auxiliary and SP losses, the warm-up only CE.
  auto log = MetricsLog::Open(out);
  ASSERT_TRUE(log.ok());
  bool saw_aux = false;
  const MetricRecord* last_eval_record = nullptr;
  for (const MetricRecord& r : log->records()) {
    saw_aux |= r.kind == "train" && r.values.count("aux");
    if (r.kind == "eval") last_eval_record = &r;
  }
  EXPECT_TRUE(saw_aux);
  // The logged accuracies are the last validation's summary (%.8g in the log).
  ASSERT_NE(last_eval_record, nullptr);
  EXPECT_NEAR(last_eval_record->values.at("accuracy"), eval.metrics.accuracy, 1e-7);
  EXPECT_NEAR(last_eval_record->values.at("mean_class_accuracy"), eval.metrics.mean_class_accuracy, 1e-7);
}

TEST(TrainerTest, ResumesWhereItStopped) {
  const std::string out = UniqueTempDir() + "/run_resume";
  fs::remove_all(out);
  TrainerConfig config = SmallConfig(out);
  config.set_max_steps(4);
  int64_t consumed = 0;
  {
    auto trainer = Trainer::Create(config);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    auto summary = (*trainer)->Run();
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_TRUE(summary->stopped_early);
    EXPECT_EQ(summary->steps, 4);
    consumed = summary->steps + summary->skipped_batches;
  }
  config.set_max_steps(0);
  auto trainer = Trainer::Create(config);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto summary = (*trainer)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(summary->stopped_early);
  // Every batch of the 3 epochs is consumed exactly once across both runs.
  EXPECT_EQ(summary->steps + summary->skipped_batches, 9 - consumed);
}

TEST(TrainerTest, StopRequestSavesAndReturns) {
  const std::string out = UniqueTempDir() + "/run_stop";
  fs::remove_all(out);
  auto trainer = Trainer::Create(SmallConfig(out));
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  (*trainer)->RequestStop();
  auto summary = (*trainer)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->stopped_early);
  EXPECT_EQ(summary->steps, 1);
  EXPECT_TRUE(fs::exists(out + "/last.pth"));
}

TEST(TrainerTest, InconsistentConfigsNameTheField) {
  TrainerConfig config = SmallConfig(UniqueTempDir() + "/run_bad");
  config.mutable_train_data()->set_num_classes(4);
  auto bad = Trainer::Create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("train_data.num_classes"), std::string::npos) << bad.status();

  config = SmallConfig(UniqueTempDir() + "/run_bad");
  config.mutable_train_data()->set_batch_size(4);
  bad = Trainer::Create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("batch_size"), std::string::npos) << bad.status();

  config = SmallConfig(UniqueTempDir() + "/run_bad");
  config.mutable_train_data()->set_lmdb_path("/no/such/lmdb");
  bad = Trainer::Create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/no/such/lmdb"), std::string::npos) << bad.status();
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(TrainerDeviceTest, ExplicitCpuTrainsExactlyAsTheDefault) {
  std::vector<std::string> weights;
  std::vector<double> accuracies;
  for (const char* device : {"", "cpu"}) {
    const std::string out = UniqueTempDir() + "/run_device_" + (*device ? device : "default");
    fs::remove_all(out);
    TrainerConfig config = SmallConfig(out);
    if (*device) config.set_device(device);
    config.set_max_steps(2);  // a validation (and best_inference.pth) after step 2
    auto trainer = Trainer::Create(config);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    auto summary = (*trainer)->Run();
    ASSERT_TRUE(summary.ok()) << summary.status();
    ASSERT_TRUE(summary->last_eval.has_value());
    accuracies.push_back(summary->last_eval->metrics.accuracy);
    weights.push_back(FileBytes(out + "/best_inference.pth"));
    ASSERT_FALSE(weights.back().empty());
  }
  EXPECT_EQ(accuracies[0], accuracies[1]);
  EXPECT_TRUE(weights[0] == weights[1]) << "best_inference.pth differs between device '' and 'cpu'";
}

TEST(TrainerDeviceTest, UnusableCudaFailsCreateWithTheReason) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  const std::string out = UniqueTempDir() + "/run_cuda";
  fs::remove_all(out);
  TrainerConfig config = SmallConfig(out);
  config.set_device("cuda:0");
  auto trainer = Trainer::Create(config);
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kFailedPrecondition) << trainer.status();
  EXPECT_NE(trainer.status().message().find("TrainerConfig.device: device cuda:0: "), std::string::npos)
      << trainer.status();
  EXPECT_FALSE(fs::exists(out)) << "nothing is written before the device is checked";

  config.set_device("gpu");
  trainer = Trainer::Create(config);
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kInvalidArgument) << trainer.status();
  EXPECT_NE(trainer.status().message().find("TrainerConfig.device: 'gpu'"), std::string::npos) << trainer.status();
}

}  // namespace
}  // namespace dmue::training
