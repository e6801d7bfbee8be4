#include "serving/http_rest_api_handler.h"

#include <exception>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "serving/protocol.h"

namespace dmue::serving {
namespace {

using json = nlohmann::json;

HttpReply JsonReply(int status, std::string body, std::string route) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.route = std::move(route);
  return reply;
}

// The first value of header `name` (case-insensitive), or "".
std::string Header(const HttpHeaders& headers, absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

// The value of `key` in an undecoded query ("a=1&b=2"), or "".
std::string QueryValue(absl::string_view query, absl::string_view key) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == key) return std::string(kv.second);
  }
  return "";
}

bool IsTrue(absl::string_view v) {
  const std::string s = absl::AsciiStrToLower(v);
  return s == "1" || s == "true" || s == "yes";
}

std::vector<absl::string_view> Segments(absl::string_view path) {
  return absl::StrSplit(path, '/', absl::SkipEmpty());
}

// The metrics label of /v2/models/<name>[/versions/<v>][/ready | /infer],
// or "" when the path is none of them (`trailing`: more segments follow).
std::string ModelRouteLabel(absl::string_view method, absl::string_view action, bool trailing) {
  const bool get = method == "GET" || method == "HEAD";
  if (trailing) return "";
  if (get && action.empty()) return "/v2/models/metadata";
  if (get && action == "ready") return "/v2/models/ready";
  if (method == "POST" && action == "infer") return "/v2/models/infer";
  return "";
}

absl::Status NotLoaded() { return absl::UnavailableError("the model is not loaded yet"); }

}  // namespace

HttpReply ErrorReply(int status, absl::string_view message) {
  return JsonReply(status, json{{"error", std::string(message)}, {"code", status}}.dump(), "");
}

HttpReply StatusReply(const absl::Status& status) { return ErrorReply(HttpStatusFor(status), status.message()); }

HttpRestApiHandler::HttpRestApiHandler(MetricsRegistry* metrics, std::string index_html)
    : metrics_(metrics), index_html_(std::move(index_html)) {}

bool HttpRestApiHandler::IsInferenceRoute(absl::string_view method, absl::string_view path) {
  return method == "POST" &&
         (path == "/v1/faces" || (absl::StartsWith(path, "/v2/models/") && absl::EndsWith(path, "/infer")));
}

std::string HttpRestApiHandler::RouteLabel(absl::string_view method, absl::string_view path) {
  if (!IsInferenceRoute(method, path)) return "other";
  return path == "/v1/faces" ? "/v1/faces" : "/v2/models/infer";
}

HttpReply HttpRestApiHandler::ProcessRequest(absl::string_view method, absl::string_view path,
                                             absl::string_view query, const HttpHeaders& headers,
                                             absl::string_view body, const FormFiles* form_files) const {
  try {
    return Route(method, path, query, headers, body, form_files);
  } catch (const std::exception& e) {
    // The protocol layer returns statuses; an exception here is a bug, and
    // it must fail this request only, not the process.
    LOG(ERROR) << method << " " << path << ": " << e.what();
    HttpReply reply = StatusReply(absl::InternalError(absl::StrCat("internal error: ", e.what())));
    reply.route = RouteLabel(method, path);
    return reply;
  }
}

HttpReply HttpRestApiHandler::Route(absl::string_view method, absl::string_view path, absl::string_view query,
                                    const HttpHeaders& headers, absl::string_view body,
                                    const FormFiles* form_files) const {
  const bool get = method == "GET" || method == "HEAD";
  if (get && path == "/v2/health/live") return JsonReply(200, json{{"live", true}}.dump(), "/v2/health/live");
  if (get && path == "/v2/health/ready") {
    const bool ready = service_.load() != nullptr;
    return JsonReply(ready ? 200 : 503, json{{"ready", ready}}.dump(), "/v2/health/ready");
  }
  if (get && path == "/v2") return JsonReply(200, ServerMetadataJson(), "/v2");
  if (method == "POST" && path == "/v1/faces") {
    HttpReply reply = Faces(query, headers, body, form_files);
    reply.route = "/v1/faces";
    return reply;
  }
  if (get && path == "/metrics" && metrics_ != nullptr) {
    HttpReply reply = JsonReply(200, metrics_->RenderText(), "");
    reply.content_type = "text/plain; version=0.0.4";
    return reply;
  }
  if (get && path == "/") {
    HttpReply reply = JsonReply(200, index_html_, "/");
    reply.content_type = "text/html; charset=utf-8";
    return reply;
  }
  const std::vector<absl::string_view> segments = Segments(path);
  if (segments.size() >= 3 && segments[0] == "v2" && segments[1] == "models") {
    if (std::optional<HttpReply> reply = ModelRoute(method, segments, body)) return *std::move(reply);
  }
  HttpReply reply = StatusReply(absl::NotFoundError(absl::StrCat("no route for ", method, " ", path)));
  reply.route = "other";
  return reply;
}

