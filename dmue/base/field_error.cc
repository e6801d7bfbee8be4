#include "dmue/base/field_error.h"

#include "absl/strings/str_cat.h"

namespace dmue {

absl::Status FieldError(absl::string_view message, absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(message, ".", field, ": ", why));
}

absl::Status NestedFieldError(absl::string_view message, absl::string_view field, const absl::Status& status) {
  if (status.ok()) return status;
  return FieldError(message, field, status.message());
}

}  // namespace dmue
