#include "evaluation/model_contract.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dmue/base/status_context.h"
#include "dmue/base/status_macros.h"
#include "dmue/model_bundle.h"
#include "evaluation/report.h"

namespace dmue::evaluation {
namespace {

// The spec's input as the data's transform wants it. BGR is refused: the
// data are read as RGB and the transform has no channel swap, so a BGR model
// would be measured on swapped colours.
absl::StatusOr<InputContract> InputOf(const SpecFile& file) {
  const InputSpec& input = file.spec.input();
  if (input.channel_order() != InputSpec::RGB) {
    return absl::InvalidArgumentError(absl::StrCat(file.path, ": input.channel_order ",
                                                   InputSpec::ChannelOrder_Name(input.channel_order()),
                                                   " is not supported by the evaluator (it reads RGB)"));
  }
  InputContract c;
  c.origin = file.path;
  c.spec = input;
  c.resize = input.resize();
  c.crop = input.crop();
  c.mean = input.mean();
  c.std = input.std();
  c.grayscale = input.grayscale();
  return c;
}

std::vector<std::string> SpecClassNames(const SpecFile& file) {
  return {file.spec.class_names().begin(), file.spec.class_names().end()};
}

absl::StatusOr<ModelContract> FromSpec(const SpecFile& file, const std::vector<std::string>& class_names_flag,
                                       int num_classes) {
  ModelContract contract;
  contract.class_names = SpecClassNames(file);
  if (int(contract.class_names.size()) != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat("the model spec ", file.path, " has ", contract.class_names.size(),
                                                   " class names but the checkpoint has ", num_classes, " classes"));
  }
  if (!class_names_flag.empty() && class_names_flag != contract.class_names) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--class_names (", absl::StrJoin(class_names_flag, ","), ") disagrees with the model spec ", file.path,
        " (class_names ", absl::StrJoin(contract.class_names, ","), "); leave --class_names out"));
  }
  ASSIGN_OR_RETURN(InputContract input, InputOf(file));
  contract.input = std::move(input);
  return contract;
}

absl::StatusOr<ModelContract> FromFlags(const std::string& checkpoint, const std::vector<std::string>& names,
                                        int num_classes) {
  ModelContract contract;
  if (!names.empty()) {
    if (int(names.size()) != num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("--class_names has ", names.size(),
                                                     " names but the checkpoint has ", num_classes, " classes"));
    }
    contract.class_names = names;
    return contract;
  }
  contract.class_names = IndexClassNames(num_classes);
  contract.index_names = true;
  contract.warning = absl::StrCat(
      "warning: ", checkpoint, " has no model spec (", SpecPathFor(checkpoint),
      " does not exist) and no --class_names was given: classes are named 0..", num_classes - 1,
      ". Pass --class_names (in the model's output order) or --spec; names are not guessed from the class count "
      "(8 classes are FERPlus's in one order, the reference AffectNet's in another).");
  return contract;
}

}  // namespace

absl::StatusOr<std::optional<SpecFile>> FindModelSpec(const std::string& checkpoint, const std::string& spec_flag) {
  std::string path = spec_flag;
  if (path.empty()) {
    if (checkpoint.empty()) return std::nullopt;
    path = SpecPathFor(checkpoint);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::nullopt;
  }
  absl::StatusOr<ModelSpec> spec = LoadModelSpec(path);
  if (!spec.ok()) {
    if (!spec_flag.empty()) return WithContext(spec.status(), "--spec");
    return spec.status();
  }
  return SpecFile{path, *std::move(spec)};
}

absl::StatusOr<ModelContract> ResolveContract(const std::string& checkpoint, const std::optional<SpecFile>& spec,
                                              const std::vector<std::string>& class_names_flag, int num_classes) {
  if (spec.has_value()) return FromSpec(*spec, class_names_flag, num_classes);
  return FromFlags(checkpoint, class_names_flag, num_classes);
}

absl::Status CheckSameContract(const SpecFile& other, const ModelContract& contract) {
  if (!contract.index_names && SpecClassNames(other) != contract.class_names) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model spec ", other.path, " has class_names ", absl::StrJoin(SpecClassNames(other), ","),
        " but the audited model's classes are ", absl::StrJoin(contract.class_names, ",")));
  }
  if (!contract.input.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(InputContract input, InputOf(other));
  const InputContract& a = input;
  const InputContract& b = *contract.input;
  if (a.resize != b.resize || a.crop != b.crop || a.mean != b.mean || a.std != b.std || a.grayscale != b.grayscale) {
    return absl::InvalidArgumentError(absl::StrCat("the model specs ", a.origin, " and ", b.origin,
                                                   " prepare faces differently (input: resize, crop, mean, std or "
                                                   "grayscale); both models must see the same images"));
  }
  return absl::OkStatus();
}

}  // namespace dmue::evaluation