std::optional<HttpReply> HttpRestApiHandler::ModelRoute(absl::string_view method,
                                                        const std::vector<absl::string_view>& segments,
                                                        absl::string_view body) const {
  const absl::string_view name = segments[2];
  size_t next = 3;
  absl::string_view version;
  if (segments.size() >= 5 && segments[3] == "versions") {
    version = segments[4];
    next = 5;
  }
  const absl::string_view action = next < segments.size() ? segments[next] : "";
  const std::string route = ModelRouteLabel(method, action, next + 1 < segments.size());
  if (route.empty()) return std::nullopt;
  HttpReply reply = ModelReply(route, name, version, body);
  reply.route = route;
  return reply;
}

HttpReply HttpRestApiHandler::ModelReply(absl::string_view route, absl::string_view name, absl::string_view version,
                                         absl::string_view body) const {
  ExpressionService* service = service_.load();
  if (service == nullptr) return StatusReply(NotLoaded());
  const ModelMetadata& metadata = service->metadata();
  // Name (and version) from the path; an empty name cannot reach here.
  if (absl::Status s = CheckModel(metadata, name, version); !s.ok()) return StatusReply(s);
  if (route == "/v2/models/metadata") return JsonReply(200, ModelMetadataJson(DescribeModel(metadata)), "");
  if (route == "/v2/models/ready") return JsonReply(200, json{{"ready", true}}.dump(), "");

  absl::StatusOr<InferRequest> request = ParseInferJson(body, metadata);
  if (!request.ok()) return StatusReply(request.status());
  request->model_name = std::string(name);
  request->model_version = std::string(version);
  absl::StatusOr<InferResult> result = RunInfer(*service, *std::move(request));
  if (!result.ok()) return StatusReply(result.status());
  return JsonReply(200, InferResultJson(*result, metadata), "");
}

HttpReply HttpRestApiHandler::Faces(absl::string_view query, const HttpHeaders& headers, absl::string_view body,
                                    const FormFiles* form_files) const {
  ExpressionService* service = service_.load();
  if (service == nullptr) return StatusReply(NotLoaded());
  AnalyzeOptions options;
  options.skip_detection = IsTrue(QueryValue(query, "skip_detection"));
  std::string source = "request body";
  absl::string_view bytes = body;
  const std::string type = absl::AsciiStrToLower(Header(headers, "Content-Type"));
  if (absl::StartsWith(type, "multipart/form-data")) {
    const auto file = form_files == nullptr ? FormFiles::const_iterator() : form_files->find("image");
    if (form_files == nullptr || file == form_files->end()) {
      return StatusReply(absl::InvalidArgumentError("multipart upload without an 'image' field"));
    }
    bytes = file->second.content;
    source = absl::StrCat("uploaded file '", file->second.filename, "'");
  } else if (!type.empty() && !absl::StartsWith(type, "image/") &&
             !absl::StartsWith(type, "application/octet-stream")) {
    // HTTP's own refusal: no Status code means "415 Unsupported Media Type".
    return ErrorReply(415, absl::StrCat("unsupported Content-Type '", type,
                                        "': send image/jpeg, image/png, application/octet-stream "
                                        "or multipart/form-data with an 'image' field"));
  }
  absl::StatusOr<TimedAnalysis> analysis = AnalyzeTimed(*service, bytes, options, source);
  if (!analysis.ok()) return StatusReply(analysis.status());
  return JsonReply(200, FacesJson(*analysis, service->metadata()), "");
}

}  // namespace dmue::serving
