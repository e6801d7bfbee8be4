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
# --skip_detection: an aligned face crop classified whole, like the reference's
# inference.py (what tools/inference_demo did), on a checkpoint without a spec
# file served with the spec the user gives (--model_spec).
bare="$tmp/bare"
mkdir -p "$bare"
weights=$("${run}/serving/testing/make_test_model" --output_dir="$bare" --num_classes=8 --with_spec=false)
[[ ! -f "$bare/random_inference.spec.pbtxt" ]] || fail "make_test_model --with_spec=false wrote a spec"
set +e
nospec=$("${run}/serving/predict" --config="$config" --model_path="$weights" --detector_dir="$shared/models/mtcnn" \
  --skip_detection "$photos/face_sdk_test1_cropped.jpg" 2>&1)
status=$?
set -e
[[ $status -ne 0 ]] || fail "a checkpoint without a spec must be refused"
grep -q "random_inference.spec.pbtxt" <<<"$nospec" || fail "the refusal must name the missing spec: $nospec"
cp "$(dirname "$model")/random_inference.spec.pbtxt" "$bare/given.spec.pbtxt"
crop=$("${run}/serving/predict" --config="$config" --model_path="$weights" --model_spec="$bare/given.spec.pbtxt" \
  --detector_dir="$shared/models/mtcnn" --skip_detection "$photos/face_sdk_test1_cropped.jpg")
echo "$crop"
[[ $(grep -c '^Predicted: ' <<<"$crop") -eq 1 ]] || fail "--skip_detection: expected exactly one face"
[[ $(grep -c ' ----> ' <<<"$crop") -eq 8 ]] || fail "--skip_detection: expected 8 probabilities"
grep -q 'score 1.0000' <<<"$crop" || fail "--skip_detection: the whole photo is the face (score 1)"
echo PASS
