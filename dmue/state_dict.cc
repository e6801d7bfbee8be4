#include "dmue/state_dict.h"

#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace dmue {
namespace {

void Collect(const torch::nn::Module& module, const std::string& prefix, StateDict* out) {
  for (const auto& item : module.named_parameters(/*recurse=*/false)) {
    out->emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/false)) {
    out->emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& child : module.named_children()) {
    Collect(*child.value(), prefix + child.key() + ".", out);
  }
}

std::map<std::string, torch::Tensor> ByName(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [name, tensor] : ModuleStateDict(module)) by_name[name] = tensor;
  return by_name;
}

bool ParseHexDouble(absl::string_view text, double* value) {
  std::string s(text);
  char* end = nullptr;
  *value = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == '\0';
}

}  // namespace

StateDict ModuleStateDict(const torch::nn::Module& module) {
  StateDict out;
  Collect(module, "", &out);
  return out;
}

StateDict ForSaving(StateDict state) {
  for (auto& [name, tensor] : state) tensor = tensor.detach().contiguous();
  return state;
}

StateDict ModuleStateDictForSaving(const torch::nn::Module& module) { return ForSaving(ModuleStateDict(module)); }

absl::Status LoadStateDict(torch::nn::Module& module, const StateDict& state, const LoadOptions& options) {
  std::map<std::string, torch::Tensor> targets = ByName(module);
  std::set<std::string> seen;
  std::vector<std::string> unexpected, mismatched;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      bool ignored = false;
      for (const std::string& s : options.ignore_substrings) {
        ignored = ignored || name.find(s) != std::string::npos;
      }
      if (!ignored) unexpected.push_back(name);
      continue;
    }
    if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(absl::StrCat(name, " (checkpoint ", c10::str(tensor.sizes()),
                                        ", model ", c10::str(it->second.sizes()), ")"));
      continue;
    }
    it->second.copy_(tensor);
    seen.insert(name);
  }
  std::vector<std::string> missing;
  for (const auto& [name, tensor] : targets) {
    if (!seen.count(name)) missing.push_back(name);
  }
  if (!mismatched.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape mismatch for ", mismatched.size(), " tensor(s): ",
                     absl::StrJoin(mismatched.begin(),
                                   mismatched.begin() + std::min<size_t>(mismatched.size(), 5),
                                   "; ")));
  }
  if (options.strict && (!missing.empty() || !unexpected.empty())) {
    auto head = [](const std::vector<std::string>& v) {
      return absl::StrJoin(v.begin(), v.begin() + std::min<size_t>(v.size(), 5), ", ");
    };
    return absl::InvalidArgumentError(absl::StrCat(
        "state dict does not match the model: ", missing.size(), " missing key(s) [",
        head(missing), "], ", unexpected.size(), " unexpected key(s) [", head(unexpected), "]"));
  }
  return absl::OkStatus();
}

absl::Status ReplayInitSequence(torch::nn::Module& module, const std::string& tsv_path,
                                uint64_t seed) {
  std::ifstream in(tsv_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open init sequence '", tsv_path, "'"));
  std::map<std::string, torch::Tensor> targets = ByName(module);
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = absl::StrSplit(line, '\t');
    if (cols[0] == "step") continue;  // header
    auto where = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(tsv_path, ":", line_number, ": ", why, ": '", line, "'"));
    };
    if (cols[0] == "const") {
      // const <key> <shape> fill <value> ...: constants that consume no randomness.
      if (cols.size() < 5 || cols[3] != "fill") return where("expected 'const key shape fill value'");
      auto it = targets.find(cols[1]);
      if (it == targets.end()) return where("unknown key");
      double value;
      if (!absl::SimpleAtod(cols[4], &value)) return where("bad value");
      it->second.fill_(value);
      continue;
    }
    if (cols.size() < 8) return where("expected 8 columns");
    auto it = targets.find(cols[1]);
    if (it == targets.end()) return where("unknown key");
    double a, b;
    if (!ParseHexDouble(cols[6], &a) || !ParseHexDouble(cols[7], &b)) return where("bad hex double");
    torch::Tensor t = torch::empty(it->second.sizes());
    if (cols[3] == "uniform_") {
      t.uniform_(a, b);
    } else if (cols[3] == "normal_") {
      t.normal_(a, b);
    } else {
      return where("unknown op");
    }
    it->second.copy_(t);
  }
  return absl::OkStatus();
}

}  // namespace dmue
