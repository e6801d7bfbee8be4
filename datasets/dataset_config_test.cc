#include "datasets/dataset_config.h"

#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>

#include "datasets/lmdb_dataset.h"
#include "dmue/config/text_proto.h"
#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

DatasetConfig Minimal() {
  DatasetConfig config;
  config.set_lmdb_path("/tmp/x");
  config.set_list_path("/tmp/x.txt");
  return config;
}

TEST(DatasetConfigTest, DefaultsAreTheReferenceSettings) {
  DatasetConfig config = Minimal();
  EXPECT_TRUE(ValidateDatasetConfig(config).ok());
  EXPECT_EQ(config.resize(), 256);
  EXPECT_EQ(config.crop(), 224);
  EXPECT_EQ(config.batch_size(), 72);
  EXPECT_EQ(config.sampler(), DatasetConfig::CLASS_BALANCED);
  TransformOptions t = ToTransformOptions(config);
  EXPECT_TRUE(t.train);
  EXPECT_FLOAT_EQ(t.noise_p, 0.25f);
  EXPECT_FLOAT_EQ(t.erase_scale_max, 0.25f);
  EXPECT_FLOAT_EQ(t.erase_ratio_max, 3.3f);
}

TEST(DatasetConfigTest, RejectedValuesNameTheField) {
  struct Case {
    const char* text;
    const char* field;
  };
  for (const Case& c : {Case{"crop: 300", "crop"}, Case{"batch_size: 0", "batch_size"},
                        Case{"num_workers: 0", "num_workers"}, Case{"augmentation { flip_p: 2 }", "augmentation.flip_p"},
                        Case{"augmentation { erasing_scale_min: 0.5 erasing_scale_max: 0.1 }", "erasing_scale_min"},
                        Case{"sampler: SEQUENTIAL num_samples: 10", "num_samples"},
                        Case{"list_format: FERPLUS num_classes: 7", "num_classes"},
                        Case{"sampler: SAMPLER_KIND_UNSPECIFIED", "sampler"},
                        Case{"label_noise_rate: 1.0", "label_noise_rate"},
                        Case{"label_noise_rate: 0.3 soft_labels: true", "label_noise_rate"},
                        Case{"augmentation { affine_p: -0.1 }", "augmentation.affine_p"},
                        Case{"min_per_class: 2", "min_per_class"},  // default sampler is CLASS_BALANCED
                        Case{"sampler: SHUFFLED min_per_class: 2 batch_size: 15", "min_per_class"}}) {
    DatasetConfig config;
    const std::string text = absl::StrCat("lmdb_path: '/tmp/x' list_path: '/tmp/x.txt' ", c.text);
    ASSERT_TRUE(ParseTextProto(text, "test", &config).ok()) << c.text;
    absl::Status status = ValidateDatasetConfig(config);
    EXPECT_FALSE(status.ok()) << c.text;
    EXPECT_NE(status.message().find(c.field), std::string::npos) << status.message();
  }
}

TEST(DatasetConfigTest, MissingPathsNamed) {
  DatasetConfig config;
  EXPECT_NE(ValidateDatasetConfig(config).message().find("lmdb_path"), std::string::npos);
  config.set_lmdb_path("/x");
  EXPECT_NE(ValidateDatasetConfig(config).message().find("list_path"), std::string::npos);
}

TEST(DatasetConfigTest, LoadsFileAndBuildsLoader) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/config_db";
  fs::remove_all(dir);
  std::vector<LabelEntry> entries;
  {
    auto writer = LmdbWriter::Open(dir + "/lmdb", {.encoding = ImageEncoding::kPng});
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 30; ++i) {
      LabelEntry e{absl::StrCat(i, ".png"), i < 24 ? "train" : "test", i % 3, {}};
      ASSERT_TRUE((*writer)->Put(LmdbKey(e), cv::Mat(48, 48, CV_8UC1, cv::Scalar(i))).ok());
      entries.push_back(e);
    }
    ASSERT_TRUE((*writer)->Finish(&entries).ok());
  }
  ASSERT_TRUE(WriteLabelList(dir + "/list.txt", entries).ok());
  const std::string path = dir + "/data.pbtxt";
  std::ofstream(path) << "lmdb_path: '" << dir << "/lmdb'\nlist_path: '" << dir
                      << "/list.txt'\nnum_classes: 3\nresize: 72\ncrop: 64\nbatch_size: 8\nseed: 4\n";
  auto config = LoadDatasetConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  auto loader = MakeLoader(*config);
  ASSERT_TRUE(loader.ok()) << loader.status();
  auto batch = (*loader)->Next();
  ASSERT_TRUE(batch.ok() && batch->has_value());
  EXPECT_EQ((*batch)->images.sizes(), (std::vector<int64_t>{8, 3, 64, 64}));
  EXPECT_EQ((*loader)->batches_per_epoch(), 3);  // 24 train entries
  std::ofstream(path, std::ios::app) << "crop: 100\n";
  auto bad = LoadDatasetConfig(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path), std::string::npos);
  EXPECT_NE(bad.status().message().find("crop"), std::string::npos);
}

