# Sourced by the serving shell tests: sets $shared to the ../shared folder
# (DMUE_SHARED_DIR, or the @shared runfiles), or prints why the test skips
# and exits 0 when it is absent.
shared=""
for root in "${DMUE_SHARED_DIR:-}" "${TEST_SRCDIR}/shared" "${TEST_SRCDIR}/dmue_cpp/external/shared"; do
  if [[ -n "$root" && -f "$root/models/mtcnn/pnet.pt" && -f "$root/data/photos/face_sdk_test1.jpg" ]]; then
    shared="$root"
    break
  fi
done
if [[ -z "$shared" ]]; then
  echo "SKIPPED: shared data file 'models/mtcnn/pnet.pt' not found (the read-only ../shared folder is absent; set DMUE_SHARED_DIR to override)"
  exit 0
fi
