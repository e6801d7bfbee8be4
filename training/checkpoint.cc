#include "training/checkpoint.h"

#include "absl/strings/str_cat.h"
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

}  // namespace

absl::Status SaveTrainingCheckpoint(const std::string& path, DmueModel& model,
                                    torch::optim::Adam& optimizer, const TrainingState& state) {
  io::StateDict weights;
  for (const auto& [name, t] : ModuleStateDict(*model)) weights.emplace_back(name, t.detach().contiguous());
  absl::StatusOr<Value> state_dict = io::StateDictToValue(weights);
  if (!state_dict.ok()) return state_dict.status();

  Value adam = Value::MakeList();
  Value lrs = Value::MakeList();
  for (auto& group : optimizer.param_groups()) {
    lrs.mutable_items().push_back(
        Value::Double(static_cast<torch::optim::AdamOptions&>(group.options()).lr()));
    for (const torch::Tensor& p : group.params()) {
      auto it = optimizer.state().find(StateKey(p));
      if (it == optimizer.state().end()) {
        adam.mutable_items().push_back(Value::None());
        continue;
      }
      auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
      Value entry = Value::MakeDict();
      absl::StatusOr<Value> m = TensorValue(s.exp_avg()), v = TensorValue(s.exp_avg_sq());
      if (!m.ok()) return m.status();
      if (!v.ok()) return v.status();
      if (auto st = Put(entry, "step", Value::Int(s.step())); !st.ok()) return st;
      if (auto st = Put(entry, "exp_avg", *m); !st.ok()) return st;
      if (auto st = Put(entry, "exp_avg_sq", *v); !st.ok()) return st;
      adam.mutable_items().push_back(entry);
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
                  Put(root, "format", Value::String("dmue-cpp-training-checkpoint")),
                  Put(root, "version", Value::Int(1)), Put(root, "state_dict", *state_dict),
                  Put(root, "adam_state", adam), Put(root, "learning_rates", lrs),
                  Put(root, "training", training)}) {
    if (!st.ok()) return st;
  }
  return io::WriteCheckpoint(path, root);
}

absl::StatusOr<TrainingState> LoadTrainingCheckpoint(const std::string& path, DmueModel& model,
                                                     torch::optim::Adam& optimizer) {
  absl::StatusOr<Value> root = io::ReadCheckpoint(path);
  if (!root.ok()) return root.status();
  if (!root->is_dict()) return Missing(path, "top-level dict");
  const Value* format = root->Get("format");
  if (format == nullptr || !format->is_string() || format->as_string() != "dmue-cpp-training-checkpoint") {
    return Missing(path, "format tag");
  }
  absl::StatusOr<io::StateDict> weights = io::ToStateDict(*root, io::StateDictOptions{}, path);
  if (!weights.ok()) return weights.status();
  if (absl::Status s = LoadStateDict(*model, NamedTensors(weights->begin(), weights->end())); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }

  const Value* adam = root->Get("adam_state");
  const Value* lrs = root->Get("learning_rates");
  const Value* training = root->Get("training");
  if (adam == nullptr || !adam->is_list()) return Missing(path, "adam_state");
  if (lrs == nullptr || !lrs->is_list()) return Missing(path, "learning_rates");
  if (training == nullptr || !training->is_dict()) return Missing(path, "training");
  auto& groups = optimizer.param_groups();
  if (lrs->items().size() != groups.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": optimiser has ", groups.size(),
                                                   " parameter groups, checkpoint ", lrs->items().size()));
  }
  size_t index = 0;
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < groups.size(); ++g) {
    static_cast<torch::optim::AdamOptions&>(groups[g].options()).lr(lrs->items()[g].as_double());
    for (const torch::Tensor& p : groups[g].params()) {
      if (index >= adam->items().size()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": fewer optimiser states than parameters"));
      }
      const Value& entry = adam->items()[index++];
      optimizer.state().erase(StateKey(p));
      if (entry.is_none()) continue;
      const Value* step = entry.Get("step");
      const Value* m = entry.Get("exp_avg");
      const Value* v = entry.Get("exp_avg_sq");
      if (step == nullptr || m == nullptr || v == nullptr) return Missing(path, "Adam moments");
      absl::StatusOr<at::Tensor> mt = io::ToTensor(*m), vt = io::ToTensor(*v);
      if (!mt.ok()) return mt.status();
      if (!vt.ok()) return vt.status();
      if (mt->sizes() != p.sizes() || vt->sizes() != p.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": Adam state ", index - 1,
                                                       " does not match its parameter's shape"));
      }
      auto s = std::make_unique<torch::optim::AdamParamState>();
      s->step(step->as_int());
      s->exp_avg(mt->to(p.dtype()).contiguous(p.suggest_memory_format()).clone());
      s->exp_avg_sq(vt->to(p.dtype()).contiguous(p.suggest_memory_format()).clone());
      optimizer.state()[StateKey(p)] = std::move(s);
    }
  }
  if (index != adam->items().size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": more optimiser states than parameters"));
  }

  TrainingState state;
  auto get_int = [&](const char* key, int64_t* out) -> absl::Status {
    const Value* v = training->Get(key);
    if (v == nullptr || !v->is_int()) return Missing(path, absl::StrCat("training.", key));
    *out = v->as_int();
    return absl::OkStatus();
  };
  for (auto st : {get_int("epoch", &state.epoch), get_int("batch_in_epoch", &state.batch_in_epoch),
                  get_int("global_step", &state.global_step)}) {
    if (!st.ok()) return st;
  }
  if (const Value* v = training->Get("best_accuracy"); v && v->is_double()) state.best_accuracy = v->as_double();
  if (const Value* v = training->Get("sampler_state"); v && v->is_bytes()) state.sampler_state = v->as_bytes();
  if (const Value* v = training->Get("config"); v && v->is_string()) state.config_text = v->as_string();
  return state;
}

}  // namespace dmue::training
