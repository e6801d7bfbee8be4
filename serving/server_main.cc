// The inference server: HTTP/JSON (Open Inference Protocol + /v1/faces, the
// web page, /metrics) and optionally gRPC on grpc_port (our
// ExpressionInference and the standard KServe v2 GRPCInferenceService, one
// port), over one ExpressionService.
//   bazel run //serving:server   (serving/configs/server.pbtxt: the shipped FERPlus bundle)
// It listens at once (live), loads the model and the detector, then reports
// ready; SIGTERM / SIGINT stop accepting, finish what is in flight, and exit.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include <gflags/gflags.h>

#include "absl/strings/str_cat.h"
#include "dmue/base/workspace.h"
#include "glog/logging.h"
#include "serving/config_flags.h"
#include "serving/expression_service.h"
#include "serving/grpc/grpc_server.h"
#include "serving/http_server.h"
#include "serving/metrics.h"
#include "serving/web/index_html.h"

DEFINE_int32(port, -1, "overrides ServerConfig.port when >= 0 (0: any free port)");
DEFINE_int32(grpc_port, -1, "overrides ServerConfig.grpc_port when >= 0 (0: no gRPC)");
DEFINE_string(host, "", "overrides ServerConfig.host");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("DMUE inference server: --config=FILE");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) {
    std::cerr << "server: " << s.message() << "\n";
    return 2;
  }
  const absl::StatusOr<dmue::serving::ServerConfig> config =
      dmue::serving::ServerConfigFromFlags([](dmue::serving::ServerConfig& c) {
        if (FLAGS_port >= 0) c.set_port(FLAGS_port);
        if (FLAGS_grpc_port >= 0) c.set_grpc_port(FLAGS_grpc_port);
        if (!FLAGS_host.empty()) c.set_host(FLAGS_host);
      });
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 2;
  }

  // Before any thread exists: threads created later take arenas up to the limit.
  if (config->malloc_arenas() > 0 && mallopt(M_ARENA_MAX, config->malloc_arenas()) != 1) {
    LOG(WARNING) << "mallopt(M_ARENA_MAX, " << config->malloc_arenas() << ") failed; using the default arenas";
  }

  // Signals are taken by sigwait() below: every thread started from here on
  // inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  dmue::serving::MetricsRegistry metrics;
  dmue::serving::HttpFrontEnd http(*config, &metrics, std::string(dmue::serving::web::IndexHtml()));
  absl::StatusOr<int> port = http.Bind();
  if (!port.ok()) {
    std::cerr << "error: " << port.status().message() << "\n";
    return 1;
  }
  LOG(INFO) << "listening on http://" << config->host() << ":" << *port << " (live; loading the model)";
  std::thread serving([&http] {
    if (!http.Serve()) LOG(ERROR) << "the HTTP server stopped with an error";
  });

  absl::StatusOr<std::unique_ptr<dmue::serving::ExpressionService>> service =
      dmue::serving::ExpressionService::Create(*config, &metrics);
  if (!service.ok()) {
    LOG(ERROR) << "cannot load the models: " << service.status().message();
    http.Stop();
    serving.join();
    return 1;
  }
  std::unique_ptr<dmue::serving::GrpcFrontEnd> grpc;
  if (config->grpc_port() > 0) {
    absl::StatusOr<std::unique_ptr<dmue::serving::GrpcFrontEnd>> started = dmue::serving::StartGrpcServer(
        service->get(), &metrics, absl::StrCat(config->host(), ":", config->grpc_port()), config->max_request_bytes() + 4096);
    if (!started.ok()) {
      LOG(ERROR) << "cannot start gRPC: " << started.status().message();
      http.Stop();
      serving.join();
      return 1;
    }
    grpc = std::move(*started);
    LOG(INFO) << "gRPC on " << config->host() << ":" << grpc->port();
  }
  http.SetService(service->get());
  LOG(INFO) << "ready: model '" << config->model_name() << "' (" << config->model_path() << "), "
            << (*service)->spec().model().num_classes() << " classes, max batch " << config->max_batch_size() << ", delay "
            << config->batch_delay_us() << " us";

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LOG(INFO) << "signal " << signal_number << ": finishing requests in flight, then exiting";
  http.Stop();
  serving.join();
  if (grpc) grpc->Shutdown();
  http.SetService(nullptr);
  (*service)->Shutdown();
  LOG(INFO) << "stopped";
  return 0;
}
