#!/usr/bin/env bash
# The shipped model bundle (serving/models/ferplus_resnet18.*) through
# //serving:predict with the default config, as a user on a fresh clone runs
# it: every real photo in ../shared/data/photos, twice. Every detected face
# must get a probability vector over the spec's 8 classes that sums to 1, and
# the labels must be the same on both runs.
set -euo pipefail
run="${TEST_SRCDIR}/dmue_cpp"
source "${run}/serving/testing/shared_dir.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "${run}"  # the default config's paths are relative to the workspace
[[ -f serving/models/ferplus_resnet18.pth && -f serving/models/ferplus_resnet18.spec.pbtxt ]] ||
  fail "the shipped bundle serving/models/ferplus_resnet18.{pth,spec.pbtxt} is missing"
photos=()
for p in "$shared"/data/photos/*; do
  case "$p" in *.jpg | *.jpeg | *.png) photos+=("$p") ;; esac
done
[[ ${#photos[@]} -gt 0 ]] || fail "no photos in $shared/data/photos"
tmp="${TEST_TMPDIR:-/tmp}/shipped_model_test"
mkdir -p "$tmp"
for pass in 1 2; do
  # No --model_path: the default config's bundle. Photos without a face answer
  # with zero faces, not an error.
  "${run}/serving/predict" --detector_dir="$shared/models/mtcnn" --json "${photos[@]}" >"$tmp/run$pass.jsonl" ||
    fail "predict failed (pass $pass): $(cat "$tmp/run$pass.jsonl")"
done
/usr/bin/python3 - "$tmp/run1.jsonl" "$tmp/run2.jsonl" "${#photos[@]}" <<'PY'
import json, sys
runs = [[json.loads(line) for line in open(path)] for path in sys.argv[1:3]]
assert len(runs[0]) == int(sys.argv[3]) == len(runs[1]), "one reply per photo"
faces = 0
for a, b in zip(*runs):
    assert "error" not in a, a
    assert a["classes"] == ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"], a
    assert len(a["faces"]) == len(b["faces"]), (a, b)
    for fa, fb in zip(a["faces"], b["faces"]):
        p = fa["probabilities"]
        assert len(p) == 8 and all(0 <= v <= 1 for v in p.values()), fa
        assert abs(sum(p.values()) - 1) < 1e-4, fa
        assert fa["label"] == fb["label"] == max(p, key=p.get), (fa, fb)
        faces += 1
assert faces >= 5, f"only {faces} faces detected in the photos"
print(f"{faces} faces in {len(runs[0])} photos: probabilities sum to 1, labels stable")
PY
echo PASS
