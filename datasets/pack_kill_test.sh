#!/usr/bin/env bash
# pack_lmdb killed with SIGKILL half-way: the half-packed database is refused
# by --verify with a message saying how to resume, and rerunning the same
# command completes it to the same records and label list as an uninterrupted
# pack. The images come from a FER2013-style pixel csv made here.
set -euo pipefail
bin="${TEST_SRCDIR}/dmue_cpp/datasets/pack_lmdb"
tmp="${TEST_TMPDIR:-/tmp}/pack_kill_test"
rm -rf "$tmp" && mkdir -p "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

rows=2500
awk -v n="$rows" 'BEGIN {
  print "emotion,pixels,Usage"
  for (r = 0; r < n; ++r) {
    line = ""
    for (p = 0; p < 2304; ++p) line = line (p ? " " : "") ((r * 7 + p * 13 + int(p / 48) * r) % 256)
    print (r % 7) "," line ",Training"
  }
}' > "$tmp/fer2013.csv"

pack_flags=(--format=fer2013_csv --list="$tmp/fer2013.csv" --encoding=png --resize=192 --commit_every=50)
pack() { "$bin" "${pack_flags[@]}" --output="$1"; }  # output folder

pack "$tmp/whole" > "$tmp/whole.log" 2>&1 || { cat "$tmp/whole.log"; fail "uninterrupted pack failed"; }

# The binary itself in the background, not the function: $! of a function is
# the subshell running it, and SIGKILL to that would leave pack_lmdb writing on.
"$bin" "${pack_flags[@]}" --output="$tmp/killed" > "$tmp/killed.log" 2>&1 &
pid=$!
# Kill once some transactions are committed, long before the end.
for _ in $(seq 1 600); do
  size=$(stat -c %s "$tmp/killed/data.mdb" 2>/dev/null || echo 0)
  [[ "$size" -gt 2000000 ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || fail "the pack ended before it could be killed (make it longer)"
wait "$pid" 2>/dev/null || true

if "$bin" --verify --output="$tmp/killed" > "$tmp/verify_half.log" 2>&1; then
  cat "$tmp/verify_half.log"
  fail "--verify accepted a half-packed database"
fi
grep -q "rerun the same pack_lmdb command" "$tmp/verify_half.log" ||
  { cat "$tmp/verify_half.log"; fail "--verify does not say how to resume"; }

pack "$tmp/killed" > "$tmp/resumed.log" 2>&1 || { cat "$tmp/resumed.log"; fail "resumed pack failed"; }
"$bin" --verify --output="$tmp/killed" > "$tmp/verify.log" 2>&1 || { cat "$tmp/verify.log"; fail "--verify refused the completed pack"; }
"$bin" --verify --output="$tmp/whole" > "$tmp/verify_whole.log" 2>&1 || fail "--verify refused the uninterrupted pack"
cmp "$tmp/whole/labels.txt" "$tmp/killed/labels.txt" || fail "label lists differ after the resume"
[[ $(wc -l < "$tmp/killed/labels.txt") -eq "$rows" ]] || fail "expected $rows labels"
# Same number of records, every one decodes (verify), same summary line.
grep -o "[0-9]* records" "$tmp/verify.log" > "$tmp/a"
grep -o "[0-9]* records" "$tmp/verify_whole.log" > "$tmp/b"
cmp "$tmp/a" "$tmp/b" || { cat "$tmp/verify.log" "$tmp/verify_whole.log"; fail "record counts differ"; }
echo "PASS: killed pack refused by --verify, resumed to the same $rows records"
