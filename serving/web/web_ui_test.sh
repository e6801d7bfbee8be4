#!/usr/bin/env bash
# Runs web_ui_test.py (standard library only) with Debian's python3.
set -euo pipefail
if [[ -n "${TEST_SRCDIR:-}" ]]; then
  driver="${TEST_SRCDIR}/dmue_cpp/serving/web/web_ui_test.py"
else
  driver="$(dirname "$0")/web_ui_test.py"
fi
python=/usr/bin/python3
[[ -x "$python" ]] || python=python3
exec "$python" "$driver" "$@"
