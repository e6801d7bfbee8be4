#!/usr/bin/env bash
# Real data (README "Real data"): ResNet-18 from scratch on FERPlus Train,
# one model trained on the majority labels and one on the vote distributions,
# same images, augmentation, optimiser and budget (training/configs/
# ferplus_{ce,votes}.pbtxt), then both evaluated on FERPlus Valid.
#   1. packs ../shared/data/fer2013_ferplus Train/Valid into runs/ferplus
#      (majority labels; labels.txt.soft adds each image's vote distribution);
#   2. trains both runs side by side, one thread each (two 1-thread runs get
#      through ~20% more images per second on 2 cores than one 2-thread run);
#      RUNS="ce" (or "votes") trains one;
#   3. evaluates each run's final model on Valid against the majority labels
#      and the votes (runs/ferplus_eval_<run>/);
#   4. draws the curves and writes the results table
#      (evaluation/results/ferplus/).
# Every step resumes where it stopped when rerun (Ctrl-C saves last.pth).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${DMUE_SHARED_DIR:-$(cd .. && pwd)/shared}"
DATA="${SHARED}/data/fer2013_ferplus"
RUNS="${RUNS:-ce votes}"
if [[ ! -f "${DATA}/FER2013Train/label.csv" ]]; then
  echo "FERPlus data not found under ${DATA} (set DMUE_SHARED_DIR)" >&2
  exit 2
fi
BAZEL_FLAGS=(--disk_cache="${HOME}/.cache/dmue-bazel-disk")
bazel build "${BAZEL_FLAGS[@]}" //datasets:pack_lmdb //training:train //training:plot_runs \
  //evaluation:evaluate //dmue:convert_to_inference
BIN="$(bazel info "${BAZEL_FLAGS[@]}" bazel-bin 2>/dev/null)"

for split in Train Valid; do
  key=$(echo "${split}" | sed 's/Train/train/;s/Valid/val/')
  if [[ ! -f "runs/ferplus/${key}/labels.txt.soft" ]]; then
    "${BIN}/datasets/pack_lmdb" --images="${DATA}/FER2013${split}" --list="${DATA}/FER2013${split}/label.csv" \
      --format=ferplus --label_mode=majority --keep_distribution --encoding=png --resize=0 --split="${key}" \
      --output="runs/ferplus/${key}"
  fi
done

pids=()
for run in ${RUNS}; do
  "${BIN}/training/train" --config="training/configs/ferplus_${run}.pbtxt" > "runs/ferplus_${run}.log" 2>&1 &
  pids+=($!)
  echo "training ${run}: log in runs/ferplus_${run}.log"
done
trap 'kill -INT "${pids[@]}" 2>/dev/null; wait' INT TERM
for pid in "${pids[@]}"; do wait "${pid}"; done
trap - INT TERM

for run in ${RUNS}; do
  # The final weights (no model selection on Valid), as a bundle.
  "${BIN}/dmue/convert_to_inference" --input="runs/ferplus_${run}/last.pth" \
    --spec="runs/ferplus_${run}/best_inference.spec.pbtxt" --output="runs/ferplus_${run}/final_inference.pth"
  "${BIN}/evaluation/evaluate" --checkpoint="runs/ferplus_${run}/final_inference.pth" \
    --lmdb=runs/ferplus/val --list=runs/ferplus/val/labels.txt.soft --output_dir="runs/ferplus_eval_${run}"
done
mkdir -p evaluation/results/ferplus
curves=()
for run in ${RUNS}; do curves+=("${run}=runs/ferplus_${run}"); done
runs_flag=$(IFS=,; echo "${curves[*]}")
"${BIN}/training/plot_runs" --runs="${runs_flag}" --metric=eval:accuracy --title="FERPlus Valid accuracy (ResNet-18 from scratch)" \
  --y_label="accuracy (majority label)" --output=evaluation/results/ferplus/valid_accuracy.png
"${BIN}/training/plot_runs" --runs="${runs_flag}" --metric=train:loss --x_is_step \
  --title="Training loss (cross entropy to the targets)" --y_label="loss" --output=evaluation/results/ferplus/train_loss.png
python3 tools/ferplus_results.py ${RUNS}
