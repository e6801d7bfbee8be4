#include "datasets/label_list.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "third_party/shared_data.h"

namespace dmue::datasets {
namespace {

void ExpectErrorMentions(const absl::Status& status, const std::string& what) {
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(what), std::string::npos) << status.message();
}

TEST(LabelListTest, ReferenceFormat) {
  auto list = ParseLabelList("train_a/1.jpg 3\n\ntest_b.png 0\n# comment\ntrain_x_y.jpg 7\n",
                             ListFormat::kReference, "lb2.txt", {.num_classes = 8});
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->entries.size(), 3u);
  EXPECT_EQ(list->entries[0].split, "train");
  EXPECT_EQ(list->entries[0].path, "a/1.jpg");
  EXPECT_EQ(list->entries[0].label, 3);
  EXPECT_EQ(LmdbKey(list->entries[1]), "test_b.png");
  EXPECT_EQ(list->entries[2].path, "x_y.jpg");
  ParseOptions only_test;
  only_test.only_split = "test";
  auto test = ParseLabelList("train_a.jpg 1\ntest_b.jpg 2\n", ListFormat::kReference, "x", only_test);
  ASSERT_TRUE(test.ok());
  ASSERT_EQ(test->entries.size(), 1u);
  EXPECT_EQ(test->entries[0].label, 2);
}

TEST(LabelListTest, ReferenceFormatMalformedLinesNameFileAndLine) {
  ExpectErrorMentions(ParseLabelList("train_a.jpg 1\ntrain_b.jpg\n", ListFormat::kReference, "lb2.txt").status(),
                      "lb2.txt:2");
  ExpectErrorMentions(ParseLabelList("train_a.jpg x\n", ListFormat::kReference, "lb2.txt").status(),
                      "lb2.txt:1: label 'x'");
  ExpectErrorMentions(
      ParseLabelList("train_a.jpg 9\n", ListFormat::kReference, "l", {.num_classes = 8}).status(),
      "out of range");
  ExpectErrorMentions(ParseLabelList("a.jpg 1\n", ListFormat::kReference, "l").status(), "prefix");
  ExpectErrorMentions(ParseLabelList("train_a.jpg 1 0.5 0.2\n", ListFormat::kReference, "l").status(),
                      "sums to");
}

TEST(LabelListTest, DistributionColumnsRoundTrip) {
  std::vector<LabelEntry> entries(2);
  entries[0] = {"a.png", "train", 1, {0.25f, 0.75f, 0.0f}};
  entries[1] = {"b.png", "test", 0, {1.0f, 0.0f, 0.0f}};
  const std::string path = ::testing::TempDir() + "/soft.txt";
  ASSERT_TRUE(WriteLabelList(path, entries, true).ok());
  auto list = ReadLabelList(path, ListFormat::kReference, {.num_classes = 3});
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->entries.size(), 2u);
  EXPECT_EQ(list->entries[0].distribution, entries[0].distribution);
  EXPECT_EQ(LmdbKey(list->entries[1]), "test_b.png");
  EXPECT_EQ(FormatLabelList(entries, false), "train_a.png 1\ntest_b.png 0\n");
}

TEST(LabelListTest, RafDbFormat) {
  auto list = ParseLabelList("train_00001.jpg 5\ntest_0001.jpg 1\n", ListFormat::kRafDb, "raf.txt");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->entries.size(), 2u);
  EXPECT_EQ(list->entries[0].label, 4);
  EXPECT_EQ(list->entries[0].split, "train");
  EXPECT_EQ(list->entries[0].path, "train_00001.jpg");
  EXPECT_EQ(list->entries[1].split, "test");
  ExpectErrorMentions(ParseLabelList("a.jpg 0\n", ListFormat::kRafDb, "raf.txt").status(),
                      "raf.txt:1: label 0 out of range [1, 7]");
  ExpectErrorMentions(ParseLabelList("a.jpg 1 2\n", ListFormat::kRafDb, "raf.txt").status(),
                      "raf.txt:1");
}

