// The flags every serving binary shares (--config, --set, --model_path,
// --model_spec, --detector_dir) and the validated ServerConfig they make, so
// the server and predict read a config the same way.
#ifndef SERVING_CONFIG_FLAGS_H_
#define SERVING_CONFIG_FLAGS_H_

#include <functional>

#include "absl/status/statusor.h"
#include "serving/server_config.pb.h"

namespace dmue::serving {

// LoadServerConfig(--config) with the shared flags as overrides, then
// `adjust` (a binary's own flags) before validation.
absl::StatusOr<ServerConfig> ServerConfigFromFlags(std::function<void(ServerConfig&)> adjust = nullptr);

}  // namespace dmue::serving

#endif  // SERVING_CONFIG_FLAGS_H_
