#!/usr/bin/env bash
# Builds the libFuzzer targets of tools/fuzz (clang, ASan + UBSan) and runs
# each for a stated number of executions over the committed seed corpus,
# under memory and time limits; prints target, executions, seconds, findings.
#
#   tools/fuzz/run_fuzzers.sh [target...]        (default: every target)
#
# Environment:
#   FUZZ_RUNS        executions per torch-free target (default 1000000); when
#                    set it also caps the LibTorch target
#   FUZZ_TORCH_RUNS  executions of the checkpoint (LibTorch) target (default
#                    20000, or FUZZ_RUNS if that is smaller)
#   FUZZ_OUT         work folder (default: a new /tmp/dmue-fuzz.XXXXXX) with
#                    corpus/<target>/ (seeds + what the fuzzer added),
#                    findings/<target>/ (crash-*, leak-*, timeout-*, oom-*)
#                    and logs/<target>.log
#   FUZZ_OUTPUT_BASE Bazel output base for the clang build (default
#                    ~/.cache/dmue-fuzz-base; separate so the main gcc cache
#                    stays valid)
# Exit status: 0 when no target found anything, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly ALL_TARGETS=(pickle zip checkpoint image label_list fer2013_csv serving_request)
readonly TORCH_TARGETS=" checkpoint "

# -max_len per target: room to grow past the largest seed (the FER2013 row is
# 4.7 KB; checkpoint seeds are up to 2.5 KB) without wasting executions on
# megabyte inputs that only repeat the same paths.
max_len_for() {
  case "$1" in
    fer2013_csv) echo 16384 ;;
    label_list) echo 4096 ;;
    *) echo 8192 ;;
  esac
}

# clang, libFuzzer's runtime and lld come from Debian (bookworm: clang-14,
# libclang-rt-14-dev, lld-14).
ensure_toolchain() {
  local fuzzer_rt
  fuzzer_rt=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | head -1 || true)
  if command -v clang >/dev/null && command -v ld.lld >/dev/null && [[ -n "$fuzzer_rt" ]]; then
    return
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "run_fuzzers: installing clang, libclang-rt-14-dev, lld"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    clang libclang-rt-14-dev lld
}

runs_for() {
  local target=$1
  local runs=${FUZZ_RUNS:-1000000}
  if [[ "$TORCH_TARGETS" == *" $target "* ]]; then
    local torch_runs=${FUZZ_TORCH_RUNS:-20000}
    if [[ -n "${FUZZ_RUNS:-}" && -z "${FUZZ_TORCH_RUNS:-}" && $FUZZ_RUNS -lt $torch_runs ]]; then
      torch_runs=$FUZZ_RUNS
    fi
    runs=$torch_runs
  fi
  echo "$runs"
}

bazel_fuzz() {
  nice -n 19 bazel --output_base="$OUTPUT_BASE" "$@"
}

# Runs one fuzzer; appends "target runs executed seconds findings" to $SUMMARY.
run_target() {
  local target=$1 bin_dir=$2
  local runs corpus findings log start end executed seconds found
  runs=$(runs_for "$target")
  corpus="$OUT/corpus/$target"
  findings="$OUT/findings/$target"
  log="$OUT/logs/$target.log"
  mkdir -p "$corpus" "$findings"
  "$bin_dir/decode_seeds" "$corpus" "tools/fuzz/corpus/$target" >/dev/null
  echo "run_fuzzers: $target: $runs executions (log: $log)"
  start=$(date +%s.%N)
  # A finding makes libFuzzer exit non-zero; the table reports it.
  nice -n 19 "$bin_dir/${target}_fuzzer" \
    -runs="$runs" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -max_len="$(max_len_for "$target")" -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" >"$log" 2>&1 || true
  end=$(date +%s.%N)
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
  found=$(find "$findings" -type f | wc -l)
  echo "$target ${runs} ${executed:-?} $seconds $found" >>"$SUMMARY"
}

print_table() {
  printf '\n%-12s %12s %12s %9s %9s\n' target requested executed seconds findings
  while read -r target runs executed seconds found; do
    printf '%-12s %12s %12s %9s %9s\n' "$target" "$runs" "$executed" "$seconds" "$found"
  done <"$SUMMARY"
  echo
  echo "corpus, findings and logs: $OUT"
}

main() {
  local targets=("$@")
  if ((${#targets[@]} == 0)); then targets=("${ALL_TARGETS[@]}"); fi
  OUTPUT_BASE=${FUZZ_OUTPUT_BASE:-$HOME/.cache/dmue-fuzz-base}
  OUT=${FUZZ_OUT:-$(mktemp -d /tmp/dmue-fuzz.XXXXXX)}
  SUMMARY="$OUT/summary.txt"
  mkdir -p "$OUT/logs"
  : >"$SUMMARY"
  ensure_toolchain

  local labels=(//tools/fuzz:decode_seeds)
  for target in "${targets[@]}"; do labels+=("//tools/fuzz:${target}_fuzzer"); done
  bazel_fuzz build --config=fuzz --jobs=1 "${labels[@]}"
  local bin_dir
  bin_dir="$(bazel_fuzz info --config=fuzz bazel-bin 2>/dev/null)/tools/fuzz"

  # Uninstrumented LibTorch/OpenCV: see tools/fuzz/README.md for each option.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  # Threads only add noise; the machine has two cores.
  export OMP_NUM_THREADS=1

  for target in "${targets[@]}"; do run_target "$target" "$bin_dir"; done
  print_table
  if awk '$5 > 0 { bad = 1 } END { exit bad ? 0 : 1 }' "$SUMMARY"; then
    echo "run_fuzzers: findings above; reproduce one with" \
      "bazel run //tools/fuzz:<target>_fuzzer -- <file>" >&2
    exit 1
  fi
}

main "$@"
