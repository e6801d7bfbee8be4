// End-to-end tests of the HTTP front end on loopback: the real pipeline
// (MTCNN from ../shared/models, a random-weights ResNet-18) behind the real
// server, driven by an HTTP client.
#include "serving/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
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
    absl::StatusOr<std::string> model = testing::WriteRandomModelBundle(
        ::dmue::testing::TempPath("http_model"),
        testing::TestSpec({"neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"},
                          /*resize=*/72, /*crop=*/64, /*grayscale=*/false));
    ASSERT_TRUE(model.ok()) << model.status();
    ServerConfig config;
    config.set_model_path(*model);
    config.set_detector_dir(mtcnn->substr(0, mtcnn->rfind('/')));
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

// ---------------------------------------------------------------------------
// Hostile traffic against the front end alone: a stand-in service (no model)
// and raw sockets that send exactly the bytes of each attack.

constexpr int64_t kFakeBodyLimit = 64 << 10;
// Far more than any socket buffers hold: a server that buffered it whole
// would have to take it all.
constexpr int64_t kFloodBytes = int64_t{256} << 20;
// What the kernel may hold on the way (send buffer, an autotuned receive
// buffer of up to 32 MiB) plus what the server drains before it closes.
constexpr int64_t kMostTakenFromAFlood = int64_t{64} << 20;

// A service that answers from the bytes alone (width = their count, height =
// their checksum) and whose calls can be held, so a request stays in flight
// exactly as long as a test says.
class FakeService : public ExpressionService {
 public:
  FakeService() {
    metadata_.name = "dmue";
    metadata_.version = "1";
    metadata_.platform = "fake";
    metadata_.class_names = {"a", "b"};
    metadata_.input_size = 2;
  }

  static int Checksum(absl::string_view bytes) {
    uint32_t sum = 0;
    for (unsigned char c : bytes) sum = sum * 31 + c;
    return static_cast<int>(sum & 0x7fffffff);
  }

  absl::StatusOr<AnalyzeResult> Analyze(absl::string_view bytes, const AnalyzeOptions&, absl::string_view) override {
    absl::MutexLock lock(&mutex_);
    ++calls_;
    mutex_.Await(absl::Condition(&open_));
    AnalyzeResult result;
    result.width = static_cast<int>(bytes.size());
    result.height = Checksum(bytes);
    return result;
  }
  absl::StatusOr<std::vector<float>> ClassifyTensors(const std::vector<float>&, int n) override {
    absl::MutexLock lock(&mutex_);
    ++calls_;
    mutex_.Await(absl::Condition(&open_));
    return std::vector<float>(2 * n, 0.5f);
  }
  const ModelMetadata& metadata() const override { return metadata_; }
  const ServerConfig& config() const override { return config_; }
  const ModelSpec& spec() const override { return spec_; }
  void Shutdown() override {}

  void Hold() {
    absl::MutexLock lock(&mutex_);
    open_ = false;
  }
  void Release() {
    absl::MutexLock lock(&mutex_);
    open_ = true;
  }
  int calls() {
    absl::MutexLock lock(&mutex_);
    return calls_;
  }
  // Blocks until `n` calls have started.
  void AwaitCalls(int n) {
    absl::MutexLock lock(&mutex_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return calls_ >= n; };
    mutex_.Await(absl::Condition(&reached));
  }

 private:
  ModelMetadata metadata_;
  ServerConfig config_;
  ModelSpec spec_;
  absl::Mutex mutex_;
  bool open_ ABSL_GUARDED_BY(mutex_) = true;
  int calls_ ABSL_GUARDED_BY(mutex_) = 0;
};

// The front end on loopback with the fake service: 4 HTTP threads, a 64 KiB
// body limit, the remaining limits at their defaults unless `tweak` says.
class FakeServer {
 public:
  explicit FakeServer(const std::function<void(ServerConfig&)>& tweak = nullptr,
                      std::string index_html = "<html>dmue</html>") {
    ServerConfig config;
    config.set_model_path("unused.pth");
    config.set_detector_dir("unused");
    config.set_host("127.0.0.1");
    config.set_port(0);
    config.set_http_threads(4);
    config.set_max_request_bytes(kFakeBodyLimit);
    if (tweak) tweak(config);
    const absl::Status valid = ValidateServerConfig(config);
    EXPECT_TRUE(valid.ok()) << valid;
    front_ = std::make_unique<HttpFrontEnd>(config, &metrics_, std::move(index_html));
    absl::StatusOr<int> port = front_->Bind();
    EXPECT_TRUE(port.ok()) << port.status();
    port_ = port.value_or(0);
    thread_ = std::thread([this] { front_->Serve(); });
    front_->SetService(&service_);
  }
  ~FakeServer() {
    service_.Release();
    front_->Stop();
    thread_.join();
  }

