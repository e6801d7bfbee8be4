// The gRPC front end end to end: a real ExpressionService (seeded random
// ResNet-18 weights, the shared MTCNN weights) behind StartGrpcServer on a
// loopback port, called through the generated client stub.
#include <cmath>
#include <future>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "dmue/testing/files.h"
#include "gtest/gtest.h"
#include "serving/expression_service.h"
#include "serving/grpc/expression.grpc.pb.h"
#include "serving/grpc/expression.pb.h"
#include "serving/grpc/grpc_server.h"
#include "serving/metrics.h"
#include "serving/server_config.pb.h"
#include "serving/testing/test_model.h"
#include "third_party/shared_data.h"

namespace dmue::serving {
namespace {

namespace pb = ::dmue::serving::grpc;

constexpr int kNumClasses = 7;
constexpr int kInputSize = 64;
constexpr int64_t kMaxRequestBytes = 256 * 1024;  // the service's limit on image bytes
constexpr int64_t kMaxMessageBytes = 512 * 1024;  // the transport's limit on messages
const std::vector<std::string> kClassNames = {"neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"};

// One service and one server for the whole suite (loading the model and
// MTCNN is the slow part); created by the first test that runs.
struct Fixture {
  MetricsRegistry metrics;
  std::unique_ptr<ExpressionService> service;
  std::unique_ptr<GrpcFrontEnd> server;
  std::unique_ptr<pb::ExpressionInference::Stub> stub;
  std::shared_ptr<::grpc::Channel> channel;
};

std::shared_ptr<::grpc::Channel> Connect(int port) {
  ::grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  return ::grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), ::grpc::InsecureChannelCredentials(),
                                     args);
}

std::unique_ptr<::grpc::ClientContext> Context() {
  auto context = std::make_unique<::grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  return context;
}

class GrpcClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DMUE_SHARED_OR_SKIP(detector_dir, "models/mtcnn");
    DMUE_SHARED_OR_SKIP(photos, "data/photos");
    photos_ = photos;
    if (fixture_ != nullptr) return;
    auto fixture = std::make_unique<Fixture>();
    absl::StatusOr<std::string> model = testing::WriteRandomModelBundle(
        dmue::testing::TempPath("grpc_client_test_model"),
        testing::TestSpec(kClassNames, /*resize=*/72, kInputSize, /*grayscale=*/false),
        /*seed=*/7);
    ASSERT_TRUE(model.ok()) << model.status();
    config_.set_model_path(*model);
    config_.set_detector_dir(detector_dir);
    config_.set_model_name("dmue-test");
    config_.set_model_version("3");
    config_.set_num_threads(2);
    config_.set_max_batch_size(8);
    config_.set_max_request_bytes(kMaxRequestBytes);
    config_.set_batch_delay_us(1000);
    absl::StatusOr<std::unique_ptr<ExpressionService>> service =
        ExpressionService::Create(config_, &fixture->metrics);
    ASSERT_TRUE(service.ok()) << service.status();
    fixture->service = std::move(*service);
    absl::StatusOr<std::unique_ptr<GrpcFrontEnd>> server =
        StartGrpcServer(fixture->service.get(), &fixture->metrics, "127.0.0.1:0", kMaxMessageBytes);
    ASSERT_TRUE(server.ok()) << server.status();
    fixture->server = std::move(*server);
    ASSERT_GT(fixture->server->port(), 0);
    fixture->channel = Connect(fixture->server->port());
    fixture->stub = pb::ExpressionInference::NewStub(fixture->channel);
    fixture_ = fixture.release();
  }

  static void TearDownTestSuite() {
    if (fixture_ == nullptr) return;
    fixture_->server->Shutdown();
    fixture_->service->Shutdown();
    delete fixture_;
    fixture_ = nullptr;
  }

  pb::ExpressionInference::Stub& stub() { return *fixture_->stub; }
  ExpressionService& service() { return *fixture_->service; }
  std::string Photo(const std::string& name) { return dmue::testing::ReadFile(photos_ + "/" + name); }

  ::grpc::Status Analyze(const std::string& bytes, bool skip_detection, pb::AnalyzeResponse* response) {
    pb::AnalyzeRequest request;
    request.set_image(bytes);
    request.set_skip_detection(skip_detection);
    return stub().Analyze(Context().get(), request, response);
  }

  static Fixture* fixture_;
  static ServerConfig config_;
  std::string photos_;
};

Fixture* GrpcClientTest::fixture_ = nullptr;
ServerConfig GrpcClientTest::config_;

