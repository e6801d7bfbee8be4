#include "datasets/packer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <opencv2/imgproc.hpp>

#include "datasets/lmdb_dataset.h"
#include "gtest/gtest.h"
#include "third_party/shared_data.h"

namespace dmue::datasets {
namespace fs = std::filesystem;
namespace {

std::string Fresh(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

int CountLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

TEST(PackerTest, FerPlusSubsetEndToEndWithResume) {
  DMUE_SHARED_OR_SKIP(root, "data/fer2013_ferplus/FER2013Train");
  PackOptions options;
  options.image_root = root;
  options.list_path = root + "/label.csv";
  options.format = ListFormat::kFerPlus;
  options.parse.max_lines = 100;
  options.encoding = ImageEncoding::kPng;
  options.resize = 0;
  options.commit_every = 16;
  options.output = Fresh("ferplus_png");
  auto first = PackLmdb(options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->failed, 0);
  EXPECT_EQ(first->written, first->listed);
  EXPECT_EQ(first->listed + first->dropped, 100);
  EXPECT_GT(first->listed, 80);

  options.parse.max_lines = 200;  // resume and extend
  auto second = PackLmdb(options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->already_present, first->listed);
  EXPECT_EQ(second->written + second->already_present, second->listed);
  EXPECT_EQ(second->listed + second->dropped, 200);

  auto verify = VerifyLmdb(options.output);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->ok());
  EXPECT_EQ(verify->num_records, second->listed);
  EXPECT_EQ(CountLines(options.output + "/labels.txt"), second->listed);
  EXPECT_EQ(CountLines(options.output + "/failures.txt"), 0);

  // Records decode to the original pixels (grey replicated to RGB), keyed train_<file>.
  auto reader = LmdbReader::Open(options.output);
  ASSERT_TRUE(reader.ok());
  auto stored = (*reader)->ReadImage("train_fer0000001.png");
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto original = ReadImageRgb(root + "/fer0000001.png");
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(cv::norm(*stored, *original, cv::NORM_INF), 0.0);
  auto labels = (*reader)->Labels();
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(int64_t(labels->size()), second->listed);
}

TEST(PackerTest, RawReferenceLayoutUsesCubicResize) {
  DMUE_SHARED_OR_SKIP(root, "data/fer2013_ferplus/FER2013Train");
  PackOptions options;
  options.image_root = root;
  options.list_path = root + "/label.csv";
  options.format = ListFormat::kFerPlus;
  options.parse.max_lines = 20;
  options.encoding = ImageEncoding::kRaw;
  options.resize = 64;
  options.output = Fresh("ferplus_raw");
  options.show_progress = false;
  auto report = PackLmdb(options);
  ASSERT_TRUE(report.ok()) << report.status();
  auto reader = LmdbReader::Open(options.output);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->info().height, 64);
  auto stored = (*reader)->ReadImage("train_fer0000001.png");
  ASSERT_TRUE(stored.ok());
  auto original = ReadImageRgb(root + "/fer0000001.png");
  cv::Mat resized;
  cv::resize(*original, resized, cv::Size(64, 64), 0, 0, cv::INTER_CUBIC);
  EXPECT_EQ(cv::norm(*stored, resized, cv::NORM_INF), 0.0);
}

TEST(PackerTest, UnreadableImagesGoToTheFailureListAndTheRunContinues) {
  DMUE_SHARED_OR_SKIP(root, "data/fer2013_ferplus/FER2013Train");
  const std::string images = Fresh("broken_images");
  fs::create_directories(images);
  std::ifstream labels_in(root + "/label.csv");
  std::ofstream labels_out(images + "/label.csv");
  std::vector<std::string> names;
  for (std::string line; names.size() < 6 && std::getline(labels_in, line);) {
    labels_out << line << "\n";
    const std::string name = line.substr(0, line.find(','));
    names.push_back(name);
    fs::copy_file(root + "/" + name, images + "/" + name);
  }
  labels_out.close();
  fs::remove(images + "/" + names[2]);                     // missing
  fs::resize_file(images + "/" + names[4], 100);           // truncated PNG
  { std::ofstream(images + "/" + names[5], std::ios::trunc) << "not an image"; }  // garbage
  PackOptions options;
  options.image_root = images;
  options.list_path = images + "/label.csv";
  options.format = ListFormat::kFerPlus;
  options.parse.ferplus_mode = FerPlusLabelMode::kPlurality;  // keeps all 6
  options.encoding = ImageEncoding::kPng;
  options.resize = 0;
  options.output = Fresh("broken_lmdb");
  auto report = PackLmdb(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->listed, 6);
  EXPECT_EQ(report->failed, 3);
  EXPECT_EQ(report->written, 3);
  EXPECT_EQ(CountLines(options.output + "/failures.txt"), 3);
  EXPECT_EQ(CountLines(options.output + "/labels.txt"), 3);
  auto verify = VerifyLmdb(options.output);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok());
}

