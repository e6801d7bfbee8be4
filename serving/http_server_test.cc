// End-to-end tests of the HTTP front end on loopback: the real pipeline
// (MTCNN from ../shared/models, a random-weights ResNet-18) behind the real
// server, driven by an HTTP client.
#include "serving/http_server.h"

#include <httplib.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "dmue/testing/files.h"
#include "serving/expression_service.h"
#include "serving/server_config.h"
#include "serving/testing/test_model.h"
#include "third_party/shared_data.h"

namespace dmue::serving {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxRequestBytes = 1 << 20;

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::string> mtcnn = SharedPath("models/mtcnn/pnet.pt");
    absl::StatusOr<std::string> photos = SharedPath("data/photos/test1.jpg");
    if (!mtcnn.ok() || !photos.ok()) {
      skip_reason_ = new std::string(!mtcnn.ok() ? mtcnn.status().message() : photos.status().message());
      return;
    }
    photo_dir_ = new std::string(photos->substr(0, photos->rfind('/')));
    absl::StatusOr<std::string> model = testing::WriteRandomInferenceModel(::dmue::testing::TempPath("http_model"), 8);
    ASSERT_TRUE(model.ok()) << model.status();
    ServerConfig config;
    config.set_model_path(*model);
    config.mutable_model()->set_backbone(ModelConfig::RESNET18);
    config.mutable_model()->set_num_classes(8);
    for (const char* name : {"neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"}) {
      config.add_class_names(name);
    }
    config.set_detector_dir(mtcnn->substr(0, mtcnn->rfind('/')));
    config.set_input_resize(72);
    config.set_input_crop(64);
    config.set_host("127.0.0.1");
    config.set_port(0);
    config.set_max_request_bytes(kMaxRequestBytes);
    config.set_max_image_pixels(20'000'000);
    // Long enough that concurrent requests meet in one batch.
    config.set_batch_delay_us(100'000);
    config.set_max_batch_size(8);
    metrics_ = new MetricsRegistry;
    http_ = new HttpFrontEnd(config, metrics_, "<html><body>dmue</body></html>");
    absl::StatusOr<int> port = http_->Bind();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    server_thread_ = new std::thread([] { http_->Serve(); });
    // Not ready until the service is set.
    {
      httplib::Client client("127.0.0.1", port_);
      auto res = client.Get("/v2/health/ready");
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 503);
    }
    absl::StatusOr<std::unique_ptr<ExpressionService>> service = ExpressionService::Create(config, metrics_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = service->release();
    http_->SetService(service_);
  }

  static void TearDownTestSuite() {
    if (http_ == nullptr) return;
    http_->Stop();
    server_thread_->join();
    delete http_;
    delete service_;
    delete metrics_;
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
  }

  static std::string Photo(const std::string& name) { return ::dmue::testing::ReadFile(*photo_dir_ + "/" + name); }

  httplib::Result PostImage(const std::string& body, const std::string& type = "image/jpeg",
                            const std::string& path = "/v1/faces") {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(120);
    return client.Post(path.c_str(), body, type.c_str());
  }

