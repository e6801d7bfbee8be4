// The contract of the model an evaluation or an audit runs: its class names
// in output order and how a face is prepared (resize, crop, mean / std,
// grey), read from its ModelSpec (dmue/model_spec.proto): the file --spec
// names, else the one beside the checkpoint (`x.pth` -> `x.spec.pbtxt`).
// The model is then measured on what it saw in training, and its report
// names its classes without anyone restating them.
//
// With a spec, --class_names must equal the spec's names (and --resize /
// --crop its input, checked where the data are opened, eval_data.h); the
// architecture is checked against the checkpoint by model_loading.h.
// Without a spec the flags are the contract, and class names are not guessed
// from the class count (the reference's 8-class AffectNet order is not
// FERPlus's): without --class_names they are "0".."C-1", with a warning.
#ifndef EVALUATION_MODEL_CONTRACT_H_
#define EVALUATION_MODEL_CONTRACT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "evaluation/eval_data.h"
#include "evaluation/model_loading.h"

namespace dmue::evaluation {

// The spec for `checkpoint`: `spec_flag` when given (it must exist), else the
// one beside the checkpoint when it exists, else nullopt. Validated.
absl::StatusOr<std::optional<SpecFile>> FindModelSpec(const std::string& checkpoint, const std::string& spec_flag);

struct ModelContract {
  std::vector<std::string> class_names;  // output order
  bool index_names = false;              // nobody named the classes: "0".."C-1"
  std::optional<InputContract> input;    // the spec's (nullopt: the flags decide)
  std::string warning;                   // for the user when non-empty
};

// The contract of `checkpoint`, a model of `num_classes` classes, with its
// spec (if any) and --class_names (empty: not given).
absl::StatusOr<ModelContract> ResolveContract(const std::string& checkpoint, const std::optional<SpecFile>& spec,
                                              const std::vector<std::string>& class_names_flag, int num_classes);

// A second model run on the same images (the audit's baseline): its spec
// must agree with `contract` on the classes and the input, or its numbers
// would be of another preparation.
absl::Status CheckSameContract(const SpecFile& other, const ModelContract& contract);

}  // namespace dmue::evaluation

#endif  // EVALUATION_MODEL_CONTRACT_H_