TEST(PackerTest, BinaryPacksAndVerifies) {
  DMUE_SHARED_OR_SKIP(root, "data/fer2013_ferplus/FER2013Valid");
  const std::string binary = "datasets/pack_lmdb";
  ASSERT_TRUE(fs::exists(binary)) << "run from the test's runfiles folder";
  const std::string out = Fresh("binary_lmdb");
  const std::string pack = binary + " --images=" + root + " --list=" + root +
                           "/label.csv --format=ferplus --split=val --max_lines=50 --encoding=png --resize=0"
                           " --output=" + out + " 2>/dev/null";
  ASSERT_EQ(std::system(pack.c_str()), 0);
  EXPECT_EQ(std::system((binary + " --verify --output=" + out + " >/dev/null").c_str()), 0);
  auto reader = LmdbReader::Open(out);
  ASSERT_TRUE(reader.ok());
  auto keys = (*reader)->Keys();
  ASSERT_TRUE(keys.ok());
  ASSERT_FALSE(keys->empty());
  EXPECT_EQ(keys->front().rfind("val_fer", 0), 0u) << keys->front();
  // A corrupt record makes --verify fail with exit code 2.
  {
    auto writer = LmdbWriter::Open(out, {.encoding = ImageEncoding::kPng});
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->PutRecord("val_corrupt.png", "DMUE\x01\x01\x01").ok());
    // Left unfinished (as a killed pack): --verify refuses it as incomplete.
  }
  EXPECT_EQ(WEXITSTATUS(std::system((binary + " --verify --output=" + out + " >/dev/null 2>&1").c_str())), 1);
  {
    auto writer = LmdbWriter::Open(out, {.encoding = ImageEncoding::kPng});
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Finish(nullptr).ok());
  }
  EXPECT_EQ(WEXITSTATUS(std::system((binary + " --verify --output=" + out + " >/dev/null").c_str())), 2);
}

}  // namespace
}  // namespace dmue::datasets

namespace dmue::datasets {
namespace {

TEST(PackerTest, Fer2013PixelCsvPacksItsOwnImages) {
  const std::string dir = ::testing::TempDir() + "/fer2013_csv";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream csv(dir + "/fer2013.csv");
  csv << "emotion,pixels,Usage\n";
  for (int row = 0; row < 3; ++row) {
    csv << row << ",";
    for (int i = 0; i < 2304; ++i) csv << (i ? " " : "") << (row * 40 + i) % 256;
    csv << "," << (row == 2 ? "PublicTest" : "Training") << "\n";
  }
  csv.close();
  PackOptions options;
  options.list_path = dir + "/fer2013.csv";
  options.format = ListFormat::kFer2013Csv;
  options.encoding = ImageEncoding::kPng;
  options.resize = 0;
  options.output = dir + "/lmdb";
  options.show_progress = false;
  auto report = PackLmdb(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->written, 3);
  auto reader = LmdbReader::Open(options.output);
  ASSERT_TRUE(reader.ok());
  auto image = (*reader)->ReadImage("val_2.png");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->rows, 48);
  EXPECT_EQ(image->at<cv::Vec3b>(0, 1)[0], 81);
  auto verify = VerifyLmdb(options.output);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->bad.empty());
}

}  // namespace
}  // namespace dmue::datasets
