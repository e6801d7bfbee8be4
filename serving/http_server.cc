#include "serving/http_server.h"

#include <limits>
#include <optional>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "serving/http_connection.h"
#include "serving/server_config.h"

namespace dmue::serving {
namespace {

// The transport-neutral reply onto httplib's.
void Send(httplib::Response& res, const HttpReply& reply) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
  res.set_content(reply.body, reply.content_type);
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

HttpReply OverloadedReply(int max_inflight, int retry_after_seconds) {
  HttpReply reply = StatusReply(absl::UnavailableError(
      absl::StrCat("server overloaded: ", max_inflight,
                   " inference requests in flight (ServerConfig.max_inflight_requests); retry after ",
                   retry_after_seconds, " s")));
  reply.headers.emplace_back("Retry-After", absl::StrCat(retry_after_seconds));
  return reply;
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

HttpHeaders HeadersOf(const httplib::Request& req) {
  HttpHeaders headers;
  for (const auto& [name, value] : req.headers) headers.emplace_back(name, value);
  return headers;
}

FormFiles FormFilesOf(const httplib::Request& req) {
  FormFiles files;
  for (const auto& [name, file] : req.files) files[name] = FormFile{file.filename, file.content_type, file.content};
  return files;
}

}  // namespace

HttpFrontEnd::HttpFrontEnd(const ServerConfig& config, MetricsRegistry* metrics, std::string index_html)
    : config_(config),
      metrics_(metrics),
      handler_(metrics, std::move(index_html)),
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
  return ErrorReply(status, message).body;
}

bool HttpFrontEnd::RefuseFromHeaders(const httplib::Request& req, httplib::Response& res) {
  if (const std::optional<Refusal> refusal = FramingRefusal(req, config_.max_request_bytes())) {
    Send(res, ErrorReply(refusal->status, refusal->message));
  } else if (HttpRestApiHandler::IsInferenceRoute(req.method, req.path) &&
             inflight_inference_.load() >= max_inflight_) {
    Send(res, OverloadedReply(max_inflight_, config_.retry_after_seconds()));
  } else {
    if (BodyLeftUnread(req)) GuardedServer::CloseAfterReply();
    return false;
  }
  // The body is not read: the connection cannot carry another request.
  res.set_header("Connection", "close");
  GuardedServer::CloseAfterReply();
  requests_->Add(1, {{"route", HttpRestApiHandler::RouteLabel(req.method, req.path)},
                     {"code", absl::StrCat(res.status)}});
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

  // httplib's own refusals (unknown route, bad request line, a request the
  // connection layer cut off) get a JSON body too.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (const Violation violation = GuardedServer::CurrentViolation(); violation != Violation::kNone) {
      // httplib saw only a failed read (400): say what was over the limit.
      const Refusal refusal = server_->RefusalFor(violation);
      res.set_header("Connection", "close");
      Send(res, ErrorReply(refusal.status, refusal.message));
    } else {
      std::string message = res.status == 404   ? absl::StrCat("no route for ", req.method, " ", req.path)
                            : res.status == 413 ? absl::StrCat("request body over the limit of ",
                                                               config_.max_request_bytes(), " bytes")
                                                : absl::StrCat("HTTP ", res.status);
      Send(res, ErrorReply(res.status, message));
    }
    requests_->Add(1, {{"route", "other"}, {"code", absl::StrCat(res.status)}});
  });
  // Every route is the handler's. The inference routes first get the exact
  // body bound (a chunked body may carry up to BodyWireBudget on the wire)
  // and admission, at most max_inflight_ at once (RefuseFromHeaders turns
  // most overload away before the body; this is the exact count).
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    const absl::Time start = absl::Now();
    // A scrape of /metrics does not count itself in flight (nor as a request).
    const int in_flight = req.path == "/metrics" ? 0 : 1;
    inflight_->Add(in_flight);
    HttpReply reply = Dispatch(req);
    inflight_->Add(-in_flight);
    Send(res, reply);
    if (reply.route.empty()) return;
    requests_->Add(1, {{"route", reply.route}, {"code", absl::StrCat(reply.status)}});
    latency_->Observe(absl::ToDoubleSeconds(absl::Now() - start), {{"route", reply.route}});
  };
  s.Get(".*", handle);
  s.Post(".*", handle);
}

HttpReply HttpFrontEnd::Dispatch(const httplib::Request& req) {
  const bool inference = HttpRestApiHandler::IsInferenceRoute(req.method, req.path);
  std::optional<InflightTicket> ticket;
  if (inference) {
    HttpReply refusal;
    if (static_cast<int64_t>(req.body.size()) > config_.max_request_bytes()) {
      refusal = StatusReply(absl::ResourceExhaustedError(
          absl::StrCat("request body over the limit of ", config_.max_request_bytes(), " bytes")));
    } else if (ticket.emplace(&inflight_inference_, max_inflight_); !ticket->admitted()) {
      refusal = OverloadedReply(max_inflight_, config_.retry_after_seconds());
    }
    if (refusal.status != 200) {
      refusal.route = HttpRestApiHandler::RouteLabel(req.method, req.path);
      return refusal;
    }
  }
  const std::string query = absl::StrJoin(req.params, "&", absl::PairFormatter("="));
  const FormFiles files = req.is_multipart_form_data() ? FormFilesOf(req) : FormFiles();
  return handler_.ProcessRequest(req.method, req.path, query, HeadersOf(req), req.body,
                                 req.is_multipart_form_data() ? &files : nullptr);
}

}  // namespace dmue::serving
