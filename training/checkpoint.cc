#include "training/checkpoint.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "dmue/base/status_macros.h"
#include "dmue/io/torch_checkpoint.h"
#include "dmue/state_dict.h"

namespace dmue::training {
namespace {

using io::Value;

absl::Status Put(Value& dict, const std::string& key, Value value) {
  if (!dict.mutable_dict().Set(Value::String(key), std::move(value))) {
    return absl::InternalError(absl::StrCat("cannot set key ", key));
  }
  return absl::OkStatus();
}

absl::StatusOr<Value> TensorValue(const torch::Tensor& t) { return io::FromTensor(t.contiguous()); }

std::string StateKey(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

absl::Status Missing(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat(path, ": not a training checkpoint (", what, " missing)"));
}

// One optimiser state as a dict: Adam's step and moments, or SGD's momentum
// buffer (None before the first step).
absl::StatusOr<Value> ParamStateValue(const torch::optim::OptimizerParamState& state) {
  Value entry = Value::MakeDict();
  if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(&state)) {
    ASSIGN_OR_RETURN(Value m, TensorValue(adam->exp_avg()));
    ASSIGN_OR_RETURN(Value v, TensorValue(adam->exp_avg_sq()));
    RETURN_IF_ERROR(Put(entry, "step", Value::Int(adam->step())));
    RETURN_IF_ERROR(Put(entry, "exp_avg", std::move(m)));
    RETURN_IF_ERROR(Put(entry, "exp_avg_sq", std::move(v)));
    return entry;
  }
  if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(&state)) {
    if (!sgd->momentum_buffer().defined()) return Value::None();
    ASSIGN_OR_RETURN(Value buffer, TensorValue(sgd->momentum_buffer()));
    RETURN_IF_ERROR(Put(entry, "momentum_buffer", std::move(buffer)));
    return entry;
  }
  return absl::UnimplementedError("training checkpoints hold Adam or SGD states only");
}

std::string OptimizerKind(const torch::optim::Optimizer& optimizer) {
  return dynamic_cast<const torch::optim::SGD*>(&optimizer) != nullptr ? "sgd" : "adam";
}

// A checkpoint tensor for parameter `p`: same shape, p's device, dtype and
// layout (the file is read on the CPU; the optimiser state follows p).
absl::StatusOr<torch::Tensor> StateTensor(const std::string& path, const Value& entry, const char* key,
                                          const torch::Tensor& p, size_t index) {
  const Value* value = entry.Get(key);
  if (value == nullptr) return Missing(path, absl::StrCat("optimiser state ", index, ".", key));
  absl::StatusOr<at::Tensor> t = io::ToTensor(*value);
  if (!t.ok()) return absl::DataLossError(absl::StrCat(path, ": optimiser state ", index, ".", key, ": ",
                                                       t.status().message()));
  if (t->sizes() != p.sizes()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": optimiser state ", index, ".", key,
                                                   " does not match its parameter's shape"));
  }
  return t->to(p.device(), p.dtype()).contiguous(p.suggest_memory_format()).clone();
}

absl::StatusOr<std::unique_ptr<torch::optim::OptimizerParamState>> ParamStateFromValue(
    const std::string& path, const Value& entry, const std::string& kind, const torch::Tensor& p, size_t index) {
  if (!entry.is_dict()) {
    return absl::DataLossError(absl::StrCat(path, ": optimiser state ", index, " is not a dict"));
  }
  if (kind == "sgd") {
    ASSIGN_OR_RETURN(torch::Tensor buffer, StateTensor(path, entry, "momentum_buffer", p, index));
    auto s = std::make_unique<torch::optim::SGDParamState>();
    s->momentum_buffer(buffer);
    return s;
  }
  const Value* step = entry.Get("step");
  if (step == nullptr || !step->is_int() || step->as_int() < 0) {
    return absl::DataLossError(absl::StrCat(path, ": optimiser state ", index, ".step is not a count"));
  }
  ASSIGN_OR_RETURN(torch::Tensor m, StateTensor(path, entry, "exp_avg", p, index));
  ASSIGN_OR_RETURN(torch::Tensor v, StateTensor(path, entry, "exp_avg_sq", p, index));
  auto s = std::make_unique<torch::optim::AdamParamState>();
  s->step(step->as_int());
  s->exp_avg(m);
  s->exp_avg_sq(v);
  return s;
}

