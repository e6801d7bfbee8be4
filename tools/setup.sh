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
