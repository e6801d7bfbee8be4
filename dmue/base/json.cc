#include "dmue/base/json.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dmue {
namespace {

using json = nlohmann::json;

// Thrown from the parser's callback to stop at the first level beyond the cap
// (returning false would only discard that value and parse on).
struct TooDeep {};

}  // namespace

absl::StatusOr<json> ParseBoundedJson(absl::string_view text, int max_depth, absl::string_view what) {
  try {
    json value = json::parse(
        text.begin(), text.end(),
        [max_depth](int depth, json::parse_event_t, json&) {
          if (depth > max_depth) throw TooDeep{};
          return true;
        },
        /*allow_exceptions=*/false);
    if (value.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
    return value;
  } catch (const TooDeep&) {
    return absl::InvalidArgumentError(absl::StrCat(what, " nests deeper than ", max_depth, " levels"));
  }
}

const json* JsonMember(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

absl::StatusOr<int64_t> JsonInt64(const json& value, absl::string_view where) {
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", value.dump(), " is beyond int64"));
    }
    return static_cast<int64_t>(value.get<uint64_t>());
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", value.dump(), " is not an integer"));
}

}  // namespace dmue
