// gRPC front end of the inference server, on one port over one
// ExpressionService:
//   - our ExpressionInference service (serving/grpc/expression.proto: Open
//     Inference Protocol health and metadata calls, Analyze, ClassifyTensors);
//   - the standard KServe v2 / Open Inference Protocol service
//     inference.GRPCInferenceService (serving/grpc/grpc_predict_v2.proto:
//     ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata,
//     ModelInfer), parsed and encoded by serving/protocol.h like the HTTP
//     route, so Triton and KServe clients work unchanged;
//   - grpc.health.v1.Health.
//
//   ASSIGN_OR_RETURN(auto grpc, StartGrpcServer(service.get(), &metrics,
//                                               "0.0.0.0:8081", config.max_request_bytes()));
//   ...
//   grpc->Shutdown();  // before service->Shutdown()
//
// Every call is counted in `metrics` (when not null):
//   dmue_grpc_requests_total{method,code}        counter, code "OK", "INVALID_ARGUMENT", ...
//   dmue_grpc_request_duration_seconds{method}   histogram (the HTTP front end's buckets)
//   dmue_grpc_requests_in_flight                 gauge
// (registered once per StartGrpcServer call: one server per registry)
// with method the short rpc name ("Analyze"; KServe's with their service:
// "GRPCInferenceService/ModelInfer"); errors carry the service's absl status
// mapped to the gRPC code of the same name (GrpcCodeFor), with its message.
#ifndef SERVING_GRPC_GRPC_SERVER_H_
#define SERVING_GRPC_GRPC_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "serving/expression_service.h"
#include "serving/metrics.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace dmue::serving {

struct GrpcServices;

// A running gRPC server. The destructor shuts it down (Shutdown()).
class GrpcFrontEnd {
 public:
  ~GrpcFrontEnd();
  GrpcFrontEnd(const GrpcFrontEnd&) = delete;
  GrpcFrontEnd& operator=(const GrpcFrontEnd&) = delete;

  // The bound port (the one the system chose when the address asked for 0).
  int port() const { return port_; }

  // Graceful stop: ServerReady and the health service turn false, new calls
  // are refused (UNAVAILABLE), calls in flight may finish until `deadline`
  // after which they are cancelled; returns when every handler has returned.
  // Idempotent. Call it before ExpressionService::Shutdown().
  void Shutdown(absl::Duration deadline = absl::Seconds(5));

 private:
  friend absl::StatusOr<std::unique_ptr<GrpcFrontEnd>> StartGrpcServer(ExpressionService*, MetricsRegistry*,
                                                                       const std::string&, int64_t);
  GrpcFrontEnd();

  std::unique_ptr<GrpcServices> services_;
  std::unique_ptr<::grpc::Server> server_;
  int port_ = 0;
  absl::Mutex shutdown_mutex_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mutex_) = false;
};

// Starts both services on `address` ("0.0.0.0:8081",
// "127.0.0.1:0", "[::]:8081", ...; insecure credentials). `service` (and
// `metrics`, which may be null) must outlive the returned server. Messages
// larger than `max_message_bytes` are refused with RESOURCE_EXHAUSTED before
// they reach the service. Fails (Unavailable) when the address cannot be bound.
absl::StatusOr<std::unique_ptr<GrpcFrontEnd>> StartGrpcServer(ExpressionService* service,
                                                              MetricsRegistry* metrics,
                                                              const std::string& address,
                                                              int64_t max_message_bytes);

// The gRPC status of an absl status: same code (InvalidArgument ->
// INVALID_ARGUMENT, ResourceExhausted -> RESOURCE_EXHAUSTED, Unavailable ->
// UNAVAILABLE, NotFound -> NOT_FOUND, ...), same message.
::grpc::Status ToGrpcStatus(const absl::Status& status);

// "OK", "INVALID_ARGUMENT", ...: the metrics label of a gRPC code.
const char* GrpcCodeName(::grpc::StatusCode code);

}  // namespace dmue::serving

#endif  // SERVING_GRPC_GRPC_SERVER_H_
