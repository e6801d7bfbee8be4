// A cpp-httplib server whose connections are read under limits.
//
// Debian bookworm's cpp-httplib 0.11.4 is a compiled library, so its
// compile-time limits (CPPHTTPLIB_HEADER_MAX_LENGTH, ...) cannot be changed
// from here, and it buffers without bound: a header line until its '\n', any
// number of header lines, a chunked body or one without Content-Length until
// its end (set_payload_max_length only checks a declared Content-Length), and
// it waits for a slow client for as long as each byte comes within the read
// timeout. GuardedServer therefore serves every connection itself through its
// own Stream, which counts the bytes of each request as the parser takes them
// and cuts the request off when a limit is crossed:
//   - request line / header line length, header count, header bytes in all;
//   - body bytes after the headers (however the body is framed);
//   - silence, the time to the end of the headers (from the accept, so time
//     spent waiting for a thread counts) and the time for the whole request.
// A cut-off request gets its refusal (RefusalFor) and the connection is
// closed. Idle keep-alive connections give their thread up after the
// keep-alive timeout, or at once when another connection waits for one.
#ifndef SERVING_HTTP_CONNECTION_H_
#define SERVING_HTTP_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <string>

#include <httplib.h>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace dmue::serving {

struct ConnectionLimits {
  int threads = 8;  // connections served at once
  int64_t max_body_bytes = 20 << 20;
  int max_header_count = 100;  // header lines, not counting the request line
  int max_header_line_bytes = 8192;
  int max_header_bytes = 64 << 10;
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Seconds(5);
  absl::Duration keep_alive_timeout = absl::Seconds(2);
  int keep_alive_max_requests = 100;
};

// Bytes a body may take on the wire beyond max_body_bytes: chunk framing (a
// size line and a CRLF per chunk) is not payload. 1/16 covers chunks of 256
// bytes and more.
int64_t BodyWireBudget(int64_t max_body_bytes);

// Why a request was cut off while it was being received.
enum class Violation {
  kNone,
  kRequestLineTooLong,
  kHeaderLineTooLong,
  kTooManyHeaders,
  kHeadersTooLarge,
  kBodyTooLarge,
  kReadTimeout,
  kHeaderTimeout,
  kRequestTimeout,
};

struct Refusal {
  int status = 0;
  std::string message;
};

class GuardedServer : public httplib::Server {
 public:
  // The body of a reply the server writes itself (a request line cut off
  // before httplib could answer); the front end renders it as its errors.
  using ErrorBody = std::function<std::string(int status, absl::string_view message)>;

  GuardedServer(ConnectionLimits limits, ErrorBody error_body);

  const ConnectionLimits& limits() const { return limits_; }

  // The reply to a request cut off for `violation`.
  Refusal RefusalFor(Violation violation) const;

  // For handlers, on the thread handling the request: why the current
  // request was cut off (kNone if it was not).
  static Violation CurrentViolation();
  // For handlers: close the connection after this reply, because the
  // request's body is left unread (a refusal from its headers alone).
  static void CloseAfterReply();

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Writes the refusal of a request cut off in its request line, which
  // httplib drops without a reply.
  void WriteBareRefusal(httplib::Stream& stream, Violation violation) const;
  bool Listening() const;

  const ConnectionLimits limits_;
  const ErrorBody error_body_;
};

}  // namespace dmue::serving

#endif  // SERVING_HTTP_CONNECTION_H_
