#!/usr/bin/env bash
# Installs every Debian package the project needs (idempotent; a no-op when all
# are present). Run as root or with sudo available.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap bazel-platforms bazel-rules-java
  g++ zlib1g-dev
  libtorch-dev libgloo-dev libopenblas0-openmp
  libopencv-dev liblmdb-dev
  libabsl-dev libgoogle-glog-dev libgflags-dev
  libprotobuf-dev protobuf-compiler
  libgtest-dev libbenchmark-dev
  libcpp-httplib-dev nlohmann-json3-dev libgrpc++-dev protobuf-compiler-grpc
  chromium wrk curl python3
  python3-grpcio python3-protobuf
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch calls libblas.so.3; the reference BLAS is ~30x slower than OpenBLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 resolves to $blas, not OpenBLAS (slow Linear/matmul)" >&2 ;;
esac

# face-api's face-identity network (TF.js weights of dlib's ResNet face
# descriptor) for //dmue:face_descriptor_net and its tests, from the npm
# registry, pinned and checked against the registry's sha512 integrity of
# 1.7.15 (`npm view @vladmandic/face-api@1.7.15 dist.integrity`). Without
# npm or the network this only warns: the tests that need it skip.
FACE_API_VERSION=1.7.15
FACE_API_INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
FACE_API_DIR="${HOME}/.cache/dmue-npm/face-api-${FACE_API_VERSION}"

# Into the scratch folder $1; the cache is replaced only by a verified copy.
fetch_face_api() {
  local tmp="$1" tgz got
  (cd "$tmp" && npm pack --silent "@vladmandic/face-api@${FACE_API_VERSION}" >/dev/null) || return 1
  tgz="$tmp/vladmandic-face-api-${FACE_API_VERSION}.tgz"
  got="sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")"
  if [[ "$got" != "$FACE_API_INTEGRITY" ]]; then
    echo "setup: face-api tarball integrity $got, expected $FACE_API_INTEGRITY" >&2
    return 1
  fi
  mkdir -p "$tmp/out"
  tar xzf "$tgz" -C "$tmp/out" package/LICENSE package/package.json \
    package/model/face_recognition_model-weights_manifest.json package/model/face_recognition_model.bin
  echo "$FACE_API_INTEGRITY" > "$tmp/out/INTEGRITY"
  mkdir -p "$(dirname "$FACE_API_DIR")"
  rm -rf "$FACE_API_DIR"
  mv "$tmp/out" "$FACE_API_DIR"
}

if [[ "$(cat "$FACE_API_DIR/INTEGRITY" 2>/dev/null)" != "$FACE_API_INTEGRITY" ]]; then
  echo "setup: fetching @vladmandic/face-api@${FACE_API_VERSION} weights into $FACE_API_DIR"
  face_api_tmp=$(mktemp -d)
  if ! command -v npm >/dev/null || ! fetch_face_api "$face_api_tmp"; then
    echo "setup: warning: could not fetch face-api; //dmue:face_descriptor_net_test will skip" >&2
  fi
  rm -rf "$face_api_tmp"
fi
