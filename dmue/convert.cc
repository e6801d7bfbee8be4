#include "dmue/convert.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace dmue {

StateDict StripModulePrefix(const StateDict& state) {
  StateDict out;
  out.reserve(state.size());
  for (const auto& [name, tensor] : state) {
    out.emplace_back(std::string(absl::StripPrefix(name, "module.")), tensor);
  }
  return out;
}

absl::StatusOr<StateDict> ConvertToInference(const StateDict& multi_branch, int num_classes) {
  const std::string main = absl::StrCat(num_classes);
  StateDict out;
  bool saw_main_layer4 = false, saw_main_classifier = false;
  for (const auto& [raw_name, tensor] : StripModulePrefix(multi_branch)) {
    absl::string_view name = raw_name;
    if (absl::StartsWith(name, "base.layer4_")) {
      absl::string_view rest = absl::StripPrefix(name, "base.layer4_");
      const size_t dot = rest.find('.');
      int branch;
      if (dot == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, dot), &branch)) {
        return absl::InvalidArgumentError(absl::StrCat("unexpected key '", name, "'"));
      }
      if (branch > num_classes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "key '", name, "' has branch ", branch, " but num_classes is ", num_classes,
            " (branches 0..", num_classes, "); is the class count right?"));
      }
      if (branch == num_classes) {
        out.emplace_back(absl::StrCat("base.layer4", rest.substr(dot)), tensor);
        saw_main_layer4 = true;
      }
    } else if (absl::StartsWith(name, "project_w.")) {
      continue;
    } else if (absl::StartsWith(name, "classifiers.")) {
      absl::string_view rest = absl::StripPrefix(name, "classifiers.");
      const size_t dot = rest.find('.');
      if (rest.substr(0, dot) == main) {
        out.emplace_back(absl::StrCat("classifiers.0", rest.substr(dot)), tensor);
        saw_main_classifier = true;
      }
    } else {
      out.emplace_back(std::string(name), tensor);
    }
  }
  if (!saw_main_layer4 || !saw_main_classifier) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a multi-branch DMUE state dict for ", num_classes, " classes: ",
        saw_main_layer4 ? "" : "no base.layer4_" + main + ".* keys ",
        saw_main_classifier ? "" : "no classifiers." + main + ".* keys"));
  }
  return out;
}

}  // namespace dmue