  static json ParseJson(const httplib::Result& res) {
    json body = json::parse(res->body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << res->body;
    return body;
  }

  static inline std::string* skip_reason_ = nullptr;
  static inline std::string* photo_dir_ = nullptr;
  static inline MetricsRegistry* metrics_ = nullptr;
  static inline HttpFrontEnd* http_ = nullptr;
  static inline ExpressionService* service_ = nullptr;
  static inline std::thread* server_thread_ = nullptr;
  static inline int port_ = 0;
};

void ExpectProbabilities(const json& face, size_t classes) {
  ASSERT_TRUE(face["probabilities"].is_object());
  EXPECT_EQ(face["probabilities"].size(), classes);
  double sum = 0;
  for (const auto& [name, p] : face["probabilities"].items()) sum += p.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_EQ(face["probabilities"][face["label"].get<std::string>()].get<double>(),
            [&] {
              double best = 0;
              for (const auto& [name, p] : face["probabilities"].items()) best = std::max(best, p.get<double>());
              return best;
            }());
}

TEST_F(HttpServerTest, HealthAndMetadata) {
  httplib::Client client("127.0.0.1", port_);
  auto live = client.Get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  auto ready = client.Get("/v2/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto meta = client.Get("/v2/models/dmue");
  ASSERT_TRUE(meta);
  ASSERT_EQ(meta->status, 200);
  const json m = ParseJson(meta);
  EXPECT_EQ(m["name"], "dmue");
  EXPECT_EQ(m["parameters"]["classes"].size(), 8u);
  EXPECT_EQ(m["inputs"][1]["shape"], json({-1, 3, 64, 64}));
  EXPECT_EQ(client.Get("/v2/models/dmue/versions/1/ready")->status, 200);
  EXPECT_EQ(client.Get("/v2/models/other")->status, 404);
  EXPECT_EQ(client.Get("/v2/models/dmue/versions/7")->status, 404);
  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("dmue"), std::string::npos);
}

TEST_F(HttpServerTest, FacesOfARealPhoto) {
  auto res = PostImage(Photo("face_sdk_test1.jpg"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = ParseJson(res);
  EXPECT_EQ(body["width"], 818);
  EXPECT_EQ(body["height"], 418);
  ASSERT_EQ(body["faces"].size(), 2u) << body.dump();
  for (const json& face : body["faces"]) {
    const auto box = face["box"].get<std::vector<float>>();
    EXPECT_GE(box[0], -5);
    EXPECT_LT(box[0], box[2]);
    EXPECT_LE(box[2], 818 + 5);
    EXPECT_LT(box[1], box[3]);
    EXPECT_GT(face["score"].get<double>(), 0.9);
    ASSERT_EQ(face["landmarks"].size(), 5u);
    // The eyes lie inside the box.
    EXPECT_GT(face["landmarks"][0][0].get<double>(), box[0]);
    EXPECT_LT(face["landmarks"][1][0].get<double>(), box[2]);
    ExpectProbabilities(face, 8);
  }
  // One face per half of the two-portrait photo.
  const double x0 = body["faces"][0]["box"][0], x1 = body["faces"][1]["box"][0];
  EXPECT_TRUE((x0 < 409) != (x1 < 409)) << body.dump();
}

TEST_F(HttpServerTest, MultipartUploadAndSkipDetection) {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(120);
  httplib::MultipartFormDataItems items = {{"image", Photo("face_sdk_test2.jpg"), "face_sdk_test2.jpg", "image/jpeg"}};
  auto res = client.Post("/v1/faces", items);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_GE(ParseJson(res)["faces"].size(), 2u);

  auto crop = PostImage(Photo("test1.jpg"), "image/jpeg", "/v1/faces?skip_detection=true");
  ASSERT_TRUE(crop);
  ASSERT_EQ(crop->status, 200) << crop->body;
  const json body = ParseJson(crop);
  ASSERT_EQ(body["faces"].size(), 1u);
  EXPECT_EQ(body["faces"][0]["box"], json({0.0, 0.0, 256.0, 256.0}));
  ExpectProbabilities(body["faces"][0], 8);

  auto none = PostImage(Photo("facex_logo_noface.png"), "image/png");
  ASSERT_TRUE(none);
  ASSERT_EQ(none->status, 200);
  EXPECT_EQ(ParseJson(none)["faces"].size(), 0u);
}

TEST_F(HttpServerTest, OpenInferenceProtocolInfer) {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(120);
  const json image_request = {
      {"id", "r1"},
      {"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}},
                   {"data", {absl::Base64Escape(Photo("face_sdk_test1.jpg"))}}}}}};
  auto res = client.Post("/v2/models/dmue/infer", image_request.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json reply = ParseJson(res);
  EXPECT_EQ(reply["id"], "r1");
  std::map<std::string, json> outputs;
  for (const json& o : reply["outputs"]) outputs[o["name"]] = o;
  EXPECT_EQ(outputs["boxes"]["shape"], json({2, 4}));
  EXPECT_EQ(outputs["probabilities"]["shape"], json({2, 8}));
  EXPECT_EQ(outputs["landmarks"]["data"].size(), 20u);
  EXPECT_EQ(outputs["labels"]["data"].size(), 2u);

  // The tensor route: two normalised 3x64x64 inputs.
  std::vector<float> data(2 * 3 * 64 * 64, 0.f);
  for (size_t i = data.size() / 2; i < data.size(); ++i) data[i] = 0.5f;
  const json tensor_request = {
      {"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {2, 3, 64, 64}}, {"data", data}}}}};
  auto t = client.Post("/v2/models/dmue/versions/1/infer", tensor_request.dump(), "application/json");
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body.substr(0, 300);
  const json probs = ParseJson(t)["outputs"][0];
  EXPECT_EQ(probs["shape"], json({2, 8}));
  double sum = 0;
  for (int c = 0; c < 8; ++c) sum += probs["data"][c].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-4);
}

// A PNG that declares 100000 x 100000 pixels in a few dozen bytes.
std::string DecompressionBomb() {
  const unsigned char png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                               0x00, 0x01, 0x86, 0xa0, 0x00, 0x01, 0x86, 0xa0, 8, 2, 0, 0, 0, 0, 0, 0, 0,
                               0, 0, 0, 0, 'I', 'D', 'A', 'T', 0, 0, 0, 0, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae,
                               0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(png), sizeof(png));
}

TEST_F(HttpServerTest, BadRequestsGetJsonErrorsAndTheServerStaysUp) {
  const std::string jpeg = Photo("face_sdk_test1.jpg");
  struct Case {
    std::string what, path, type, body;
    int status;
  };
  const std::vector<Case> cases = {
      {"non-image bytes", "/v1/faces", "image/jpeg", "this is not an image at all", 400},
      {"truncated JPEG", "/v1/faces", "image/jpeg", jpeg.substr(0, jpeg.size() / 2), 400},
      {"empty body", "/v1/faces", "image/jpeg", "", 400},
      {"body over the limit", "/v1/faces", "image/jpeg", std::string(kMaxRequestBytes + 10, 'x'), 413},
      {"decompression bomb", "/v1/faces", "image/png", DecompressionBomb(), 413},
      {"wrong content type", "/v1/faces", "application/json", jpeg, 415},
      {"malformed JSON", "/v2/models/dmue/infer", "application/json", "{\"inputs\": [", 400},
      {"JSON without inputs", "/v2/models/dmue/infer", "application/json", "{\"x\": 1}", 400},
      {"bad base64", "/v2/models/dmue/infer", "application/json",
       R"({"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["@@@"]}]})", 400},
      {"wrong tensor shape", "/v2/models/dmue/infer", "application/json",
       R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,8,8],"data":[0]}]})", 400},
      {"deeply nested JSON", "/v2/models/dmue/infer", "application/json",
       std::string(200000, '[') + std::string(200000, ']'), 400},
      {"nested JSON in a tensor", "/v2/models/dmue/infer", "application/json",
       R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,64,64],"data":)" + std::string(100000, '[') +
           std::string(100000, ']') + "}]}",
       400},
      {"name of the wrong type", "/v2/models/dmue/infer", "application/json",
       R"({"inputs":[{"name":7,"datatype":"FP32","shape":[1],"data":[0]}]})", 400},
      {"batch beyond int range", "/v2/models/dmue/infer", "application/json",
       R"({"inputs":[{"name":"input","datatype":"FP32","shape":[4294967297,3,64,64],"data":[0]}]})", 400},
      {"unknown model", "/v2/models/nope/infer", "application/json", "{}", 404},
      {"unknown route", "/v3/whatever", "application/json", "{}", 404},
  };
  for (int round = 0; round < 3; ++round) {
    for (const Case& c : cases) {
      auto res = PostImage(c.body, c.type, c.path);
      ASSERT_TRUE(res) << c.what << ": no reply (server down?)";
      EXPECT_EQ(res->status, c.status) << c.what << ": " << res->body;
      const json body = json::parse(res->body, nullptr, false);
      ASSERT_FALSE(body.is_discarded()) << c.what << ": not JSON: " << res->body;
      EXPECT_TRUE(body.contains("error") && body["error"].is_string() && !body["error"].get<std::string>().empty())
          << c.what << ": " << res->body;
      EXPECT_EQ(body["code"], c.status) << c.what;
    }
  }
  auto good = PostImage(jpeg);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  EXPECT_EQ(ParseJson(good)["faces"].size(), 2u);
}

TEST_F(HttpServerTest, ConcurrentRequestsAreBatchedAndCounted) {
  const std::string crop = Photo("test1.jpg");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      auto res = PostImage(crop, "image/jpeg", "/v1/faces?skip_detection=1");
      if (res && res->status == 200) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 6);
  httplib::Client client("127.0.0.1", port_);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  const std::string& text = metrics->body;
  EXPECT_NE(text.find("dmue_http_requests_total{route=\"/v1/faces\",code=\"200\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("dmue_http_request_duration_seconds_bucket{route=\"/v1/faces\""), std::string::npos);
  EXPECT_NE(text.find("dmue_queue_seconds_count"), std::string::npos);
  // Some model call held faces of more than one request.
  const size_t at = text.find("dmue_batch_size_bucket{le=\"1\"} ");
  ASSERT_NE(at, std::string::npos) << text;
  const long singles = std::stol(text.substr(at + std::string("dmue_batch_size_bucket{le=\"1\"} ").size()));
  const size_t count_at = text.find("dmue_batch_size_count ");
  const long batches = std::stol(text.substr(count_at + std::string("dmue_batch_size_count ").size()));
  EXPECT_LT(singles, batches) << text;
}

}  // namespace
}  // namespace dmue::serving
