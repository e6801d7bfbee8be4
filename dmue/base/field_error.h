// Field-named validation errors for config and option messages, the one
// formatter every validator uses so that errors read alike everywhere:
//
//   constexpr FieldErrors kFieldError("ModelConfig");
//   return kFieldError("backbone", "must be RESNET18 or RESNET50_IBN");
//   // -> InvalidArgument "ModelConfig.backbone: must be RESNET18 or RESNET50_IBN"
//   RETURN_IF_ERROR(kFieldError.Nested("model", ValidateModelConfig(config.model())));
//   // -> "TrainerConfig.model: ModelConfig.num_classes: ..."
#ifndef DMUE_BASE_FIELD_ERROR_H_
#define DMUE_BASE_FIELD_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace dmue {

// InvalidArgument "<message>.<field>: <why>".
absl::Status FieldError(absl::string_view message, absl::string_view field, absl::string_view why);

// OK stays OK; an error becomes InvalidArgument "<message>.<field>: <its
// message>" (what a nested message's validator said, placed in the outer one).
absl::Status NestedFieldError(absl::string_view message, absl::string_view field, const absl::Status& status);

// FieldError / NestedFieldError with the message name bound once per validator.
class FieldErrors {
 public:
  constexpr explicit FieldErrors(absl::string_view message) : message_(message) {}

  absl::Status operator()(absl::string_view field, absl::string_view why) const {
    return FieldError(message_, field, why);
  }
  absl::Status Nested(absl::string_view field, const absl::Status& status) const {
    return NestedFieldError(message_, field, status);
  }

 private:
  absl::string_view message_;
};

}  // namespace dmue

#endif  // DMUE_BASE_FIELD_ERROR_H_
