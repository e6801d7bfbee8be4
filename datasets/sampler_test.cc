#include "datasets/sampler.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

std::vector<int> ImbalancedLabels() {
  std::vector<int> labels;
  for (int i = 0; i < 1000; ++i) labels.push_back(0);
  for (int i = 0; i < 10; ++i) labels.push_back(1);
  for (int i = 0; i < 100; ++i) labels.push_back(2);
  labels.push_back(-1);  // unlabelled: never drawn
  return labels;
}

TEST(SamplerTest, ClassBalancedStatistics) {
  const std::vector<int> labels = ImbalancedLabels();
  auto sampler = Sampler::Create({.kind = SamplerKind::kClassBalanced, .seed = 1, .num_samples = 30000}, labels);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  std::vector<int64_t> indices = sampler->EpochIndices(0);
  ASSERT_EQ(indices.size(), 30000u);
  std::vector<int> per_class(3, 0);
  std::vector<int> per_sample(labels.size(), 0);
  for (int64_t i : indices) {
    ASSERT_GE(labels[i], 0);
    ++per_class[labels[i]];
    ++per_sample[i];
  }
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(per_class[c], 10000, 300) << c;  // ~3 sigma
  // Within the rare class every sample is drawn about 1000 times.
  for (int i = 1000; i < 1010; ++i) EXPECT_NEAR(per_sample[i], 1000, 150);
}

TEST(SamplerTest, DeterministicPerSeedAndEpoch) {
  const std::vector<int> labels = ImbalancedLabels();
  for (SamplerKind kind : {SamplerKind::kShuffled, SamplerKind::kClassBalanced}) {
    auto a = Sampler::Create({.kind = kind, .seed = 7}, labels);
    auto b = Sampler::Create({.kind = kind, .seed = 7}, labels);
    auto c = Sampler::Create({.kind = kind, .seed = 8}, labels);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(a->EpochIndices(3), b->EpochIndices(3));
    EXPECT_NE(a->EpochIndices(3), a->EpochIndices(4));
    EXPECT_NE(a->EpochIndices(3), c->EpochIndices(3));
  }
  auto shuffled = Sampler::Create({.kind = SamplerKind::kShuffled, .seed = 7}, labels);
  std::vector<int64_t> perm = shuffled->EpochIndices(0);
  std::sort(perm.begin(), perm.end());
  for (int64_t i = 0; i < int64_t(perm.size()); ++i) ASSERT_EQ(perm[i], i);
  auto sequential = Sampler::Create({.kind = SamplerKind::kSequential}, labels);
  EXPECT_EQ(sequential->EpochIndices(5)[10], 10);
}

TEST(SamplerTest, ShardingCoversTheDatasetOnce) {
  std::vector<int> labels(103, 0);
  std::multiset<int64_t> all;
  for (int rank = 0; rank < 4; ++rank) {
    auto s = Sampler::Create(
        {.kind = SamplerKind::kShuffled, .seed = 3, .rank = rank, .world_size = 4, .even_shards = false}, labels);
    ASSERT_TRUE(s.ok());
    std::vector<int64_t> mine = s->EpochIndices(2);
    EXPECT_EQ(int64_t(mine.size()), s->epoch_size());
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), 103u);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 103u);
  // Even shards: 26 each, padded by wrapping.
  std::vector<int64_t> even_total;
  for (int rank = 0; rank < 4; ++rank) {
    auto s = Sampler::Create({.kind = SamplerKind::kSequential, .rank = rank, .world_size = 4}, labels);
    ASSERT_EQ(s->epoch_size(), 26);
    for (int64_t i : s->EpochIndices(0)) even_total.push_back(i);
  }
  EXPECT_EQ(even_total.size(), 104u);
  EXPECT_EQ(std::set<int64_t>(even_total.begin(), even_total.end()).size(), 103u);
  EXPECT_FALSE(Sampler::Create({.rank = 4, .world_size = 4}, labels).ok());
}