  int port() const { return port_; }
  FakeService& service() { return service_; }
  MetricsRegistry& metrics() { return metrics_; }

  // GET /v2/health/live answers 200 (within `timeout`).
  bool Live(absl::Duration timeout = absl::Seconds(10)) const {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(absl::ToInt64Seconds(timeout));
    client.set_read_timeout(absl::ToInt64Seconds(timeout));
    auto res = client.Get("/v2/health/live");
    return res && res->status == 200;
  }

 private:
  MetricsRegistry metrics_;
  FakeService service_;
  std::unique_ptr<HttpFrontEnd> front_;
  std::thread thread_;
  int port_ = 0;
};

// A loopback TCP client that sends exactly the bytes a test gives it while a
// thread collects what the server answers, until the server closes. Reading
// while sending matters: a server that refuses early answers while the
// attack is still being sent.
class RawConnection {
 public:
  // With `read` false the reply is never read and the receive buffer is
  // small: a client that does not take its reply.
  explicit RawConnection(int port, bool read = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (!read) {
      const int small = 4096;
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    // A server that stops taking bytes makes send() fail after this.
    const timeval send_timeout{3, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (read && connected_) reader_ = std::thread([this] { ReadUntilClosed(); });
  }
  ~RawConnection() {
    ::shutdown(fd_, SHUT_RDWR);
    if (reader_.joinable()) reader_.join();
    ::close(fd_);
  }

  bool connected() const { return connected_; }

  // False once the server stops taking bytes (closed, reset, or 3 s stalled).
  bool Send(absl::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Sends `piece` over and over, up to `total` bytes; returns the bytes the
  // server took before it stopped taking them.
  int64_t Flood(absl::string_view piece, int64_t total) {
    int64_t sent = 0;
    while (sent < total && Send(piece)) sent += static_cast<int64_t>(piece.size());
    return sent;
  }
  // The end of the request body for a body without a length.
  void FinishSending() { ::shutdown(fd_, SHUT_WR); }

  // What the server sent, once it closed (or after `timeout`).
  std::string Reply(absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mutex_);
    mutex_.AwaitWithTimeout(absl::Condition(&closed_), timeout);
    return received_;
  }
  bool ClosedByServer(absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    return mutex_.AwaitWithTimeout(absl::Condition(&closed_), timeout);
  }
  // Whether `text` arrived within `timeout`.
  bool AwaitReceived(absl::string_view text, absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    auto arrived = [this, text]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return absl::StrContains(received_, text);
    };
    return mutex_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  }

 private:
  void ReadUntilClosed() {
    char buffer[16 << 10];
    while (true) {
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n < 0 && errno == EINTR) continue;
      absl::MutexLock lock(&mutex_);
      if (n <= 0) {
        closed_ = true;
        return;
      }
      received_.append(buffer, static_cast<size_t>(n));
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  std::thread reader_;
  absl::Mutex mutex_;
  std::string received_ ABSL_GUARDED_BY(mutex_);
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

// The status code of a raw reply ("HTTP/1.1 431 ..."), 0 if there is none.
int StatusOf(const std::string& reply) {
  int status = 0;
  if (!absl::StartsWith(reply, "HTTP/1.1 ") || reply.size() < 12 ||
      !absl::SimpleAtoi(absl::string_view(reply).substr(9, 3), &status)) {
    return 0;
  }
  return status;
}

// The "error" of a raw reply's JSON body ("" if it has none).
std::string ErrorOf(const std::string& reply) {
  const size_t at = reply.find("\r\n\r\n");
  if (at == std::string::npos) return "";
  const json body = json::parse(reply.substr(at + 4), nullptr, false);
  if (body.is_discarded() || !body.contains("error") || !body["error"].is_string()) return "";
  return body["error"].get<std::string>();
}

std::string ChunkOf(size_t n, char fill) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", n);
  return absl::StrCat(size, std::string(n, fill), "\r\n");
}

TEST(HttpLimitsTest, ChunkedAndUnframedBodiesOverTheLimitAreRefusedUnbuffered) {
  FakeServer server;
  const std::string head = "POST /v1/faces HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n";
  struct Case {
    std::string what, headers, piece;
  };
  const std::vector<Case> cases = {
      {"chunked", "Transfer-Encoding: chunked\r\n", ChunkOf(64 << 10, 'x')},
      // Many tiny chunks: the framing, not the payload, is what grows.
      {"tiny chunks", "Transfer-Encoding: chunked\r\n", [] {
         std::string piece;
         for (int i = 0; i < 4096; ++i) piece += ChunkOf(1, 'x');
         return piece;
       }()},
      {"endless chunk-size line", "Transfer-Encoding: chunked\r\n", std::string(64 << 10, '0')},
      {"no Content-Length", "", std::string(64 << 10, 'x')},
  };
  for (const Case& c : cases) {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.Send(head + c.headers + "\r\n")) << c.what;
    const int64_t taken = connection.Flood(c.piece, kFloodBytes);
    EXPECT_LT(taken, kMostTakenFromAFlood) << c.what << ": the server read the flood";
    const std::string reply = connection.Reply();
    EXPECT_EQ(StatusOf(reply), 413) << c.what << ": " << reply.substr(0, 300);
    EXPECT_TRUE(absl::StrContains(ErrorOf(reply), absl::StrCat("over the limit of ", kFakeBodyLimit, " bytes")))
        << c.what << ": " << reply.substr(0, 300);
    EXPECT_TRUE(absl::StrContains(reply, "Connection: close")) << c.what;
  }
  EXPECT_EQ(server.service().calls(), 0);
  EXPECT_TRUE(server.Live());
}

TEST(HttpLimitsTest, ChunkedAndUnframedBodiesWithinTheLimitAreServed) {
  FakeServer server;
  const std::string body(kFakeBodyLimit - 100, 'b');
  // httplib's client sends a body without a known length chunked.
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Post(
      "/v1/faces",
      [&body](size_t offset, httplib::DataSink& sink) {
        const size_t n = std::min<size_t>(1000, body.size() - offset);
        sink.write(body.data() + offset, n);
        if (offset + n == body.size()) sink.done();
        return true;
      },
      "image/jpeg");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json reply = json::parse(res->body);
  EXPECT_EQ(reply["width"], body.size());
  EXPECT_EQ(reply["height"], FakeService::Checksum(body));

  // No length at all: the body ends where the client stops sending.
  RawConnection raw(server.port());
  ASSERT_TRUE(raw.Send("POST /v1/faces HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\r\n" + body));
  raw.FinishSending();
  const std::string unframed = raw.Reply();
  ASSERT_EQ(StatusOf(unframed), 200) << unframed.substr(0, 300);
  EXPECT_NE(unframed.find(absl::StrCat("\"width\":", body.size())), std::string::npos) << unframed.substr(0, 300);

  // An identity Content-Encoding is no encoding.
  httplib::Headers identity = {{"Content-Encoding", "identity"}};
  auto plain = client.Post("/v1/faces", identity, "abc", 3, "image/jpeg");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200) << plain->body;
  EXPECT_EQ(server.service().calls(), 3);
}

