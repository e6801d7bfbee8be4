// Loading and validation of ServerConfig (server_config.proto): every rejected
// value is reported with the name of its field.
#ifndef SERVING_SERVER_CONFIG_H_
#define SERVING_SERVER_CONFIG_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "serving/server_config.pb.h"

namespace dmue::serving {

absl::Status ValidateServerConfig(const ServerConfig& config);

// Inference requests the HTTP front end admits at once:
// max_inflight_requests, or half of http_threads (at least 1) when unset.
int MaxInflightRequests(const ServerConfig& config);

// What a command line changes in a ServerConfig file, shared by the server
// and predict: `set` (text-format fields merged over the file; errors name
// "--set"), then the per-field overrides (empty: the file's value), then
// `adjust` for a binary's own flags.
struct ServerConfigOverrides {
  std::string set;
  std::string model_path;
  std::string model_spec;
  std::string detector_dir;
  std::function<void(ServerConfig&)> adjust;
};

// Parses a text-format ServerConfig file, applies `overrides` and validates
// the result (errors start with the path).
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path, const ServerConfigOverrides& overrides = {});

}  // namespace dmue::serving

#endif  // SERVING_SERVER_CONFIG_H_
