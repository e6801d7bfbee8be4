#include "serving/server_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "dmue/config/text_proto.h"
#include "dmue/model_config.h"

namespace dmue::serving {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("ServerConfig.", field, ": ", why));
}

absl::Status CheckPositive(absl::string_view field, int64_t value) {
  if (value <= 0) return FieldError(field, absl::StrCat("must be > 0, got ", value));
  return absl::OkStatus();
}

absl::Status CheckPort(absl::string_view field, int port, bool zero_allowed) {
  if (port < (zero_allowed ? 0 : 1) || port > 65535) {
    return FieldError(field, absl::StrCat("must be in [", zero_allowed ? 0 : 1, ", 65535], got ", port));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateServerConfig(const ServerConfig& config) {
  if (config.model_path().empty()) return FieldError("model_path", "is required");
  if (config.has_model()) {
    if (absl::Status s = ValidateModelConfig(config.model()); !s.ok()) return FieldError("model", s.message());
  } else if (config.class_names_size() > 0) {
    return FieldError("class_names", "belongs to an inline spec: set model too, or use the bundle's spec");
  }
  if (config.detector_dir().empty()) return FieldError("detector_dir", "is required");
  if (config.model_name().empty() || config.model_name().find('/') != std::string::npos) {
    return FieldError("model_name", "must be non-empty and contain no '/'");
  }
  if (config.class_names_size() > config.model().num_classes()) {
    return FieldError("class_names", absl::StrCat(config.class_names_size(), " names for ",
                                                  config.model().num_classes(), " classes"));
  }
  if (absl::Status s = CheckPositive("input_crop", config.input_crop()); !s.ok()) return s;
  if (config.input_resize() < config.input_crop()) {
    return FieldError("input_resize", absl::StrCat(config.input_resize(), " is smaller than input_crop ",
                                                   config.input_crop()));
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
           {"max_faces", config.max_faces()}}) {
    if (absl::Status s = CheckPositive(field, value); !s.ok()) return s;
  }
  if (config.malloc_arenas() < 0) return FieldError("malloc_arenas", "must be >= 0 (0: the allocator's default)");
  if (config.batch_delay_us() < 0) {
    return FieldError("batch_delay_us", absl::StrCat("must be >= 0, got ", config.batch_delay_us()));
  }
  if (absl::Status s = CheckPort("port", config.port(), /*zero_allowed=*/true); !s.ok()) return s;
  if (absl::Status s = CheckPort("grpc_port", config.grpc_port(), true); !s.ok()) return s;
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  absl::StatusOr<ServerConfig> config = LoadTextProto<ServerConfig>(path);
  if (!config.ok()) return config.status();
  if (absl::Status s = ValidateServerConfig(*config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return config;
}

ModelSpec InlineSpec(const ServerConfig& config) {
  ModelSpec spec;
  *spec.mutable_model() = config.model();
  for (int c = 0; c < config.model().num_classes(); ++c) {
    spec.add_class_names(c < config.class_names_size() ? config.class_names(c) : absl::StrCat(c));
  }
  InputSpec* input = spec.mutable_input();
  input->set_resize(config.input_resize());
  input->set_crop(config.input_crop());
  input->set_grayscale(config.grayscale());
  return spec;
}

}  // namespace dmue::serving