TEST(HttpLimitsTest, DeclaredLengthOverTheLimitIsRefusedBeforeTheBody) {
  FakeServer server;
  for (const std::string expect : {"", "Expect: 100-continue\r\n"}) {
    RawConnection connection(server.port());
    const absl::Time start = absl::Now();
    // A terabyte is announced and never sent: an answer now shows that
    // none of it was waited for.
    ASSERT_TRUE(connection.Send("POST /v1/faces HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n" + expect +
                                "Content-Length: 1099511627776\r\n\r\n"));
    ASSERT_TRUE(connection.AwaitReceived("\r\n\r\n", absl::Seconds(4))) << expect;
    EXPECT_LT(absl::Now() - start, absl::Seconds(4));
    const std::string reply = connection.Reply();
    EXPECT_EQ(StatusOf(reply), 413) << reply;
    EXPECT_TRUE(absl::StrContains(ErrorOf(reply), "1099511627776 bytes is over the limit")) << reply;
    EXPECT_FALSE(absl::StrContains(reply, "100 Continue")) << reply;
  }
  EXPECT_EQ(server.service().calls(), 0);
}

TEST(HttpLimitsTest, EncodingsAndAmbiguousFramingAreRefused) {
  FakeServer server;
  struct Case {
    std::string what, headers;
    int status;
    std::string error;
  };
  // gzip magic and a deflate stream header: the body is never looked at.
  const std::string body = std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) + std::string(1000, '\0');
  const std::string length = absl::StrCat("Content-Length: ", body.size(), "\r\n");
  const std::vector<Case> cases = {
      {"gzip", "Content-Encoding: gzip\r\n" + length, 415, "Content-Encoding 'gzip' is not supported"},
      {"deflate", "Content-Encoding: deflate\r\n" + length, 415, "Content-Encoding 'deflate' is not supported"},
      {"brotli", "Content-Encoding: br\r\n" + length, 415, "Content-Encoding 'br' is not supported"},
      {"unknown coding", "Content-Encoding: x-squash\r\n" + length, 415, "'x-squash' is not supported"},
      {"gzip, chunked", "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 415, "'gzip' is not supported"},
      {"transfer coding", "Transfer-Encoding: gzip, chunked\r\n", 501, "Transfer-Encoding 'gzip, chunked'"},
      {"two framings", "Transfer-Encoding: chunked\r\n" + length, 400, "ambiguous"},
      {"two lengths", length + "Content-Length: 5\r\n", 400, "more than one"},
      {"length not a number", "Content-Length: 12abc\r\n", 400, "is not a byte count"},
  };
  for (const Case& c : cases) {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.Send("POST /v1/faces HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n" + c.headers +
                                "\r\n" + body));
    const std::string reply = connection.Reply();
    EXPECT_EQ(StatusOf(reply), c.status) << c.what << ": " << reply.substr(0, 300);
    EXPECT_TRUE(absl::StrContains(ErrorOf(reply), c.error)) << c.what << ": " << reply.substr(0, 300);
    // The body was left unread: the connection cannot go on.
    EXPECT_TRUE(absl::StrContains(reply, "Connection: close")) << c.what;
  }
  EXPECT_EQ(server.service().calls(), 0);
  EXPECT_TRUE(server.Live());
}

