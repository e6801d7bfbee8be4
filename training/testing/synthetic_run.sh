# Sourced by the training shell tests: a fresh work folder, fail(), tiny
# synthetic faces (3 classes, 40x40) and data() printing a DatasetConfig body.
#   source training/testing/synthetic_run.sh <test name> <training images>
set -euo pipefail
run="${TEST_SRCDIR}/dmue_cpp"
tmp="${TEST_TMPDIR:-/tmp}/$1"
rm -rf "$tmp" && mkdir -p "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

"${run}/datasets/make_synthetic" --output_dir="$tmp/data" --num_train="$2" --num_val=24 --size=40 \
  --num_classes=3 --contact_per_class=1 >/dev/null
data() {  # split, augment, sampler
  cat <<CFG
  lmdb_path: "$tmp/data/lmdb" list_path: "$tmp/data/$1_list.txt" list_format: REFERENCE
  split: "$1" num_classes: 3 resize: 36 crop: 32 augment: $2 batch_size: 24 num_workers: 1
  sampler: $3 drop_last: false
CFG
}
