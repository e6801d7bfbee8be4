#include "datasets/lmdb_dataset.h"

#include <lmdb.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "datasets/example_source.h"
#include "gtest/gtest.h"

namespace dmue::datasets {
namespace {

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

cv::Mat TestImage(int index, int size = 32, int channels = 3) {
  cv::Mat image(size, size, channels == 3 ? CV_8UC3 : CV_8UC1);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size * channels; ++x) image.ptr<uint8_t>(y)[x] = uint8_t(index * 7 + y * 3 + x);
  }
  return image;
}

bool SameImage(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST(LmdbDatasetTest, RawRoundTripWithLabels) {
  const std::string dir = FreshDir("raw_db");
  std::vector<LabelEntry> labels;
  {
    auto writer = LmdbWriter::Open(dir, {.commit_every = 7});
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 0; i < 20; ++i) {
      LabelEntry entry{absl::StrCat("img", i, ".png"), "train", i % 3, {}};
      ASSERT_TRUE((*writer)->Put(LmdbKey(entry), TestImage(i)).ok());
      labels.push_back(entry);
    }
    EXPECT_FALSE((*writer)->Put("train_img3.png", TestImage(3)).ok());  // duplicate
    EXPECT_FALSE((*writer)->Put("train_big.png", TestImage(3, 40)).ok());  // size mismatch
    ASSERT_TRUE((*writer)->Finish(&labels).ok());
  }
  auto reader = LmdbReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->info().num_records, 20);
  EXPECT_TRUE((*reader)->info().complete);
  EXPECT_EQ((*reader)->info().encoding, ImageEncoding::kRaw);
  for (int i = 0; i < 20; ++i) {
    auto image = (*reader)->ReadImage(absl::StrCat("train_img", i, ".png"));
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_TRUE(SameImage(*image, TestImage(i)));
  }
  auto stored = (*reader)->Labels();
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 20u);
  EXPECT_EQ((*stored)[5].label, 2);
  EXPECT_EQ(LmdbKey((*stored)[5]), "train_img5.png");
  auto keys = (*reader)->Keys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 20u);
  // Raw records are zero-copy views into the map.
  auto snapshot = (*reader)->BeginRead();
  ASSERT_TRUE(snapshot.ok());
  auto value = snapshot->Get("train_img1.png");
  ASSERT_TRUE(value.ok());
  auto view = snapshot->GetImage("train_img1.png");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(static_cast<const void*>(view->data), static_cast<const void*>(value->data()));
}

TEST(LmdbDatasetTest, EncodedPngAndJpegRoundTrip) {
  for (ImageEncoding encoding : {ImageEncoding::kPng, ImageEncoding::kJpeg}) {
    const std::string dir = FreshDir(absl::StrCat("enc_db_", ImageEncodingName(encoding)));
    {
      auto writer = LmdbWriter::Open(dir, {.encoding = encoding});
      ASSERT_TRUE(writer.ok());
      ASSERT_TRUE((*writer)->Put("train_rgb", TestImage(1, 48)).ok());
      ASSERT_TRUE((*writer)->Put("train_grey", TestImage(2, 24, 1)).ok());
      ASSERT_TRUE((*writer)->Finish(nullptr).ok());
    }
    auto reader = LmdbReader::Open(dir);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ((*reader)->info().encoding, encoding);
    auto rgb = (*reader)->ReadImage("train_rgb");
    auto grey = (*reader)->ReadImage("train_grey");
    ASSERT_TRUE(rgb.ok() && grey.ok());
    EXPECT_EQ(grey->channels(), 3);
    EXPECT_EQ(grey->rows, 24);
    if (encoding == ImageEncoding::kPng) {
      EXPECT_TRUE(SameImage(*rgb, TestImage(1, 48)));
      cv::Mat grey3;
      cv::Mat channels[] = {TestImage(2, 24, 1), TestImage(2, 24, 1), TestImage(2, 24, 1)};
      cv::merge(channels, 3, grey3);
      EXPECT_TRUE(SameImage(*grey, grey3));
    } else {
      EXPECT_LT(cv::norm(*rgb, TestImage(1, 48), cv::NORM_L1) / rgb->total() / 3, 12.0);
    }
  }
}

