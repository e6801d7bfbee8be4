// The demo page of the inference server (serving/web/index.html), compiled in:
// //serving:server serves it at GET / (text/html). The page is self-contained
// (inline CSS and JS, no external resources) and drives POST /v1/faces.
#ifndef SERVING_WEB_INDEX_HTML_H_
#define SERVING_WEB_INDEX_HTML_H_

#include "absl/strings/string_view.h"

namespace dmue::serving::web {

// The bytes of index.html, verbatim (UTF-8); valid for the program's lifetime.
absl::string_view IndexHtml();

}  // namespace dmue::serving::web

#endif  // SERVING_WEB_INDEX_HTML_H_
