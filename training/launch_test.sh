#!/usr/bin/env bash
# //training:launch end to end on loopback: 2 worker processes train DMUE
# (one cross-entropy epoch, then one DMUE epoch with its auxiliary branches
# joining the gradient buckets) with SyncBN on tiny synthetic faces; rank 0
# alone writes checkpoints and metrics. Then two launchers as two machines
# (--nnodes=2), a bad --node_rank, and a worker that fails (bad config) making
# the launcher fail and name the field.
source "${TEST_SRCDIR}/dmue_cpp/training/testing/synthetic_run.sh" launch_test 96
cat > "$tmp/ddp.pbtxt" <<CFG
model { backbone: RESNET18 num_classes: 3 }
train_data { $(data train true CLASS_BALANCED) num_samples: 96 }
val_data { $(data val false SEQUENTIAL) }
loss: DMUE
ce_warmup_epochs: 1
max_epoch: 2
ramp_a: 1
output_dir: "$tmp/out"
eval_every_batches: 0
log_every_batches: 1
sync_batch_norm: true
ddp_bucket_mb: 1
CFG
port=$((20000 + RANDOM % 20000))
"${run}/training/launch" --nproc=2 --master_port="$port" --train_binary="${run}/training/train" -- \
  --config="$tmp/ddp.pbtxt" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "2-process training failed"; }
grep -q "Data-parallel rank 0 of 2" "$tmp/log" || fail "rank 0 did not join"
grep -q "Data-parallel rank 1 of 2" "$tmp/log" || fail "rank 1 did not join"
grep -q "SyncBN: 36 BatchNorm layers" "$tmp/log" || fail "SyncBN not enabled on the model's 36 BatchNorm layers"
grep -q "Epoch 1 (DMUE)" "$tmp/log" || fail "no DMUE epoch"
[[ -f "$tmp/out/last.pth" ]] || fail "rank 0 wrote no last.pth"
[[ $(grep -c '"epoch"' "$tmp/out/metrics.jsonl") -ge 2 ]] || { cat "$tmp/out/metrics.jsonl"; fail "metrics.jsonl lacks the 2 epochs"; }
# Only rank 0 logs evaluations (one per epoch).
[[ $(grep -c "Acc is" "$tmp/log") -eq 2 ]] || fail "expected 2 evaluations (rank 0, one per epoch)"

# Two "machines" (two launchers of one worker each, node ranks 0 and 1) meet
# at node 0's rendezvous; per-rank BN, allreduce after backward this time.
sed -e 's/sync_batch_norm: true/sync_batch_norm: false\nddp_overlap_backward: false/' \
  -e "s|$tmp/out|$tmp/out2|" "$tmp/ddp.pbtxt" >"$tmp/nodes.pbtxt"
for node in 0 1; do
  "${run}/training/launch" --nnodes=2 --node_rank="$node" --nproc=1 --master_addr=127.0.0.1 \
    --master_port="$((port + 2))" --train_binary="${run}/training/train" -- --config="$tmp/nodes.pbtxt" \
    --max_steps=3 >"$tmp/node$node.log" 2>&1 &
  pids[node]=$!
done
wait "${pids[0]}" || { cat "$tmp/node0.log"; fail "node 0 failed"; }
wait "${pids[1]}" || { cat "$tmp/node1.log"; fail "node 1 failed"; }
grep -q "Data-parallel rank 0 of 2" "$tmp/node0.log" || fail "node 0's worker is not rank 0 of 2"
grep -q "Data-parallel rank 1 of 2" "$tmp/node1.log" || fail "node 1's worker is not rank 1 of 2"
[[ -f "$tmp/out2/last.pth" ]] || fail "the two-node run wrote no last.pth"
if "${run}/training/launch" --nnodes=2 --node_rank=2 --train_binary="${run}/training/train" -- \
  --config="$tmp/nodes.pbtxt" 2>"$tmp/rank.err"; then
  fail "--node_rank=2 of 2 was accepted"
fi
grep -q "node_rank" "$tmp/rank.err" || fail "the error does not name --node_rank"

sed 's/ddp_bucket_mb: 1/ddp_bucket_mb: 0/' "$tmp/ddp.pbtxt" >"$tmp/bad.pbtxt"
if "${run}/training/launch" --nproc=2 --master_port="$((port + 1))" --train_binary="${run}/training/train" -- \
  --config="$tmp/bad.pbtxt" >"$tmp/bad.log" 2>&1; then
  fail "the launcher succeeded with a bad config"
fi
grep -q "ddp_bucket_mb" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "the error does not name ddp_bucket_mb"; }
echo "PASS"
