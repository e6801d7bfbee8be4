#!/usr/bin/env python3
"""Collates the FERPlus runs of tools/train_ferplus.sh into the committed
results (evaluation/results/ferplus/): results.md (one row per run, then
accuracy against budget), results.json, and the confusion matrices.

  python3 tools/ferplus_results.py ce votes

Reads runs/ferplus_<run>/metrics.jsonl and config.pbtxt and
runs/ferplus_eval_<run>/report.json; writes nothing else.
"""
import json
import os
import shutil
import sys

OUT = "evaluation/results/ferplus"
LABELS = {"ce": "majority-label cross entropy", "votes": "vote-distribution cross entropy"}
BUDGET_EPOCHS = (5, 10, 15, 20, 25, 30)


def read_metrics(run_dir):
    with open(f"{run_dir}/metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(run, run_dir=None, eval_dir=None, config=None):
    """One row: the run's metrics.jsonl (training) and the evaluator's report.json."""
    run_dir = run_dir or f"runs/ferplus_{run}"
    eval_dir = eval_dir or f"runs/ferplus_eval_{run}"
    records = read_metrics(run_dir)
    epochs = [r for r in records if r["kind"] == "epoch"]
    evals = [r for r in records if r["kind"] == "eval"]
    with open(f"{eval_dir}/report.json") as f:
        report = json.load(f)
    seconds = sum(r["seconds"] for r in epochs)
    images = sum(r["seconds"] * r["images_per_second"] for r in epochs)
    best = max(evals, key=lambda r: r["accuracy"])
    votes = report.get("votes") or {}
    return {
        "run": run,
        "what": LABELS.get(run, run),
        "config": config or f"training/configs/ferplus_{run}.pbtxt",
        "epochs": len(epochs),
        "images_seen": int(round(images)),
        "train_hours": seconds / 3600.0,
        "images_per_second": images / seconds if seconds else 0.0,
        "valid_accuracy_final": report["accuracy"],
        "valid_accuracy_best": best["accuracy"],
        "best_epoch": best["epoch"],
        "mean_class_accuracy": report["mean_class_accuracy"],
        "macro_f1": report["macro_f1"],
        "ece": report["calibration"]["ece"],
        "kl_votes": votes.get("mean_kl_votes_to_prediction"),
        "js_votes": votes.get("mean_js_votes_vs_prediction"),
        "accuracy_by_epoch": {r["epoch"]: r["accuracy"] for r in evals},
        "hours_by_epoch": cumulative_hours(epochs),
    }


def cumulative_hours(epochs):
    total, out = 0.0, {}
    for r in epochs:
        total += r["seconds"]
        out[r["epoch"] + 1] = total / 3600.0
    return out


def fmt(v, pattern):
    return "n/a" if v is None else pattern % v


def table(rows):
    lines = [
        "| run | config | epochs | images seen | train time | images/s | Valid acc (final) | best (epoch) "
        "| mean per-class | macro F1 | ECE | KL(votes‖p) | JS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['what']} | `{r['config']}` | {r['epochs']} | {r['images_seen']:,} | {r['train_hours']:.2f} h "
            f"| {r['images_per_second']:.0f} | **{100 * r['valid_accuracy_final']:.2f}%** "
            f"| {100 * r['valid_accuracy_best']:.2f}% ({r['best_epoch']}) | {100 * r['mean_class_accuracy']:.2f}% "
            f"| {r['macro_f1']:.3f} | {r['ece']:.3f} | {fmt(r['kl_votes'], '%.3f')} | {fmt(r['js_votes'], '%.3f')} |")
    return "\n".join(lines)


def budget_table(rows):
    head = "| epochs (images seen) | " + " | ".join(f"{r['what']}: acc / hours" for r in rows) + " |"
    lines = [head, "| --- |" + " ---: |" * len(rows)]
    for e in BUDGET_EPOCHS:
        cells = []
        for r in rows:
            acc, hours = r["accuracy_by_epoch"].get(e), r["hours_by_epoch"].get(e)
            cells.append("" if acc is None else f"{100 * acc:.2f}% / {hours:.2f}")
        if any(cells):
            lines.append(f"| {e} ({e * 24960:,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(runs):
    os.makedirs(OUT, exist_ok=True)
    rows = [summarise(run) for run in runs]
    for run in runs:
        for name in ("confusion.png", "reliability.png"):
            src = f"runs/ferplus_eval_{run}/{name}"
            if os.path.exists(src):
                shutil.copyfile(src, f"{OUT}/{name.replace('.png', '')}_{run}.png")
    with open(f"{OUT}/results.json", "w") as f:
        json.dump(rows, f, indent=2, sort_keys=True)
    with open(f"{OUT}/results.md", "w") as f:
        f.write("# FERPlus from scratch: results\n\n")
        f.write("Written by `python3 tools/ferplus_results.py " + " ".join(runs) + "` after `tools/train_ferplus.sh`.\n")
        f.write("FERPlus Valid: 3,191 images with a majority label (label.csv); accuracy against that label. "
                "KL / JS: mean divergence between each image's 8 emotion votes and the predicted distribution. "
                "'final' is the last epoch's model (no selection on Valid), measured by `//evaluation:evaluate` "
                "in fp32; 'best' and the per-epoch figures are the trainer's own evaluations after each epoch "
                "(bf16 on this CPU, within ~0.1 point of fp32). Train time is wall time with the two runs side "
                "by side, one thread each, on the 2-core machine (other work ran beside them at times).\n\n")
        f.write(table(rows) + "\n\n## Accuracy against budget\n\n" + budget_table(rows) + "\n")
    print(f"wrote {OUT}/results.md, results.json")


if __name__ == "__main__":
    main(sys.argv[1:] or ["ce", "votes"])
