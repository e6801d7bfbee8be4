#include "serving/grpc/grpc_server.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>
#include <vector>

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "serving/grpc/expression.grpc.pb.h"
#include "serving/grpc/expression.pb.h"
#include "serving/grpc/grpc_predict_v2.grpc.pb.h"
#include "serving/protocol.h"

namespace dmue::serving {

namespace pb = ::dmue::serving::grpc;

// ------------------------------------------------------------------ statuses

::grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return ::grpc::Status::OK;
  return ::grpc::Status(static_cast<::grpc::StatusCode>(GrpcCodeFor(status)), std::string(status.message()));
}

const char* GrpcCodeName(::grpc::StatusCode code) {
  // gRPC's code numbers are absl's (serving/protocol.h: GrpcCodeFor).
  const absl::StatusCode absl_code = static_cast<absl::StatusCode>(code);
  switch (absl_code) {
#define DMUE_GRPC_CODE_NAME(name, upper) \
  case absl::StatusCode::name:           \
    return #upper;
    DMUE_GRPC_CODE_NAME(kOk, OK)
    DMUE_GRPC_CODE_NAME(kCancelled, CANCELLED)
    DMUE_GRPC_CODE_NAME(kInvalidArgument, INVALID_ARGUMENT)
    DMUE_GRPC_CODE_NAME(kDeadlineExceeded, DEADLINE_EXCEEDED)
    DMUE_GRPC_CODE_NAME(kNotFound, NOT_FOUND)
    DMUE_GRPC_CODE_NAME(kAlreadyExists, ALREADY_EXISTS)
    DMUE_GRPC_CODE_NAME(kPermissionDenied, PERMISSION_DENIED)
    DMUE_GRPC_CODE_NAME(kResourceExhausted, RESOURCE_EXHAUSTED)
    DMUE_GRPC_CODE_NAME(kFailedPrecondition, FAILED_PRECONDITION)
    DMUE_GRPC_CODE_NAME(kAborted, ABORTED)
    DMUE_GRPC_CODE_NAME(kOutOfRange, OUT_OF_RANGE)
    DMUE_GRPC_CODE_NAME(kUnimplemented, UNIMPLEMENTED)
    DMUE_GRPC_CODE_NAME(kInternal, INTERNAL)
    DMUE_GRPC_CODE_NAME(kUnavailable, UNAVAILABLE)
    DMUE_GRPC_CODE_NAME(kDataLoss, DATA_LOSS)
    DMUE_GRPC_CODE_NAME(kUnauthenticated, UNAUTHENTICATED)
#undef DMUE_GRPC_CODE_NAME
    default:
      return "UNKNOWN";
  }
}

// ------------------------------------------------------------------ metrics

struct GrpcMetrics {
  Metric* requests = nullptr;   // {method, code}
  Metric* latency = nullptr;    // {method}
  Metric* inflight = nullptr;
};

namespace {

// "/dmue.serving.grpc.ExpressionInference/Analyze" -> "Analyze"; KServe's
// keep their service: "/inference.GRPCInferenceService/ModelInfer" ->
// "GRPCInferenceService/ModelInfer" (both services have a ServerLive).
std::string ShortMethod(const char* full) {
  absl::string_view m = full == nullptr ? "" : full;
  const size_t slash = m.rfind('/');
  absl::string_view service;
  if (slash != absl::string_view::npos) {
    service = m.substr(0, slash);
    m.remove_prefix(slash + 1);
  }
  if (m.empty()) return "unknown";
  if (absl::StartsWith(service, "/inference.")) return absl::StrCat(service.substr(11), "/", m);
  return std::string(m);
}

// A status that is not OK ends the handler with its gRPC status.
#define RETURN_IF_GRPC_ERROR(expr)                                                   \
  do {                                                                               \
    if (const absl::Status dmue_grpc_status_ = (expr); !dmue_grpc_status_.ok()) {    \
      return ToGrpcStatus(dmue_grpc_status_);                                        \
    }                                                                                \
  } while (false)

}  // namespace

// Counts every call the server answers (with whatever status it sends,
// including the transport's own refusals that never reach a handler) and
// times it from arrival to the status.
class MetricsInterceptor : public ::grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(const GrpcMetrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(absl::Now()) {
    metrics_->inflight->Add(1);
  }
  ~MetricsInterceptor() override { metrics_->inflight->Add(-1); }

  void Intercept(::grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            ::grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const ::grpc::Status status = methods->GetSendStatus();
      metrics_->requests->Add(1, {{"method", method_}, {"code", GrpcCodeName(status.error_code())}});
      metrics_->latency->Observe(absl::ToDoubleSeconds(absl::Now() - start_), {{"method", method_}});
    }
    methods->Proceed();
  }

 private:
  const GrpcMetrics* metrics_;
  const std::string method_;
  const absl::Time start_;
};

