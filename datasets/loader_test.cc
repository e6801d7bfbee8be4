#include "datasets/loader.h"

#include <chrono>
#include <filesystem>

#include <ATen/ATen.h>

#include "datasets/example_source.h"
#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

std::shared_ptr<InMemorySource> MakeSource(int n, int size = 40) {
  std::vector<cv::Mat> images;
  std::vector<int> labels;
  std::vector<std::vector<float>> distributions;
  for (int i = 0; i < n; ++i) {
    cv::Mat image(size, size, CV_8UC3);
    cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
    images.push_back(image);
    labels.push_back(i % 4);
    if (i % 2 == 0) {
      std::vector<float> d(4, 0.1f);
      d[i % 4] = 0.7f;
      distributions.push_back(d);
    } else {
      distributions.push_back({});
    }
  }
  return std::make_shared<InMemorySource>(std::move(images), std::move(labels), std::move(distributions));
}

LoaderOptions Options(int workers) {
  LoaderOptions options;
  options.batch_size = 8;
  options.num_workers = workers;
  options.transform = TrainTransform(36, 32);
  options.seed = 99;
  options.soft_labels = true;
  options.num_classes = 4;
  return options;
}

std::vector<Batch> RunEpoch(Loader* loader, int64_t epoch) {
  loader->StartEpoch(epoch);
  std::vector<Batch> batches;
  while (true) {
    auto batch = loader->Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->has_value()) break;
    batches.push_back(**std::move(batch));
  }
  return batches;
}

void ExpectSameBatches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices);
    EXPECT_TRUE(at::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(at::equal(a[i].labels, b[i].labels));
    EXPECT_TRUE(at::equal(a[i].soft_labels, b[i].soft_labels));
  }
}

TEST(LoaderTest, BatchesHaveShapesAndLabels) {
  auto source = MakeSource(50);
  auto sampler = Sampler::Create({.kind = SamplerKind::kShuffled, .seed = 1}, source->Labels());
  ASSERT_TRUE(sampler.ok());
  auto loader = Loader::Create(source, *sampler, Options(2));
  ASSERT_TRUE(loader.ok()) << loader.status();
  EXPECT_EQ((*loader)->batches_per_epoch(), 6);  // 50 / 8, drop_last
  std::vector<Batch> batches = RunEpoch(loader->get(), 0);
  ASSERT_EQ(batches.size(), 6u);
  for (const Batch& batch : batches) {
    EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{8, 3, 32, 32}));
    EXPECT_EQ(batch.labels.scalar_type(), at::kLong);
    EXPECT_LE(batch.images.max().item<float>(), 1.0f);
    EXPECT_GE(batch.images.min().item<float>(), -1.0f);
    for (int i = 0; i < 8; ++i) {
      const int64_t index = batch.indices[i];
      EXPECT_EQ(batch.labels[i].item<int64_t>(), index % 4);
      EXPECT_NEAR(batch.soft_labels[i].sum().item<float>(), 1.0f, 1e-5);
      EXPECT_GE(batch.soft_labels[i][index % 4].item<float>(), 0.7f - 1e-6);
    }
  }
  // Every example at most once per epoch (shuffled sampler).
  std::set<int64_t> seen;
  for (const Batch& batch : batches) seen.insert(batch.indices.begin(), batch.indices.end());
  EXPECT_EQ(seen.size(), 48u);
}

TEST(LoaderTest, DeterministicAcrossRunsAndWorkerCounts) {
  auto source = MakeSource(40);
  auto sampler = Sampler::Create({.kind = SamplerKind::kClassBalanced, .seed = 5}, source->Labels());
  std::vector<Batch> reference;
  for (int workers : {1, 2, 3, 2}) {
    auto loader = Loader::Create(source, *sampler, Options(workers));
    ASSERT_TRUE(loader.ok());
    std::vector<Batch> batches = RunEpoch(loader->get(), 2);
    if (reference.empty()) {
      reference = batches;
    } else {
      ExpectSameBatches(batches, reference);
    }
  }
  auto loader = Loader::Create(source, *sampler, Options(2));
  std::vector<Batch> other_epoch = RunEpoch(loader->get(), 3);
  EXPECT_FALSE(at::equal(other_epoch[0].images, reference[0].images));
}

