// The optimisers over DMUE's parameter groups. Adam as the reference's
// train.py builds it: group 0 = base (lr1), group 1 = classifiers (lr2), L2
// weight decay added to the gradient. SGD with momentum (optionally Nesterov)
// over the same groups, for from-scratch recipes. The reference leaves
// project_w and the bnneck weight out of the optimiser, so they keep their
// initial values; `train_heads` adds them as a third group at lr2.
#ifndef DMUE_OPTIMIZER_H_
#define DMUE_OPTIMIZER_H_

#include <memory>

#include <torch/torch.h>

#include "dmue/dmue_model.h"

namespace dmue {

struct OptimizerSettings {
  double lr1 = 1e-4;
  double lr2 = 1e-3;
  double weight_decay = 1e-4;
  bool train_heads = false;
  enum class Kind { kAdam, kSgd };
  Kind kind = Kind::kAdam;
  double momentum = 0.9;  // kSgd
  bool nesterov = false;  // kSgd
};

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(DmueModel& model, const OptimizerSettings& settings);
// MakeOptimizer with kind kAdam, typed (parity tests read Adam's options).
std::unique_ptr<torch::optim::Adam> MakeReferenceAdam(DmueModel& model, const OptimizerSettings& settings);

// Sets lr1 on the base group and lr2 on every other group.
void SetLearningRates(torch::optim::Optimizer& optimizer, double lr1, double lr2);

}  // namespace dmue

#endif  // DMUE_OPTIMIZER_H_
