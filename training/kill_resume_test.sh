#!/usr/bin/env bash
# Training killed with SIGKILL mid-epoch (no chance to save): rerunning the same
# command resumes from the last epoch's last.pth and ends with weights
# identical, byte for byte, to an uninterrupted run's (cross-entropy warm-up,
# then DMUE epochs; tiny synthetic faces, one thread).
source "${TEST_SRCDIR}/dmue_cpp/training/testing/synthetic_run.sh" kill_resume_test 192
cat > "$tmp/config.pbtxt" <<CFG
model { backbone: RESNET18 num_classes: 3 }
train_data { $(data train true SHUFFLED) min_per_class: 2 augmentation { affine_p: 0.5 erasing_p: 0.5 } }
val_data { $(data val false SEQUENTIAL) }
loss: DMUE
ce_warmup_epochs: 1
max_epoch: 4
ramp_a: 1
optimizer: SGD
nesterov: true
lr_schedule { kind: COSINE base_lr: 0.05 warmup_epochs: 1 }
label_smoothing: 0.1
num_threads: 1
eval_every_batches: 0
log_every_batches: 1
snapshot_every_epochs: 0
CFG
train() { "${run}/training/train" --config="$tmp/config.pbtxt" --output_dir="$1"; }  # output folder

train "$tmp/whole" > "$tmp/whole.log" 2>&1 || { cat "$tmp/whole.log"; fail "uninterrupted run failed"; }

# The binary itself in the background, not the function: $! of a function is
# the subshell running it, and SIGKILL to that would leave the trainer running.
"${run}/training/train" --config="$tmp/config.pbtxt" --output_dir="$tmp/killed" > "$tmp/killed.log" 2>&1 &
pid=$!
# Kill inside epoch 2 (a DMUE epoch), after epoch 1's last.pth.
for _ in $(seq 1 1200); do
  grep -q "Epoch 2 Batch 3/" "$tmp/killed.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || { cat "$tmp/killed.log"; fail "the run ended before it could be killed"; }
wait "$pid" 2>/dev/null || true
grep -q "Epoch 3 (" "$tmp/killed.log" && fail "killed too late (epoch 3 had started)"

train "$tmp/killed" > "$tmp/resumed.log" 2>&1 || { cat "$tmp/resumed.log"; fail "resumed run failed"; }
grep -q "Resumed from $tmp/killed/last.pth at epoch 2 batch 0" "$tmp/resumed.log" ||
  { grep Resumed "$tmp/resumed.log"; fail "did not resume at the start of epoch 2"; }

convert="${run}/dmue/convert_to_inference"
for r in whole killed; do
  "$convert" --input="$tmp/$r/last.pth" --num_classes=3 --output="$tmp/$r.pth" > "$tmp/convert_$r.log" 2>&1 ||
    { cat "$tmp/convert_$r.log"; fail "convert $r failed"; }
done
cmp "$tmp/whole.pth" "$tmp/killed.pth" || fail "weights after the resume differ from the uninterrupted run's"
echo "PASS: killed in epoch 2, resumed at its start, final weights identical"
