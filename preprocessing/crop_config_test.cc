#include "preprocessing/crop_config.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace dmue::preprocessing {
namespace {

CropConfig Valid() {
  CropConfig c;
  c.set_input_root("/data/in");
  c.set_output_root("/data/out");
  return c;
}

std::string Error(const CropConfig& c) { return std::string(ValidateCropConfig(c).message()); }

TEST(CropConfigTest, DefaultsAreTheReference) {
  CropConfig c = Valid();
  EXPECT_TRUE(ValidateCropConfig(c).ok());
  EXPECT_EQ(c.flow(), CropConfig::CROP_ALIGN);
  EXPECT_EQ(c.multi_face(), CropConfig::LARGEST);
  EXPECT_EQ(c.output_size(), 256);
  EXPECT_EQ(c.workers(), 2);
  EXPECT_EQ(c.intra_op_threads(), 1);
  EXPECT_FALSE(c.compat());
  EXPECT_EQ(ImageExtensions(c).size(), 5u);
}

TEST(CropConfigTest, ErrorsNameTheField) {
  CropConfig c = Valid();
  c.clear_input_root();
  EXPECT_EQ(Error(c), "CropConfig.input_root: must be set");
  c = Valid();
  c.set_output_root("/data/in");
  EXPECT_NE(Error(c).find("CropConfig.output_root"), std::string::npos);
  c = Valid();
  c.set_workers(0);
  EXPECT_NE(Error(c).find("CropConfig.workers"), std::string::npos);
  c = Valid();
  c.set_landmark_model("fan.pt");
  EXPECT_NE(Error(c).find("CropConfig.landmark_template"), std::string::npos);
  c = Valid();
  c.set_jpeg_quality(0);
  EXPECT_NE(Error(c).find("CropConfig.jpeg_quality"), std::string::npos);
  c = Valid();
  c.set_min_face_prob(1.5f);
  EXPECT_NE(Error(c).find("CropConfig.min_face_prob"), std::string::npos);
  c = Valid();
  c.add_extensions(".JPG");
  EXPECT_NE(Error(c).find("CropConfig.extensions"), std::string::npos);
  c = Valid();
  c.set_failure_list("sub/failures.tsv");
  EXPECT_NE(Error(c).find("CropConfig.failure_list"), std::string::npos);
  c = Valid();
  c.set_max_decoded_side(10);
  EXPECT_NE(Error(c).find("CropConfig.max_decoded_side"), std::string::npos);
}

TEST(CropConfigTest, LoadsTextFilesAndRejectsTypos) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string good = std::string(dir ? dir : "/tmp") + "/good.pbtxt";
  std::ofstream(good) << "flow: CROP_MSRA\ninput_root: \"/a\"\noutput_root: \"/b\"\n";
  auto c = LoadCropConfig(good);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->flow(), CropConfig::CROP_MSRA);
  const std::string typo = std::string(dir ? dir : "/tmp") + "/typo.pbtxt";
  std::ofstream(typo) << "flow: CROP_MSRA\ninput_rot: \"/a\"\n";
  EXPECT_FALSE(LoadCropConfig(typo).ok());
  const std::string invalid = std::string(dir ? dir : "/tmp") + "/invalid.pbtxt";
  std::ofstream(invalid) << "input_root: \"/a\"\n";
  auto e = LoadCropConfig(invalid);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(std::string(e.status().message()).find("CropConfig.output_root"), std::string::npos);
  EXPECT_NE(std::string(e.status().message()).find("invalid.pbtxt"), std::string::npos);
}

}  // namespace
}  // namespace dmue::preprocessing
