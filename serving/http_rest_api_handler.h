// The HTTP routes of the inference server as one function of the request,
// without sockets (in the style of TensorFlow Serving's HttpRestApiHandler):
//
//   HttpRestApiHandler handler(config, index_html);
//   handler.SetService(service);
//   HttpReply reply = handler.ProcessRequest("POST", "/v1/faces", "skip_detection=true", headers, body);
//
// Routes (serving/README.md has the JSON):
//   GET  /v2/health/live, /v2/health/ready (503 until a service is set)
//   GET  /v2, /v2/models/<name>[/versions/<v>], .../ready
//   POST /v2/models/<name>[/versions/<v>]/infer   (Open Inference Protocol)
//   POST /v1/faces[?skip_detection=true]           (raw image or multipart)
//   GET  /metrics (when a registry is given), GET / (the web page)
// Parsing, validation and encoding are serving/protocol.h's; errors are JSON
// {"error": "...", "code": N}, every one made from an absl::Status mapped by
// HttpStatusFor except 415 (a Content-Type /v1/faces does not take: HTTP's
// own). Connection limits and admission are the transport's
// (serving/http_server.h).
#ifndef SERVING_HTTP_REST_API_HANDLER_H_
#define SERVING_HTTP_REST_API_HANDLER_H_

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "serving/expression_service.h"
#include "serving/metrics.h"
#include "serving/server_config.pb.h"

namespace dmue::serving {

// Request headers as received (names compared case-insensitively).
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// A file of a multipart/form-data body, parsed by the transport.
struct FormFile {
  std::string filename, content_type, content;
};
using FormFiles = std::map<std::string, FormFile>;

struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  // The metrics label of the route that answered ("/v1/faces",
  // "/v2/models/infer", ..., "other" for no route; empty: not counted).
  std::string route;
};

// The JSON error reply {"error": message, "code": status}.
HttpReply ErrorReply(int status, absl::string_view message);
// The reply for a failed status (HttpStatusFor picks the code).
HttpReply StatusReply(const absl::Status& status);

class HttpRestApiHandler {
 public:
  // `metrics` (may be null: no /metrics route) must outlive the handler;
  // `index_html` is served at "/".
  HttpRestApiHandler(MetricsRegistry* metrics, std::string index_html);

  // Inference and model routes answer 503 until a service is set (and after
  // nullptr). The service must outlive its use.
  void SetService(ExpressionService* service) { service_.store(service); }

  // `query` is the part after '?' (not decoded: "skip_detection=true");
  // `form_files` the parts of a multipart/form-data body when the transport
  // parsed them (nullptr otherwise). Never throws.
  HttpReply ProcessRequest(absl::string_view method, absl::string_view path, absl::string_view query,
                           const HttpHeaders& headers, absl::string_view body,
                           const FormFiles* form_files = nullptr) const;

  // "/v1/faces" and "/v2/models/<...>/infer" by POST: the routes the
  // transport admits under max_inflight_requests.
  static bool IsInferenceRoute(absl::string_view method, absl::string_view path);
  // The metrics label of a request answered before routing: its inference
  // route, or "other".
  static std::string RouteLabel(absl::string_view method, absl::string_view path);

 private:
  HttpReply Route(absl::string_view method, absl::string_view path, absl::string_view query,
                  const HttpHeaders& headers, absl::string_view body, const FormFiles* form_files) const;
  // The /v2/models/... routes; nullopt for a path that is none of them.
  std::optional<HttpReply> ModelRoute(absl::string_view method, const std::vector<absl::string_view>& segments,
                                      absl::string_view body) const;
  HttpReply ModelReply(absl::string_view route, absl::string_view name, absl::string_view version,
                       absl::string_view body) const;
  HttpReply Faces(absl::string_view query, const HttpHeaders& headers, absl::string_view body,
                  const FormFiles* form_files) const;

  MetricsRegistry* const metrics_;
  const std::string index_html_;
  std::atomic<ExpressionService*> service_{nullptr};
};

}  // namespace dmue::serving

#endif  // SERVING_HTTP_REST_API_HANDLER_H_