class MetricsInterceptorFactory : public ::grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(const GrpcMetrics* metrics) : metrics_(metrics) {}
  ::grpc::experimental::Interceptor* CreateServerInterceptor(
      ::grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, ShortMethod(info->method()));
  }

 private:
  const GrpcMetrics* metrics_;
};


// ------------------------------------------------------------------ service

// Whether the server takes inference calls: shared by both services and
// turned false at the start of Shutdown().
using ReadyFlag = std::atomic<bool>;

// The health calls of a generated service whose ServerLive, ServerReady and
// ModelReady take the Open Inference Protocol's messages (both of ours do).
template <typename GeneratedService>
class WithHealthCalls : public GeneratedService {
 public:
  WithHealthCalls(ExpressionService* service, const ReadyFlag* ready) : service_(service), ready_(ready) {}

  ::grpc::Status ServerLive(::grpc::ServerContext*, const ::inference::ServerLiveRequest*,
                            ::inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return ::grpc::Status::OK;
  }

  ::grpc::Status ServerReady(::grpc::ServerContext*, const ::inference::ServerReadyRequest*,
                             ::inference::ServerReadyResponse* response) override {
    response->set_ready(ready_->load());
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelReady(::grpc::ServerContext*, const ::inference::ModelReadyRequest* request,
                            ::inference::ModelReadyResponse* response) override {
    RETURN_IF_GRPC_ERROR(CheckModel(service_->metadata(), request->name(), request->version()));
    response->set_ready(ready_->load());
    return ::grpc::Status::OK;
  }

 protected:
  ExpressionService* const service_;
  const ReadyFlag* const ready_;
};

class ExpressionInferenceImpl final : public WithHealthCalls<pb::ExpressionInference::Service> {
 public:
  using WithHealthCalls::WithHealthCalls;

  ::grpc::Status ModelMetadata(::grpc::ServerContext*, const ::inference::ModelMetadataRequest* request,
                               pb::ModelMetadataResponse* response) override {
    const serving::ModelMetadata& m = service_->metadata();
    RETURN_IF_GRPC_ERROR(CheckModel(m, request->name(), request->version()));
    FillModelMetadata(DescribeModel(m), response);
    for (const std::string& c : m.class_names) response->add_class_names(c);
    response->set_input_size(m.input_size);
    return ::grpc::Status::OK;
  }

  ::grpc::Status Analyze(::grpc::ServerContext*, const pb::AnalyzeRequest* request,
                         pb::AnalyzeResponse* response) override {
    if (request->image().empty()) return ToGrpcStatus(absl::InvalidArgumentError("AnalyzeRequest.image is empty"));
    AnalyzeOptions options;
    options.skip_detection = request->skip_detection();
    absl::StatusOr<TimedAnalysis> timed = AnalyzeTimed(*service_, request->image(), options, "AnalyzeRequest.image");
    if (!timed.ok()) return ToGrpcStatus(timed.status());
    const AnalyzeResult& result = timed->result;
    const serving::ModelMetadata& m = service_->metadata();
    response->set_model_name(m.name);
    response->set_model_version(m.version);
    response->set_width(result.width);
    response->set_height(result.height);
    response->set_faces_dropped(result.faces_dropped);
    for (const FaceResult& f : result.faces) FillFace(f, m, response->add_faces());
    pb::Timing* timing = response->mutable_timing();
    timing->set_decode_ms(result.decode_ms);
    timing->set_detect_ms(result.detect_ms);
    timing->set_classify_ms(result.classify_ms);
    timing->set_total_ms(timed->total_ms);
    return ::grpc::Status::OK;
  }

  ::grpc::Status ClassifyTensors(::grpc::ServerContext*, const pb::ClassifyTensorsRequest* request,
                                 pb::ClassifyTensorsResponse* response) override {
    const serving::ModelMetadata& m = service_->metadata();
    const int64_t n = request->n();
    const int64_t S = m.input_size;
    RETURN_IF_GRPC_ERROR(CheckTensorShape({n, 3, S, S}, request->inputs_size(), m.input_size,
                                          "ClassifyTensorsRequest (n, inputs)"));
    const std::vector<float> inputs(request->inputs().begin(), request->inputs().end());
    absl::StatusOr<std::vector<float>> probabilities = service_->ClassifyTensors(inputs, static_cast<int>(n));
    if (!probabilities.ok()) return ToGrpcStatus(probabilities.status());
    response->set_model_name(m.name);
    response->set_model_version(m.version);
    response->set_n(static_cast<int32_t>(n));
    response->set_num_classes(static_cast<int32_t>(probabilities->size() / n));
    response->mutable_probabilities()->Add(probabilities->begin(), probabilities->end());
    return ::grpc::Status::OK;
  }

