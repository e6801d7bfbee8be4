#!/usr/bin/env python3
"""Collates the runs of tools/ferplus_noise_study.sh into the committed results
(evaluation/results/ferplus_noise/): results.md, results.json and the Valid
accuracy curves' source. Rows are run names under runs/noise/:

  python3 tools/ferplus_noise_results.py ce_clean dmue_clean ce_noise30 dmue_noise30 ...
  python3 tools/ferplus_noise_results.py --out evaluation/results/ferplus_identity id_ce_scratch ...
  python3 tools/ferplus_noise_results.py --out DIR --curves run_a,run_b run_a run_b ...
    (--curves: also draw DIR/valid_accuracy.png of those rows; --curves NAME=run_a,run_b
    draws DIR/valid_accuracy_NAME.png titled NAME instead; repeat it for several figures,
    at most 8 runs each so every curve has its own colour)

Reads runs/noise/<run>/{metrics.jsonl, config.pbtxt}, <run>/eval/report.json and,
where present, <run>/audit/audit_summary.json and <run>/machine.txt (the CPU each
training step ran on, written by the study script); writes nothing but those outputs. A run whose
folder is not here (run folders are not committed: an earlier session's machine
had it) keeps its row from the committed results.json.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import ferplus_results

OUT = "evaluation/results/ferplus_noise"
FULL_EPOCH_SECONDS = 60  # shorter epoch records are resumed fragments
MAX_CURVES = 8  # plot_runs' distinct colours


def config_fields(run_dir):
    with open(f"{run_dir}/config.pbtxt") as f:
        text = f.read()

    def field(name, default):
        m = re.search(rf"^\s*{name}: (\S+)", text, re.M)
        return m.group(1).strip('"') if m else default

    return {
        "loss": field("loss", "DMUE"),
        "noise": float(field("label_noise_rate", "0")),
        "warmup": int(field("ce_warmup_epochs", "0")),
        "pairwise_uncertainty": field("pairwise_uncertainty", "true") == "true",
        "w": float(field("w", "0.5")),
        "gamma": float(field("gamma", "1000")),
        "train_heads": field("train_heads", "false") == "true",
        "ramps": field("ramps", "true") == "true",
        "pretrained": field("pretrained", ""),
        "threads": int(field("num_threads", "2")),  # the proto's default
    }


def variant(c):
    if c["loss"] == "CROSS_ENTROPY":
        return "cross entropy"
    parts = [f"DMUE ({c['warmup']} CE + DMUE epochs)"]
    if not c["pairwise_uncertainty"]:
        parts.append("without pairwise uncertainty")
    if c["w"] == 0:
        parts.append("without L_soft")
    if c["gamma"] == 0:
        parts.append("without SP-KD")
    if not c.get("ramps", True):
        parts.append("without the ramps")
    if c.get("train_heads"):
        parts.append("pairwise-uncertainty MLP trained")
    return ", ".join(parts)


def start(c):
    return f"from `{c['pretrained']}`" if c.get("pretrained") else "from scratch"


def throughput(run_dir, dmue_from):
    """Mean images/s of full cross-entropy and full DMUE epochs; DMUE from epoch `dmue_from` (None: a CE run)."""
    ce, dmue = [], []
    for r in ferplus_results.read_metrics(run_dir):
        if r["kind"] != "epoch" or r["seconds"] < FULL_EPOCH_SECONDS:
            continue
        (dmue if dmue_from is not None and r["epoch"] >= dmue_from else ce).append(r["images_per_second"])
    mean = lambda v: sum(v) / len(v) if v else None
    return mean(ce), mean(dmue)


def machine(run_dir):
    """The CPU(s) the run trained on, or None for runs from before machine.txt."""
    path = f"{run_dir}/machine.txt"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return " then ".join(line.strip() for line in f if line.strip()) or None


def audit(run_dir):
    path = f"{run_dir}/audit/audit_summary.json"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def summarise(run):
    run_dir = f"runs/noise/{run}"
    row = ferplus_results.summarise(run, run_dir=run_dir, eval_dir=f"{run_dir}/eval", config=f"{run_dir}/config.pbtxt")
    c = config_fields(run_dir)
    row.update(c)
    row["what"] = variant(c)
    row["start"] = start(c)
    row["ce_images_per_second"], row["dmue_images_per_second"] = throughput(run_dir, c["warmup"] if c["loss"] != "CROSS_ENTROPY" else None)
    row["audit"] = audit(run_dir)
    row["machine"] = machine(run_dir)
    return row


def pct(v):
    return "n/a" if v is None else f"{100 * v:.2f}%"


def num(v, pattern="%.3f"):
    return "n/a" if v is None else pattern % v


def threads(n):
    return "threads not recorded" if n is None else f"{n} thread{'s' if n != 1 else ''}"


def results_table(rows):
    lines = [
        "| noise | run | start | epochs | Valid acc (final) | best (epoch) | mean per-class | macro F1 | KL / JS to votes "
        "| train time | images/s CE / DMUE epochs | CPU, threads |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {100 * r['noise']:.0f}% | {r['what']} (`{r['run']}`) | {r.get('start', 'from scratch')} | {r['epochs']} "
            f"| **{pct(r['valid_accuracy_final'])}** "
            f"| {pct(r['valid_accuracy_best'])} ({r['best_epoch']}) | {pct(r['mean_class_accuracy'])} | {r['macro_f1']:.3f} "
            f"| {num(r['kl_votes'])} / {num(r['js_votes'])} | {r['train_hours']:.2f} h "
            f"| {num(r['ce_images_per_second'], '%.0f')} / {num(r['dmue_images_per_second'], '%.0f')} "
            f"| {r.get('machine') or 'not recorded'}, {threads(r.get('threads'))} |")
    return "\n".join(lines)


def audit_table(rows):
    lines = [
        "| noise | run | audited as | mined vs votes: KL / JS / top-2 | baseline softmax: KL / JS / top-2 "
        "| flipped found (precision at K) | ROC AUC | clean label predicted |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        a = r["audit"]
        if not a:
            continue
        d, b = a.get("dmue") or {}, a.get("baseline") or {}
        agree = lambda x: (f"{num(x.get('mean_kl_votes_off_label'))} / {num(x.get('mean_js_votes_off_label'))} / "
                           f"{num(x.get('top2_agreement'))}") if x else "n/a"
        dn, bn = a.get("dmue_noise"), a.get("baseline_noise")
        flips = lambda n: "n/a" if not n else f"{num(n['precision_at_flipped'])} (K = {n['flipped']:,})"
        lines.append(
            f"| {100 * r['noise']:.0f}% | {r['what']} (`{r['run']}`) | {os.path.basename(a.get('baseline_checkpoint') or '') and 'vs CE baseline' or 'alone'} "
            f"| {agree(d)} | {agree(b)} | DMUE {flips(dn)}; CE {flips(bn)} "
            f"| DMUE {num(dn and dn['roc_auc'])}; CE {num(bn and bn['roc_auc'])} "
            f"| DMUE {num(dn and dn['clean_label_recovered'])}; CE {num(bn and bn['clean_label_recovered'])} |")
    return "\n".join(lines)


def committed_rows(out):
    path = f"{out}/results.json"
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {r["run"]: r for r in json.load(f)}


def row_for(run, committed, out):
    if os.path.exists(f"runs/noise/{run}/config.pbtxt"):
        return summarise(run)
    if run not in committed:
        sys.exit(f"runs/noise/{run} is not here and {out}/results.json has no row for it")
    return committed[run]


def parse_curves(value):
    """'run_a,run_b' -> (None, [...]); 'NAME=run_a,run_b' -> ('NAME', [...])."""
    title, _, names = value.rpartition("=")
    names = [n for n in names.split(",") if n]
    if not names or len(names) > MAX_CURVES:
        sys.exit(f"--curves {value}: give 1 to {MAX_CURVES} runs (plot_runs has {MAX_CURVES} distinct colours)")
    return title or None, names


def draw_curves(rows, title, names, out):
    """valid_accuracy[_title].png of the rows named, from their committed
    per-epoch accuracies (so rows whose run folders are gone still draw),
    through //training:plot_runs (built under $BIN, default bazel-bin)."""
    by_run = {r["run"]: r for r in rows}
    missing = [n for n in names if n not in by_run]
    if missing:
        sys.exit(f"--curves names runs that are not rows: {', '.join(missing)}")
    stem = "valid_accuracy" + (f"_{re.sub(r'[^A-Za-z0-9]+', '_', title).strip('_').lower()}" if title else "")
    plot_runs = os.path.join(os.environ.get("BIN", "bazel-bin"), "training/plot_runs")
    with tempfile.TemporaryDirectory() as tmp:
        entries = []
        for name in names:
            os.makedirs(f"{tmp}/{name}")
            with open(f"{tmp}/{name}/metrics.jsonl", "w") as f:
                for epoch, acc in sorted(by_run[name]["accuracy_by_epoch"].items(), key=lambda kv: int(kv[0])):
                    f.write(f'{{"kind":"eval","epoch":{epoch},"step":0,"accuracy":{acc}}}\n')
            entries.append(f"{name}={tmp}/{name}")
        subprocess.run([plot_runs, "--runs=" + ",".join(entries), "--metric=eval:accuracy",
                        "--title=FERPlus Valid accuracy per epoch" + (f": {title}" if title else ""),
                        "--y_label=accuracy (majority label)", f"--output={out}/{stem}.png"], check=True)


