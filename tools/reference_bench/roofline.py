#!/usr/bin/python3
"""The convolution floor of the DMUE training step and of inference on this CPU.

Any implementation of the reference's arithmetic runs at least its
convolutions. This script records every Conv2d call of one reference training
step (reference_step.py's model and loss) and of the inference model, with the
input shape and which gradients the step needs (an output whose gradient never
arrives, like the latent-distribution passes, costs a forward only), then
times each distinct call alone through this LibTorch's oneDNN: forward, plus
backward for the input and weight gradients the step uses. The sum over the
step's calls is its conv floor, per mode (fp32 NCHW, fp32 channels-last, bf16
channels-last). Reference time / floor is the largest speed-up any
implementation of the same arithmetic could reach with these kernels: if it is
below a target ratio, that target needs less arithmetic or faster kernels
(another precision), not a better implementation.

    /usr/bin/python3 tools/reference_bench/roofline.py            # table
    /usr/bin/python3 tools/reference_bench/roofline.py --json f   # also JSON

speed_table.py calls floors() to print the floor beside its ratios. Alone on
the machine, as every benchmark here.
"""
import argparse
import collections
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_step  # noqa: E402

MODES = ("fp32", "fp32 CL", "bf16 CL")
# (kind, batch) of the speed table's rows.
CASES = (("TrainStep", 72), ("TrainStep", 32), ("Inference", 1), ("Inference", 32))

# One distinct convolution call: shapes and the gradients the step uses.
Call = collections.namedtuple("Call", "input_shape weight_shape stride padding grad_input grad_weight")


def bf16_kernels():
    """Where oneDNN has bf16 kernels (AVX-512 on x86), as dmue/bf16_support.cc decides."""
    if os.uname().machine not in ("x86_64", "i386", "i686"):
        return True
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    return all(f in flags for f in ("avx512bw", "avx512vl", "avx512dq"))


def record_calls(run, modules):
    """Counter of Calls made by run(); a call's gradients count only if its output's gradient arrives."""
    records = []

    def hook(module, inputs, output):
        x = inputs[0]
        entry = {"module": module, "shape": tuple(x.shape), "x_grad": x.requires_grad, "reached": False}
        records.append(entry)
        if output.requires_grad:
            output.register_hook(lambda grad: entry.update(reached=True))

    handles = [m.register_forward_hook(hook) for m in modules if isinstance(m, nn.Conv2d)]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    calls = collections.Counter()
    for r in records:
        m = r["module"]
        calls[Call(r["shape"], tuple(m.weight.shape), m.stride, m.padding,
                   r["reached"] and r["x_grad"], r["reached"] and m.weight.requires_grad)] += 1
    return calls


def training_calls(batch, size, classes):
    torch.manual_seed(0)
    model = reference_step.MultiBranch(classes).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    images = torch.randn(batch, 3, size, size)
    labels = torch.arange(batch) % classes
    return record_calls(lambda: reference_step.step(model, optimizer, images, labels, classes), model.modules())


def inference_calls(batch, size, classes):
    model = reference_step.MainBranch(classes).eval()
    images = torch.randn(batch, 3, size, size)

    def run():
        with torch.no_grad():
            model(images)
    return record_calls(run, model.modules())


def macs(call):
    n, cin, h, w = call.input_shape
    cout, _, kh, kw = call.weight_shape
    oh = (h + 2 * call.padding[0] - kh) // call.stride[0] + 1
    ow = (w + 2 * call.padding[1] - kw) // call.stride[1] + 1
    forward = n * cout * oh * ow * cin * kh * kw
    return forward * (1 + call.grad_input + call.grad_weight)


def time_call(call, mode, repeats):
    """Median seconds of one call alone: forward and the backward it needs."""
    layout = torch.channels_last if "CL" in mode else torch.contiguous_format
    x = torch.randn(call.input_shape).to(memory_format=layout).requires_grad_(call.grad_input)
    w = torch.randn(call.weight_shape).to(memory_format=layout).requires_grad_(call.grad_weight)
    backward = call.grad_input or call.grad_weight

    def once():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
            with torch.set_grad_enabled(backward):
                y = F.conv2d(x, w, None, call.stride, call.padding)
        if backward:
            y.backward(torch.ones_like(y))
    once()  # warm-up: oneDNN builds its kernel and reorders here
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def floors(threads=2, size=224, classes=8, repeats=3, log=sys.stderr):
    """{(kind, batch): {"gflop": ..., "floor_s": {mode: seconds}}} for the speed table's cases."""
    torch.set_num_threads(threads)
    modes = [m for m in MODES if bf16_kernels() or not m.startswith("bf16")]
    out = {}
    for kind, batch in CASES:
        calls = (training_calls if kind == "TrainStep" else inference_calls)(batch, size, classes)
        gflop = 2e-9 * sum(macs(c) * n for c, n in calls.items())
        floor = {}
        for mode in modes:
            floor[mode] = sum(time_call(c, mode, repeats) * n for c, n in calls.items())
            print(f"roofline: {kind} b{batch} {mode}: {len(calls)} distinct convs, {gflop:.1f} GFLOP, "
                  f"floor {floor[mode]:.4f} s ({gflop / floor[mode]:.0f} GFLOP/s)", file=log, flush=True)
        out[(kind, batch)] = {"gflop": gflop, "floor_s": floor}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each distinct convolution")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    result = floors(args.threads, repeats=args.repeats)
    print("| case | GFLOP (convs) | " + " | ".join(f"floor {m}" for m in MODES) + " |")
    print("|" + " --- |" * (2 + len(MODES)))
    for (kind, batch), r in result.items():
        cells = [f"{r['floor_s'][m]:.3f} s ({r['gflop'] / r['floor_s'][m]:.0f} GFLOP/s)" if m in r["floor_s"]
                 else "-" for m in MODES]
        print(f"| {kind} b{batch} | {r['gflop']:.1f} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k} b{b}": r for (k, b), r in result.items()}, f, indent=1)


if __name__ == "__main__":
    main()
