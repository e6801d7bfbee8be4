#!/usr/bin/env bash
# //serving:predict end to end: a random-weights model, real photos, --json
# and text output, a missing file (named in the error, exit status 1).
set -euo pipefail
run="${TEST_SRCDIR}/dmue_cpp"
source "${run}/serving/testing/shared_dir.sh"
tmp="${TEST_TMPDIR:-/tmp}/predict_test"
mkdir -p "$tmp"
model=$("${run}/serving/testing/make_test_model" --output_dir="$tmp" --num_classes=8)
config="${run}/serving/configs/server.pbtxt"
photos="$shared/data/photos"
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("${run}/serving/predict" --config="$config" --model_path="$model" --detector_dir="$shared/models/mtcnn" \
  "$photos/face_sdk_test1.jpg" "$photos/test1.jpg")
echo "$out"
[[ $(grep -c '^Predicted: ' <<<"$out") -eq 3 ]] || fail "expected 3 faces (2 + 1) in the text output"
[[ $(grep -c ' ----> ' <<<"$out") -eq 24 ]] || fail "expected 8 probabilities per face"
grep -q '^face_sdk_test1.jpg\|face_sdk_test1.jpg: 2 face(s), 818x418' <<<"$out" || fail "missing the photo summary line"

json=$("${run}/serving/predict" --config="$config" --model_path="$model" --detector_dir="$shared/models/mtcnn" \
  --json "$photos/face_sdk_test1.jpg")
echo "$json"
/usr/bin/python3 - "$json" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["width"] == 818 and r["height"] == 418, r
assert len(r["faces"]) == 2, r
for f in r["faces"]:
    assert abs(sum(f["probabilities"].values()) - 1) < 1e-4, f
    assert f["label"] in r["classes"], f
PY

set +e
missing=$("${run}/serving/predict" --config="$config" --model_path="$model" --detector_dir="$shared/models/mtcnn" \
  "$photos/test1.jpg" "$tmp/no_such_photo.jpg" 2>&1)
status=$?
set -e
echo "$missing"
[[ $status -eq 1 ]] || fail "a missing photo must exit with 1, got $status"
grep -q "no_such_photo.jpg" <<<"$missing" || fail "the error must name the missing file"
grep -q "^Predicted: " <<<"$missing" || fail "the good photo before it must still be classified"
echo PASS
