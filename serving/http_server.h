// The HTTP front end of the inference server: a thin cpp-httplib adapter.
// Routing, parsing and encoding are HttpRestApiHandler's
// (serving/http_rest_api_handler.h, over serving/protocol.h); this class owns
// the socket, the connection limits, admission and the HTTP metrics.
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
//
// Hostile traffic is bounded before it costs memory or threads (ServerConfig
// has the limits; serving/http_connection.h reads every connection under
// them): a body over max_request_bytes however it is framed (413), headers
// over their count / line / total limits (431; a request line 414), a slow
// client (408), a Content-Encoding (415: the library would inflate it without
// bound), a Transfer-Encoding other than chunked (501), ambiguous framing
// (400); each of these closes the connection. Inference requests beyond
// max_inflight_requests are answered 503 with Retry-After before their body
// is read.
#ifndef SERVING_HTTP_SERVER_H_
#define SERVING_HTTP_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "serving/expression_service.h"
#include "serving/http_rest_api_handler.h"
#include "serving/metrics.h"
#include "serving/protocol.h"
#include "serving/server_config.pb.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace dmue::serving {

class GuardedServer;

class HttpFrontEnd {
 public:
  // `metrics` must outlive the front end; `index_html` is served at "/".
  HttpFrontEnd(const ServerConfig& config, MetricsRegistry* metrics, std::string index_html);
  ~HttpFrontEnd();

  // Requests are answered 503 until a service is set (and after nullptr).
  void SetService(ExpressionService* service) { handler_.SetService(service); }

  // Binds config.host:config.port (port 0: any free port); returns the port.
  absl::StatusOr<int> Bind();
  // Serves on the bound socket until Stop(); returns false on failure.
  bool Serve();
  // Stops accepting; requests being handled finish first.
  void Stop();

 private:
  void Route();
  // Body bound and admission for the inference routes, then the handler.
  HttpReply Dispatch(const httplib::Request& req);
  // The checks a request's headers allow before its body is read: framing,
  // encoding, declared size, overload. True if it wrote a refusal (and
  // marked the connection to close, the body being unread).
  bool RefuseFromHeaders(const httplib::Request& req, httplib::Response& res);
  // Renders the error reply of the connection layer and counts it.
  std::string ConnectionErrorBody(int status, absl::string_view message);

  const ServerConfig config_;
  MetricsRegistry* const metrics_;
  HttpRestApiHandler handler_;
  const int max_inflight_;
  // Inference requests admitted and not yet answered.
  std::atomic<int> inflight_inference_{0};
  std::unique_ptr<GuardedServer> server_;
  Metric* requests_ = nullptr;
  Metric* latency_ = nullptr;
  Metric* inflight_ = nullptr;
};

}  // namespace dmue::serving

#endif  // SERVING_HTTP_SERVER_H_
