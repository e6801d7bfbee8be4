#!/usr/bin/env bash
# Loopback load test of //serving:server on a one-face photo: throughput and
# p50 / p90 / p99 latency at concurrency 1, 8 and 32, then 10,000 requests at
# concurrency 8 with the server's resident memory sampled before and after.
# Run it alone (2 cores): usage tools/serving_load_test.sh [bundle.pth] [photo]
# (default: the shipped bundle). SERVER_SET="crop_flow: EXACT" (any ServerConfig
# fields in text format) is passed to the server as --set.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-serving/models/ferplus_resnet18.pth}"
PHOTO="${2:-../shared/data/photos/test1.jpg}"
REQUESTS="${REQUESTS:-1000}"
LONG_REQUESTS="${LONG_REQUESTS:-10000}"
PORT="${PORT:-18080}"
SERVER_SET="${SERVER_SET:-}"
BAZEL_FLAGS=(--disk_cache="${HOME}/.cache/dmue-bazel-disk")
bazel build "${BAZEL_FLAGS[@]}" //serving:server //serving:load_bench
BIN="$(bazel info "${BAZEL_FLAGS[@]}" bazel-bin 2>/dev/null)"
LOG="${TMPDIR:-/tmp}/dmue_server_load.log"
"${BIN}/serving/server" --config=serving/configs/server.pbtxt --model_path="${MODEL}" \
  --set="${SERVER_SET}" --host=127.0.0.1 --port="${PORT}" --grpc_port=0 >"${LOG}" 2>&1 &
SERVER=$!
trap 'kill -TERM ${SERVER} 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT}/v2/health/ready" || true)" == 200 ]] && break
  sleep 0.1
done
echo "server pid ${SERVER}, model ${MODEL}, photo ${PHOTO}, --set='${SERVER_SET}'"
"${BIN}/serving/load_bench" --port="${PORT}" --photo="${PHOTO}" --concurrency=1,8,32 \
  --requests="${REQUESTS}" --server_pid="${SERVER}"
echo "memory over ${LONG_REQUESTS} requests (concurrency 8):"
"${BIN}/serving/load_bench" --port="${PORT}" --photo="${PHOTO}" --concurrency=8 \
  --requests="${LONG_REQUESTS}" --warmup=0 --server_pid="${SERVER}"
if command -v wrk >/dev/null; then
  # wrk cannot post a binary file itself: a Lua script carries the photo.
  LUA="${TMPDIR:-/tmp}/dmue_wrk.lua"
  cat >"${LUA}" <<LUA
local f = io.open("${PHOTO}", "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
LUA
  for c in 1 8 32; do
    echo "wrk -t1 -c${c} -d15s --latency (POST /v1/faces):"
    wrk -t1 -c"${c}" -d15s --latency -s "${LUA}" "http://127.0.0.1:${PORT}/v1/faces" | \
      grep -E "Latency|50%|99%|Requests/sec|Non-2xx|Socket errors|requests in"
  done
fi
curl -s "http://127.0.0.1:${PORT}/metrics" | grep -E "^dmue_batch_size_(sum|count)|^dmue_http_requests_total" || true