void ExpectProbabilities(const pb::Face& face) {
  ASSERT_EQ(face.probabilities_size(), kNumClasses);
  float sum = 0;
  int top = 0;
  for (int c = 0; c < kNumClasses; ++c) {
    EXPECT_GE(face.probabilities(c), 0);
    sum += face.probabilities(c);
    if (face.probabilities(c) > face.probabilities(top)) top = c;
  }
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_EQ(face.top_class(), top);
  EXPECT_EQ(face.label(), kClassNames[top]);
  EXPECT_EQ(face.landmarks_size(), 5);
}

TEST(ToGrpcStatusTest, SameCodeAndMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const std::vector<std::pair<absl::Status, ::grpc::StatusCode>> cases = {
      {absl::InvalidArgumentError("bad"), ::grpc::StatusCode::INVALID_ARGUMENT},
      {absl::ResourceExhaustedError("big"), ::grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::UnavailableError("down"), ::grpc::StatusCode::UNAVAILABLE},
      {absl::NotFoundError("gone"), ::grpc::StatusCode::NOT_FOUND},
      {absl::InternalError("oops"), ::grpc::StatusCode::INTERNAL},
      {absl::DeadlineExceededError("late"), ::grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::FailedPreconditionError("pre"), ::grpc::StatusCode::FAILED_PRECONDITION},
      {absl::UnimplementedError("no"), ::grpc::StatusCode::UNIMPLEMENTED},
      {absl::CancelledError("stop"), ::grpc::StatusCode::CANCELLED},
  };
  for (const auto& [in, code] : cases) {
    const ::grpc::Status out = ToGrpcStatus(in);
    EXPECT_EQ(out.error_code(), code) << in;
    EXPECT_EQ(out.error_message(), std::string(in.message()));
  }
  EXPECT_STREQ(GrpcCodeName(::grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  EXPECT_STREQ(GrpcCodeName(::grpc::StatusCode::OK), "OK");
}

TEST_F(GrpcClientTest, LiveReadyAndModelReady) {
  ::inference::ServerLiveResponse live;
  ASSERT_TRUE(stub().ServerLive(Context().get(), {}, &live).ok());
  EXPECT_TRUE(live.live());
  ::inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub().ServerReady(Context().get(), {}, &ready).ok());
  EXPECT_TRUE(ready.ready());

  ::inference::ModelReadyRequest model;
  model.set_name("dmue-test");
  ::inference::ModelReadyResponse model_ready;
  ASSERT_TRUE(stub().ModelReady(Context().get(), model, &model_ready).ok());
  EXPECT_TRUE(model_ready.ready());
  model.set_version("3");
  ASSERT_TRUE(stub().ModelReady(Context().get(), model, &model_ready).ok());
  model.set_version("4");
  EXPECT_EQ(stub().ModelReady(Context().get(), model, &model_ready).error_code(), ::grpc::StatusCode::NOT_FOUND);
  model.set_name("other");
  model.clear_version();
  EXPECT_EQ(stub().ModelReady(Context().get(), model, &model_ready).error_code(), ::grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcClientTest, StandardHealthService) {
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest (service "")
  // answers HealthCheckResponse{status: SERVING = 1}: bytes 08 01.
  ::grpc::GenericStub generic(fixture_->channel);
  ::grpc::ByteBuffer request;  // empty message
  ::grpc::Slice empty("", 0);
  request = ::grpc::ByteBuffer(&empty, 1);
  ::grpc::ByteBuffer response;
  std::promise<::grpc::Status> done;
  auto context = Context();
  generic.UnaryCall(context.get(), "/grpc.health.v1.Health/Check", ::grpc::StubOptions(), &request, &response,
                    [&done](::grpc::Status s) { done.set_value(s); });
  const ::grpc::Status status = done.get_future().get();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<::grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(GrpcClientTest, ModelMetadata) {
  pb::ModelMetadataResponse metadata;
  ASSERT_TRUE(stub().ModelMetadata(Context().get(), {}, &metadata).ok());
  EXPECT_EQ(metadata.name(), "dmue-test");
  ASSERT_EQ(metadata.versions_size(), 1);
  EXPECT_EQ(metadata.versions(0), "3");
  EXPECT_EQ(metadata.platform(), service().metadata().platform);
  EXPECT_FALSE(metadata.platform().empty());
  ASSERT_EQ(metadata.class_names_size(), kNumClasses);
  for (int c = 0; c < kNumClasses; ++c) EXPECT_EQ(metadata.class_names(c), kClassNames[c]);
  EXPECT_EQ(metadata.input_size(), kInputSize);
  // The HTTP route's and KServe's tensors (serving/protocol.h DescribeModel):
  // "image" BYTES and "input" FP32 in; five outputs.
  ASSERT_EQ(metadata.inputs_size(), 2);
  EXPECT_EQ(metadata.inputs(0).name(), "image");
  EXPECT_EQ(metadata.inputs(0).datatype(), "BYTES");
  EXPECT_EQ(metadata.inputs(1).name(), "input");
  EXPECT_EQ(metadata.inputs(1).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(metadata.inputs(1).shape().begin(), metadata.inputs(1).shape().end()),
            (std::vector<int64_t>{-1, 3, kInputSize, kInputSize}));
  ASSERT_EQ(metadata.outputs_size(), 5);
  EXPECT_EQ(metadata.outputs(0).name(), "probabilities");
  EXPECT_EQ(std::vector<int64_t>(metadata.outputs(0).shape().begin(), metadata.outputs(0).shape().end()),
            (std::vector<int64_t>{-1, kNumClasses}));

  ::inference::ModelMetadataRequest request;
  request.set_name("dmue-test");
  request.set_version("3");
  EXPECT_TRUE(stub().ModelMetadata(Context().get(), request, &metadata).ok());
  request.set_name("resnet");
  const ::grpc::Status status = stub().ModelMetadata(Context().get(), request, &metadata);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("resnet"), std::string::npos) << status.error_message();
}

TEST_F(GrpcClientTest, AnalyzeTwoFacesMatchesTheService) {
  const std::string bytes = Photo("face_sdk_test1.jpg");
  pb::AnalyzeResponse response;
  const ::grpc::Status status = Analyze(bytes, false, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_name(), "dmue-test");
  EXPECT_EQ(response.model_version(), "3");
  ASSERT_EQ(response.faces_size(), 2);
  EXPECT_EQ(response.faces_dropped(), 0);
  EXPECT_GT(response.width(), 0);
  EXPECT_GT(response.height(), 0);
  EXPECT_GT(response.timing().total_ms(), 0);
  EXPECT_GE(response.timing().total_ms(), response.timing().detect_ms());

  absl::StatusOr<AnalyzeResult> direct = service().Analyze(bytes, {}, "direct");
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(response.width(), direct->width);
  EXPECT_EQ(response.height(), direct->height);
  ASSERT_EQ(direct->faces.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    const pb::Face& face = response.faces(i);
    const FaceResult& want = direct->faces[i];
    ExpectProbabilities(face);
    EXPECT_FLOAT_EQ(face.box().x1(), want.box[0]);
    EXPECT_FLOAT_EQ(face.box().y1(), want.box[1]);
    EXPECT_FLOAT_EQ(face.box().x2(), want.box[2]);
    EXPECT_FLOAT_EQ(face.box().y2(), want.box[3]);
    EXPECT_LT(face.box().x1(), face.box().x2());
    EXPECT_LT(face.box().y1(), face.box().y2());
    EXPECT_FLOAT_EQ(face.score(), want.score);
    EXPECT_GT(face.score(), 0.5);
    for (int k = 0; k < 5; ++k) {
      EXPECT_FLOAT_EQ(face.landmarks(k).x(), want.landmarks[k][0]);
      EXPECT_FLOAT_EQ(face.landmarks(k).y(), want.landmarks[k][1]);
    }
    EXPECT_EQ(face.top_class(), want.top_class);
    for (int c = 0; c < kNumClasses; ++c) EXPECT_NEAR(face.probabilities(c), want.probabilities[c], 1e-4);
  }
}

TEST_F(GrpcClientTest, AnalyzeSkipDetectionIsOneFace) {
  pb::AnalyzeResponse response;
  const ::grpc::Status status = Analyze(Photo("test1.jpg"), true, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.faces_size(), 1);
  EXPECT_FLOAT_EQ(response.faces(0).score(), 1.0f);
  ExpectProbabilities(response.faces(0));
}

TEST_F(GrpcClientTest, ClassifyTensors) {
  const int n = 3;
  std::vector<float> inputs(static_cast<size_t>(n) * 3 * kInputSize * kInputSize);
  for (size_t i = 0; i < inputs.size(); ++i) inputs[i] = std::sin(0.01f * static_cast<float>(i));
  pb::ClassifyTensorsRequest request;
  request.mutable_inputs()->Add(inputs.begin(), inputs.end());
  request.set_n(n);
  pb::ClassifyTensorsResponse response;
  const ::grpc::Status status = stub().ClassifyTensors(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.n(), n);
  EXPECT_EQ(response.num_classes(), kNumClasses);
  ASSERT_EQ(response.probabilities_size(), n * kNumClasses);
  absl::StatusOr<std::vector<float>> direct = service().ClassifyTensors(inputs, n);
  ASSERT_TRUE(direct.ok()) << direct.status();
  for (int i = 0; i < n; ++i) {
    float sum = 0;
    for (int c = 0; c < kNumClasses; ++c) {
      sum += response.probabilities(i * kNumClasses + c);
      EXPECT_NEAR(response.probabilities(i * kNumClasses + c), (*direct)[i * kNumClasses + c], 1e-4);
    }
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }

  request.set_n(n + 1);  // too few floats for n
  EXPECT_EQ(stub().ClassifyTensors(Context().get(), request, &response).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
  request.set_n(0);
  EXPECT_EQ(stub().ClassifyTensors(Context().get(), request, &response).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcClientTest, BadInputsAreRefusedAndTheServerKeepsServing) {
  pb::AnalyzeResponse response;
  ::grpc::Status status = Analyze("", false, &response);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  status = Analyze("this is not an image, just some text", false, &response);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  const std::string jpeg = Photo("face_sdk_test1.jpg");
  status = Analyze(jpeg.substr(0, jpeg.size() / 2), false, &response);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  status = Analyze(jpeg.substr(0, jpeg.size() / 2), true, &response);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  // Over the service's limit on image bytes, within the message limit.
  std::string big = jpeg;
  while (static_cast<int64_t>(big.size()) <= kMaxRequestBytes) big += jpeg;
  ASSERT_LT(static_cast<int64_t>(big.size()), kMaxMessageBytes);
  status = Analyze(big, false, &response);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // Over the server's message limit: refused by the transport (before any
  // handler or interceptor sees the call, so it is not in the metrics).
  while (static_cast<int64_t>(big.size()) <= kMaxMessageBytes) big += jpeg;
  status = Analyze(big, false, &response);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("larger than max"), std::string::npos) << status.error_message();

  // A good photo still works afterwards.
  status = Analyze(jpeg, false, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.faces_size(), 2);

  const std::string text = fixture_->metrics.RenderText();
  EXPECT_NE(text.find("dmue_grpc_requests_total{method=\"Analyze\",code=\"INVALID_ARGUMENT\"}"), std::string::npos)
      << text;
  EXPECT_NE(text.find("dmue_grpc_requests_total{method=\"Analyze\",code=\"RESOURCE_EXHAUSTED\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dmue_grpc_requests_total{method=\"Analyze\",code=\"OK\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("dmue_grpc_request_duration_seconds_count{method=\"Analyze\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("dmue_grpc_requests_in_flight"), std::string::npos) << text;
}

TEST_F(GrpcClientTest, ConcurrentCallsAllSucceed) {
  const std::string jpeg = Photo("face_sdk_test1.jpg");
  const std::string crop = Photo("test1.jpg");
  std::vector<std::thread> threads;
  std::vector<int> faces(6, -1);
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      pb::AnalyzeResponse response;
      const ::grpc::Status status = Analyze(t % 2 ? crop : jpeg, t % 2 == 1, &response);
      faces[t] = status.ok() ? response.faces_size() : -static_cast<int>(status.error_code());
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 6; ++t) EXPECT_EQ(faces[t], t % 2 ? 1 : 2) << t;
}

// A second front end on the same service: bind errors, port 0, shutdown.
TEST_F(GrpcClientTest, StartAndShutdown) {
  EXPECT_FALSE(StartGrpcServer(&service(), nullptr, "256.1.2.3:bad", kMaxMessageBytes).ok());
  EXPECT_FALSE(StartGrpcServer(nullptr, nullptr, "127.0.0.1:0", kMaxMessageBytes).ok());
  EXPECT_FALSE(StartGrpcServer(&service(), nullptr, "127.0.0.1:0", 0).ok());

  MetricsRegistry metrics;
  absl::StatusOr<std::unique_ptr<GrpcFrontEnd>> server =
      StartGrpcServer(&service(), &metrics, "127.0.0.1:0", kMaxMessageBytes);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_GT(port, 0);
  EXPECT_NE(port, fixture_->server->port());
  // The port is taken while it runs.
  EXPECT_FALSE(StartGrpcServer(&service(), nullptr, absl::StrCat("127.0.0.1:", port), kMaxMessageBytes).ok());

  auto stub2 = pb::ExpressionInference::NewStub(Connect(port));
  ::inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub2->ServerReady(Context().get(), {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  EXPECT_NE(metrics.RenderText().find("dmue_grpc_requests_total{method=\"ServerReady\",code=\"OK\"} 1"),
            std::string::npos)
      << metrics.RenderText();

  (*server)->Shutdown(absl::Seconds(2));
  (*server)->Shutdown();  // idempotent
  auto context = Context();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const ::grpc::Status status = stub2->ServerReady(context.get(), {}, &ready);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // The suite's server is unaffected.
  ::inference::ServerLiveResponse live;
  EXPECT_TRUE(stub().ServerLive(Context().get(), {}, &live).ok());
}

}  // namespace
}  // namespace dmue::serving
