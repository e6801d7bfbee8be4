#include "serving/server_config.h"

#include <gtest/gtest.h>

namespace dmue::serving {
namespace {

ServerConfig Valid() {
  ServerConfig config;
  config.set_model_path("model.pth");
  config.mutable_model()->set_backbone(ModelConfig::RESNET18);
  config.mutable_model()->set_num_classes(8);
  config.set_detector_dir("mtcnn");
  return config;
}

TEST(ServerConfigTest, DefaultsAreValid) { EXPECT_TRUE(ValidateServerConfig(Valid()).ok()); }

TEST(ServerConfigTest, ErrorsNameTheField) {
  struct Case {
    std::function<void(ServerConfig&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](ServerConfig& c) { c.clear_model_path(); }, "ServerConfig.model_path"},
      {[](ServerConfig& c) { c.set_precision(ServerConfig::PRECISION_UNSPECIFIED); }, "ServerConfig.precision"},
      {[](ServerConfig& c) {
         c.set_bf16(true);
         c.set_precision(ServerConfig::FP32);
       },
       "ServerConfig.bf16"},
      {[](ServerConfig& c) {
         c.clear_model();
         c.add_class_names("neutral");
       },
       "ServerConfig.class_names"},  // names without an inline model
      {[](ServerConfig& c) { c.mutable_model()->set_num_classes(1); }, "ServerConfig.model"},
      {[](ServerConfig& c) { c.clear_detector_dir(); }, "ServerConfig.detector_dir"},
      {[](ServerConfig& c) { c.set_max_batch_size(0); }, "ServerConfig.max_batch_size"},
      {[](ServerConfig& c) { c.set_batch_delay_us(-1); }, "ServerConfig.batch_delay_us"},
      {[](ServerConfig& c) { c.set_input_resize(100); }, "ServerConfig.input_resize"},
      {[](ServerConfig& c) { c.set_port(70000); }, "ServerConfig.port"},
      {[](ServerConfig& c) { c.set_max_request_bytes(0); }, "ServerConfig.max_request_bytes"},
      {[](ServerConfig& c) { c.set_model_name("a/b"); }, "ServerConfig.model_name"},
      {[](ServerConfig& c) { c.set_malloc_arenas(-1); }, "ServerConfig.malloc_arenas"},
      {[](ServerConfig& c) { c.set_http_threads(0); }, "ServerConfig.http_threads"},
      {[](ServerConfig& c) {
         for (int i = 0; i < 9; ++i) c.add_class_names("x");
       },
       "ServerConfig.class_names"},
      {[](ServerConfig& c) { c.set_max_header_count(0); }, "ServerConfig.max_header_count"},
      // Over the limit compiled into libcpp-httplib.
      {[](ServerConfig& c) { c.set_max_header_line_bytes(16384); }, "ServerConfig.max_header_line_bytes"},
      {[](ServerConfig& c) { c.set_max_header_bytes(4096); }, "ServerConfig.max_header_line_bytes"},
      {[](ServerConfig& c) { c.set_max_header_bytes(0); }, "ServerConfig.max_header_bytes"},
      {[](ServerConfig& c) { c.set_read_timeout_ms(0); }, "ServerConfig.read_timeout_ms"},
      {[](ServerConfig& c) { c.set_header_timeout_ms(60000); }, "ServerConfig.header_timeout_ms"},
      {[](ServerConfig& c) { c.set_request_timeout_ms(-1); }, "ServerConfig.request_timeout_ms"},
      {[](ServerConfig& c) { c.set_write_timeout_ms(0); }, "ServerConfig.write_timeout_ms"},
      {[](ServerConfig& c) { c.set_keep_alive_timeout_ms(0); }, "ServerConfig.keep_alive_timeout_ms"},
      {[](ServerConfig& c) { c.set_keep_alive_max_requests(0); }, "ServerConfig.keep_alive_max_requests"},
      {[](ServerConfig& c) { c.set_max_inflight_requests(-1); }, "ServerConfig.max_inflight_requests"},
      // As many as the HTTP threads: health checks could find none free.
      {[](ServerConfig& c) {
         c.set_http_threads(8);
         c.set_max_inflight_requests(8);
       },
       "ServerConfig.max_inflight_requests"},
      {[](ServerConfig& c) { c.set_retry_after_seconds(0); }, "ServerConfig.retry_after_seconds"},
  };
  for (const Case& c : cases) {
    ServerConfig config = Valid();
    c.edit(config);
    const absl::Status s = ValidateServerConfig(config);
    EXPECT_FALSE(s.ok()) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message();
  }
}

TEST(ServerConfigTest, InflightRequestsDefaultToHalfTheHttpThreads) {
  ServerConfig config = Valid();
  EXPECT_EQ(MaxInflightRequests(config), 32);  // 64 threads
  config.set_http_threads(1);
  EXPECT_EQ(MaxInflightRequests(config), 1);
  config.set_http_threads(8);
  config.set_max_inflight_requests(7);
  EXPECT_EQ(MaxInflightRequests(config), 7);
  EXPECT_TRUE(ValidateServerConfig(config).ok()) << ValidateServerConfig(config);
}

TEST(ServerConfigTest, InlineSpecCompletesClassNames) {
  ServerConfig config = Valid();
  config.clear_class_names();
  config.add_class_names("neutral");
  config.set_input_resize(72);
  config.set_input_crop(64);
  config.set_grayscale(true);
  const ModelSpec spec = InlineSpec(config);
  ASSERT_EQ(spec.class_names_size(), 8);
  EXPECT_EQ(spec.class_names(0), "neutral");
  EXPECT_EQ(spec.class_names(7), "7");
  EXPECT_EQ(spec.input().resize(), 72);
  EXPECT_EQ(spec.input().crop(), 64);
  EXPECT_TRUE(spec.input().grayscale());
}

TEST(ServerConfigTest, BundleOnlyConfigIsValid) {
  ServerConfig config;
  config.set_model_path("serving/models/x.pth");
  config.set_detector_dir("d");
  EXPECT_TRUE(ValidateServerConfig(config).ok()) << ValidateServerConfig(config);
}

TEST(ServerConfigTest, MissingFileIsNamed) {
  const absl::StatusOr<ServerConfig> config = LoadServerConfig("/nonexistent/server.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/server.pbtxt"), std::string::npos);
}

}  // namespace
}  // namespace dmue::serving
