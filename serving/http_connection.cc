#include "serving/http_connection.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace dmue::serving {
namespace {

// After a refusal that leaves input unread, the client's bytes are read and
// dropped for a little while before the close: closing a socket with unread
// input answers with a TCP reset, which can destroy the reply in flight.
constexpr absl::Duration kLingerTime = absl::Milliseconds(500);
constexpr size_t kLingerBytes = 4 << 20;

// poll() milliseconds until `deadline` (rounded up, >= 0).
int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
                                            std::numeric_limits<int>::max()));
}

// Waits until `sock` has `events` or `deadline`: >0 ready, 0 timed out, <0 error.
int PollUntil(int sock, short events, absl::Time deadline) {
  while (true) {
    pollfd p{sock, events, 0};
    const int r = ::poll(&p, 1, MillisUntil(deadline));
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

void AddressOf(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  const int r = peer ? ::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len)
                     : ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[NI_MAXHOST], service[NI_MAXSERV];
  if (r != 0 || ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host), service, sizeof(service),
                              NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return;
  }
  ip = host;
  port = std::atoi(service);
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Bad Request";
  }
}

// The HTTP thread pool. Unlike httplib::ThreadPool it knows how many
// accepted connections wait for a thread (idle keep-alive connections give
// theirs up then) and when each was accepted (its header deadline counts
// from then).
class ConnectionPool final : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~ConnectionPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    absl::MutexLock lock(&mutex_);
    tasks_.push_back({std::move(fn), absl::Now()});
    waiting_.store(static_cast<int>(tasks_.size()), std::memory_order_relaxed);
  }

  // Runs what is queued, then ends the threads.
  void shutdown() override {
    {
      absl::MutexLock lock(&mutex_);
      stopping_ = true;
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  int waiting() const { return waiting_.load(std::memory_order_relaxed); }

  // On a pool thread: the pool, and when the running task was enqueued.
  static const ConnectionPool* Current() { return current_; }
  static absl::Time CurrentTaskEnqueued() { return current_enqueued_; }

 private:
  struct Task {
    std::function<void()> fn;
    absl::Time enqueued;
  };

  void Work() {
    current_ = this;
    while (true) {
      Task task;
      {
        absl::MutexLock lock(&mutex_);
        mutex_.Await(absl::Condition(this, &ConnectionPool::HasWorkOrStopping));
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
        waiting_.store(static_cast<int>(tasks_.size()), std::memory_order_relaxed);
      }
      current_enqueued_ = task.enqueued;
      task.fn();
    }
  }

  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_ || !tasks_.empty(); }

  absl::Mutex mutex_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::atomic<int> waiting_{0};
  std::vector<std::thread> threads_;

  static thread_local const ConnectionPool* current_;
  static thread_local absl::Time current_enqueued_;
};

thread_local const ConnectionPool* ConnectionPool::current_ = nullptr;
thread_local absl::Time ConnectionPool::current_enqueued_;

