// Loading and validation of ServerConfig (server_config.proto): every rejected
// value is reported with the name of its field.
#ifndef SERVING_SERVER_CONFIG_H_
#define SERVING_SERVER_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "serving/server_config.pb.h"

namespace dmue::serving {

absl::Status ValidateServerConfig(const ServerConfig& config);

// Inference requests the HTTP front end admits at once:
// max_inflight_requests, or half of http_threads (at least 1) when unset.
int MaxInflightRequests(const ServerConfig& config);

// Parses a text-format ServerConfig file and validates it.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace dmue::serving

#endif  // SERVING_SERVER_CONFIG_H_
