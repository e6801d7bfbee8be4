// Context for an error passed up: the same code, the message prefixed with
// what was being done or read, so that the outer caller's error still names
// its input:
//
//   ASSIGN_OR_RETURN(auto loader, WithContext(MakeLoader(config.train_data()), "train_data"));
//   // -> the loader's code, "train_data: <the loader's message>"
//   RETURN_IF_ERROR(WithContext(Read(path), path));
#ifndef DMUE_BASE_STATUS_CONTEXT_H_
#define DMUE_BASE_STATUS_CONTEXT_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue {

// OK stays OK; an error keeps its code and reads "<context>: <its message>".
absl::Status WithContext(const absl::Status& status, absl::string_view context);

// The value passes through; an error is prefixed as above.
template <typename T>
absl::StatusOr<T> WithContext(absl::StatusOr<T> status_or, absl::string_view context) {
  if (status_or.ok()) return status_or;
  return WithContext(status_or.status(), context);
}

}  // namespace dmue

#endif  // DMUE_BASE_STATUS_CONTEXT_H_
