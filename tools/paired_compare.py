#!/usr/bin/python3
"""Paired comparison of two models' predictions on the same examples.

Reads two predictions.csv files written by //evaluation:evaluate (columns key,
label, predicted, ...), matched by key, and prints both accuracies, the
difference with a paired bootstrap 95% interval (10,000 resamples, seed 0),
the discordant counts and McNemar's exact two-sided p-value, and per-class
accuracy. It measures how much of a difference the evaluation set's sampling
alone can explain; it says nothing about training-seed variance.

    /usr/bin/python3 tools/paired_compare.py A=runs/noise/a/eval/predictions.csv B=runs/noise/b/eval/predictions.csv
"""
import csv
import math
import sys

import numpy as np


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"key", "label", "predicted"} <= set(rows[0]):
        sys.exit(f"{path}: not a predictions.csv of //evaluation:evaluate (needs key, label, predicted)")
    names = [c[2:] for c in rows[0] if c.startswith("p_")]
    return {r["key"]: (int(r["label"]), int(r["predicted"])) for r in rows}, names


def mcnemar_exact(b, c):
    """Two-sided exact binomial p-value of b successes in b + c trials at 1/2."""
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def main(args):
    if len(args) != 2 or any("=" not in a for a in args):
        sys.exit(__doc__)
    (name_a, path_a), (name_b, path_b) = (a.split("=", 1) for a in args)
    (a, names), (b, _) = read(path_a), read(path_b)
    keys = sorted(a.keys() & b.keys())
    if len(keys) != len(a) or len(keys) != len(b):
        sys.exit(f"the files hold different examples ({len(a)} and {len(b)}, {len(keys)} shared)")
    if any(a[k][0] != b[k][0] for k in keys):
        sys.exit("the files disagree on labels: not the same evaluation set")
    labels = np.array([a[k][0] for k in keys])
    right_a = np.array([a[k][1] == a[k][0] for k in keys])
    right_b = np.array([b[k][1] == b[k][0] for k in keys])
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(keys), (10000, len(keys)))
    diffs = right_b[idx].mean(1) - right_a[idx].mean(1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    print(f"{len(keys)} examples")
    print(f"| | {name_a} | {name_b} |\n| --- | ---: | ---: |")
    print(f"| accuracy | {100 * right_a.mean():.2f}% | {100 * right_b.mean():.2f}% |")
    for c in np.unique(labels):
        m = labels == c
        name = names[c] if c < len(names) else f"class {c}"
        print(f"| {name} ({m.sum()} images) | {100 * right_a[m].mean():.1f}% | {100 * right_b[m].mean():.1f}% |")
    print(f"\n{name_b} - {name_a}: {100 * (right_b.mean() - right_a.mean()):+.2f} points, paired bootstrap 95% "
          f"interval [{100 * lo:+.2f}, {100 * hi:+.2f}]")
    print(f"right only in {name_a}: {only_a}, only in {name_b}: {only_b}; McNemar exact p = {mcnemar_exact(only_a, only_b):.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