TEST(LoaderTest, ExactResumeFromState) {
  auto source = MakeSource(64);
  auto sampler = Sampler::Create({.kind = SamplerKind::kShuffled, .seed = 2}, source->Labels());
  auto full = Loader::Create(source, *sampler, Options(2));
  std::vector<Batch> all = RunEpoch(full->get(), 1);
  ASSERT_EQ(all.size(), 8u);

  auto first = Loader::Create(source, *sampler, Options(2));
  (*first)->StartEpoch(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*first)->Next().ok());
  const std::string saved = (*first)->SerializeState();
  EXPECT_EQ((*first)->state().position, 24);
  first->reset();  // "crash": destroy with batches in flight

  auto resumed = Loader::Create(source, *sampler, Options(3));
  ASSERT_TRUE((*resumed)->RestoreState(saved).ok());
  std::vector<Batch> rest;
  while (true) {
    auto batch = (*resumed)->Next();
    ASSERT_TRUE(batch.ok());
    if (!batch->has_value()) break;
    rest.push_back(**batch);
  }
  ASSERT_EQ(rest.size(), 5u);
  EXPECT_EQ(rest[0].batch_index, 3);
  ExpectSameBatches(rest, std::vector<Batch>(all.begin() + 3, all.end()));
}

TEST(LoaderTest, ShutdownWithFullQueueAndRestartedEpochs) {
  auto source = MakeSource(200);
  auto sampler = Sampler::Create({.kind = SamplerKind::kSequential}, source->Labels());
  for (int round = 0; round < 5; ++round) {
    auto loader = Loader::Create(source, *sampler, Options(2));
    ASSERT_TRUE(loader.ok());
    ASSERT_TRUE((*loader)->Next().ok());
    (*loader)->StartEpoch(round + 1);  // restart mid-epoch
    auto batch = (*loader)->Next();
    ASSERT_TRUE(batch.ok() && batch->has_value());
    EXPECT_EQ((*batch)->indices[0], 0);
    EXPECT_EQ((*batch)->epoch, round + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let the queue fill up
    const auto start = std::chrono::steady_clock::now();
    (*loader)->Shutdown();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    auto after = (*loader)->Next();
    EXPECT_TRUE(absl::IsCancelled(after.status()));
  }
}

TEST(LoaderTest, LmdbSourceAndErrors) {
  const std::string dir = ::testing::TempDir() + "/loader_db";
  std::filesystem::remove_all(dir);
  std::vector<LabelEntry> entries;
  {
    auto writer = LmdbWriter::Open(dir, {.encoding = ImageEncoding::kPng});
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 20; ++i) {
      LabelEntry entry{absl::StrCat(i, ".png"), "train", i % 3, {}};
      cv::Mat grey(48, 48, CV_8UC1, cv::Scalar(i * 10));
      ASSERT_TRUE((*writer)->Put(LmdbKey(entry), grey).ok());
      entries.push_back(entry);
    }
    ASSERT_TRUE((*writer)->Finish(&entries).ok());
  }
  auto source = LmdbSource::Open(dir, entries);
  ASSERT_TRUE(source.ok()) << source.status();
  auto sampler = Sampler::Create({.kind = SamplerKind::kSequential}, (*source)->Labels());
  LoaderOptions options;
  options.batch_size = 5;
  options.transform = EvalTransform(72, 64);
  auto loader = Loader::Create(*source, *sampler, options);
  ASSERT_TRUE(loader.ok());
  std::vector<Batch> batches = RunEpoch(loader->get(), 0);
  ASSERT_EQ(batches.size(), 4u);
  // Constant grey 10*i -> (10 i / 255 - 0.5) / 0.5 everywhere.
  EXPECT_NEAR(batches[1].images[2].mean().item<float>(), (70 / 255.0f - 0.5f) / 0.5f, 1e-6);
  EXPECT_EQ(batches[1].labels[2].item<int64_t>(), 7 % 3);

  auto bad_entries = entries;
  bad_entries.push_back({"ghost.png", "train", 0, {}});
  auto missing = LmdbSource::Open(dir, bad_entries);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("train_ghost.png"), std::string::npos);
  // Unchecked: the loader reports the error when it reaches the example.
  auto unchecked = LmdbSource::Open(dir, bad_entries, /*check_keys=*/false);
  ASSERT_TRUE(unchecked.ok());
  auto sampler2 = Sampler::Create({.kind = SamplerKind::kSequential}, (*unchecked)->Labels());
  options.drop_last = false;
  auto loader2 = Loader::Create(*unchecked, *sampler2, options);
  absl::Status error;
  (*loader2)->StartEpoch(0);
  while (true) {
    auto batch = (*loader2)->Next();
    if (!batch.ok()) {
      error = batch.status();
      break;
    }
    if (!batch->has_value()) break;
  }
  EXPECT_NE(error.message().find("train_ghost.png"), std::string::npos) << error;
}

}  // namespace
}  // namespace dmue::datasets
