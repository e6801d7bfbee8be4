#!/usr/bin/env bash
# Data-parallel speed on this machine: end-to-end training images/s (data
# loading included) of 1 process with batch 64 against N local processes with
# batch 64/N each (the same global batch), with per-rank BN and with SyncBN,
# for DMUE and for plain cross entropy (no skipped batches: DMUE skips a batch
# when a rank's half lacks 2 samples of a class, which at 32 samples and 7
# classes is common; skipped batches count as time, not as images).
# The launcher gives each worker cores/N threads. Run it alone: anything else
# on the machine distorts the figures.
#   tools/ddp_speed.sh            # N=2, 30 steps each
#   NPROC=2 STEPS=60 tools/ddp_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NPROC="${NPROC:-2}"
STEPS="${STEPS:-30}"
BAZEL_FLAGS=(--disk_cache="${HOME}/.cache/dmue-bazel-disk")
bazel build "${BAZEL_FLAGS[@]}" //datasets:make_synthetic //training:train //training:launch
BIN="$(bazel info "${BAZEL_FLAGS[@]}" bazel-bin 2>/dev/null)"
if [[ ! -f runs/synthetic_data/train_list.txt ]]; then
  "${BIN}/datasets/make_synthetic" --output_dir="$PWD/runs/synthetic_data" --num_train=20000 --num_val=2000 \
    --num_classes=7 --noise=0.1 --seed=0
fi
out=runs/ddp_speed
rm -rf "$out" && mkdir -p "$out"
# From the first step (no warm-up), never evaluating within the steps.
config() {  # loss, per-rank batch, sync_batch_norm, overlap
  sed -e "s/^ce_warmup_epochs: .*/ce_warmup_epochs: 0/" -e "s/^loss: .*/loss: $1/" \
      -e "0,/  batch_size: 64/s//  batch_size: $2/" training/configs/synthetic.pbtxt
  echo "sync_batch_norm: $3"
  echo "ddp_overlap_backward: ${4:-true}"
}
rate() { grep -o '[0-9.]* images/s' "$1" | tail -1 | cut -d' ' -f1; }
skipped() { grep -o 'skipped batches [0-9]*' "$1" | tail -1 | cut -d' ' -f3; }

per_rank=$((64 / NPROC))
for loss in DMUE CROSS_ENTROPY; do
  config "$loss" 64 false true >"$out/${loss}_single.pbtxt"
  "${BIN}/training/train" --config="$out/${loss}_single.pbtxt" --output_dir="$out/${loss}_single" \
    --max_steps="$STEPS" >"$out/${loss}_single.log" 2>&1
  single=$(rate "$out/${loss}_single.log")
  echo "$loss: 1 process, batch 64, 2 threads: ${single} images/s, $(skipped "$out/${loss}_single.log") batches skipped"
  for variant in "false true" "true true" "false false"; do
    read -r sync overlap <<<"$variant"
    run="${loss}_ddp_sync_${sync}_overlap_${overlap}"
    config "$loss" "$per_rank" "$sync" "$overlap" >"$out/$run.pbtxt"
    "${BIN}/training/launch" --nproc="$NPROC" --master_port=$((29500 + RANDOM % 1000)) -- \
      --config="$out/$run.pbtxt" --output_dir="$out/$run" --max_steps="$STEPS" >"$out/$run.log" 2>&1
    # Rank 0 reports its own images/s; every rank trains on as many.
    r=$(rate "$out/$run.log")
    awk -v r="$r" -v n="$NPROC" -v s="$single" -v b="$per_rank" -v sync="$sync" -v k="$(skipped "$out/$run.log")" \
      -v loss="$loss" -v o="$overlap" 'BEGIN { printf "%s: %d processes, batch %d each, sync_batch_norm=%s, " \
      "overlap=%s: %.1f images/s in all (%.2fx one process), %d batches skipped\n", loss, n, b, sync, o, r * n,
      r * n / s, k }'
  done
done
echo "logs: $out/*.log"
