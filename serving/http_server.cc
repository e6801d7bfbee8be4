#include "serving/http_server.h"

#include <limits>
#include <optional>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "serving/http_connection.h"
#include "serving/server_config.h"

namespace dmue::serving {
namespace {

using json = nlohmann::json;

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, int status, absl::string_view message) {
  SendJson(res, status, json{{"error", std::string(message)}, {"code", status}});
}

void SendStatus(httplib::Response& res, const absl::Status& status) {
  SendError(res, HttpStatusFor(status), status.message());
}

// Counts a request in flight against the admission limit while it lives.
class InflightTicket {
 public:
  InflightTicket(std::atomic<int>* count, int max) : count_(count), admitted_(count->fetch_add(1) < max) {
    if (!admitted_) count_->fetch_sub(1);
  }
  ~InflightTicket() {
    if (admitted_) count_->fetch_sub(1);
  }
  InflightTicket(const InflightTicket&) = delete;
  InflightTicket& operator=(const InflightTicket&) = delete;

  bool admitted() const { return admitted_; }

 private:
  std::atomic<int>* const count_;
  const bool admitted_;
};

void SendOverloaded(httplib::Response& res, int max_inflight, int retry_after_seconds) {
  res.set_header("Retry-After", absl::StrCat(retry_after_seconds));
  SendError(res, 503,
            absl::StrCat("server overloaded: ", max_inflight,
                         " inference requests in flight (ServerConfig.max_inflight_requests); retry after ",
                         retry_after_seconds, " s"));
}

ConnectionLimits LimitsFrom(const ServerConfig& config) {
  ConnectionLimits limits;
  limits.threads = config.http_threads();
  limits.max_body_bytes = config.max_request_bytes();
  limits.max_header_count = config.max_header_count();
  limits.max_header_line_bytes = config.max_header_line_bytes();
  limits.max_header_bytes = config.max_header_bytes();
  limits.read_timeout = absl::Milliseconds(config.read_timeout_ms());
  limits.header_timeout = absl::Milliseconds(config.header_timeout_ms());
  limits.request_timeout = absl::Milliseconds(config.request_timeout_ms());
  limits.write_timeout = absl::Milliseconds(config.write_timeout_ms());
  limits.keep_alive_timeout = absl::Milliseconds(config.keep_alive_timeout_ms());
  limits.keep_alive_max_requests = config.keep_alive_max_requests();
  return limits;
}

// The methods whose body httplib reads (detail::expect_content).
bool IsBodyMethod(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" || method == "PRI";
}

bool IsInferenceRoute(const httplib::Request& req) {
  return req.method == "POST" &&
         (req.path == "/v1/faces" || (absl::StartsWith(req.path, "/v2/models/") && absl::EndsWith(req.path, "/infer")));
}

// The route label of a request refused before routing.
std::string RouteLabel(const httplib::Request& req) {
  if (!IsInferenceRoute(req)) return "other";
  return req.path == "/v1/faces" ? "/v1/faces" : "/v2/models/infer";
}

std::string LowerTrimmed(const std::string& value) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
}

