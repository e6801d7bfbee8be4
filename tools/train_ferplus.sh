#!/usr/bin/env bash
# Real data: DMUE vs a plain cross-entropy ResNet-18 on FERPlus (majority
# labels, 8 classes) at the same compute budget, from scratch on 2 cores.
#   1. packs ../shared/data/fer2013_ferplus Train/Valid into runs/ferplus (once);
#   2. 12 epochs of cross entropy: the baseline's first 12 epochs and DMUE's
#      warm-up are the same computation (same seed, sampler, rates), so it runs
#      once and DMUE starts from a copy of it;
#   3. DMUE epochs 12-14 (training/configs/ferplus_dmue.pbtxt);
#   4. cross-entropy epochs 12-20 (training/configs/ferplus_ce.pbtxt);
#   5. evaluates both best models on FERPlus Valid (runs/ferplus_eval_*).
# Every step resumes where it stopped when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${DMUE_SHARED_DIR:-$(cd .. && pwd)/shared}"
DATA="${SHARED}/data/fer2013_ferplus"
if [[ ! -f "${DATA}/FER2013Train/label.csv" ]]; then
  echo "FERPlus data not found under ${DATA} (set DMUE_SHARED_DIR)" >&2
  exit 2
fi
BAZEL_FLAGS=(--disk_cache="${HOME}/.cache/dmue-bazel-disk")
bazel build "${BAZEL_FLAGS[@]}" //datasets:pack_lmdb //training:train //evaluation:evaluate
BIN="$(bazel info "${BAZEL_FLAGS[@]}" bazel-bin 2>/dev/null)"
for split in Train Valid; do
  key=$(echo "${split}" | sed 's/Train/train/;s/Valid/val/')
  if [[ ! -f "runs/ferplus/${key}/labels.txt" ]]; then
    "${BIN}/datasets/pack_lmdb" --images="${DATA}/FER2013${split}" --list="${DATA}/FER2013${split}/label.csv" \
      --format=ferplus --label_mode=majority --encoding=png --resize=0 --split="${key}" \
      --output="runs/ferplus/${key}"
  fi
done
"${BIN}/training/train" --config=training/configs/ferplus_ce.pbtxt --max_epoch=12
if [[ ! -f runs/ferplus_dmue/last.pth ]]; then
  mkdir -p runs/ferplus_dmue
  # Snapshots are never rewritten: hard links; the rest is copied.
  cp -al runs/ferplus_ce/snapshots runs/ferplus_dmue/
  find runs/ferplus_ce -maxdepth 1 -type f -exec cp {} runs/ferplus_dmue/ \;
fi
"${BIN}/training/train" --config=training/configs/ferplus_dmue.pbtxt
"${BIN}/training/train" --config=training/configs/ferplus_ce.pbtxt
for run in ce dmue; do
  "${BIN}/evaluation/evaluate" --checkpoint="runs/ferplus_${run}/best_inference.pth" \
    --lmdb=runs/ferplus/val --list=runs/ferplus/val/labels.txt --resize=72 --crop=64 \
    --class_names=neutral,happiness,surprise,sadness,anger,disgust,fear,contempt \
    --output_dir="runs/ferplus_eval_${run}"
done
