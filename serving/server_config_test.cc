#include "serving/server_config.h"

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

namespace dmue::serving {
namespace {

ServerConfig Valid() {
  ServerConfig config;
  config.set_model_path("model.pth");
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
      {[](ServerConfig& c) { c.set_crop_flow(ServerConfig::CROP_FLOW_UNSPECIFIED); }, "ServerConfig.crop_flow"},
      {[](ServerConfig& c) {
         c.set_bf16(true);
         c.set_precision(ServerConfig::FP32);
       },
       "ServerConfig.bf16"},
      {[](ServerConfig& c) { c.clear_detector_dir(); }, "ServerConfig.detector_dir"},
      {[](ServerConfig& c) { c.set_max_batch_size(0); }, "ServerConfig.max_batch_size"},
      {[](ServerConfig& c) { c.set_batch_delay_us(-1); }, "ServerConfig.batch_delay_us"},
      {[](ServerConfig& c) { c.set_port(70000); }, "ServerConfig.port"},
      {[](ServerConfig& c) { c.set_max_request_bytes(0); }, "ServerConfig.max_request_bytes"},
      {[](ServerConfig& c) { c.set_model_name("a/b"); }, "ServerConfig.model_name"},
      {[](ServerConfig& c) { c.set_malloc_arenas(-1); }, "ServerConfig.malloc_arenas"},
      {[](ServerConfig& c) { c.set_http_threads(0); }, "ServerConfig.http_threads"},
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
      {[](ServerConfig& c) { c.set_device("gpu0"); }, "ServerConfig.device: 'gpu0' is not a device"},
  };
  for (const Case& c : cases) {
    ServerConfig config = Valid();
    c.edit(config);
    const absl::Status s = ValidateServerConfig(config);
    EXPECT_FALSE(s.ok()) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message();
  }
}

// Only the name is validated here; whether the device can be used is the
// classifier's load-time check (serving/expression_service_test.cc).
TEST(ServerConfigTest, DeviceNamesAreValid) {
  EXPECT_EQ(Valid().device(), "cpu");
  for (const char* device : {"cpu", "cuda", "cuda:0", "cuda:7"}) {
    ServerConfig config = Valid();
    config.set_device(device);
    EXPECT_TRUE(ValidateServerConfig(config).ok()) << device << ": " << ValidateServerConfig(config);
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

// The model's classes and input live in its spec only: a config that still
// restates them is refused by the parser, naming the field.
TEST(ServerConfigTest, InlineSpecFieldsAreGone) {
  const std::string dir = std::getenv("TEST_TMPDIR") != nullptr ? std::getenv("TEST_TMPDIR") : "/tmp";
  for (const std::string field : {"model { num_classes: 8 }", "class_names: \"neutral\"", "input_crop: 64",
                                  "input_resize: 72", "grayscale: true"}) {
    const std::string path = dir + "/inline.pbtxt";
    std::ofstream(path) << "model_path: \"m.pth\"\ndetector_dir: \"d\"\n" << field << "\n";
    const absl::StatusOr<ServerConfig> config = LoadServerConfig(path);
    ASSERT_FALSE(config.ok()) << field;
    const std::string name = field.substr(0, field.find_first_of(" :"));
    EXPECT_NE(config.status().message().find(name), std::string::npos) << config.status();
  }
}

TEST(ServerConfigTest, BundleOnlyConfigIsValid) {
  ServerConfig config;
  config.set_model_path("serving/models/x.pth");
  config.set_detector_dir("d");
  EXPECT_TRUE(ValidateServerConfig(config).ok()) << ValidateServerConfig(config);
}

// The command line's changes apply in order (--set, then the per-field
// overrides, then the binary's own) and the result is validated.
TEST(ServerConfigTest, OverridesApplyInOrderAndAreValidated) {
  const std::string dir = std::getenv("TEST_TMPDIR") != nullptr ? std::getenv("TEST_TMPDIR") : "/tmp";
  const std::string path = dir + "/overrides.pbtxt";
  std::ofstream(path) << "model_path: \"file.pth\"\ndetector_dir: \"d\"\nport: 1\n";
  ServerConfigOverrides overrides;
  overrides.set = "model_path: 'set.pth' port: 2";
  overrides.model_path = "flag.pth";
  overrides.adjust = [](ServerConfig& c) { c.set_port(c.port() + 1); };
  absl::StatusOr<ServerConfig> config = LoadServerConfig(path, overrides);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model_path(), "flag.pth");
  EXPECT_EQ(config->detector_dir(), "d");
  EXPECT_EQ(config->port(), 3);

  overrides.set = "no_such_field: 1";
  config = LoadServerConfig(path, overrides);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("--set"), std::string::npos) << config.status();

  overrides.set = "";
  overrides.adjust = [](ServerConfig& c) { c.set_port(-5); };
  config = LoadServerConfig(path, overrides);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("port"), std::string::npos) << config.status();
  EXPECT_NE(config.status().message().find(path), std::string::npos) << config.status();
}

TEST(ServerConfigTest, MissingFileIsNamed) {
  const absl::StatusOr<ServerConfig> config = LoadServerConfig("/nonexistent/server.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/server.pbtxt"), std::string::npos);
}

}  // namespace
}  // namespace dmue::serving