TEST(HttpLimitsTest, OversizedHeadersAreRefusedUnbuffered) {
  FakeServer server;
  struct Case {
    std::string what, head, piece;
    int64_t total;
    int status;
    std::string error;
  };
  const std::string request = "GET /v2/health/live HTTP/1.1\r\nHost: t\r\n";
  std::string big_headers;
  for (int i = 0; i < 60; ++i) big_headers += absl::StrCat("X-Big-", i, ": ", std::string(2000, 'v'), "\r\n");
  const std::vector<Case> cases = {
      {"20,000 headers", request, "X-Flood: v\r\n", 20000 * 12, 431, "more than 100 header lines"},
      {"endless header line", request + "X-Long: ", std::string(64 << 10, 'v'), kFloodBytes, 431,
       "header line longer than 8192 bytes"},
      {"headers over 64 KiB in all", request, big_headers, static_cast<int64_t>(big_headers.size()), 431,
       "larger than 65536 bytes in all"},
      {"endless request line", "GET /", std::string(64 << 10, 'a'), kFloodBytes, 414,
       "request line longer than 8192 bytes"},
  };
  for (const Case& c : cases) {
    RawConnection connection(server.port());
    ASSERT_TRUE(connection.Send(c.head)) << c.what;
    const int64_t taken = connection.Flood(c.piece, c.total);
    if (c.total == kFloodBytes) {
      EXPECT_LT(taken, kMostTakenFromAFlood) << c.what << ": the server read the flood";
    }
    const std::string reply = connection.Reply();
    EXPECT_EQ(StatusOf(reply), c.status) << c.what << ": " << reply.substr(0, 300);
    EXPECT_TRUE(absl::StrContains(ErrorOf(reply), c.error)) << c.what << ": " << reply.substr(0, 300);
  }
  // At the limits: 100 headers, a line of 8192 bytes with its CRLF.
  std::string at_limit = request;
  for (int i = 0; i < 98; ++i) at_limit += absl::StrCat("X-", i, ": v\r\n");
  at_limit += "X-Long: " + std::string(8192 - 10, 'v') + "\r\n\r\n";
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send(at_limit));
  ASSERT_TRUE(connection.AwaitReceived("\"live\":true", absl::Seconds(10)));
  EXPECT_EQ(StatusOf(connection.Reply(absl::ZeroDuration())), 200);
}

