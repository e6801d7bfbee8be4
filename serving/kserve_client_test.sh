#!/usr/bin/env bash
# The KServe v2 gRPC service of //serving:server with a client that is not
# ours: Debian's python3-grpcio + python3-protobuf, stubs generated here from
# serving/grpc/grpc_predict_v2.proto with /usr/bin/protoc and
# /usr/bin/grpc_python_plugin; the server on loopback with the random-weights
# test model (kserve_client_test.py has the checks).
set -euo pipefail
run="${TEST_SRCDIR}/dmue_cpp"
source "${run}/serving/testing/shared_dir.sh"
source "${run}/serving/testing/wait_for_port.sh"
tmp="${TEST_TMPDIR:-/tmp}/kserve_client_test"
mkdir -p "$tmp/stubs"
fail() { echo "FAIL: $*" >&2; cat "$tmp/server.log" >&2 2>/dev/null || true; exit 1; }

# /usr/bin/python3: the python3 on PATH may be another build without them.
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  fail "/usr/bin/python3 cannot import grpc and google.protobuf: install the Debian packages" \
    "python3-grpcio python3-protobuf (apt-get install python3-grpcio python3-protobuf, or tools/setup.sh)"
fi
for tool in /usr/bin/protoc /usr/bin/grpc_python_plugin; do
  [[ -x "$tool" ]] || fail "$tool is missing: install protobuf-compiler and protobuf-compiler-grpc"
done
/usr/bin/protoc --proto_path="${run}/serving/grpc" --python_out="$tmp/stubs" --grpc_python_out="$tmp/stubs" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin "${run}/serving/grpc/grpc_predict_v2.proto" \
  || fail "cannot generate the python stubs"

model=$("${run}/serving/testing/make_test_model" --output_dir="$tmp" --num_classes=8)
# grpc_port 0 means no gRPC, so a free port is picked here (the server
# refuses a port in use, so a lost race fails loudly).
free_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${run}/serving/server" --config="${run}/serving/configs/server.pbtxt" --model_path="$model" \
  --detector_dir="$shared/models/mtcnn" --host=127.0.0.1 --port=0 --grpc_port="$free_port" >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
# gRPC starts once the model is loaded: the log says when and where.
grpc_port=$(wait_for_port "$tmp/server.log" $pid "gRPC on 127.0.0.1:" 90) || fail "gRPC did not start"
/usr/bin/python3 "${run}/serving/kserve_client_test.py" "$tmp/stubs" "127.0.0.1:$grpc_port" \
  "$shared/data/photos" || fail "the python client's checks failed"
