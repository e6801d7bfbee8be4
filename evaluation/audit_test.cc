// End-to-end audit tests on the tiny synthetic LMDB with random checkpoints:
// the dataset-level score equals ForwardTrain's on a set that is one batch,
// mined distributions do not depend on batching or filler padding and match
// LatentSoftLabels, votes and baseline agreement are measured, bad inputs fail
// with clear errors; device "cpu" given explicitly audits exactly as the
// default, a bad or unusable device is an error naming AuditOptions.device.
#include "evaluation/audit.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <torch/cuda.h>

#include "datasets/transforms.h"
#include "dmue/losses.h"
#include "evaluation/test_fixtures.h"
#include "gtest/gtest.h"

namespace dmue::evaluation {
namespace {

using testing::kClasses;
using testing::kTrain;
using testing::kVal;
using testing::MakeTinyData;
using testing::MakeTinyModels;

DataSpec Spec(const std::string& list, int batch_size) {
  DataSpec spec;
  spec.lmdb = MakeTinyData().lmdb;
  spec.list = list;
  spec.resize = 36;
  spec.crop = 32;
  spec.batch_size = batch_size;
  spec.num_workers = 1;
  return spec;
}

CheckpointSpec Model(const std::string& path) {
  CheckpointSpec spec;
  spec.checkpoint = path;
  return spec;
}

AuditOptions Quiet() {
  AuditOptions options;
  options.progress = false;
  return options;
}

TEST(AuditTest, DatasetScoreEqualsForwardTrainScoreOnOneBatch) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(model.ok()) << model.status();
  auto data = OpenEvalData(Spec(MakeTinyData().val_list, kVal), kClasses);  // one batch, 4 per class
  ASSERT_TRUE(data.ok()) << data.status();
  auto run = RunAudit(*model, *data, nullptr, Quiet());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->padded_samples, 0);
  ASSERT_EQ(run->records.size(), size_t(kVal));
  double spread = 0;
  for (const AuditRecord& r : run->records) {
    EXPECT_NEAR(r.score, r.batch_score, 1e-5) << r.key;
    spread = std::max(spread, std::abs(r.score - run->records[0].score));
  }
  EXPECT_GT(spread, 0);  // not a constant
}

TEST(AuditTest, MinedDistributionsMatchLatentSoftLabelsWhateverTheBatching) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(model.ok());
  auto whole = OpenEvalData(Spec(MakeTinyData().train_list, kTrain), kClasses);
  auto small = OpenEvalData(Spec(MakeTinyData().train_list, 2), kClasses);  // needs fillers
  ASSERT_TRUE(whole.ok() && small.ok());
  auto a = RunAudit(*model, *whole, nullptr, Quiet());
  auto b = RunAudit(*model, *small, nullptr, Quiet());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->padded_samples, 0);
  EXPECT_GT(b->padded_samples, 0);
  ASSERT_EQ(a->records.size(), size_t(kTrain));
  ASSERT_EQ(b->records.size(), size_t(kTrain));
  for (size_t i = 0; i < a->records.size(); ++i) {
    const AuditRecord &x = a->records[i], &y = b->records[i];
    ASSERT_EQ(x.key, y.key);
    EXPECT_EQ(x.mined[x.label], 0.0);
    double sum = 0;
    for (int c = 0; c < kClasses; ++c) {
      sum += x.mined[c];
      EXPECT_NEAR(x.mined[c], y.mined[c], 1e-5) << x.key;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    EXPECT_NEAR(x.label_prob, y.label_prob, 1e-5);
    EXPECT_NEAR(x.score, y.score, 1e-5);  // the dataset-level score ignores batching
  }

  // Independent check on the whole set as one batch: ForwardTrain in eval
  // mode + LatentSoftLabels with T = 1.2, images through the eval transform.
  torch::Tensor images = torch::empty({kTrain, 3, 32, 32});
  torch::Tensor labels = torch::empty({kTrain}, torch::kLong);
  for (int i = 0; i < kTrain; ++i) {
    auto image = ReadExampleImage(*whole, i);
    ASSERT_TRUE(image.ok());
    ASSERT_TRUE(datasets::ApplyTransform(*image, whole->transform, nullptr, images[i].data_ptr<float>()).ok());
    labels[i] = whole->source->label(i);
  }
  auto fresh = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(fresh.ok());
  torch::NoGradGuard no_grad;
  auto out = fresh->model->ForwardTrain(images, labels);
  ASSERT_TRUE(out.ok()) << out.status();
  const torch::Tensor soft = LatentSoftLabels(out->latent_logits, labels, kClasses, 1.2);
  for (int i = 0; i < kTrain; ++i) {
    for (int c = 0; c < kClasses; ++c) EXPECT_NEAR(soft[i][c].item<double>(), a->records[i].mined[c], 1e-5);
    EXPECT_NEAR(out->score[i][0].item<double>(), a->records[i].score, 1e-5);
  }
}

