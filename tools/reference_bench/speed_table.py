#!/usr/bin/python3
"""Ours against the reference in one sitting: prints the CPU and a speed table with ratios.

Runs //dmue:model_benchmark (training step at batch 72 and 32, inference at
batch 1 and 32, unfolded and BatchNorm-folded, each in fp32 NCHW, fp32
channels-last and bf16 channels-last; 224x224, 8 classes, ResNet-18, 2 threads)
and reference_step.py (the reference's training step and inference model in
Debian's python3-torch, same shapes and threads), then prints a markdown table
whose ratios are reference time / our time (above 1: ours is faster). The
"AUTO" column is the fastest of our modes: what precision AUTO picks when the
candidates' deviation is within its bound (training/auto_compute.h,
dmue/folded_model.h).

    bazel build //dmue:model_benchmark   # .bazelrc compiles with -O2
    /usr/bin/python3 tools/reference_bench/speed_table.py --json speed.json

Where oneDNN has no bf16 kernels (x86 without AVX-512, dmue/bf16_support.h) our
benchmark skips the bf16 mode, as AUTO does, and its column reads "-".

Run it alone: another job on the 2 cores distorts every figure. The speed of
these machines drifts between days, so only same-sitting ratios compare.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {0: "fp32", 1: "fp32 CL", 2: "bf16 CL"}


def cpu_description():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                key, value = (s.strip() for s in line.split(":", 1))
                info.setdefault(key, value)
    flags = set(info.get("flags", "").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return (f"{info.get('model name', '?')} (vendor {info.get('vendor_id', '?')}, family {info.get('cpu family', '?')} "
            f"model {info.get('model', '?')}), {os.cpu_count()} cores, {' '.join(isa)}")


def run_ours(binary, min_time):
    """{(benchmark, batch, mode): seconds per iteration} from Google Benchmark's JSON."""
    cmd = [binary, "--benchmark_filter=BM_(TrainStep|Inference|FoldedInference)/", "--benchmark_format=json"]
    if min_time:
        cmd.append(f"--benchmark_min_time={min_time}")
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    results = {}
    for b in json.loads(out)["benchmarks"]:
        m = re.match(r"BM_(\w+)/batch:(\d+)/mode:(\d+)", b["name"])
        if not m or b.get("error_occurred"):
            continue
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        results[(m.group(1), int(m.group(2)), int(m.group(3)))] = b["real_time"] * unit
    return results


def run_reference(args, batch, inference, steps):
    cmd = [sys.executable, os.path.join(HERE, "reference_step.py"), "--batch", str(batch), "--steps", str(steps),
           "--threads", str(args.threads)]
    if inference:
        cmd.append("--inference")
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"median ([0-9.]+) (ms|s)", out)
    if not m:
        sys.exit(f"reference_step.py printed no median: {out!r}")
    return float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1.0)


def fmt_time(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(rows):
    header = ["benchmark", "reference", *MODES.values(), "AUTO (fastest)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        ref = row["reference_s"]
        cells = [row["name"], fmt_time(ref)]
        for mode in MODES:
            ours = row["ours_s"].get(mode)
            cells.append("-" if ours is None else f"{fmt_time(ours)} ({ref / ours:.2f}x)")
        best = min(row["ours_s"].items(), key=lambda kv: kv[1])
        cells.append(f"{MODES[best[0]]}: {ref / best[1]:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floor_table(reference, floor):
    """Reference time beside the conv floor (roofline.py) of each case: the largest ratio the same arithmetic allows."""
    modes = MODES.values()  # roofline.py names the modes as this script does
    header = ["case", "reference", "conv GFLOP", *[f"floor {m}" for m in modes], "largest possible ratio"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for key, r in floor.items():
        ref = reference[key]
        cells = [f"{'train step' if key[0] == 'TrainStep' else 'inference'} b{key[1]}", fmt_time(ref),
                 f"{r['gflop']:.1f} ({r['gflop'] / ref:.0f} GFLOP/s in the reference)"]
        for m in modes:
            s = r["floor_s"].get(m)
            cells.append("-" if s is None else f"{fmt_time(s)} ({r['gflop'] / s:.0f} GFLOP/s)")
        per_mode = [f"{m} {ref / s:.2f}x" for m, s in r["floor_s"].items()]
        cells.append(", ".join(per_mode))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="bazel-bin/dmue/model_benchmark", help="our built model_benchmark")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train_steps", type=int, default=5, help="timed reference training steps per batch size")
    parser.add_argument("--inference_steps", type=int, default=30, help="timed reference inference calls")
    parser.add_argument("--min_time", type=float, default=0, help="override our benchmarks' minimum time (s)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--no_floor", action="store_true", help="skip the conv floor (roofline.py)")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401  (the reference side needs it)
    except ImportError:
        sys.exit("the reference side needs Debian's python3-torch: apt-get install python3-torch")
    import roofline  # imports torch
    if not os.access(args.benchmark, os.X_OK):
        sys.exit(f"{args.benchmark} is not built: bazel build //dmue:model_benchmark")

    cpu = cpu_description()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    reference = {}
    for batch in (72, 32):
        reference[("TrainStep", batch)] = run_reference(args, batch, False, args.train_steps)
    for batch in (1, 32):
        reference[("Inference", batch)] = run_reference(args, batch, True, args.inference_steps)
    ours = run_ours(args.benchmark, args.min_time)
    floor = {} if args.no_floor else roofline.floors(args.threads)

    rows = []
    for (kind, batch), ref in reference.items():
        for ours_kind in (["TrainStep"] if kind == "TrainStep" else ["Inference", "FoldedInference"]):
            per_mode = {mode: ours[(ours_kind, batch, mode)] for mode in MODES if (ours_kind, batch, mode) in ours}
            if not per_mode:
                continue
            name = {"TrainStep": "train step", "Inference": "inference", "FoldedInference": "inference, BN folded"}
            rows.append({"name": f"{name[ours_kind]} b{batch}", "kind": ours_kind, "batch": batch,
                         "reference_s": ref, "ours_s": per_mode})
    print(f"CPU: {cpu}")
    print(f"Sitting: {started}, {args.threads} threads, 224x224, 8 classes, ResNet-18; "
          "ratio = reference time / ours (above 1: ours faster)\n")
    print(table(rows))
    if floor:
        print("\nConv floor: every convolution of the case alone through the same oneDNN (roofline.py); "
              "reference / floor bounds the ratio any implementation of the same arithmetic can reach.\n")
        print(floor_table(reference, floor))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu, "started": started, "threads": args.threads,
                       "conv_floor": {f"{k} b{b}": r for (k, b), r in floor.items()},
                       "rows": [{**r, "ours_s": {MODES[m]: s for m, s in r["ours_s"].items()}} for r in rows]},
                      f, indent=1)


if __name__ == "__main__":
    main()