TEST(SamplerTest, ExactResumeFromSerializedState) {
  const std::vector<int> labels = ImbalancedLabels();
  const SamplerOptions options{.kind = SamplerKind::kClassBalanced, .seed = 11, .num_samples = 500, .rank = 1,
                               .world_size = 2};
  auto run = Sampler::Create(options, labels);
  ASSERT_TRUE(run.ok());
  run->SetEpoch(4);
  std::vector<int64_t> first = run->Next(64);
  EXPECT_EQ(first.size(), 64u);
  const std::string saved = run->SerializeState();
  std::vector<int64_t> rest;
  while (!run->epoch_done()) {
    auto batch = run->Next(64);
    rest.insert(rest.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(first.size() + rest.size(), 250u);
  auto resumed = Sampler::Create(options, labels);
  ASSERT_TRUE(resumed->RestoreFromString(saved).ok());
  EXPECT_EQ(resumed->state().epoch, 4);
  EXPECT_EQ(resumed->state().position, 64);
  std::vector<int64_t> rest2;
  while (!resumed->epoch_done()) {
    auto batch = resumed->Next(50);
    rest2.insert(rest2.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(rest, rest2);
  // Refuses state from different options, naming the field.
  SamplerOptions other = options;
  other.seed = 12;
  auto mismatched = Sampler::Create(other, labels);
  absl::Status status = mismatched->RestoreFromString(saved);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("seed"), std::string::npos) << status.message();
  EXPECT_FALSE(resumed->RestoreFromString("garbage").ok());
}

TEST(SamplerTest, MinPerClassTopsUpEveryBatchAndKeepsTheRest) {
  const std::vector<int> labels = ImbalancedLabels();
  const SamplerOptions plain{.kind = SamplerKind::kShuffled, .seed = 3};
  SamplerOptions topped = plain;
  topped.min_per_class = 2;
  topped.batch_size = 32;
  auto a = Sampler::Create(plain, labels);
  auto b = Sampler::Create(topped, labels);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<int64_t> natural = a->EpochIndices(4);
  const std::vector<int64_t> balanced = b->EpochIndices(4);
  ASSERT_EQ(natural.size(), balanced.size());
  int64_t changed = 0;
  for (size_t begin = 0; begin + 32 <= balanced.size(); begin += 32) {
    std::vector<int> counts(3, 0);
    for (size_t p = begin; p < begin + 32; ++p) {
      if (labels[balanced[p]] >= 0) ++counts[labels[balanced[p]]];
      if (balanced[p] != natural[p]) {
        ++changed;
        // Only samples of the batch's majority class give way.
        EXPECT_EQ(labels[natural[p]], 0) << p;
      }
    }
    for (int c = 0; c < 3; ++c) EXPECT_GE(counts[c], 2) << "batch at " << begin << " class " << c;
  }
  // Class 1 (10 of 1111) is short in nearly every batch; the rest is natural.
  EXPECT_GT(changed, 30);
  EXPECT_LT(changed, int64_t(balanced.size()) / 8);
  EXPECT_EQ(b->EpochIndices(4), balanced);  // a pure function of (seed, epoch)
  // Its state names the option, so a plain sampler refuses it.
  b->SetEpoch(4);
  b->Next(40);
  EXPECT_FALSE(a->RestoreFromString(b->SerializeState()).ok());
  auto c = Sampler::Create(topped, labels);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->RestoreFromString(b->SerializeState()).ok());
  EXPECT_EQ(c->Next(8), b->Next(8));
}

TEST(SamplerTest, MinPerClassOptionErrors) {
  const std::vector<int> labels = ImbalancedLabels();
  auto balanced = Sampler::Create({.kind = SamplerKind::kClassBalanced, .min_per_class = 2, .batch_size = 32}, labels);
  ASSERT_FALSE(balanced.ok());
  EXPECT_NE(balanced.status().message().find("min_per_class"), std::string::npos);
  auto small = Sampler::Create({.kind = SamplerKind::kShuffled, .min_per_class = 2, .batch_size = 5}, labels);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("batch_size"), std::string::npos) << small.status();
}

}  // namespace
}  // namespace dmue::datasets