// What the framing and encoding headers allow, before any body byte is
// read; nullopt if the request may proceed. A body httplib would misframe
// (two lengths, a coding it does not decode, a non-number length, which it
// reads as 0) could be read as the next request, so those are refused too.
std::optional<Refusal> FramingRefusal(const httplib::Request& req, int64_t max_body_bytes) {
  if (req.get_header_value_count("Transfer-Encoding") > 1 || req.get_header_value_count("Content-Length") > 1) {
    return Refusal{400, "more than one Transfer-Encoding or Content-Length header"};
  }
  const bool has_length = req.has_header("Content-Length");
  if (req.has_header("Transfer-Encoding")) {
    const std::string coding = LowerTrimmed(req.get_header_value("Transfer-Encoding"));
    if (coding != "chunked") {
      return Refusal{501, absl::StrCat("Transfer-Encoding '", coding,
                                       "' is not supported: send the body chunked or with a Content-Length")};
    }
    if (has_length) return Refusal{400, "both Transfer-Encoding and Content-Length: the body length is ambiguous"};
  }
  uint64_t length = 0;
  if (has_length) {
    const std::string text = req.get_header_value("Content-Length");
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || !absl::SimpleAtoi(text, &length)) {
      return Refusal{400, absl::StrCat("Content-Length '", text, "' is not a byte count")};
    }
    if (length > static_cast<uint64_t>(max_body_bytes)) {
      return Refusal{413, absl::StrCat("request body of ", length, " bytes is over the limit of ", max_body_bytes,
                                       " bytes")};
    }
  }
  const bool has_body = req.has_header("Transfer-Encoding") || length > 0 || (IsBodyMethod(req.method) && !has_length);
  if (has_body && req.has_header("Content-Encoding")) {
    const std::string coding = LowerTrimmed(req.get_header_value("Content-Encoding"));
    if (coding != "identity") {
      // httplib inflates gzip / deflate / br bodies into memory without a
      // bound (the body limit counts the compressed bytes): a 64 KB request
      // can become gigabytes.
      return Refusal{415, absl::StrCat("Content-Encoding '", coding, "' is not supported: send the body uncompressed")};
    }
  }
  return std::nullopt;
}

// httplib reads no body for GET / HEAD / OPTIONS: one sent anyway would be
// parsed as the next request.
bool BodyLeftUnread(const httplib::Request& req) {
  if (IsBodyMethod(req.method)) return false;
  return req.has_header("Transfer-Encoding") || (req.has_header("Content-Length") &&
                                                 req.get_header_value("Content-Length") != "0");
}

bool IsTrue(const std::string& v) {
  const std::string s = absl::AsciiStrToLower(v);
  return s == "1" || s == "true" || s == "yes";
}

json FaceJson(const FaceResult& face, const ModelMetadata& metadata) {
  json probabilities = json::object();
  for (size_t c = 0; c < face.probabilities.size(); ++c) {
    probabilities[metadata.class_names[c]] = face.probabilities[c];
  }
  json landmarks = json::array();
  for (const auto& p : face.landmarks) landmarks.push_back({p[0], p[1]});
  return json{{"box", {face.box[0], face.box[1], face.box[2], face.box[3]}},
              {"score", face.score},
              {"landmarks", landmarks},
              {"probabilities", probabilities},
              {"label", face.top_class >= 0 ? metadata.class_names[face.top_class] : ""},
              {"label_index", face.top_class}};
}

json Tensor(const std::string& name, const std::string& datatype, std::vector<int64_t> shape, json data) {
  return json{{"name", name}, {"datatype", datatype}, {"shape", std::move(shape)}, {"data", std::move(data)}};
}

// Deeper JSON is refused while parsing: nothing deeper is ever built, so no
// walk over a request (flattening, printing, destruction) can exhaust the
// stack. OIP requests nest 5 levels (body, inputs, tensor, data rows).
constexpr int kMaxJsonDepth = 32;

struct JsonTooDeep {};

// Parses a request body; nullopt (and the reason) for malformed or too deep.
std::optional<json> ParseRequestJson(const std::string& text, std::string* why) {
  try {
    json value = json::parse(
        text,
        [](int depth, json::parse_event_t, json&) {
          if (depth > kMaxJsonDepth) throw JsonTooDeep{};
          return true;
        },
        /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      *why = "request body is not valid JSON";
      return std::nullopt;
    }
    return value;
  } catch (const JsonTooDeep&) {
    *why = absl::StrCat("request body nests deeper than ", kMaxJsonDepth, " levels");
    return std::nullopt;
  }
}

