#!/usr/bin/env bash
# DMUE against cross entropy on FERPlus (issue 13): the same data, recipe,
# sampler, seed and epochs, only the loss differs.
#   training/configs/ferplus_ce.pbtxt   cross entropy (majority labels)
#   training/configs/ferplus_dmue.pbtxt 5 epochs of that cross entropy, then 5 of DMUE
# Every run: 10 epochs, cosine over 10, batch 128, shuffled sampling with >= 2
# samples of every class per batch (DMUE needs them; the cross-entropy runs get
# the same batches), training seed 0, 1 thread each, two runs side by side.
# Noise: label_noise_rate of the training labels flipped uniformly to another
# class, label_noise_seed 1 (the same images in every run at that rate).
#
#   tools/ferplus_noise_study.sh train <name> <ce|dmue> <noise rate>
#   tools/ferplus_noise_study.sh eval <name>      final weights on Valid + audit
# Runs land in runs/noise/<name>; rerunning a step resumes it. Pack the data
# first (tools/train_ferplus.sh step 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL_FLAGS=(--disk_cache="${HOME}/.cache/dmue-bazel-disk")
BIN="$(bazel info "${BAZEL_FLAGS[@]}" bazel-bin 2>/dev/null)"
EPOCHS="${EPOCHS:-10}"

train() {
  local name="$1" loss="$2" rate="$3"
  local noise=""
  if [[ "${rate}" != "0" ]]; then noise="label_noise_rate: ${rate} label_noise_seed: 1"; fi
  mkdir -p runs/noise
  "${BIN}/training/train" --config="training/configs/ferplus_${loss}.pbtxt" \
    --set="max_epoch: ${EPOCHS} output_dir: 'runs/noise/${name}' train_data { min_per_class: 2 ${noise} }" \
    >> "runs/noise/${name}.log" 2>&1
}

evaluate() {
  local name="$1" run="runs/noise/$1"
  "${BIN}/dmue/convert_to_inference" --input="${run}/last.pth" --spec="${run}/best_inference.spec.pbtxt" \
    --output="${run}/final_inference.pth"
  "${BIN}/evaluation/evaluate" --checkpoint="${run}/final_inference.pth" --lmdb=runs/ferplus/val \
    --list=runs/ferplus/val/labels.txt.soft --output_dir="${run}/eval"
  # The audit of the training labels the run saw (noisy ones where it had
  # noise): mined distributions against the votes, and how many flipped labels
  # the ranking finds.
  local noisy=()
  if [[ -f "${run}/noisy_labels.txt" ]]; then noisy=(--noisy_labels="${run}/noisy_labels.txt"); fi
  "${BIN}/evaluation/audit" --checkpoint="${run}/last.pth" --spec="${run}/best_inference.spec.pbtxt" \
    --lmdb=runs/ferplus/train --list=runs/ferplus/train/labels.txt.soft "${noisy[@]}" \
    --output_dir="${run}/audit"
}

case "${1:-}" in
  train) train "$2" "$3" "$4" ;;
  eval) evaluate "$2" ;;
  *) echo "usage: $0 train <name> <ce|dmue> <rate> | eval <name>" >&2; exit 2 ;;
esac