TEST(DatasetConfigTest, LabelNoiseFlipsTheConfiguredFractionReproducibly) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/noise_db";
  fs::remove_all(dir);
  std::vector<LabelEntry> entries;
  {
    auto writer = LmdbWriter::Open(dir + "/lmdb", {.encoding = ImageEncoding::kPng});
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 200; ++i) {
      LabelEntry e{absl::StrCat(i, ".png"), "train", i % 4, {}};
      ASSERT_TRUE((*writer)->Put(LmdbKey(e), cv::Mat(8, 8, CV_8UC1, cv::Scalar(i))).ok());
      entries.push_back(e);
    }
    ASSERT_TRUE((*writer)->Finish(&entries).ok());
  }
  ASSERT_TRUE(WriteLabelList(dir + "/list.txt", entries).ok());
  DatasetConfig config;
  config.set_lmdb_path(dir + "/lmdb");
  config.set_list_path(dir + "/list.txt");
  config.set_num_classes(4);
  config.set_resize(0);
  config.set_crop(8);
  config.set_batch_size(10);
  config.set_num_workers(1);
  config.set_label_noise_rate(0.3f);
  config.set_label_noise_seed(11);
  std::vector<NoisyLabel> a, b, c;
  ASSERT_TRUE(MakeLoader(config, 0, 1, &a).ok());
  ASSERT_TRUE(MakeLoader(config, 0, 1, &b).ok());
  config.set_label_noise_seed(12);
  ASSERT_TRUE(MakeLoader(config, 0, 1, &c).ok());
  ASSERT_EQ(a.size(), 60u);  // exactly round(0.3 * 200)
  EXPECT_EQ(FormatNoisyLabels(a), FormatNoisyLabels(b));
  EXPECT_NE(FormatNoisyLabels(a), FormatNoisyLabels(c));
  for (const NoisyLabel& n : a) {
    EXPECT_NE(n.clean, n.noisy) << n.key;  // never flipped to its own class
    EXPECT_GE(n.noisy, 0);
    EXPECT_LT(n.noisy, 4);
    const int index = std::stoi(n.key.substr(n.key.find('_') + 1));
    EXPECT_EQ(n.clean, index % 4) << n.key;
  }
  EXPECT_EQ(FormatNoisyLabels({{"train_7.png", 3, 1}}), "train_7.png 3 1\n");

  // The file round-trips and puts the noisy labels back on the clean list.
  absl::StatusOr<std::vector<NoisyLabel>> parsed = ParseNoisyLabels(FormatNoisyLabels(a), "noisy.txt");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), a.size());
  std::vector<LabelEntry> relabelled = entries;
  ASSERT_TRUE(ApplyNoisyLabels(*parsed, "noisy.txt", &relabelled).ok());
  int changed = 0;
  for (size_t i = 0; i < entries.size(); ++i) changed += relabelled[i].label != entries[i].label;
  EXPECT_EQ(changed, 60);
  // Applying twice finds labels that are no longer the clean ones.
  absl::Status twice = ApplyNoisyLabels(*parsed, "noisy.txt", &relabelled);
  EXPECT_EQ(twice.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(twice.message().find("noisy.txt"), std::string::npos) << twice;
  EXPECT_FALSE(ApplyNoisyLabels({{"train_999.png", 0, 1}}, "n", &relabelled).ok());
  for (const char* bad : {"k 1", "k 1 1", "k a 2", "k 1 2 3", "k -1 2"}) {
    absl::StatusOr<std::vector<NoisyLabel>> p = ParseNoisyLabels(absl::StrCat("ok 0 1\n", bad, "\n"), "f.txt");
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("f.txt:2"), std::string::npos) << p.status();
  }
}

}  // namespace
}  // namespace dmue::datasets
