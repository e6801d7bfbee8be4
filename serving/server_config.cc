#include "serving/server_config.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dmue/base/field_error.h"
#include "dmue/base/status_macros.h"
#include "dmue/compute.h"
#include "dmue/config/text_proto.h"

namespace dmue::serving {
namespace {

constexpr FieldErrors kFieldError("ServerConfig");

absl::Status CheckPositive(absl::string_view field, int64_t value) {
  if (value <= 0) return kFieldError(field, absl::StrCat("must be > 0, got ", value));
  return absl::OkStatus();
}

// CPPHTTPLIB_HEADER_MAX_LENGTH as Debian's libcpp-httplib was compiled: a
// longer header line is refused by the library itself (400) whatever the
// config says, so a larger max_header_line_bytes would be a promise the server
// cannot keep. Defining the macro here would change nothing: the parser is
// in the shared library.
constexpr int kLibraryHeaderLineLimit = 8192;

absl::Status CheckPort(absl::string_view field, int port, bool zero_allowed) {
  if (port < (zero_allowed ? 0 : 1) || port > 65535) {
    return kFieldError(field, absl::StrCat("must be in [", zero_allowed ? 0 : 1, ", 65535], got ", port));
  }
  return absl::OkStatus();
}

// The relations between the HTTP limits (each is already known positive).
absl::Status ValidateHttpLimits(const ServerConfig& config) {
  if (config.max_header_line_bytes() > kLibraryHeaderLineLimit) {
    return kFieldError("max_header_line_bytes",
                      absl::StrCat("must be <= ", kLibraryHeaderLineLimit,
                                   " (the limit compiled into libcpp-httplib), got ", config.max_header_line_bytes()));
  }
  if (config.max_header_line_bytes() > config.max_header_bytes()) {
    return kFieldError("max_header_line_bytes", absl::StrCat(config.max_header_line_bytes(),
                                                            " is larger than max_header_bytes ",
                                                            config.max_header_bytes()));
  }
  if (config.header_timeout_ms() > config.request_timeout_ms()) {
    return kFieldError("header_timeout_ms", absl::StrCat(config.header_timeout_ms(),
                                                        " is longer than request_timeout_ms ",
                                                        config.request_timeout_ms()));
  }
  if (config.max_inflight_requests() < 0) {
    return kFieldError("max_inflight_requests",
                      absl::StrCat("must be >= 0 (0: half of http_threads), got ", config.max_inflight_requests()));
  }
  if (config.max_inflight_requests() > 0 && config.max_inflight_requests() >= config.http_threads()) {
    return kFieldError("max_inflight_requests",
                      absl::StrCat(config.max_inflight_requests(), " must be below http_threads ",
                                   config.http_threads(), ", or health checks can find every thread busy"));
  }
  return absl::OkStatus();
}

}  // namespace

int MaxInflightRequests(const ServerConfig& config) {
  if (config.max_inflight_requests() > 0) return config.max_inflight_requests();
  return std::max(1, config.http_threads() / 2);
}

absl::Status ValidateServerConfig(const ServerConfig& config) {
  if (config.model_path().empty()) return kFieldError("model_path", "is required");
  if (config.precision() == ServerConfig::PRECISION_UNSPECIFIED) {
    return kFieldError("precision", "must be AUTO, FP32 or BF16");
  }
  if (config.bf16() && config.has_precision() && config.precision() != ServerConfig::BF16) {
    return kFieldError("bf16", "contradicts precision: use precision alone");
  }
  if (config.crop_flow() == ServerConfig::CROP_FLOW_UNSPECIFIED) {
    return kFieldError("crop_flow", "must be EXACT or FAST");
  }
  RETURN_IF_ERROR(kFieldError.Nested("device", ParseDevice(config.device()).status()));
  if (config.detector_dir().empty()) return kFieldError("detector_dir", "is required");
  if (config.model_name().empty() || config.model_name().find('/') != std::string::npos) {
    return kFieldError("model_name", "must be non-empty and contain no '/'");
  }
  for (const auto& [field, value] :
       std::initializer_list<std::pair<absl::string_view, int64_t>>{
           {"num_threads", config.num_threads()},
           {"http_threads", config.http_threads()},
           {"detection_concurrency", config.detection_concurrency()},
           {"max_batch_size", config.max_batch_size()},
           {"max_request_bytes", config.max_request_bytes()},
           {"max_image_pixels", config.max_image_pixels()},
           {"max_detection_side", config.max_detection_side()},
           {"max_faces", config.max_faces()},
           {"max_header_count", config.max_header_count()},
           {"max_header_line_bytes", config.max_header_line_bytes()},
           {"max_header_bytes", config.max_header_bytes()},
           {"read_timeout_ms", config.read_timeout_ms()},
           {"header_timeout_ms", config.header_timeout_ms()},
           {"request_timeout_ms", config.request_timeout_ms()},
           {"write_timeout_ms", config.write_timeout_ms()},
           {"keep_alive_timeout_ms", config.keep_alive_timeout_ms()},
           {"keep_alive_max_requests", config.keep_alive_max_requests()},
           {"retry_after_seconds", config.retry_after_seconds()}}) {
    RETURN_IF_ERROR(CheckPositive(field, value));
  }
  RETURN_IF_ERROR(ValidateHttpLimits(config));
  if (config.malloc_arenas() < 0) return kFieldError("malloc_arenas", "must be >= 0 (0: the allocator's default)");
  if (config.batch_delay_us() < 0) {
    return kFieldError("batch_delay_us", absl::StrCat("must be >= 0, got ", config.batch_delay_us()));
  }
  RETURN_IF_ERROR(CheckPort("port", config.port(), /*zero_allowed=*/true));
  RETURN_IF_ERROR(CheckPort("grpc_port", config.grpc_port(), true));
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path, const ServerConfigOverrides& overrides) {
  ASSIGN_OR_RETURN(ServerConfig config, LoadTextProto<ServerConfig>(path));
  RETURN_IF_ERROR(MergeTextProto(overrides.set, "--set", &config));
  if (!overrides.model_path.empty()) config.set_model_path(overrides.model_path);
  if (!overrides.model_spec.empty()) config.set_model_spec(overrides.model_spec);
  if (!overrides.detector_dir.empty()) config.set_detector_dir(overrides.detector_dir);
  if (overrides.adjust) overrides.adjust(config);
  if (absl::Status s = ValidateServerConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return config;
}

}  // namespace dmue::serving
