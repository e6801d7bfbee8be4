#include "preprocessing/crop_dataset.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <jpeglib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dmue/io/image_decode.h"
#include "gtest/gtest.h"
#include "preprocessing/crop_config.h"
#include "third_party/shared_data.h"

namespace dmue::preprocessing {
namespace {
namespace fs = std::filesystem;

std::string Tmp(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return (fs::path(dir ? dir : "/tmp") / name).string();
}

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteBytes(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

void WriteImage(const std::string& path, const cv::Mat& m) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(cv::imwrite(path, m)) << path;
}

// A 12000 x 12000 JPEG streamed row by row (no 432 MB buffer needed).
void WriteHugeJpeg(const std::string& path, int side) {
  fs::create_directories(fs::path(path).parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = side;
  cinfo.image_height = side;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 40, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<unsigned char> row(static_cast<size_t>(side) * 3);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      for (int c = 0; c < 3; ++c) row[x * 3 + c] = static_cast<unsigned char>(((x + y) / 97 + c * 40) % 256);
    }
    JSAMPROW rp = row.data();
    jpeg_write_scanlines(&cinfo, &rp, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(f);
}

std::map<std::string, std::string> FailureReasons(const std::string& path) {
  std::map<std::string, std::string> reasons;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find('\t');
    const size_t b = line.find('\t', a + 1);
    reasons[line.substr(0, a)] = line.substr(a + 1, b - a - 1);
  }
  return reasons;
}

class CropDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto models = SharedPath("models/mtcnn");
    auto images = SharedPath("golden/mtcnn/images");
    if (!models.ok() || !images.ok()) GTEST_SKIP() << "shared data missing";
    mtcnn_dir_ = *models;
    images_ = *images;
  }
  std::string mtcnn_dir_, images_;
};

TEST_F(CropDatasetTest, BadInputsBecomeFailureRecordsAndRunsResume) {
  const std::string in = Tmp("in"), out = Tmp("out");
  const std::string face_bytes = ReadBytes(images_ + "/test1.jpg");
  WriteBytes(in + "/faces/test1.jpg", face_bytes);
  WriteBytes(in + "/faces/many.jpg", ReadBytes(images_ + "/facex_sample_non_mask.jpg"));
  cv::Mat bgr = cv::imread(images_ + "/test1.jpg", cv::IMREAD_COLOR);
  cv::Mat gray, bgra, deep;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  bgr.convertTo(deep, CV_16UC3, 257.0);
  WriteImage(in + "/faces/gray.png", gray);
  WriteImage(in + "/faces/rgba.png", bgra);
  WriteImage(in + "/faces/deep16.png", deep);
  WriteBytes(in + "/bad/empty.jpg", "");
  WriteBytes(in + "/bad/truncated.jpg", face_bytes.substr(0, face_bytes.size() / 2));
  WriteBytes(in + "/bad/text.jpg", "this is not an image\n");
  std::string bomb = ReadBytes(images_ + "/facex_logo_noface.png");
  const unsigned char big[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0};  // 100000 x 100000.
  bomb.replace(16, 8, reinterpret_cast<const char*>(big), 8);
  WriteBytes(in + "/bad/bomb.png", bomb);
  WriteBytes(in + "/bad/noface.png", ReadBytes(images_ + "/facex_logo_noface.png"));
  WriteImage(in + "/bad/tiny.png", cv::Mat(10, 10, CV_8UC3, cv::Scalar(30, 60, 90)));
  WriteHugeJpeg(in + "/big/huge.jpg", 12000);
  WriteBytes(in + "/notes.txt", "ignored: not an image extension");

  CropConfig config;
  config.set_input_root(in);
  config.set_output_root(out);
  config.set_mtcnn_dir(mtcnn_dir_);
  config.set_progress_interval_s(0);
  std::ostringstream log;
  auto stats = RunCropDataset(config, log);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->total, 12);
  EXPECT_EQ(stats->written, 5) << log.str();
  EXPECT_EQ(stats->skipped_existing, 0);
  std::map<std::string, std::string> reasons = FailureReasons(out + "/failures.tsv");
  EXPECT_EQ(reasons["bad/empty.jpg"], "unreadable");
  EXPECT_EQ(reasons["bad/truncated.jpg"], "unreadable");
  EXPECT_EQ(reasons["bad/text.jpg"], "unreadable");
  EXPECT_EQ(reasons["bad/bomb.png"], "unreadable");
  EXPECT_EQ(reasons["bad/noface.png"], "no_face");
  EXPECT_EQ(reasons["bad/tiny.png"], "no_face");
  // The huge photo is decoded reduced and searched, not refused.
  EXPECT_NE(reasons["big/huge.jpg"], "unreadable");
  EXPECT_EQ(reasons.count("faces/test1.jpg"), 0u);
  for (const char* name : {"test1.jpg", "many.jpg", "gray.png", "rgba.png", "deep16.png"}) {
    auto crop = io::ReadImageRgb(out + "/faces/" + name);
    ASSERT_TRUE(crop.ok()) << name << ": " << crop.status();
    EXPECT_EQ(crop->size(), cv::Size(256, 256)) << name;
  }
  // The crop of test1 is the reference's (default mode, JPEG quality 95).
  auto golden = SharedPath("golden/mtcnn/align/test1_aligned_256.png");
  if (golden.ok()) {
    auto a = io::ReadImageRgb(out + "/faces/test1.jpg");
    auto b = io::ReadImageRgb(*golden);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LT(cv::norm(*a, *b, cv::NORM_L1) / (256.0 * 256 * 3), 3.0);
  }
  auto sheet = io::ReadImageRgb(out + "/contact_sheet.png");
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  EXPECT_EQ(sheet->cols, 3 * 128);
  EXPECT_NE(log.str().find("img/s"), std::string::npos);

  // Resume: finished crops are skipped, failures retried and listed again.
  auto again = RunCropDataset(config, log);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->skipped_existing, 5);
  EXPECT_EQ(again->written, 0);
  EXPECT_EQ(again->failures.size(), stats->failures.size());
}

