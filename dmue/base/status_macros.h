// Early-return helpers for absl::Status / absl::StatusOr, in the style of
// TensorFlow's TF_RETURN_IF_ERROR and TF_ASSIGN_OR_RETURN:
//
//   RETURN_IF_ERROR(WriteFileAtomically(path, text));
//   ASSIGN_OR_RETURN(ModelBundle bundle, LoadModelBundle(path));
//   ASSIGN_OR_RETURN(auto image, DecodeImage(bytes, source, limits));
//
// The failed status is returned unchanged (its code and message name the
// input already). Each macro evaluates its expression exactly once.
#ifndef DMUE_BASE_STATUS_MACROS_H_
#define DMUE_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DMUE_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define DMUE_STATUS_MACROS_CONCAT_(a, b) DMUE_STATUS_MACROS_CONCAT_INNER_(a, b)

// Returns the status of `expr` (an absl::Status or absl::StatusOr) from the
// enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                                                  \
  do {                                                                         \
    if (const ::absl::Status dmue_status_ = ::dmue::status_internal::AsStatus( \
            (expr));                                                           \
        !dmue_status_.ok()) {                                                  \
      return dmue_status_;                                                     \
    }                                                                          \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, else
// moves the value into `lhs` (a declaration such as `auto x` or `Foo x`, or
// an existing variable).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  DMUE_ASSIGN_OR_RETURN_IMPL_(DMUE_STATUS_MACROS_CONCAT_(dmue_statusor_, __LINE__), lhs, rexpr)

#define DMUE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

namespace dmue::status_internal {

inline const absl::Status& AsStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace dmue::status_internal

#endif  // DMUE_BASE_STATUS_MACROS_H_
