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

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "serving/grpc/expression.grpc.pb.h"
#include "serving/grpc/expression.pb.h"

namespace dmue::serving {

namespace pb = ::dmue::serving::grpc;

// ------------------------------------------------------------------ statuses

::grpc::Status ToGrpcStatus(const absl::Status& status) {
  ::grpc::StatusCode code = ::grpc::StatusCode::UNKNOWN;
  switch (status.code()) {
    case absl::StatusCode::kOk: return ::grpc::Status::OK;
    case absl::StatusCode::kCancelled: code = ::grpc::StatusCode::CANCELLED; break;
    case absl::StatusCode::kUnknown: code = ::grpc::StatusCode::UNKNOWN; break;
    case absl::StatusCode::kInvalidArgument: code = ::grpc::StatusCode::INVALID_ARGUMENT; break;
    case absl::StatusCode::kDeadlineExceeded: code = ::grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case absl::StatusCode::kNotFound: code = ::grpc::StatusCode::NOT_FOUND; break;
    case absl::StatusCode::kAlreadyExists: code = ::grpc::StatusCode::ALREADY_EXISTS; break;
    case absl::StatusCode::kPermissionDenied: code = ::grpc::StatusCode::PERMISSION_DENIED; break;
    case absl::StatusCode::kResourceExhausted: code = ::grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case absl::StatusCode::kFailedPrecondition: code = ::grpc::StatusCode::FAILED_PRECONDITION; break;
    case absl::StatusCode::kAborted: code = ::grpc::StatusCode::ABORTED; break;
    case absl::StatusCode::kOutOfRange: code = ::grpc::StatusCode::OUT_OF_RANGE; break;
    case absl::StatusCode::kUnimplemented: code = ::grpc::StatusCode::UNIMPLEMENTED; break;
    case absl::StatusCode::kInternal: code = ::grpc::StatusCode::INTERNAL; break;
    case absl::StatusCode::kUnavailable: code = ::grpc::StatusCode::UNAVAILABLE; break;
    case absl::StatusCode::kDataLoss: code = ::grpc::StatusCode::DATA_LOSS; break;
    case absl::StatusCode::kUnauthenticated: code = ::grpc::StatusCode::UNAUTHENTICATED; break;
    default: code = ::grpc::StatusCode::UNKNOWN; break;
  }
  return ::grpc::Status(code, std::string(status.message()));
}

const char* GrpcCodeName(::grpc::StatusCode code) {
  switch (code) {
    case ::grpc::StatusCode::OK: return "OK";
    case ::grpc::StatusCode::CANCELLED: return "CANCELLED";
    case ::grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case ::grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case ::grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case ::grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case ::grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case ::grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case ::grpc::StatusCode::ABORTED: return "ABORTED";
    case ::grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case ::grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case ::grpc::StatusCode::INTERNAL: return "INTERNAL";
    case ::grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case ::grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case ::grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

namespace {

// ------------------------------------------------------------------ metrics

struct GrpcMetrics {
  Metric* requests = nullptr;   // {method, code}
  Metric* latency = nullptr;    // {method}
  Metric* inflight = nullptr;
};

// "/dmue.serving.grpc.ExpressionInference/Analyze" -> "Analyze".
std::string ShortMethod(const char* full) {
  absl::string_view m = full == nullptr ? "" : full;
  const size_t slash = m.rfind('/');
  if (slash != absl::string_view::npos) m.remove_prefix(slash + 1);
  return m.empty() ? "unknown" : std::string(m);
}

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

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

}  // namespace

// ------------------------------------------------------------------ service

class ExpressionInferenceImpl final : public pb::ExpressionInference::Service {
 public:
  ExpressionInferenceImpl(ExpressionService* service, MetricsRegistry* metrics) : service_(service) {
    if (metrics != nullptr) {
      // The names and buckets of the HTTP front end's metrics, "http" -> "grpc".
      metrics_.requests = metrics->AddCounter("dmue_grpc_requests_total", "gRPC requests by method and status code.");
      metrics_.latency = metrics->AddHistogram("dmue_grpc_request_duration_seconds",
                                               "gRPC request latency by method.", ExponentialBuckets(0.001, 2, 15));
      metrics_.inflight = metrics->AddGauge("dmue_grpc_requests_in_flight", "gRPC requests being handled.");
    }
  }

  const GrpcMetrics* metrics() const { return metrics_.requests == nullptr ? nullptr : &metrics_; }
  void set_ready(bool ready) { ready_.store(ready); }

  ::grpc::Status ServerLive(::grpc::ServerContext*, const pb::ServerLiveRequest*,
                            pb::ServerLiveResponse* response) override {
    response->set_live(true);
    return ::grpc::Status::OK;
  }

  ::grpc::Status ServerReady(::grpc::ServerContext*, const pb::ServerReadyRequest*,
                             pb::ServerReadyResponse* response) override {
    response->set_ready(ready_.load());
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelReady(::grpc::ServerContext*, const pb::ModelReadyRequest* request,
                            pb::ModelReadyResponse* response) override {
    if (absl::Status s = CheckModel(request->name(), request->version()); !s.ok()) return ToGrpcStatus(s);
    response->set_ready(ready_.load());
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelMetadata(::grpc::ServerContext*, const pb::ModelMetadataRequest* request,
                               pb::ModelMetadataResponse* response) override {
    if (absl::Status s = CheckModel(request->name(), request->version()); !s.ok()) return ToGrpcStatus(s);
    const serving::ModelMetadata& m = service_->metadata();
    response->set_name(m.name);
    response->add_versions(m.version);
    response->set_platform(m.platform);
    for (const std::string& c : m.class_names) response->add_class_names(c);
    response->set_input_size(m.input_size);
    auto* input = response->add_inputs();
    input->set_name("input");
    input->set_datatype("FP32");
    for (int64_t d : {int64_t{-1}, int64_t{3}, int64_t{m.input_size}, int64_t{m.input_size}}) {
      input->add_shape(d);
    }
    auto* output = response->add_outputs();
    output->set_name("probabilities");
    output->set_datatype("FP32");
    output->add_shape(-1);
    output->add_shape(static_cast<int64_t>(m.class_names.size()));
    return ::grpc::Status::OK;
  }

  ::grpc::Status Analyze(::grpc::ServerContext*, const pb::AnalyzeRequest* request,
                         pb::AnalyzeResponse* response) override {
    const absl::Time start = absl::Now();
    if (request->image().empty()) {
      return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT, "AnalyzeRequest.image is empty");
    }
    AnalyzeOptions options;
    options.skip_detection = request->skip_detection();
    absl::StatusOr<AnalyzeResult> result = service_->Analyze(request->image(), options, "AnalyzeRequest.image");
    if (!result.ok()) return ToGrpcStatus(result.status());

    const serving::ModelMetadata& m = service_->metadata();
    response->set_model_name(m.name);
    response->set_model_version(m.version);
    response->set_width(result->width);
    response->set_height(result->height);
    response->set_faces_dropped(result->faces_dropped);
    for (const FaceResult& f : result->faces) {
      pb::Face* face = response->add_faces();
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
    pb::Timing* timing = response->mutable_timing();
    timing->set_decode_ms(result->decode_ms);
    timing->set_detect_ms(result->detect_ms);
    timing->set_classify_ms(result->classify_ms);
    timing->set_total_ms(Ms(absl::Now() - start));
    return ::grpc::Status::OK;
  }

  ::grpc::Status ClassifyTensors(::grpc::ServerContext*, const pb::ClassifyTensorsRequest* request,
                                 pb::ClassifyTensorsResponse* response) override {
    const serving::ModelMetadata& m = service_->metadata();
    const int64_t n = request->n();
    const int64_t per_input = int64_t{3} * m.input_size * m.input_size;
    if (n <= 0) {
      return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("ClassifyTensorsRequest.n must be > 0, got ", n));
    }
    if (static_cast<int64_t>(request->inputs_size()) != n * per_input) {
      return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("ClassifyTensorsRequest.inputs holds ", request->inputs_size(),
                                         " floats; n = ", n, " inputs of 3 x ", m.input_size, " x ",
                                         m.input_size, " need ", n * per_input));
    }
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
  // An empty name or version means the served one.
  absl::Status CheckModel(const std::string& name, const std::string& version) const {
    const serving::ModelMetadata& m = service_->metadata();
    if (!name.empty() && name != m.name) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' is not served (this server serves '", m.name, "')"));
    }
    if (!version.empty() && version != m.version) {
      return absl::NotFoundError(absl::StrCat("model '", m.name, "' version '", version,
                                              "' is not served (version '", m.version, "' is)"));
    }
    return absl::OkStatus();
  }

  ExpressionService* const service_;
  GrpcMetrics metrics_;
  std::atomic<bool> ready_{true};
};

// ------------------------------------------------------------------ server

GrpcFrontEnd::GrpcFrontEnd() = default;

GrpcFrontEnd::~GrpcFrontEnd() { Shutdown(); }

void GrpcFrontEnd::Shutdown(absl::Duration deadline) {
  absl::MutexLock lock(&shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  if (impl_ != nullptr) impl_->set_ready(false);
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
  front->impl_ = std::make_unique<ExpressionInferenceImpl>(service, metrics);

  // Process-wide switch, read by the ServerBuilder: adds grpc.health.v1.Health.
  ::grpc::EnableDefaultHealthCheckService(true);
  ::grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, ::grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(front->impl_.get());
  // A port in use is an error, not a port silently shared with another server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<int64_t>(max_message_bytes, std::numeric_limits<int>::max())));
  if (const GrpcMetrics* m = front->impl_->metrics()) {
    std::vector<std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<MetricsInterceptorFactory>(m));
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