// Flattens nested JSON arrays of numbers (OIP allows both layouts); the depth
// is bounded by kMaxJsonDepth.
bool FlattenNumbers(const json& value, std::vector<float>* out) {
  if (value.is_number()) {
    out->push_back(value.get<float>());
    return true;
  }
  if (!value.is_array()) return false;
  for (const json& v : value) {
    if (!FlattenNumbers(v, out)) return false;
  }
  return true;
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string FacesJson(const AnalyzeResult& result, const ModelMetadata& metadata) {
  json faces = json::array();
  for (const FaceResult& face : result.faces) faces.push_back(FaceJson(face, metadata));
  return json{{"model", metadata.name},
              {"width", result.width},
              {"height", result.height},
              {"classes", metadata.class_names},
              {"faces", faces},
              {"faces_dropped", result.faces_dropped},
              {"timing_ms",
               {{"decode", result.decode_ms},
                {"detect", result.detect_ms},
                {"classify", result.classify_ms},
                {"total", result.decode_ms + result.detect_ms + result.classify_ms}}}}
      .dump();
}

HttpFrontEnd::HttpFrontEnd(const ServerConfig& config, MetricsRegistry* metrics, std::string index_html)
    : config_(config),
      metrics_(metrics),
      index_html_(std::move(index_html)),
      max_inflight_(MaxInflightRequests(config)),
      server_(std::make_unique<GuardedServer>(LimitsFrom(config), [this](int status, absl::string_view message) {
        return ConnectionErrorBody(status, message);
      })) {
  requests_ = metrics_->AddCounter("dmue_http_requests_total", "HTTP requests by route and status code.");
  latency_ = metrics_->AddHistogram("dmue_http_request_duration_seconds", "HTTP request latency by route.",
                                    ExponentialBuckets(0.001, 2, 15));
  inflight_ = metrics_->AddGauge("dmue_http_requests_in_flight", "HTTP requests being handled.");
  Route();
}

HttpFrontEnd::~HttpFrontEnd() { Stop(); }

absl::StatusOr<int> HttpFrontEnd::Bind() {
  const int port = config_.port() == 0 ? server_->bind_to_any_port(config_.host())
                                       : (server_->bind_to_port(config_.host(), config_.port()) ? config_.port() : -1);
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.host(), ":", config_.port()));
  }
  return port;
}

bool HttpFrontEnd::Serve() { return server_->listen_after_bind(); }

void HttpFrontEnd::Stop() {
  if (server_ && server_->is_running()) server_->stop();
}

std::string HttpFrontEnd::ConnectionErrorBody(int status, absl::string_view message) {
  requests_->Add(1, {{"route", "other"}, {"code", absl::StrCat(status)}});
  return json{{"error", std::string(message)}, {"code", status}}.dump();
}

bool HttpFrontEnd::RefuseFromHeaders(const httplib::Request& req, httplib::Response& res) {
  if (const std::optional<Refusal> refusal = FramingRefusal(req, config_.max_request_bytes())) {
    SendError(res, refusal->status, refusal->message);
  } else if (IsInferenceRoute(req) && inflight_inference_.load() >= max_inflight_) {
    SendOverloaded(res, max_inflight_, config_.retry_after_seconds());
  } else {
    if (BodyLeftUnread(req)) GuardedServer::CloseAfterReply();
    return false;
  }
  // The body is not read: the connection cannot carry another request.
  res.set_header("Connection", "close");
  GuardedServer::CloseAfterReply();
  requests_->Add(1, {{"route", RouteLabel(req)}, {"code", absl::StrCat(res.status)}});
  return true;
}

