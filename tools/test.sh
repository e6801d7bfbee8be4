#!/usr/bin/env bash
# Installs what is missing, then builds everything and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec bazel test --disk_cache="${HOME}/.cache/dmue-bazel-disk" //... "$@"