TEST(AuditTest, VotesAndBaseline) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  CheckpointSpec baseline_spec = Model(MakeTinyModels().baseline);
  auto baseline = LoadClassifier(baseline_spec);
  ASSERT_TRUE(model.ok() && baseline.ok());
  auto data = OpenEvalData(Spec(MakeTinyData().train_soft_list, 10), kClasses);
  ASSERT_TRUE(data.ok());
  auto run = RunAudit(*model, *data, &*baseline, Quiet());
  ASSERT_TRUE(run.ok()) << run.status();
  for (const AuditRecord& r : run->records) {
    ASSERT_EQ(r.votes.size(), size_t(kClasses));
    ASSERT_EQ(r.baseline.size(), size_t(kClasses));
  }
  std::optional<Agreement> dmue = DmueAgreement(run->records);
  std::optional<Agreement> base = BaselineAgreement(run->records);
  ASSERT_TRUE(dmue.has_value() && base.has_value());
  EXPECT_EQ(dmue->count_votes, kTrain);
  EXPECT_GT(dmue->count_off_label, 0);  // the mixtures put votes off the label
  EXPECT_EQ(dmue->count_off_label, base->count_off_label);
  EXPECT_TRUE(std::isfinite(dmue->mean_kl));
  EXPECT_TRUE(std::isfinite(base->spearman_confidence_vs_entropy));

  const std::vector<size_t> order = RankRecords(&run->records);
  AuditSummary summary;
  summary.class_names = {"a", "b", "c"};
  summary.count = kTrain;
  summary.dmue = dmue;
  summary.baseline = base;
  const std::string dir = ::testing::TempDir() + "/audit_out";
  std::filesystem::remove_all(dir);
  const EvalData& d = *data;
  ASSERT_TRUE(WriteAuditOutputs(summary, run->records, order, 8,
                                [&d](int64_t index) { return ReadExampleImage(d, index); }, dir)
                  .ok());
  for (const char* f : {"audit.csv", "audit.html", "audit_top.png", "audit_summary.json"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  }
}

TEST(AuditBadInputTest, InferenceCheckpointIsRefused) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().inference));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find(MakeTinyModels().inference), std::string::npos) << model.status();
  EXPECT_NE(model.status().message().find("needs a multi-branch checkpoint"), std::string::npos) << model.status();
}

TEST(AuditBadInputTest, ClassWithoutSamples) {
  const std::string list = ::testing::TempDir() + "/two_classes.txt";
  {
    std::ofstream out(list);
    out << "train_0.png 0\ntrain_1.png 1\ntrain_3.png 0\ntrain_4.png 1\n";
  }
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(model.ok());
  auto data = OpenEvalData(Spec(list, 4), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  auto run = RunAudit(*model, *data, nullptr, Quiet());
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("class 2 has no sample"), std::string::npos) << run.status();
  EXPECT_NE(run.status().message().find(list), std::string::npos) << run.status();
}

TEST(AuditBadInputTest, BaselineWithOtherClassCount) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(model.ok());
  auto data = OpenEvalData(Spec(MakeTinyData().val_list, kVal), kClasses);
  ASSERT_TRUE(data.ok());
  LoadedClassifier other{CheckpointInfo{false, 4, ModelConfig()}, InferenceModel(nullptr)};
  auto run = RunAudit(*model, *data, &other, Quiet());
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("baseline has 4 classes"), std::string::npos) << run.status();
}

TEST(AuditDeviceTest, ExplicitCpuAuditsExactlyAsTheDefault) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(model.ok()) << model.status();
  auto data = OpenEvalData(Spec(MakeTinyData().val_list, kVal), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  AuditOptions cpu = Quiet();
  cpu.device = "cpu";
  auto a = RunAudit(*model, *data, nullptr, Quiet());
  auto b = RunAudit(*model, *data, nullptr, cpu);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->records.size(), b->records.size());
  for (size_t i = 0; i < a->records.size(); ++i) {
    EXPECT_EQ(a->records[i].score, b->records[i].score) << i;
    EXPECT_EQ(a->records[i].mined, b->records[i].mined) << i;
    EXPECT_EQ(a->records[i].label_prob, b->records[i].label_prob) << i;
  }
}

TEST(AuditDeviceTest, BadOrUnusableDevicesNameTheOption) {
  auto model = LoadMultiBranch(Model(MakeTinyModels().multi_branch));
  ASSERT_TRUE(model.ok()) << model.status();
  auto data = OpenEvalData(Spec(MakeTinyData().val_list, kVal), kClasses);
  ASSERT_TRUE(data.ok()) << data.status();
  AuditOptions options = Quiet();
  options.device = "cuda0";
  auto bad = RunAudit(*model, *data, nullptr, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("AuditOptions.device: 'cuda0'"), std::string::npos) << bad.status();
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  options.device = "cuda:0";
  auto cuda = RunAudit(*model, *data, nullptr, options);
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition) << cuda.status();
  EXPECT_NE(cuda.status().message().find("AuditOptions.device: device cuda:0: "), std::string::npos)
      << cuda.status();
}

}  // namespace
}  // namespace dmue::evaluation