TEST(LabelListTest, FerPlusModes) {
  const std::string text =
      "fer0.png,\"(0, 0, 48, 48)\",4,0,0,1,3,2,0,0,0,0\n"   // 4 of 9 kept > half? no (4*2<=9)
      "fer1.png,\"(0, 0, 48, 48)\",9,0,0,1,0,0,0,0,0,0\n"   // neutral
      "fer2.png,\"(0, 0, 48, 48)\",0,0,0,0,0,0,0,0,6,4\n"   // unknown: dropped
      "fer3.png,\"(0, 0, 48, 48)\",1,6,1,1,1,0,0,0,0,0\n"   // singles removed: happiness
      "Training,fer4.png,0,0,0,0,0,0,0,3,2,5\n";             // fer2013new layout, NF top
  auto majority = ParseLabelList(text, ListFormat::kFerPlus, "label.csv");
  ASSERT_TRUE(majority.ok()) << majority.status();
  ASSERT_EQ(majority->entries.size(), 2u);
  EXPECT_EQ(majority->num_dropped, 3);
  EXPECT_EQ(majority->entries[0].path, "fer1.png");
  EXPECT_EQ(majority->entries[0].label, 0);
  EXPECT_EQ(majority->entries[1].label, 1);
  EXPECT_TRUE(majority->entries[0].distribution.empty());

  auto plurality = ParseLabelList(text, ListFormat::kFerPlus, "label.csv",
                                  {.ferplus_mode = FerPlusLabelMode::kPlurality});
  ASSERT_TRUE(plurality.ok());
  ASSERT_EQ(plurality->entries.size(), 3u);  // fer0 neutral, fer1, fer3
  EXPECT_EQ(plurality->entries[0].label, 0);

  auto soft = ParseLabelList(text, ListFormat::kFerPlus, "label.csv",
                             {.ferplus_mode = FerPlusLabelMode::kDistribution});
  ASSERT_TRUE(soft.ok());
  ASSERT_EQ(soft->entries.size(), 4u);  // all but fer2 (no emotion votes)
  EXPECT_EQ(soft->entries[3].path, "fer4.png");
  EXPECT_EQ(soft->entries[3].label, 7);
  EXPECT_FLOAT_EQ(soft->entries[3].distribution[7], 1.0f);
  EXPECT_FLOAT_EQ(soft->entries[0].distribution[0], 0.4f);
  float sum = 0;
  for (float p : soft->entries[0].distribution) sum += p;
  EXPECT_NEAR(sum, 1.0f, 1e-6);
}

TEST(LabelListTest, FerPlusMalformedLines) {
  ExpectErrorMentions(
      ParseLabelList("a.png,\"(0, 0, 48, 48)\",1,2,3\n", ListFormat::kFerPlus, "label.csv").status(),
      "label.csv:1: expected 12");
  ExpectErrorMentions(ParseLabelList("a.png,\"(0, 0, 48, 48)\",4,0,0,1,3,2,0,0,0,0\n"
                                     "b.png,\"(0, 0, 48, 48)\",4,0,x,1,3,2,0,0,0,0\n",
                                     ListFormat::kFerPlus, "label.csv")
                          .status(),
                      "label.csv:2: vote 2");
  ExpectErrorMentions(
      ParseLabelList("a.png,\"(0, 0, 48, 48,4,0,0,1,3,2,0,0,0,0\n", ListFormat::kFerPlus, "f").status(),
      "unterminated");
}

TEST(LabelListTest, FerPlusSharedTrainCountsMatchReferenceAccuracy) {
  DMUE_SHARED_OR_SKIP(path, "data/fer2013_ferplus/FER2013Train/label.csv");
  auto list = ReadLabelList(path, ListFormat::kFerPlus);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->entries.size(), 25045u);
  EXPECT_EQ(ClassCounts(list->entries, 8),
            (std::vector<int64_t>{8733, 7284, 3136, 3022, 2098, 116, 536, 120}));
  EXPECT_EQ(list->num_dropped, 3513);
}

TEST(LabelListTest, FolderFormat) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / "folder_list";
  fs::remove_all(root);
  for (const char* file : {"happy/b.png", "happy/a.jpg", "angry/x.png", "angry/notes.txt"}) {
    fs::create_directories((root / file).parent_path());
    std::ofstream(root / file) << "x";
  }
  auto list = ReadLabelList(root.string(), ListFormat::kFolder);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->entries.size(), 3u);
  EXPECT_EQ(list->entries[0].path, "angry/x.png");
  EXPECT_EQ(list->entries[0].label, 0);
  EXPECT_EQ(list->entries[1].path, "happy/a.jpg");
  EXPECT_EQ(list->entries[2].label, 1);
  ExpectErrorMentions(ReadLabelList((root / "nope").string(), ListFormat::kFolder).status(), "nope");
}

TEST(LabelListTest, MissingFileNamed) {
  ExpectErrorMentions(ReadLabelList("/no/such/list.txt", ListFormat::kReference).status(),
                      "/no/such/list.txt");
}

TEST(LabelListTest, SymmetricNoiseRateAndDeterminism) {
  std::vector<LabelEntry> clean(1000);
  for (int i = 0; i < 1000; ++i) clean[i].label = i % 7;
  for (double rate : {0.1, 0.2, 0.3}) {
    auto a = clean, b = clean;
    auto changed = InjectSymmetricLabelNoise(&a, rate, 7, 42);
    ASSERT_TRUE(changed.ok());
    ASSERT_TRUE(InjectSymmetricLabelNoise(&b, rate, 7, 42).ok());
    EXPECT_EQ(changed->size(), size_t(rate * 1000 + 0.5));
    int differ = 0;
    std::vector<int> new_labels(7, 0);
    for (int i = 0; i < 1000; ++i) {
      differ += a[i].label != clean[i].label;
      EXPECT_EQ(a[i].label, b[i].label);
      EXPECT_GE(a[i].label, 0);
      EXPECT_LT(a[i].label, 7);
      if (a[i].label != clean[i].label) ++new_labels[a[i].label];
    }
    EXPECT_EQ(differ, int(changed->size()));
    for (int c = 0; c < 7; ++c) EXPECT_GT(new_labels[c], 0);  // spread over classes
  }
  auto bad = clean;
  EXPECT_FALSE(InjectSymmetricLabelNoise(&bad, 1.5, 7, 0).ok());
}

}  // namespace
}  // namespace dmue::datasets
