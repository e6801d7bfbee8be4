#!/usr/bin/env python3
"""Per-class view of a label audit (//evaluation:audit's audit.csv): for the
training images of each given label, how much DMUE trusts them and where its
mined latent distributions put their mass. Answers "which classes does DMUE's
training signal work against?" (issue 13: the sadness images DMUE loses).

  python3 tools/audit_by_class.py runs/noise/<run>/audit/audit.csv

Columns, means over the images of that given label:
  score      pairwise-uncertainty confidence (sigmoid; it scales the main logits)
  score rank share of the class among the lowest-scored 10% of the whole set
  p(label)   the main branch's softmax at the given label (eval mode)
  baseline   the baseline model's softmax at the given label (if audited with one)
  mined top  the class the mined distribution (the L_soft target, 0 at the label)
             puts most mass on, and that mass
  votes      the human votes' share on the given label (how ambiguous annotators
             found these images), when the audit had votes
"""
import csv
import sys
from collections import defaultdict

from ferplus_noise_results import num


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def class_names(header, prefix):
    return [h[len(prefix):] for h in header if h.startswith(prefix)]


def summarise(rows):
    names = class_names(rows[0].keys(), "mined_")
    has_votes = f"votes_{names[0]}" in rows[0]
    has_baseline = f"baseline_{names[0]}" in rows[0]
    low_cut = sorted(float(r["score"]) for r in rows)[len(rows) // 10]
    by_label = defaultdict(list)
    for r in rows:
        by_label[int(r["given_label"])].append(r)
    table = []
    for label in sorted(by_label):
        group = by_label[label]
        n = len(group)

        def mean(key):
            return sum(float(r[key]) for r in group) / n

        mined = {c: mean(f"mined_{c}") for c in names}
        top = max(mined, key=mined.get)
        table.append({
            "label": names[label], "n": n, "score": mean("score"),
            "low_share": sum(float(r["score"]) <= low_cut for r in group) / n,
            "p_label": mean("p_given_label"),
            "baseline": mean(f"baseline_{names[label]}") if has_baseline else None,
            "mined_top": top, "mined_top_mass": mined[top],
            "votes_label": mean(f"votes_{names[label]}") if has_votes else None,
        })
    return table


def markdown(table):
    lines = ["| given label | images | score | in lowest-10% scores | p(label) main | p(label) baseline "
             "| mined top class (mass) | votes on label |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for t in table:
        lines.append(f"| {t['label']} | {t['n']:,} | {t['score']:.3f} | {100 * t['low_share']:.1f}% "
                     f"| {t['p_label']:.3f} | {num(t['baseline'])} | {t['mined_top']} ({t['mined_top_mass']:.2f}) "
                     f"| {num(t['votes_label'])} |")
    return "\n".join(lines)


def main(args):
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    rows = read(args[0])
    if not rows or not class_names(rows[0].keys(), "mined_"):
        sys.exit(f"{args[0]}: not an audit.csv with mined_* columns")
    print(markdown(summarise(rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