TEST_F(CropDatasetTest, LabelListWithMsraFlow) {
  const std::string in = Tmp("list_in"), out = Tmp("list_out");
  WriteBytes(in + "/a/face.jpg", ReadBytes(images_ + "/face_sdk_test1_cropped.jpg"));
  WriteBytes(in + "/a/empty.jpg", "");
  const std::string list = Tmp("list.txt");
  WriteBytes(list, "# path label\na/face.jpg 3\n\na/empty.jpg,1\nmissing.jpg 2\n");
  CropConfig config;
  config.set_flow(CropConfig::CROP_MSRA);
  config.set_input_root(in);
  config.set_output_root(out);
  config.set_label_list(list);
  config.set_output_format(CropConfig::PNG);
  config.set_mtcnn_dir(mtcnn_dir_);
  config.set_workers(1);
  config.set_intra_op_threads(2);
  config.set_progress_interval_s(0);
  auto items = ListImages(config);
  ASSERT_TRUE(items.ok());
  EXPECT_EQ(*items, (std::vector<std::string>{"a/face.jpg", "a/empty.jpg", "missing.jpg"}));
  std::ostringstream log;
  auto stats = RunCropDataset(config, log);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->written, 1);
  auto crop = io::ReadImageRgb(out + "/a/face.png");
  ASSERT_TRUE(crop.ok()) << crop.status();
  // Default mode clamps the enlarged crop to the image: 106 rows (rows
  // 6..112), where the reference (compat) loses the last row.
  EXPECT_EQ(crop->rows, 106);
  std::map<std::string, std::string> reasons = FailureReasons(out + "/failures.tsv");
  EXPECT_EQ(reasons["a/empty.jpg"], "unreadable");
  EXPECT_EQ(reasons["missing.jpg"], "unreadable");

  config.set_label_list(Tmp("no_such_list.txt"));
  EXPECT_FALSE(RunCropDataset(config, log).ok());
}

}  // namespace
}  // namespace dmue::preprocessing