// One connection's socket as httplib reads and writes it, with the limits
// applied to each request's bytes as the parser takes them. Reads are
// buffered; each request's accounting starts at BeginRequest, so bytes of a
// pipelined next request are not charged to this one.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int sock, const ConnectionLimits& limits)
      : sock_(sock), limits_(limits), body_budget_(BodyWireBudget(limits.max_body_bytes)) {}

  void BeginRequest(absl::Time header_deadline, absl::Time request_deadline) {
    header_deadline_ = header_deadline;
    request_deadline_ = request_deadline;
    in_headers_ = true;
    header_bytes_ = line_bytes_ = header_lines_ = 0;
    body_bytes_ = 0;
    previous_ = 0;
  }

  // Waits for the first byte of a next request: false when none comes by
  // `deadline` or `give_up()` says to stop waiting (checked every 50 ms).
  bool AwaitNextRequest(absl::Time deadline, const std::function<bool()>& give_up) {
    if (pos_ < end_) return true;
    while (absl::Now() < deadline) {
      const int r = PollUntil(sock_, POLLIN, std::min(deadline, absl::Now() + absl::Milliseconds(50)));
      if (r != 0) return r > 0;
      if (give_up()) return false;
    }
    return false;
  }

  Violation violation() const { return violation_; }
  // The violation happened before the request line was complete.
  bool violated_in_request_line() const { return violation_line_ == 0; }
  // No byte of the current request had arrived.
  bool request_empty() const { return header_bytes_ == 0; }

  bool is_readable() const override {
    return pos_ < end_ || PollUntil(sock_, POLLIN, absl::Now() + limits_.read_timeout) > 0;
  }
  bool is_writable() const override { return PollUntil(sock_, POLLOUT, absl::Now() + limits_.write_timeout) > 0; }

  ssize_t read(char* ptr, size_t size) override {
    if (violation_ != Violation::kNone) return -1;
    if (pos_ == end_) {
      const ssize_t got = Fill();
      if (got <= 0) return got;
    }
    const size_t n = std::min(size, end_ - pos_);
    if (!Charge(buffer_ + pos_, n)) return -1;
    std::copy(buffer_ + pos_, buffer_ + pos_ + n, ptr);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  // All of `size` bytes or -1: a client that does not take them within the
  // write timeout is given up.
  ssize_t write(const char* ptr, size_t size) override {
    const absl::Time deadline = absl::Now() + limits_.write_timeout;
    size_t sent = 0;
    while (sent < size) {
      if (PollUntil(sock_, POLLOUT, deadline) <= 0) return -1;
      const ssize_t n = ::send(sock_, ptr + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n < 0) return -1;
      sent += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { AddressOf(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { AddressOf(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  // Receives into the empty buffer: >0 bytes, 0 at the end of the stream, -1
  // on error or when a time limit passed (then violation_ says which).
  ssize_t Fill() {
    pos_ = end_ = 0;
    const absl::Time phase_deadline = in_headers_ ? std::min(header_deadline_, request_deadline_) : request_deadline_;
    const absl::Time silence_deadline = absl::Now() + limits_.read_timeout;
    while (true) {
      const int r = PollUntil(sock_, POLLIN, std::min(phase_deadline, silence_deadline));
      if (r < 0) return -1;
      if (r == 0) {
        Violate(silence_deadline < phase_deadline ? Violation::kReadTimeout
                : in_headers_                     ? Violation::kHeaderTimeout
                                                  : Violation::kRequestTimeout);
        return -1;
      }
      const ssize_t n = ::recv(sock_, buffer_, sizeof(buffer_), MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n > 0) end_ = static_cast<size_t>(n);
      return n;
    }
  }

  // Counts `n` bytes handed to the parser against the limits.
  bool Charge(const char* p, size_t n) {
    size_t i = 0;
    while (in_headers_ && i < n) {
      if (!ChargeHeaderByte(p[i++])) return false;
    }
    body_bytes_ += static_cast<int64_t>(n - i);
    if (body_bytes_ > body_budget_) return Violate(Violation::kBodyTooLarge);
    return true;
  }

  // The header section ends at its first empty line ("\r\n", as httplib
  // reads it) after the request line.
  bool ChargeHeaderByte(char c) {
    ++header_bytes_;
    ++line_bytes_;
    const bool request_line = header_lines_ == 0;
    if (line_bytes_ > limits_.max_header_line_bytes) {
      return Violate(request_line ? Violation::kRequestLineTooLong : Violation::kHeaderLineTooLong);
    }
    if (header_bytes_ > limits_.max_header_bytes) return Violate(Violation::kHeadersTooLarge);
    if (c != '\n') {
      previous_ = c;
      return true;
    }
    const bool empty_line = line_bytes_ == 2 && previous_ == '\r';
    line_bytes_ = 0;
    previous_ = 0;
    if (empty_line && !request_line) {
      in_headers_ = false;
      return true;
    }
    if (++header_lines_ > limits_.max_header_count + 1) return Violate(Violation::kTooManyHeaders);
    return true;
  }

  bool Violate(Violation v) {
    violation_ = v;
    violation_line_ = header_lines_;
    return false;
  }

  const int sock_;
  const ConnectionLimits& limits_;
  const int64_t body_budget_;
  char buffer_[16 << 10];
  size_t pos_ = 0, end_ = 0;

  absl::Time header_deadline_ = absl::InfiniteFuture();
  absl::Time request_deadline_ = absl::InfiniteFuture();
  bool in_headers_ = true;
  int header_bytes_ = 0, line_bytes_ = 0, header_lines_ = 0;
  char previous_ = 0;
  int64_t body_bytes_ = 0;
  Violation violation_ = Violation::kNone;
  int violation_line_ = -1;
};

// The connection being served on this thread and whether a handler asked
// for it to be closed after the reply.
struct CurrentConnection {
  ConnectionStream* stream = nullptr;
  bool close_after_reply = false;
};
thread_local CurrentConnection current_connection;

class ScopedCurrentConnection {
 public:
  explicit ScopedCurrentConnection(ConnectionStream* stream) { current_connection = {stream, false}; }
  ~ScopedCurrentConnection() { current_connection = {}; }
};

// Closes `sock`; with `linger`, first drains what the client still sends for
// a bounded time and byte count (see kLingerTime).
void CloseSocket(int sock, bool linger) {
  if (linger) {
    ::shutdown(sock, SHUT_WR);
    const absl::Time deadline = absl::Now() + kLingerTime;
    char sink[16 << 10];
    size_t drained = 0;
    while (drained < kLingerBytes && PollUntil(sock, POLLIN, deadline) > 0) {
      const ssize_t n = ::recv(sock, sink, sizeof(sink), MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

}  // namespace

int64_t BodyWireBudget(int64_t max_body_bytes) {
  return max_body_bytes + std::max<int64_t>(64 << 10, max_body_bytes / 16);
}

GuardedServer::GuardedServer(ConnectionLimits limits, ErrorBody error_body)
    : limits_(limits), error_body_(std::move(error_body)) {
  const int threads = limits_.threads;
  new_task_queue = [threads] { return new ConnectionPool(threads); };
  // Only consulted by httplib for its own Keep-Alive reply header, and for
  // the socket timeouts it sets on accept (the stream polls with its own).
  const auto whole_seconds = [](absl::Duration d) {
    return static_cast<time_t>(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))));
  };
  set_keep_alive_timeout(whole_seconds(limits_.keep_alive_timeout));
  set_keep_alive_max_count(static_cast<size_t>(limits_.keep_alive_max_requests));
  set_read_timeout(whole_seconds(limits_.read_timeout));
  set_write_timeout(whole_seconds(limits_.write_timeout));
  // A declared Content-Length over the limit is refused by the front end
  // from the headers; this is the library's own check behind it.
  set_payload_max_length(static_cast<size_t>(limits_.max_body_bytes));
}

Refusal GuardedServer::RefusalFor(Violation violation) const {
  switch (violation) {
    case Violation::kNone:
      return {200, ""};
    case Violation::kRequestLineTooLong:
      return {414, absl::StrCat("request line longer than ", limits_.max_header_line_bytes, " bytes")};
    case Violation::kHeaderLineTooLong:
      return {431, absl::StrCat("header line longer than ", limits_.max_header_line_bytes, " bytes")};
    case Violation::kTooManyHeaders:
      return {431, absl::StrCat("more than ", limits_.max_header_count, " header lines")};
    case Violation::kHeadersTooLarge:
      return {431, absl::StrCat("request headers larger than ", limits_.max_header_bytes, " bytes in all")};
    case Violation::kBodyTooLarge:
      return {413, absl::StrCat("request body over the limit of ", limits_.max_body_bytes, " bytes")};
    case Violation::kReadTimeout:
      return {408, absl::StrCat("no request data for ", absl::FormatDuration(limits_.read_timeout))};
    case Violation::kHeaderTimeout:
      return {408, absl::StrCat("request headers not complete within ", absl::FormatDuration(limits_.header_timeout))};
    case Violation::kRequestTimeout:
      return {408, absl::StrCat("request not complete within ", absl::FormatDuration(limits_.request_timeout))};
  }
  return {400, "bad request"};
}

Violation GuardedServer::CurrentViolation() {
  return current_connection.stream == nullptr ? Violation::kNone : current_connection.stream->violation();
}

void GuardedServer::CloseAfterReply() { current_connection.close_after_reply = true; }

bool GuardedServer::Listening() const { return svr_sock_ != INVALID_SOCKET; }

void GuardedServer::WriteBareRefusal(httplib::Stream& stream, Violation violation) const {
  const Refusal refusal = RefusalFor(violation);
  const std::string body = error_body_(refusal.status, refusal.message);
  const std::string head = absl::StrCat("HTTP/1.1 ", refusal.status, " ", ReasonPhrase(refusal.status),
                                        "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                                        "\r\nConnection: close\r\n\r\n");
  if (stream.write(head.data(), head.size()) >= 0) stream.write(body.data(), body.size());
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  ConnectionStream stream(sock, limits_);
  ScopedCurrentConnection current(&stream);
  const ConnectionPool* pool = ConnectionPool::Current();
  // The first request's clock started at the accept.
  absl::Time start = pool != nullptr ? ConnectionPool::CurrentTaskEnqueued() : absl::Now();
  const auto give_up_idle = [this, pool] { return !Listening() || (pool != nullptr && pool->waiting() > 0); };
  bool linger = false;
  for (int served = 0; served < limits_.keep_alive_max_requests && Listening(); ++served) {
    if (served > 0) {
      if (!stream.AwaitNextRequest(absl::Now() + limits_.keep_alive_timeout, give_up_idle)) break;
      start = absl::Now();
    }
    stream.BeginRequest(start + limits_.header_timeout, start + limits_.request_timeout);
    bool client_closes = false;
    const bool last = served + 1 == limits_.keep_alive_max_requests;
    const bool replied = process_request(stream, last, client_closes, nullptr);
    const Violation violation = stream.violation();
    const bool timed_out = violation == Violation::kReadTimeout || violation == Violation::kHeaderTimeout ||
                           violation == Violation::kRequestTimeout;
    // A connection that never sent a byte of this request made no request
    // (a browser's spare connection, an idle one): it is closed silently.
    if (violation != Violation::kNone && stream.violated_in_request_line() && !(timed_out && stream.request_empty())) {
      WriteBareRefusal(stream, violation);
    }
    if (violation != Violation::kNone || current_connection.close_after_reply) {
      // A slow client gets no more time; a fast one may still be sending.
      linger = !timed_out;
      break;
    }
    if (!replied || client_closes) break;
  }
  CloseSocket(sock, linger);
  return true;
}

}  // namespace dmue::serving