absl::Status RestoreOptimizer(const std::string& path, const Value& root, torch::optim::Optimizer& optimizer) {
  const Value* kind_value = root.Get("optimizer");
  const std::string kind = kind_value && kind_value->is_string() ? kind_value->as_string() : "adam";
  if (kind != OptimizerKind(optimizer)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": checkpoint holds a ", kind,
                                                   " state but the run uses ", OptimizerKind(optimizer),
                                                   " (TrainerConfig.optimizer)"));
  }
  const Value* states = root.Get("optimizer_state");
  if (states == nullptr) states = root.Get("adam_state");  // files written before SGD existed
  const Value* lrs = root.Get("learning_rates");
  if (states == nullptr || !states->is_list()) return Missing(path, "optimizer_state");
  if (lrs == nullptr || !lrs->is_list()) return Missing(path, "learning_rates");
  auto& groups = optimizer.param_groups();
  if (lrs->items().size() != groups.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": optimiser has ", groups.size(),
                                                   " parameter groups, checkpoint ", lrs->items().size()));
  }
  size_t index = 0;
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < groups.size(); ++g) {
    const Value& lr = lrs->items()[g];
    if (!lr.is_double() || !std::isfinite(lr.as_double())) {
      return absl::DataLossError(absl::StrCat(path, ": learning_rates[", g, "] is not a finite float"));
    }
    groups[g].options().set_lr(lr.as_double());
    for (const torch::Tensor& p : groups[g].params()) {
      if (index >= states->items().size()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": fewer optimiser states than parameters"));
      }
      const Value& entry = states->items()[index++];
      optimizer.state().erase(StateKey(p));
      if (entry.is_none()) continue;
      ASSIGN_OR_RETURN(optimizer.state()[StateKey(p)], ParamStateFromValue(path, entry, kind, p, index - 1));
    }
  }
  if (index != states->items().size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": more optimiser states than parameters"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SaveTrainingCheckpoint(const std::string& path, DmueModel& model,
                                    torch::optim::Optimizer& optimizer, const TrainingState& state) {
  ASSIGN_OR_RETURN(Value state_dict, io::StateDictToValue(ModuleStateDictForSaving(*model)));

  Value states = Value::MakeList();
  Value lrs = Value::MakeList();
  for (auto& group : optimizer.param_groups()) {
    lrs.mutable_items().push_back(Value::Double(group.options().get_lr()));
    for (const torch::Tensor& p : group.params()) {
      auto it = optimizer.state().find(StateKey(p));
      if (it == optimizer.state().end()) {
        states.mutable_items().push_back(Value::None());
        continue;
      }
      ASSIGN_OR_RETURN(Value entry, ParamStateValue(*it->second));
      states.mutable_items().push_back(std::move(entry));
    }
  }

  Value root = Value::MakeDict();
  Value training = Value::MakeDict();
  for (auto st : {Put(training, "epoch", Value::Int(state.epoch)),
                  Put(training, "batch_in_epoch", Value::Int(state.batch_in_epoch)),
                  Put(training, "global_step", Value::Int(state.global_step)),
                  Put(training, "best_accuracy", Value::Double(state.best_accuracy)),
                  Put(training, "sampler_state", Value::Bytes(state.sampler_state)),
                  Put(training, "config", Value::String(state.config_text)),
                  Put(training, "model_spec", Value::String(state.model_spec_text)),
                  Put(root, "format", Value::String("dmue-cpp-training-checkpoint")),
                  Put(root, "version", Value::Int(2)), Put(root, "state_dict", state_dict),
                  Put(root, "optimizer", Value::String(OptimizerKind(optimizer))),
                  Put(root, "optimizer_state", states), Put(root, "learning_rates", lrs),
                  Put(root, "training", training)}) {
    RETURN_IF_ERROR(st);
  }
  return io::WriteCheckpoint(path, root);
}

absl::StatusOr<TrainingState> LoadTrainingCheckpoint(const std::string& path, DmueModel& model,
                                                     torch::optim::Optimizer& optimizer) {
  ASSIGN_OR_RETURN(const Value root, io::ReadCheckpoint(path));
  if (!root.is_dict()) return Missing(path, "top-level dict");
  const Value* format = root.Get("format");
  if (format == nullptr || !format->is_string() || format->as_string() != "dmue-cpp-training-checkpoint") {
    return Missing(path, "format tag");
  }
  ASSIGN_OR_RETURN(const io::StateDict weights, io::ToStateDict(root, io::StateDictOptions{}, path));
  if (absl::Status s = LoadStateDict(*model, weights); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  RETURN_IF_ERROR(RestoreOptimizer(path, root, optimizer));

  const Value* training = root.Get("training");
  if (training == nullptr || !training->is_dict()) return Missing(path, "training");
  TrainingState state;
  auto get_int = [&](const char* key, int64_t* out) -> absl::Status {
    const Value* v = training->Get(key);
    if (v == nullptr || !v->is_int() || v->as_int() < 0) return Missing(path, absl::StrCat("training.", key));
    *out = v->as_int();
    return absl::OkStatus();
  };
  for (auto st : {get_int("epoch", &state.epoch), get_int("batch_in_epoch", &state.batch_in_epoch),
                  get_int("global_step", &state.global_step)}) {
    RETURN_IF_ERROR(st);
  }
  // Optional fields: present with the wrong type is corruption, not absence.
  auto wrong_type = [&](const char* key) {
    return absl::DataLossError(absl::StrCat(path, ": training.", key, " has the wrong type"));
  };
  if (const Value* v = training->Get("best_accuracy")) {
    if (!v->is_double()) return wrong_type("best_accuracy");
    state.best_accuracy = v->as_double();
  }
  if (const Value* v = training->Get("sampler_state")) {
    if (!v->is_bytes()) return wrong_type("sampler_state");
    state.sampler_state = v->as_bytes();
  }
  if (const Value* v = training->Get("config")) {
    if (!v->is_string()) return wrong_type("config");
    state.config_text = v->as_string();
  }
  if (const Value* v = training->Get("model_spec")) {
    if (!v->is_string()) return wrong_type("model_spec");
    state.model_spec_text = v->as_string();
  }
  return state;
}

}  // namespace dmue::training