TEST(LmdbDatasetTest, ResumeAfterInterruptedWrite) {
  const std::string dir = FreshDir("resume_db");
  {
    auto writer = LmdbWriter::Open(dir, {.commit_every = 8});
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*writer)->Put(absl::StrCat("k", i), TestImage(i)).ok());
    (*writer)->Abandon();  // 16 committed, 4 lost, as in a crash
  }
  {
    auto reader = LmdbReader::Open(dir);
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ((*reader)->info().num_records, 16);
    EXPECT_FALSE((*reader)->info().complete);
    // A half-packed database is refused by --verify and the loaders, with
    // the way out in the message.
    const absl::Status incomplete = CheckComplete(**reader, dir);
    EXPECT_EQ(incomplete.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(incomplete.message().find("rerun the same pack_lmdb command"), std::string::npos) << incomplete;
    EXPECT_EQ(VerifyLmdb(dir).status().code(), absl::StatusCode::kFailedPrecondition);
    LabelEntry entry{"k0", "", 0, {}};
    EXPECT_EQ(LmdbSource::Open(dir, {entry}).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  auto no_resume = LmdbWriter::Open(dir, {.resume = false});
  EXPECT_FALSE(no_resume.ok());
  auto wrong_encoding = LmdbWriter::Open(dir, {.encoding = ImageEncoding::kPng});
  EXPECT_FALSE(wrong_encoding.ok());
  {
    auto writer = LmdbWriter::Open(dir, {.commit_every = 8});
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_EQ((*writer)->num_existing(), 16);
    int written = 0;
    for (int i = 0; i < 40; ++i) {
      const std::string key = absl::StrCat("k", i);
      if ((*writer)->Contains(key)) continue;
      ASSERT_TRUE((*writer)->Put(key, TestImage(i)).ok());
      ++written;
    }
    EXPECT_EQ(written, 24);
    ASSERT_TRUE((*writer)->Finish(nullptr).ok());
  }
  auto reader = LmdbReader::Open(dir);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->info().num_records, 40);
  EXPECT_TRUE((*reader)->info().complete);
  EXPECT_TRUE(CheckComplete(**reader, dir).ok());
  EXPECT_TRUE(VerifyLmdb(dir).ok());
  for (int i = 0; i < 40; ++i) {
    auto image = (*reader)->ReadImage(absl::StrCat("k", i));
    ASSERT_TRUE(image.ok());
    EXPECT_TRUE(SameImage(*image, TestImage(i)));
  }
}

TEST(LmdbDatasetTest, MapGrowsFromTinySize) {
  const std::string dir = FreshDir("grow_db");
  int64_t initial = 0;
  {
    auto writer = LmdbWriter::Open(dir, {.commit_every = 50, .initial_map_size = 64 << 10});
    ASSERT_TRUE(writer.ok()) << writer.status();
    initial = (*writer)->map_size();
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE((*writer)->Put(absl::StrCat("k", i), TestImage(i, 64)).ok()) << i;  // 12 KiB each
    }
    ASSERT_TRUE((*writer)->Finish(nullptr).ok());
    EXPECT_GT((*writer)->map_size(), 3 << 20);
  }
  EXPECT_LT(initial, 1 << 20);
  auto reader = LmdbReader::Open(dir);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->info().num_records, 300);
  auto image = (*reader)->ReadImage("k299");
  ASSERT_TRUE(image.ok());
  EXPECT_TRUE(SameImage(*image, TestImage(299, 64)));
}

TEST(LmdbDatasetTest, MissingKeyNamesKeyAndPath) {
  const std::string dir = FreshDir("missing_db");
  {
    auto writer = LmdbWriter::Open(dir);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Put("train_a", TestImage(0)).ok());
  }
  auto reader = LmdbReader::Open(dir);
  ASSERT_TRUE(reader.ok());
  auto image = (*reader)->ReadImage("train_nope.jpg");
  ASSERT_FALSE(image.ok());
  EXPECT_TRUE(absl::IsNotFound(image.status()));
  EXPECT_NE(image.status().message().find("train_nope.jpg"), std::string::npos);
  EXPECT_NE(image.status().message().find(dir), std::string::npos);
  auto missing = LmdbReader::Open(dir + "/nothing");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nothing"), std::string::npos);
}

TEST(LmdbDatasetTest, VerifyReportsCorruptRecordsAndMissingLabels) {
  const std::string dir = FreshDir("verify_db");
  {
    auto writer = LmdbWriter::Open(dir, {.encoding = ImageEncoding::kPng});
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*writer)->Put(absl::StrCat("train_", i), TestImage(i)).ok());
    auto good = EncodeRecord(TestImage(9), ImageEncoding::kPng);
    ASSERT_TRUE(good.ok());
    std::string corrupt = good->substr(0, 40);  // truncated PNG
    ASSERT_TRUE((*writer)->PutRecord("train_corrupt", corrupt).ok());
    std::vector<LabelEntry> labels = {{"0", "train", 0, {}}, {"ghost", "train", 1, {}}};
    ASSERT_TRUE((*writer)->Finish(&labels).ok());
  }
  auto report = VerifyLmdb(dir);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->num_records, 6);
  EXPECT_EQ(report->num_ok, 5);
  ASSERT_EQ(report->bad.size(), 2u);
  EXPECT_EQ(report->bad[0].first, "train_corrupt");
  EXPECT_EQ(report->bad[1].first, "train_ghost");
}

TEST(LmdbDatasetTest, ReadsReferenceLayoutWithoutMeta) {
  // A database as make_lmdb.py writes it: raw bytes only, no __meta__.
  const std::string dir = FreshDir("reference_db");
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0664), 0);
  MDB_txn* txn = nullptr;
  MDB_dbi dbi;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
  cv::Mat image = TestImage(4, 256);
  std::string key = "test_test1.jpg";
  MDB_val k{key.size(), key.data()}, v{image.total() * 3, image.data};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  auto reader = LmdbReader::Open(dir);
  ASSERT_TRUE(reader.ok());
  EXPECT_FALSE((*reader)->info().has_meta);
  EXPECT_EQ((*reader)->info().num_records, 1);
  auto read = (*reader)->ReadImage(key);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(SameImage(*read, image));
}

TEST(LmdbDatasetTest, ConcurrentReaders) {
  const std::string dir = FreshDir("concurrent_db");
  {
    auto writer = LmdbWriter::Open(dir);
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 64; ++i) ASSERT_TRUE((*writer)->Put(absl::StrCat("k", i), TestImage(i)).ok());
  }
  auto reader = LmdbReader::Open(dir);
  ASSERT_TRUE(reader.ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto snapshot = (*reader)->BeginRead();
      if (!snapshot.ok()) {
        ++failures;
        return;
      }
      for (int round = 0; round < 20; ++round) {
        for (int i = t; i < 64; i += 4) {
          auto image = snapshot->GetImage(absl::StrCat("k", i));
          if (!image.ok() || !SameImage(*image, TestImage(i))) ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace dmue::datasets
