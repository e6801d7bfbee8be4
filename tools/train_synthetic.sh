#!/usr/bin/env bash
# The main job: installs what is missing, generates the embedded synthetic
# face data set (once), and trains DMUE on it end to end (~10 min on 2 cores).
# Extra arguments go to the trainer, e.g. --output_dir=runs/other.
# Interrupt with Ctrl-C: it saves runs/synthetic_dmue/last.pth; rerunning
# resumes from there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BAZEL_FLAGS=(--disk_cache="${HOME}/.cache/dmue-bazel-disk")
bazel build "${BAZEL_FLAGS[@]}" //datasets:make_synthetic //training:train
if [[ ! -f runs/synthetic_data/train_list.txt ]]; then
  bazel run "${BAZEL_FLAGS[@]}" //datasets:make_synthetic -- \
    --output_dir="$PWD/runs/synthetic_data" --num_train=20000 --num_val=2000 \
    --num_classes=7 --noise=0.1 --seed=0
fi
exec bazel run "${BAZEL_FLAGS[@]}" //training:train -- \
  --config=training/configs/synthetic.pbtxt "$@"
