// Model configs for tests that train or compare small DMUE models: few
// classes and no dropout, so that two forward passes of one model agree and a
// step is quick.
#ifndef DMUE_TESTING_MODEL_CONFIGS_H_
#define DMUE_TESTING_MODEL_CONFIGS_H_

#include "dmue/model_config.pb.h"

namespace dmue::testing {

// The default backbone with `num_classes` classes and dropout 0.
inline ModelConfig DeterministicModelConfig(int num_classes = 3) {
  ModelConfig config;
  config.set_num_classes(num_classes);
  config.set_dropout(0.0f);
  return config;
}

}  // namespace dmue::testing

#endif  // DMUE_TESTING_MODEL_CONFIGS_H_
