// Loopback load test of a running server: for each concurrency level, N
// client threads with keep-alive connections post one photo to /v1/faces
// (or another route) as fast as the server answers; reports throughput,
// p50 / p90 / p99 latency, errors, and the server's resident memory (VmRSS of
// --server_pid) before and after.
//   bazel run //serving:load_bench -- --port=8080 --photo=... \
//     --concurrency=1,8,32 --requests=2000 --server_pid=$(pgrep -f serving/server)
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include <gflags/gflags.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

DEFINE_string(host, "127.0.0.1", "server host");
DEFINE_int32(port, 8080, "server port");
DEFINE_string(photo, "", "image file to post");
DEFINE_string(path, "/v1/faces", "route to post to");
DEFINE_string(content_type, "image/jpeg", "Content-Type of the body");
DEFINE_string(concurrency, "1,8,32", "comma-separated client thread counts");
DEFINE_int32(requests, 1000, "requests per concurrency level");
DEFINE_int32(warmup, 20, "requests before each level, not counted");
DEFINE_int32(server_pid, 0, "pid of the server, to report its VmRSS");

namespace {

long RssKb(int pid) {
  if (pid <= 0) return -1;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  std::ifstream in(FLAGS_photo, std::ios::binary);
  if (FLAGS_photo.empty() || !in) {
    std::cerr << "cannot read --photo '" << FLAGS_photo << "'\n";
    return 2;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string body = buffer.str();
  std::vector<int> levels;
  for (absl::string_view s : absl::StrSplit(FLAGS_concurrency, ',')) {
    int c = 0;
    if (!absl::SimpleAtoi(s, &c) || c <= 0) {
      std::cerr << "bad --concurrency entry '" << s << "'\n";
      return 2;
    }
    levels.push_back(c);
  }
  std::printf("%-11s %8s %7s %9s %9s %9s %9s %12s %12s\n", "concurrency", "requests", "errors", "req/s", "p50 ms",
              "p90 ms", "p99 ms", "rss0 MB", "rss1 MB");
  for (int concurrency : levels) {
    {
      httplib::Client warm(FLAGS_host, FLAGS_port);
      for (int i = 0; i < FLAGS_warmup; ++i) warm.Post(FLAGS_path.c_str(), body, FLAGS_content_type.c_str());
    }
    const long rss0 = RssKb(FLAGS_server_pid);
    std::atomic<int> next{0}, errors{0};
    std::vector<std::vector<double>> latencies(concurrency);
    std::vector<std::thread> threads;
    const absl::Time start = absl::Now();
    for (int t = 0; t < concurrency; ++t) {
      threads.emplace_back([&, t] {
        httplib::Client client(FLAGS_host, FLAGS_port);
        client.set_keep_alive(true);
        client.set_tcp_nodelay(true);
        client.set_read_timeout(120);
        while (next.fetch_add(1) < FLAGS_requests) {
          const absl::Time t0 = absl::Now();
          auto res = client.Post(FLAGS_path.c_str(), body, FLAGS_content_type.c_str());
          const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
          if (!res || res->status != 200) {
            ++errors;
            continue;
          }
          latencies[t].push_back(ms);
        }
      });
    }
    for (auto& t : threads) t.join();
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::vector<double> all;
    for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    const long rss1 = RssKb(FLAGS_server_pid);
    std::printf("%-11d %8d %7d %9.1f %9.1f %9.1f %9.1f %12.1f %12.1f\n", concurrency, FLAGS_requests, errors.load(),
                all.size() / seconds, Percentile(all, 0.5), Percentile(all, 0.9), Percentile(all, 0.99), rss0 / 1024.0,
                rss1 / 1024.0);
    std::fflush(stdout);
  }
  return 0;
}
