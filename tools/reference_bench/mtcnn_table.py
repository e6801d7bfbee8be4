#!/usr/bin/python3
"""Our MTCNN against the reference's in one sitting: prints the CPU and a per-photo table with ratios.

Runs reference_mtcnn.py --time (the reference's detect(img, landmarks=True) rebuilt in Debian's
python3-torch, netlib BLAS as the reference had; one warm-up, median of --repeats calls per golden photo)
and then //preprocessing:mtcnn_benchmark's Detect/<photo> benchmarks (one warm-up, then Google Benchmark's
mean over at least 1 s; the median of --repetitions such runs), both with --threads intra-op threads on
images already decoded. Ratio = reference time / ours (above 1: ours faster). Issue 15's goal is a ratio
of at least 3 on every photo.

"ratio w/o NMS" is a lower bound for the ratio: the rebuild's NMS is a numpy loop where the reference
calls torchvision's C++ kernel, so the reference time minus all of the rebuild's NMS time is less than
what the reference would take.

    bazel build //preprocessing:mtcnn_benchmark //tools:decode_rgb   # .bazelrc compiles with -O2
    /usr/bin/python3 tools/reference_bench/reference_mtcnn.py --check  # the rebuild is faithful
    /usr/bin/python3 tools/reference_bench/mtcnn_table.py --json mtcnn_speed.json

Run it alone: another job on the 2 cores distorts every figure (2 OpenMP threads on a loaded machine
lose several times more than their share). Only same-sitting ratios compare.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from speed_table import cpu_description  # noqa: E402


def run_reference(args):
    """reference_mtcnn.py's JSON report: per photo median_ms, nms_ms, faces, width, height."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "reference.json")
        cmd = [sys.executable, os.path.join(HERE, "reference_mtcnn.py"), "--time", "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--blas", args.blas, "--decoder", args.decoder, "--json", out]
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        with open(out) as f:
            return json.load(f)


def run_ours(args):
    """{photo: (ms per detection, faces)} from Google Benchmark's JSON."""
    cmd = [args.benchmark, "--benchmark_filter=^Detect/", "--benchmark_format=json", f"--threads={args.threads}"]
    if args.repetitions > 1:
        cmd += [f"--benchmark_repetitions={args.repetitions}", "--benchmark_report_aggregates_only=true"]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    shared = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared")
    env = dict(os.environ, DMUE_SHARED_DIR=os.environ.get("DMUE_SHARED_DIR", shared))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    results = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("error_occurred") or (args.repetitions > 1 and b.get("aggregate_name") != "median"):
            continue
        unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        photo = b["run_name"].split("/")[1]  # Detect/<photo>/min_time:1.000
        results[photo] = (b["real_time"] * unit, int(b.get("faces", -1)))
    return results


def table(rows):
    header = ["photo", "W x H", "faces", "reference ms (NMS)", "ours ms", "ratio", "ratio w/o NMS"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in rows:
        faces = str(r["faces_reference"]) if r["faces_reference"] == r["faces_ours"] else \
            f"{r['faces_reference']} (ours {r['faces_ours']})"
        lines.append(f"| {r['photo']} | {r['width']} x {r['height']} | {faces} | {r['reference_ms']:.1f} "
                     f"({r['reference_nms_ms']:.1f}) | {r['ours_ms']:.1f} | {r['ratio']:.2f}x | "
                     f"{r['ratio_without_nms']:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="bazel-bin/preprocessing/mtcnn_benchmark", help="our mtcnn_benchmark")
    parser.add_argument("--decoder", default="bazel-bin/tools/decode_rgb", help="our decoder for the rebuild")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed reference detect() calls per photo")
    parser.add_argument("--repetitions", type=int, default=3, help="runs of each of our benchmarks (median)")
    parser.add_argument("--blas", choices=["netlib", "system"], default="netlib", help="the rebuild's BLAS")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    for path, target in ((args.benchmark, "//preprocessing:mtcnn_benchmark"), (args.decoder, "//tools:decode_rgb")):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is not built: bazel build {target}")
    args.decoder = os.path.abspath(args.decoder)

    cpu = cpu_description()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    reference = run_reference(args)
    ours = run_ours(args)

    rows = []
    for photo, ref in reference["photos"].items():
        if photo not in ours:
            print(f"warning: no Detect/{photo} in {args.benchmark}", file=sys.stderr)
            continue
        ours_ms, ours_faces = ours[photo]
        rows.append({"photo": photo, "width": ref["width"], "height": ref["height"],
                     "faces_reference": ref["faces"], "faces_ours": ours_faces,
                     "reference_ms": ref["median_ms"], "reference_nms_ms": ref["nms_ms"], "ours_ms": ours_ms,
                     "ratio": ref["median_ms"] / ours_ms,
                     "ratio_without_nms": (ref["median_ms"] - ref["nms_ms"]) / ours_ms})
    print(f"CPU: {cpu}")
    print(f"Sitting: {started}, {args.threads} threads, images decoded; reference: rebuild in python3-torch "
          f"{reference['torch']}, BLAS {reference['blas']}, median of {args.repeats} after a warm-up; ours: "
          f"mtcnn_benchmark, median of {args.repetitions} runs of >= 1 s; ratio = reference time / ours "
          "(above 1: ours faster)\n")
    print(table(rows))
    if rows:
        worst = min(rows, key=lambda r: r["ratio_without_nms"])
        print(f"\nlowest ratio w/o NMS: {worst['ratio_without_nms']:.2f}x ({worst['photo']}); goal >= 3x on every photo")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu, "started": started, "threads": args.threads, "reference_repeats": args.repeats,
                       "our_repetitions": args.repetitions, "reference_torch": reference["torch"],
                       "reference_blas": reference["blas"], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
