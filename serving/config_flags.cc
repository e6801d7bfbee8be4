#include "serving/config_flags.h"

#include <gflags/gflags.h>

#include "serving/server_config.h"

DEFINE_string(config, "serving/configs/server.pbtxt", "ServerConfig text file (serving/server_config.proto)");
DEFINE_string(set, "",
              "ServerConfig fields in text format merged over --config, e.g. --set='crop_flow: EXACT num_threads: 2'");
DEFINE_string(model_path, "", "overrides ServerConfig.model_path");
DEFINE_string(model_spec, "", "overrides ServerConfig.model_spec (default: the .spec.pbtxt beside the weights)");
DEFINE_string(detector_dir, "", "overrides ServerConfig.detector_dir");

namespace dmue::serving {

absl::StatusOr<ServerConfig> ServerConfigFromFlags(std::function<void(ServerConfig&)> adjust) {
  ServerConfigOverrides overrides;
  overrides.set = FLAGS_set;
  overrides.model_path = FLAGS_model_path;
  overrides.model_spec = FLAGS_model_spec;
  overrides.detector_dir = FLAGS_detector_dir;
  overrides.adjust = std::move(adjust);
  return LoadServerConfig(FLAGS_config, overrides);
}

}  // namespace dmue::serving