void HttpFrontEnd::Route() {
  httplib::Server& s = *server_;
  // Responses go out as header + body writes; without NODELAY Nagle's
  // algorithm holds the body for the client's delayed ACK (~40 ms).
  s.set_tcp_nodelay(true);
  // Framing, encoding, size and overload are decided from the headers, so a
  // refused body is never read (and for Expect: 100-continue, never sent).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return RefuseFromHeaders(req, res) ? httplib::Server::HandlerResponse::Handled
                                       : httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    return RefuseFromHeaders(req, res) ? res.status : 100;
  });

  // Counts a request and its latency under `route`.
  auto wrap = [this](std::string route, std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return [this, route = std::move(route), fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
      const absl::Time start = absl::Now();
      inflight_->Add(1);
      try {
        fn(req, res);
      } catch (const json::exception& e) {
        // A field of the wrong type (a number where a string belongs): the
        // client's mistake, not the server's.
        SendError(res, 400, absl::StrCat("malformed request: ", e.what()));
      } catch (const std::exception& e) {
        LOG(ERROR) << route << ": " << e.what();
        SendError(res, 500, absl::StrCat("internal error: ", e.what()));
      }
      inflight_->Add(-1);
      if (res.status == -1) res.status = 200;
      requests_->Add(1, {{"route", route}, {"code", absl::StrCat(res.status)}});
      latency_->Observe(absl::ToDoubleSeconds(absl::Now() - start), {{"route", route}});
    };
  };
  // httplib's own refusals (unknown route, bad request line, a request the
  // connection layer cut off) get a JSON body too.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (const Violation violation = GuardedServer::CurrentViolation(); violation != Violation::kNone) {
      // httplib saw only a failed read (400): say what was over the limit.
      const Refusal refusal = server_->RefusalFor(violation);
      res.set_header("Connection", "close");
      SendError(res, refusal.status, refusal.message);
    } else {
      std::string message = res.status == 404   ? absl::StrCat("no route for ", req.method, " ", req.path)
                            : res.status == 413 ? absl::StrCat("request body over the limit of ",
                                                               config_.max_request_bytes(), " bytes")
                                                : absl::StrCat("HTTP ", res.status);
      SendError(res, res.status, message);
    }
    requests_->Add(1, {{"route", "other"}, {"code", absl::StrCat(res.status)}});
  });
  // The inference routes: the exact body bound (a chunked body may carry up
  // to BodyWireBudget on the wire) and admission, at most max_inflight_ at
  // once (RefuseFromHeaders turns most overload away before the body; this
  // is the exact count).
  auto inference = [this, wrap](std::string route,
                                std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return wrap(std::move(route), [this, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
      if (static_cast<int64_t>(req.body.size()) > config_.max_request_bytes()) {
        return SendError(res, 413, absl::StrCat("request body over the limit of ", config_.max_request_bytes(),
                                                " bytes"));
      }
      InflightTicket ticket(&inflight_inference_, max_inflight_);
      if (!ticket.admitted()) return SendOverloaded(res, max_inflight_, config_.retry_after_seconds());
      fn(req, res);
    });
  };

  s.Get("/v2/health/live", wrap("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
          SendJson(res, 200, json{{"live", true}});
        }));
  s.Get("/v2/health/ready", wrap("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
          const bool ready = service_.load() != nullptr;
          SendJson(res, ready ? 200 : 503, json{{"ready", ready}});
        }));
  s.Get("/v2", wrap("/v2", [](const httplib::Request&, httplib::Response& res) {
          SendJson(res, 200, json{{"name", "dmue-server"}, {"version", "1"}, {"extensions", json::array()}});
        }));

  // The model routes check the name (and version) against the served model.
  auto model_of = [this](const httplib::Request& req, httplib::Response& res) -> ExpressionService* {
    ExpressionService* service = service_.load();
    if (service == nullptr) {
      SendError(res, 503, "the model is not loaded yet");
      return nullptr;
    }
    const ModelMetadata& m = service->metadata();
    if (req.matches[1] != m.name) {
      SendError(res, 404, absl::StrCat("unknown model '", std::string(req.matches[1]), "' (serving '", m.name, "')"));
      return nullptr;
    }
    if (req.matches.size() > 2 && req.matches[2].matched && req.matches[2] != m.version) {
      SendError(res, 404, absl::StrCat("unknown version '", std::string(req.matches[2]), "' of model '", m.name,
                                       "' (serving '", m.version, "')"));
      return nullptr;
    }
    return service;
  };
  const std::string model_path = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
  s.Get(model_path, wrap("/v2/models/metadata", [model_of](const httplib::Request& req, httplib::Response& res) {
          ExpressionService* service = model_of(req, res);
          if (service == nullptr) return;
          const ModelMetadata& m = service->metadata();
          const int64_t S = m.input_size;
          SendJson(res, 200,
                   json{{"name", m.name},
                        {"versions", {m.version}},
                        {"platform", m.platform},
                        {"inputs",
                         {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                          {{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, 3, S, S}}}}},
                        {"outputs",
                         {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, (int64_t)m.class_names.size()}}},
                          {{"name", "boxes"}, {"datatype", "FP32"}, {"shape", {-1, 4}}},
                          {{"name", "scores"}, {"datatype", "FP32"}, {"shape", {-1}}},
                          {{"name", "landmarks"}, {"datatype", "FP32"}, {"shape", {-1, 5, 2}}},
                          {{"name", "labels"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
                        {"parameters", {{"classes", m.class_names}}}});
        }));
  s.Get(model_path + "/ready", wrap("/v2/models/ready", [model_of](const httplib::Request& req, httplib::Response& res) {
          if (model_of(req, res) != nullptr) SendJson(res, 200, json{{"ready", true}});
        }));
  s.Post(model_path + "/infer", inference("/v2/models/infer", [model_of](const httplib::Request& req, httplib::Response& res) {
           ExpressionService* service = model_of(req, res);
           if (service == nullptr) return;
           std::string why;
           const std::optional<json> parsed = ParseRequestJson(req.body, &why);
           if (!parsed.has_value()) return SendError(res, 400, why);
           const json& body = *parsed;
           if (!body.is_object()) return SendError(res, 400, "request body is not a JSON object");
           if (!body.contains("inputs") || !body["inputs"].is_array() || body["inputs"].size() != 1 ||
               !body["inputs"][0].is_object()) {
             return SendError(res, 400, "'inputs' must be an array with one tensor ('image' or 'input')");
           }
           const json& input = body["inputs"][0];
           const std::string name = input.value("name", "");
           const std::string datatype = input.value("datatype", "");
           const ModelMetadata& m = service->metadata();
           const int64_t C = static_cast<int64_t>(m.class_names.size());
           json reply{{"model_name", m.name}, {"model_version", m.version}};
           if (body.contains("id")) reply["id"] = body["id"];
           if (name == "image") {
             if (datatype != "BYTES" || !input.contains("data") || !input["data"].is_array() ||
                 input["data"].size() != 1 || !input["data"][0].is_string()) {
               return SendError(res, 400, "input 'image' must be BYTES with one base64 string in 'data'");
             }
             std::string bytes;
             if (!absl::Base64Unescape(input["data"][0].get<std::string>(), &bytes)) {
               return SendError(res, 400, "input 'image': data is not valid base64");
             }
             AnalyzeOptions options;
             if (input.contains("parameters") && input["parameters"].is_object()) {
               options.skip_detection = input["parameters"].value("skip_detection", false);
             }
             absl::StatusOr<AnalyzeResult> result = service->Analyze(bytes, options, "input 'image'");
             if (!result.ok()) return SendStatus(res, result.status());
             const int64_t F = static_cast<int64_t>(result->faces.size());
             json boxes = json::array(), scores = json::array(), landmarks = json::array(),
                  probabilities = json::array(), labels = json::array();
             for (const FaceResult& f : result->faces) {
               for (float v : f.box) boxes.push_back(v);
               scores.push_back(f.score);
               for (const auto& p : f.landmarks) landmarks.push_back(p[0]), landmarks.push_back(p[1]);
               for (float p : f.probabilities) probabilities.push_back(p);
               labels.push_back(m.class_names[f.top_class]);
             }
             reply["outputs"] = {Tensor("boxes", "FP32", {F, 4}, boxes), Tensor("scores", "FP32", {F}, scores),
                                 Tensor("landmarks", "FP32", {F, 5, 2}, landmarks),
                                 Tensor("probabilities", "FP32", {F, C}, probabilities),
                                 Tensor("labels", "BYTES", {F}, labels)};
             return SendJson(res, 200, reply);
           }
           if (name == "input") {
             const int64_t S = m.input_size;
             if (datatype != "FP32") return SendError(res, 400, "input 'input' must be FP32");
             const json shape = input.value("shape", json::array());
             if (!shape.is_array() || shape.size() != 4 || !shape[0].is_number_integer() || shape[0].get<int64_t>() <= 0 ||
                 shape[1] != 3 || shape[2] != S || shape[3] != S) {
               return SendError(res, 400, absl::StrCat("input 'input': shape must be [N, 3, ", S, ", ", S, "], got ",
                                                       shape.dump()));
             }
             std::vector<float> data;
             if (!input.contains("data") || !FlattenNumbers(input["data"], &data)) {
               return SendError(res, 400, "input 'input': 'data' must be numbers");
             }
             // In int64: a batch of 2^31 must not wrap to a small int.
             const int64_t n = shape[0].get<int64_t>();
             if (n > std::numeric_limits<int>::max() || n * 3 * S * S != static_cast<int64_t>(data.size())) {
               return SendError(res, 400, absl::StrCat("input 'input': shape ", shape.dump(), " needs ", n, " x 3 x ", S,
                                                       " x ", S, " values, 'data' has ", data.size()));
             }
             absl::StatusOr<std::vector<float>> probabilities = service->ClassifyTensors(data, static_cast<int>(n));
             if (!probabilities.ok()) return SendStatus(res, probabilities.status());
             reply["outputs"] = {Tensor("probabilities", "FP32", {n, C}, *probabilities)};
             return SendJson(res, 200, reply);
           }
           SendError(res, 400, absl::StrCat("unknown input '", name, "' (expected 'image' or 'input')"));
         }));

  s.Post("/v1/faces", inference("/v1/faces", [this](const httplib::Request& req, httplib::Response& res) {
           ExpressionService* service = service_.load();
           if (service == nullptr) return SendError(res, 503, "the model is not loaded yet");
           AnalyzeOptions options;
           options.skip_detection = req.has_param("skip_detection") && IsTrue(req.get_param_value("skip_detection"));
           std::string source = "request body";
           std::string uploaded;
           const std::string* bytes = &req.body;
           if (req.is_multipart_form_data()) {
             if (!req.has_file("image")) {
               return SendError(res, 400, "multipart upload without an 'image' field");
             }
             const httplib::MultipartFormData file = req.get_file_value("image");
             uploaded = file.content;
             bytes = &uploaded;
             source = absl::StrCat("uploaded file '", file.filename, "'");
           } else {
             const std::string type = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
             if (!type.empty() && !absl::StartsWith(type, "image/") && !absl::StartsWith(type, "application/octet-stream")) {
               return SendError(res, 415, absl::StrCat("unsupported Content-Type '", type,
                                                       "': send image/jpeg, image/png, application/octet-stream "
                                                       "or multipart/form-data with an 'image' field"));
             }
           }
           absl::StatusOr<AnalyzeResult> result = service->Analyze(*bytes, options, source);
           if (!result.ok()) return SendStatus(res, result.status());
           res.status = 200;
           res.set_content(FacesJson(*result, service->metadata()), "application/json");
         }));

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->RenderText(), "text/plain; version=0.0.4");
  });
  s.Get("/", wrap("/", [this](const httplib::Request&, httplib::Response& res) {
          res.set_content(index_html_, "text/html; charset=utf-8");
        }));
}

}  // namespace dmue::serving