// More slow connections than HTTP threads, of every kind: headers and a
// body trickling in a byte at a time (each byte well within the read
// timeout), a client that never reads its reply, idle keep-alive
// connections. Health checks still answer within a bound, and each slow
// connection is cut off long before its trickle would end.
TEST(HttpLimitsTest, SlowClientsCannotHoldEveryThread) {
  FakeServer server(
      [](ServerConfig& c) {
        c.set_http_threads(4);
        c.set_max_inflight_requests(1);
        c.set_read_timeout_ms(1500);
        c.set_header_timeout_ms(1500);
        c.set_request_timeout_ms(2500);
        c.set_write_timeout_ms(1000);
        // Longer than the test: only "another connection waits" frees them.
        c.set_keep_alive_timeout_ms(60000);
      },
      std::string(16 << 20, 'p'));
  constexpr absl::Duration kTrickleFor = absl::Seconds(20);
  constexpr absl::Duration kTrickleEvery = absl::Milliseconds(300);

  // Idle keep-alive connections first: each gets a thread and keeps it.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server.port()));
    ASSERT_TRUE(idle.back()->Send("GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(idle.back()->AwaitReceived("\"live\":true", absl::Seconds(10)));
  }
  std::vector<std::unique_ptr<RawConnection>> non_readers;
  for (int i = 0; i < 2; ++i) {
    non_readers.push_back(std::make_unique<RawConnection>(server.port(), /*read=*/false));
    ASSERT_TRUE(non_readers.back()->Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  // Trickling clients, each on a thread, until the server stops them.
  std::vector<std::thread> tricklers;
  std::vector<absl::Duration> cut_after(4, absl::InfiniteDuration());
  const std::vector<std::string> starts = {
      "GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Slow: ",
      "GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Slow: ",
      "POST /v1/faces HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 60000\r\n\r\n",
      "POST /v1/faces HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 60000\r\n\r\n",
  };
  for (int i = 0; i < 4; ++i) {
    tricklers.emplace_back([&, i] {
      RawConnection connection(server.port());
      const absl::Time start = absl::Now();
      if (!connection.Send(starts[i])) return;
      while (absl::Now() - start < kTrickleFor) {
        if (connection.ClosedByServer(kTrickleEvery) || !connection.Send("v")) {
          cut_after[i] = absl::Now() - start;
          return;
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));  // all of them connected and started

  const absl::Time asked = absl::Now();
  EXPECT_TRUE(server.Live(absl::Seconds(15))) << "health check unanswered";
  const absl::Duration waited = absl::Now() - asked;
  // The slowest cut-off is the request timeout (2.5 s from the accept).
  EXPECT_LT(waited, absl::Seconds(8)) << "health check waited " << waited;
  for (auto& t : tricklers) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_LT(cut_after[i], absl::Seconds(10)) << "trickling client " << i << " was never cut off";
  }
  // The idle connections gave their threads up when others were waiting,
  // long before their keep-alive timeout.
  for (auto& connection : idle) EXPECT_TRUE(connection->ClosedByServer(absl::Seconds(10)));
}

TEST(HttpLimitsTest, OverloadIsAnswered503WithRetryAfter) {
  FakeServer server([](ServerConfig& c) {
    c.set_max_inflight_requests(1);
    c.set_retry_after_seconds(2);
  });
  server.service().Hold();
  std::atomic<int> first_status{0};
  std::thread held([&] {
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(60);
    auto res = client.Post("/v1/faces", "first", "image/jpeg");
    first_status = res ? res->status : -1;
  });
  // On every path, a failed ASSERT included.
  absl::Cleanup release = [&] {
    server.service().Release();
    if (held.joinable()) held.join();
  };
  server.service().AwaitCalls(1);  // the first request is in the model call

  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(10);
  auto faces = client.Post("/v1/faces", "second", "image/jpeg");
  ASSERT_TRUE(faces);
  EXPECT_EQ(faces->status, 503) << faces->body;
  EXPECT_EQ(faces->get_header_value("Retry-After"), "2");
  EXPECT_TRUE(absl::StrContains(faces->body, "max_inflight_requests")) << faces->body;
  const json tensor_request = {
      {"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 3, 2, 2}}, {"data", std::vector<float>(12)}}}}};
  auto infer = client.Post("/v2/models/dmue/infer", tensor_request.dump(), "application/json");
  ASSERT_TRUE(infer);
  EXPECT_EQ(infer->status, 503) << infer->body;
  EXPECT_EQ(infer->get_header_value("Retry-After"), "2");
  // Neither reached the service, and health checks still answer.
  EXPECT_EQ(server.service().calls(), 1);
  EXPECT_TRUE(server.Live());

  std::move(release).Invoke();
  EXPECT_EQ(first_status, 200);
  auto after = client.Post("/v1/faces", "third", "image/jpeg");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  EXPECT_EQ(server.service().calls(), 2);
  EXPECT_TRUE(absl::StrContains(server.metrics().RenderText(),
                                "dmue_http_requests_total{route=\"/v1/faces\",code=\"503\"} 1"))
      << server.metrics().RenderText();
}

}  // namespace
}  // namespace dmue::serving
