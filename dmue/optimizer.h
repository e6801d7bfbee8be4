// Adam as the reference's train.py builds it: group 0 = base (lr1), group 1 =
// classifiers (lr2), L2 weight decay added to the gradient. The reference
// leaves project_w and the bnneck weight out of the optimiser, so they keep
// their initial values; `train_heads` adds them as a third group at lr2.
#ifndef DMUE_OPTIMIZER_H_
#define DMUE_OPTIMIZER_H_

#include <memory>

#include <torch/torch.h>

#include "dmue/dmue_model.h"

namespace dmue {

struct AdamSettings {
  double lr1 = 1e-4;
  double lr2 = 1e-3;
  double weight_decay = 1e-4;
  bool train_heads = false;
};

std::unique_ptr<torch::optim::Adam> MakeReferenceAdam(DmueModel& model, const AdamSettings& settings);

// Sets lr1 on the base group and lr2 on every other group.
void SetLearningRates(torch::optim::Optimizer& optimizer, double lr1, double lr2);

}  // namespace dmue

#endif  // DMUE_OPTIMIZER_H_
