#include "dmue/model_config.h"

#include <cstdio>
#include <fstream>

#include "dmue/config/text_proto.h"
#include "gtest/gtest.h"

namespace dmue {
namespace {

TEST(ModelConfigTest, DefaultsAreTheReferenceSettings) {
  ModelConfig config;
  EXPECT_TRUE(ValidateModelConfig(config).ok());
  EXPECT_EQ(config.backbone(), ModelConfig::RESNET18);
  EXPECT_EQ(config.num_classes(), 8);
  EXPECT_EQ(config.last_stride(), 2);
  EXPECT_TRUE(config.bnneck());
  EXPECT_FLOAT_EQ(config.dropout(), 0.5f);
  EXPECT_EQ(FeatureDim(config), 512);
}

TEST(ModelConfigTest, RejectedValuesNameTheField) {
  struct Case {
    const char* text;
    const char* field;
  };
  for (const Case& c : {Case{"num_classes: 2", "num_classes"}, Case{"last_stride: 3", "last_stride"},
                        Case{"dropout: 1.5", "dropout"}, Case{"pooling: GEM gem_p: 0", "gem_p"},
                        Case{"backbone: BACKBONE_UNSPECIFIED", "backbone"}}) {
    ModelConfig config;
    ASSERT_TRUE(ParseTextProto(c.text, "test", &config).ok()) << c.text;
    absl::Status status = ValidateModelConfig(config);
    EXPECT_FALSE(status.ok()) << c.text;
    EXPECT_NE(status.message().find(c.field), std::string::npos) << status.message();
  }
}

TEST(ModelConfigTest, SyntaxErrorsNameFileAndLine) {
  const std::string path = ::testing::TempDir() + "/bad_model.pbtxt";
  std::ofstream(path) << "backbone: RESNET18\nnum_clases: 7\n";
  absl::StatusOr<ModelConfig> config = LoadModelConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("bad_model.pbtxt"), std::string::npos);
  EXPECT_NE(config.status().message().find("line 2"), std::string::npos);
  EXPECT_NE(config.status().message().find("num_clases"), std::string::npos);
}

TEST(ModelConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig("/nonexistent/model.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(config.status().message().find("/nonexistent/model.pbtxt"), std::string::npos);
}

TEST(ModelConfigTest, LoadsAValidFile) {
  const std::string path = ::testing::TempDir() + "/ibn.pbtxt";
  std::ofstream(path) << "backbone: RESNET50_IBN\nnum_classes: 7\nbnneck: false\n";
  absl::StatusOr<ModelConfig> config = LoadModelConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_classes(), 7);
  EXPECT_EQ(FeatureDim(*config), 2048);
}

}  // namespace
}  // namespace dmue
