// Reading untrusted JSON (serving requests, TF.js weight manifests): one parse
// with a nesting cap and typed access whose errors say where a value sits.
// nlohmann/json parses iteratively, but a hostile nesting still builds a deep
// value every later walk must descend; the cap stops the parse at the first
// level beyond it.
#ifndef DMUE_BASE_JSON_H_
#define DMUE_BASE_JSON_H_

#include <cstdint>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dmue {

// Parses `text`. InvalidArgument "<what> is not valid JSON" or "<what> nests
// deeper than <max_depth> levels", `what` naming the input (a path, "request
// body").
absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text, int max_depth, absl::string_view what);

// The member `key` of `object`, or null when absent or `object` is no object.
const nlohmann::json* JsonMember(const nlohmann::json& object, const char* key);

// `value` as an int64: InvalidArgument "<where>: <value> is not an integer" or
// "... is beyond int64" (an unsigned above INT64_MAX).
absl::StatusOr<int64_t> JsonInt64(const nlohmann::json& value, absl::string_view where);

}  // namespace dmue

#endif  // DMUE_BASE_JSON_H_
