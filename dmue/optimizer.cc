#include "dmue/optimizer.h"

#include <vector>

namespace dmue {
namespace {

std::vector<std::vector<torch::Tensor>> ParameterGroups(DmueModel& model, bool train_heads) {
  std::vector<std::vector<torch::Tensor>> groups = {model->BaseParameters(), model->ClassifierParameters()};
  if (train_heads) groups.push_back(model->HeadParameters());
  return groups;
}

template <typename Optim, typename MakeOptions>
std::unique_ptr<Optim> Build(DmueModel& model, const OptimizerSettings& settings, MakeOptions make_options) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  const std::vector<std::vector<torch::Tensor>> params = ParameterGroups(model, settings.train_heads);
  for (size_t g = 0; g < params.size(); ++g) {
    groups.emplace_back(params[g], std::make_unique<decltype(make_options(0.0))>(
                                       make_options(g == 0 ? settings.lr1 : settings.lr2)));
  }
  return std::make_unique<Optim>(groups, make_options(settings.lr1));
}

}  // namespace

std::unique_ptr<torch::optim::Adam> MakeReferenceAdam(DmueModel& model, const OptimizerSettings& settings) {
  return Build<torch::optim::Adam>(model, settings, [&](double lr) {
    return torch::optim::AdamOptions(lr).weight_decay(settings.weight_decay);
  });
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(DmueModel& model, const OptimizerSettings& settings) {
  if (settings.kind == OptimizerSettings::Kind::kAdam) return MakeReferenceAdam(model, settings);
  return Build<torch::optim::SGD>(model, settings, [&](double lr) {
    return torch::optim::SGDOptions(lr)
        .momentum(settings.momentum)
        .nesterov(settings.nesterov)
        .weight_decay(settings.weight_decay);
  });
}

void SetLearningRates(torch::optim::Optimizer& optimizer, double lr1, double lr2) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(i == 0 ? lr1 : lr2);
}

}  // namespace dmue
