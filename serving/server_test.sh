#!/usr/bin/env bash
# //serving:server as a process: live at once, ready after loading, answers
# /v1/faces, refuses a bad config with a message naming the field, and on
# SIGTERM finishes the request in flight and exits 0.
set -euo pipefail
run="${TEST_SRCDIR}/dmue_cpp"
source "${run}/serving/testing/shared_dir.sh"
source "${run}/serving/testing/wait_for_port.sh"
tmp="${TEST_TMPDIR:-/tmp}/server_test"
mkdir -p "$tmp"
fail() { echo "FAIL: $*" >&2; cat "$tmp/server.log" >&2 || true; exit 1; }
model=$("${run}/serving/testing/make_test_model" --output_dir="$tmp" --num_classes=8)
config="${run}/serving/configs/server.pbtxt"
server="${run}/serving/server"

# A bad config is refused before anything starts, naming the field.
printf 'model_path: "x"\ndetector_dir: "d"\nmax_batch_size: 0\n' > "$tmp/bad.pbtxt"
set +e
bad=$("$server" --config="$tmp/bad.pbtxt" 2>&1)
status=$?
set -e
[[ $status -eq 2 ]] || fail "bad config: exit status $status, expected 2"
grep -q "max_batch_size" <<<"$bad" || fail "bad config error does not name the field: $bad"

"$server" --config="$config" --model_path="$model" --detector_dir="$shared/models/mtcnn" \
  --host=127.0.0.1 --port=0 --grpc_port=0 >"$tmp/server.log" 2>&1 &
pid=$!
port=$(wait_for_port "$tmp/server.log" $pid "listening on http://127.0.0.1:" 30) || fail "not listening"
curl -sf "http://127.0.0.1:$port/v2/health/live" >/dev/null || fail "not live"
for _ in $(seq 1 600); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/health/ready" || true)
  [[ "$code" == 200 ]] && break
  sleep 0.1
done
[[ "$code" == 200 ]] || fail "never ready (last $code)"
reply=$(curl -sf -H 'Content-Type: image/jpeg' --data-binary @"$shared/data/photos/face_sdk_test1.jpg" \
  "http://127.0.0.1:$port/v1/faces") || fail "/v1/faces failed"
/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert len(r["faces"]) == 2, r' "$reply" \
  || fail "expected 2 faces: $reply"
# Fetched whole, then searched: `curl | grep -q` under pipefail fails when grep
# exits at the match and curl is still writing (SIGPIPE).
metrics=$(curl -sf "http://127.0.0.1:$port/metrics") || fail "/metrics failed"
grep -q 'dmue_http_requests_total{route="/v1/faces",code="200"} 1' <<<"$metrics" \
  || fail "metrics do not count the request"

# SIGTERM while a request is in flight: it still gets its answer.
curl -s -o "$tmp/inflight.json" -w '%{http_code}' -H 'Content-Type: image/jpeg' \
  --data-binary @"$shared/data/photos/fma3d_mask-sample.jpg" "http://127.0.0.1:$port/v1/faces" >"$tmp/inflight.code" &
client=$!
for _ in $(seq 1 500); do
  grep -q '^dmue_http_requests_in_flight 1' <<<"$(curl -s "http://127.0.0.1:$port/metrics")" && break
  sleep 0.01
done
kill -TERM $pid
wait $client || true
set +e
wait $pid
status=$?
set -e
[[ $status -eq 0 ]] || fail "server exit status $status after SIGTERM"
[[ "$(cat "$tmp/inflight.code")" == 200 ]] || fail "in-flight request got $(cat "$tmp/inflight.code")"
grep -q '"faces"' "$tmp/inflight.json" || fail "in-flight reply: $(cat "$tmp/inflight.json")"
grep -q "stopped" "$tmp/server.log" || fail "no 'stopped' line"
echo PASS