 private:
  static void FillFace(const FaceResult& f, const serving::ModelMetadata& m, pb::Face* face) {
    pb::Box* box = face->mutable_box();
    box->set_x1(f.box[0]);
    box->set_y1(f.box[1]);
    box->set_x2(f.box[2]);
    box->set_y2(f.box[3]);
    face->set_score(f.score);
    for (const auto& point : f.landmarks) {
      pb::Point* p = face->add_landmarks();
      p->set_x(point[0]);
      p->set_y(point[1]);
    }
    face->mutable_probabilities()->Add(f.probabilities.begin(), f.probabilities.end());
    face->set_top_class(f.top_class);
    if (f.top_class >= 0 && f.top_class < static_cast<int>(m.class_names.size())) {
      face->set_label(m.class_names[f.top_class]);
    }
  }
};

// The KServe v2 / Open Inference Protocol service: parsing, validation and
// encoding are the protocol layer's, shared with the HTTP route.
class KServeInferenceImpl final : public WithHealthCalls<::inference::GRPCInferenceService::Service> {
 public:
  using WithHealthCalls::WithHealthCalls;

  ::grpc::Status ServerMetadata(::grpc::ServerContext*, const ::inference::ServerMetadataRequest*,
                                ::inference::ServerMetadataResponse* response) override {
    response->set_name(std::string(kServerName));
    response->set_version(std::string(kServerVersion));
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelMetadata(::grpc::ServerContext*, const ::inference::ModelMetadataRequest* request,
                               ::inference::ModelMetadataResponse* response) override {
    RETURN_IF_GRPC_ERROR(CheckModel(service_->metadata(), request->name(), request->version()));
    FillModelMetadata(DescribeModel(service_->metadata()), response);
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelInfer(::grpc::ServerContext*, const ::inference::ModelInferRequest* request,
                            ::inference::ModelInferResponse* response) override {
    const serving::ModelMetadata& m = service_->metadata();
    absl::StatusOr<InferRequest> parsed = ParseModelInferRequest(*request, m);
    if (!parsed.ok()) return ToGrpcStatus(parsed.status());
    absl::StatusOr<InferResult> result = RunInfer(*service_, *std::move(parsed));
    if (!result.ok()) return ToGrpcStatus(result.status());
    FillModelInferResponse(*result, m, response);
    return ::grpc::Status::OK;
  }
};

// Both services, their ready flag and their metrics.
struct GrpcServices {
  GrpcServices(ExpressionService* service, MetricsRegistry* registry)
      : expression(service, &ready), kserve(service, &ready) {
    if (registry != nullptr) {
      // The names and buckets of the HTTP front end's metrics, "http" -> "grpc".
      metrics.requests = registry->AddCounter("dmue_grpc_requests_total", "gRPC requests by method and status code.");
      metrics.latency = registry->AddHistogram("dmue_grpc_request_duration_seconds",
                                               "gRPC request latency by method.", ExponentialBuckets(0.001, 2, 15));
      metrics.inflight = registry->AddGauge("dmue_grpc_requests_in_flight", "gRPC requests being handled.");
    }
  }

  ReadyFlag ready{true};
  GrpcMetrics metrics;
  ExpressionInferenceImpl expression;
  KServeInferenceImpl kserve;
};

// ------------------------------------------------------------------ server

GrpcFrontEnd::GrpcFrontEnd() = default;

GrpcFrontEnd::~GrpcFrontEnd() { Shutdown(); }

void GrpcFrontEnd::Shutdown(absl::Duration deadline) {
  absl::MutexLock lock(&shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  if (services_ != nullptr) services_->ready.store(false);
  if (server_ == nullptr) return;
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + deadline));
  server_->Wait();
}

absl::StatusOr<std::unique_ptr<GrpcFrontEnd>> StartGrpcServer(ExpressionService* service,
                                                              MetricsRegistry* metrics,
                                                              const std::string& address,
                                                              int64_t max_message_bytes) {
  if (service == nullptr) return absl::InvalidArgumentError("StartGrpcServer: service is null");
  if (max_message_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("StartGrpcServer: max_message_bytes must be > 0, got ", max_message_bytes));
  }
  std::unique_ptr<GrpcFrontEnd> front(new GrpcFrontEnd());
  front->services_ = std::make_unique<GrpcServices>(service, metrics);

  // Process-wide switch, read by the ServerBuilder: adds grpc.health.v1.Health.
  ::grpc::EnableDefaultHealthCheckService(true);
  ::grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, ::grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(&front->services_->expression);
  builder.RegisterService(&front->services_->kserve);
  // A port in use is an error, not a port silently shared with another server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<int64_t>(max_message_bytes, std::numeric_limits<int>::max())));
  if (metrics != nullptr) {
    std::vector<std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<MetricsInterceptorFactory>(&front->services_->metrics));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  front->server_ = builder.BuildAndStart();
  if (front->server_ == nullptr || selected_port == 0) {
    if (front->server_ != nullptr) front->server_->Shutdown();
    front->server_.reset();
    return absl::UnavailableError(absl::StrCat("gRPC server could not listen on '", address, "'"));
  }
  front->port_ = selected_port;
  return front;
}

}  // namespace dmue::serving
