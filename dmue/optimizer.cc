#include "dmue/optimizer.h"

namespace dmue {

std::unique_ptr<torch::optim::Adam> MakeReferenceAdam(DmueModel& model,
                                                      const AdamSettings& settings) {
  auto options = [&](double lr) {
    return std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(lr).weight_decay(settings.weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(model->BaseParameters(), options(settings.lr1));
  groups.emplace_back(model->ClassifierParameters(), options(settings.lr2));
  if (settings.train_heads) groups.emplace_back(model->HeadParameters(), options(settings.lr2));
  return std::make_unique<torch::optim::Adam>(
      groups, torch::optim::AdamOptions(settings.lr1).weight_decay(settings.weight_decay));
}

void SetLearningRates(torch::optim::Optimizer& optimizer, double lr1, double lr2) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    static_cast<torch::optim::AdamOptions&>(groups[i].options()).lr(i == 0 ? lr1 : lr2);
  }
}

}  // namespace dmue