def main(args):
    out = OUT
    curves = []
    while args[:1] in (["--out"], ["--curves"]):
        if args[0] == "--out":
            out = args[1]
        else:
            curves.append(parse_curves(args[1]))
        args = args[2:]
    os.makedirs(out, exist_ok=True)
    committed = committed_rows(out)
    rows = [row_for(run, committed, out) for run in args]
    with open(f"{out}/results.json", "w") as f:
        json.dump(rows, f, indent=2, sort_keys=True)
    command = " ".join(["python3 tools/ferplus_noise_results.py"] + (["--out", out] if out != OUT else [])
                       + [part for title, names in curves
                          for part in ("--curves", shlex.quote((f"{title}=" if title else "") + ",".join(names)))]
                       + args)
    with open(f"{out}/results.md", "w") as f:
        f.write("# DMUE and cross entropy on FERPlus: the runs of tools/ferplus_noise_study.sh\n\n")
        f.write(f"Written by `{command}` (commands and protocol in README.md of this folder).\n\n")
        f.write(results_table(rows) + "\n")
        if any(r["audit"] for r in rows):
            f.write("\n## Label audit of the training set\n\n" + audit_table(rows) + "\n")
    print(f"wrote {out}/results.md, results.json")
    for title, names in curves:
        draw_curves(rows, title, names, out)


if __name__ == "__main__":
    main(sys.argv[1:])
