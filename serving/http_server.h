// The HTTP front end of the inference server (cpp-httplib).
//
// Open Inference Protocol (KServe v2) routes:
//   GET  /v2/health/live, /v2/health/ready (503 until the model is loaded)
//   GET  /v2, /v2/models/<name>[/versions/<v>], /v2/models/<name>/ready
//   POST /v2/models/<name>[/versions/<v>]/infer with either input
//        "image" (BYTES, base64 of a JPEG/PNG; parameters.skip_detection) ->
//        outputs boxes [F,4], scores [F], landmarks [F,5,2],
//        probabilities [F,C], labels [F]; or
//        "input" (FP32 [N,3,S,S], normalised crops) -> probabilities [N,C].
// Convenience and operations:
//   POST /v1/faces[?skip_detection=true]: raw image body (image/jpeg,
//        image/png, application/octet-stream) or multipart/form-data field
//        "image" -> every face with box, score, landmarks, probability per
//        class and top label (JSON).
//   GET  /metrics (Prometheus text), GET / (the web demo page).
// Every error is a JSON {"error": "...", "code": N} with a 4xx/5xx status.
#ifndef SERVING_HTTP_SERVER_H_
#define SERVING_HTTP_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "serving/expression_service.h"
#include "serving/metrics.h"
#include "serving/server_config.pb.h"

namespace httplib {
class Server;
}

namespace dmue::serving {

// The HTTP status an absl status maps to (InvalidArgument 400,
// ResourceExhausted 413, NotFound 404, Unavailable 503, ...).
int HttpStatusFor(const absl::Status& status);

// The /v1/faces reply for `result`.
std::string FacesJson(const AnalyzeResult& result, const ModelMetadata& metadata);

class HttpFrontEnd {
 public:
  // `metrics` must outlive the front end; `index_html` is served at "/".
  HttpFrontEnd(const ServerConfig& config, MetricsRegistry* metrics, std::string index_html);
  ~HttpFrontEnd();

  // Requests are answered 503 until a service is set (and after nullptr).
  void SetService(ExpressionService* service) { service_.store(service); }

  // Binds config.host:config.port (port 0: any free port); returns the port.
  absl::StatusOr<int> Bind();
  // Serves on the bound socket until Stop(); returns false on failure.
  bool Serve();
  // Stops accepting; requests being handled finish first.
  void Stop();

 private:
  void Route();

  const ServerConfig config_;
  MetricsRegistry* const metrics_;
  const std::string index_html_;
  std::atomic<ExpressionService*> service_{nullptr};
  std::unique_ptr<httplib::Server> server_;
  Metric* requests_ = nullptr;
  Metric* latency_ = nullptr;
  Metric* inflight_ = nullptr;
};

}  // namespace dmue::serving

#endif  // SERVING_HTTP_SERVER_H_
