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
#   tools/ferplus_noise_study.sh train <name> <ce|dmue> <noise rate> [extra overrides]
#   tools/ferplus_noise_study.sh branch <ce name> <dmue name>
#   tools/ferplus_noise_study.sh eval <name> [baseline name]   final weights on Valid + audit
#     (AUDIT_MAX_EXAMPLES=N audits the first N training images only)
# A DMUE run's first 5 epochs are the cross-entropy run's first 5, bit for bit
# (same config but the loss, which the warm-up does not use), so instead of
# training them twice: train the CE run with extra overrides 'max_steps: 975'
# (5 epochs of 195 steps; it stops there and saves last.pth), `branch` copies
# that state into the DMUE run (which resumes at epoch 5 with DMUE), then rerun
# the CE run's `train` without max_steps to finish it.
# Runs land in runs/noise/<name>; rerunning a step resumes it. Pack the data
# first (tools/train_ferplus.sh step 1). Each train step appends the CPU it ran
# on to <name>/machine.txt (a resumed run may have run on more than one), so
# images/s figures are read against their machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built binaries (bazel build //training:train //evaluation:audit //evaluation:evaluate
# //dmue:convert_to_inference); not `bazel info`, which waits while another
# bazel command holds the server.
BIN="${BIN:-bazel-bin}"
EPOCHS="${EPOCHS:-10}"

# One line naming this CPU and its widest vector units, e.g.
# "AMD EPYC 7B13 (family 25 model 1, AVX2)".
cpu_line() {
  local name family model isa="no AVX2"
  name="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  family="$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
  model="$(grep -m1 '^model\s*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
  if grep -qw amx_tile /proc/cpuinfo; then isa="AVX-512 + AMX"
  elif grep -qw avx512f /proc/cpuinfo; then isa="AVX-512"
  elif grep -qw avx2 /proc/cpuinfo; then isa="AVX2"; fi
  echo "${name:-unknown CPU} (family ${family:-?} model ${model:-?}, ${isa})"
}

record_machine() {
  local file="$1/machine.txt" line
  line="$(cpu_line)"
  mkdir -p "$1"
  if [[ ! -f "${file}" ]] || [[ "$(tail -n 1 "${file}")" != "${line}" ]]; then echo "${line}" >> "${file}"; fi
}

train() {
  local name="$1" loss="$2" rate="$3" extra="${4:-}"
  local noise=""
  if [[ "${rate}" != "0" ]]; then noise="label_noise_rate: ${rate} label_noise_seed: 1"; fi
  mkdir -p runs/noise
  record_machine "runs/noise/${name}"
  "${BIN}/training/train" --config="training/configs/ferplus_${loss}.pbtxt" \
    --set="max_epoch: ${EPOCHS} output_dir: 'runs/noise/${name}' train_data { min_per_class: 2 ${noise} } ${extra}" \
    >> "runs/noise/${name}.log" 2>&1
}

branch() {
  local from="runs/noise/$1" to="runs/noise/$2"
  if [[ -e "${to}/last.pth" ]]; then echo "${to} has a last.pth already" >&2; exit 1; fi
  # The first branch keeps the warm-up's state aside (in warmup/), so later
  # branches (ablations) start from it after the CE run has gone on.
  if [[ ! -d "${from}/warmup" ]]; then
    mkdir -p "${from}/warmup.tmp"
    cp "${from}/last.pth" "${from}/metrics.jsonl" "${from}/metrics.csv" "${from}/best_inference.pth" \
      "${from}/best_inference.spec.pbtxt" "${from}/warmup.tmp/"
    mv "${from}/warmup.tmp" "${from}/warmup"
  fi
  mkdir -p "${to}"
  cp "${from}"/warmup/* "${to}/"
  echo "branched ${to} from ${from}/warmup (the warm-up's state and metrics)"
}

evaluate() {
  local name="$1" run="runs/noise/$1" baseline=()
  if [[ -n "${2:-}" ]]; then baseline=(--baseline_checkpoint="runs/noise/$2/final_inference.pth"); fi
  "${BIN}/dmue/convert_to_inference" --input="${run}/last.pth" --spec="${run}/best_inference.spec.pbtxt" \
    --output="${run}/final_inference.pth"
  # fp32 pinned: AUTO picks bf16 on CPUs with fast bf16 (Intel AMX), and the
  # committed figures compare runs across machines.
  "${BIN}/evaluation/evaluate" --checkpoint="${run}/final_inference.pth" --lmdb=runs/ferplus/val \
    --list=runs/ferplus/val/labels.txt.soft --precision=fp32 --output_dir="${run}/eval"
  # The audit of the training labels a DMUE run saw (noisy ones where it had
  # noise): mined distributions against the votes, and how many flipped labels
  # each ranking finds (a cross-entropy run's auxiliary branches are untrained:
  # it is audited as the baseline of its DMUE run).
  grep -q "^loss: DMUE" "${run}/config.pbtxt" || return 0
  local audit_flags=(--max_examples="${AUDIT_MAX_EXAMPLES:-0}")  # 0: the whole training set
  if [[ -f "${run}/noisy_labels.txt" ]]; then audit_flags+=(--noisy_labels="${run}/noisy_labels.txt"); fi
  "${BIN}/evaluation/audit" --checkpoint="${run}/last.pth" --spec="${run}/best_inference.spec.pbtxt" \
    --lmdb=runs/ferplus/train --list=runs/ferplus/train/labels.txt.soft "${audit_flags[@]}" "${baseline[@]}" \
    --output_dir="${run}/audit"
}

case "${1:-}" in
  train) train "$2" "$3" "$4" "${5:-}" ;;
  branch) branch "$2" "$3" ;;
  eval) evaluate "$2" "${3:-}" ;;
  *) echo "usage: $0 train <name> <ce|dmue> <rate> [overrides] | branch <ce> <dmue> | eval <name> [baseline]" >&2
     exit 2 ;;
esac
