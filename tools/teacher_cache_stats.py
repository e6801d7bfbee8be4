#!/usr/bin/python3
"""What a distillation loss of 1 - cosine means for one teacher cache.

Reads <pretrain output_dir>/teacher_cache.bin (training/descriptor_distill.cc:
one header line "dmue-teacher-cache-v1 images=N dims=D ... done=N", then
N x 2 x D float32: each image's descriptor and its mirror's) and prints the
reference points the student's loss compares with:
  * the mean descriptor as a constant prediction (what a student that learnt
    nothing about the face but the average reaches),
  * an image against its own mirror (how exact the teacher itself is under a flip),
  * two random images (how far apart faces are).

    /usr/bin/python3 tools/teacher_cache_stats.py runs/ferplus_distill/teacher_cache.bin
"""
import re
import sys

import numpy as np


def read_cache(path):
    with open(path, "rb") as f:
        header = f.readline().decode("ascii", "replace")
        m = re.match(r"dmue-teacher-cache-v1 images=(\d+) dims=(\d+) .*done=(\d+)", header)
        if not m:
            sys.exit(f"{path}: not a teacher cache (header {header[:60]!r})")
        images, dims, done = (int(g) for g in m.groups())
        if done != images:
            sys.exit(f"{path}: incomplete cache ({done} of {images} images); rerun the pretrainer to finish it")
        data = np.frombuffer(f.read(), dtype="<f4")
    if data.size != images * 2 * dims:
        sys.exit(f"{path}: {data.size} floats after the header, expected {images * 2 * dims}")
    return data.reshape(images, 2, dims)


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def main(path):
    views = read_cache(path)
    image, mirror = unit(views[:, 0]), unit(views[:, 1])
    mean = unit(image.mean(0))
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(image), (2, 20000))
    rows = {
        "mean descriptor as a constant prediction": 1 - image @ mean,
        "image against its mirror": 1 - (image * mirror).sum(1),
        "two random images (20,000 pairs, seed 0)": 1 - (image[i] * image[j]).sum(1),
    }
    print(f"{path}: {len(image)} images, {views.shape[2]}-d descriptors")
    print("| 1 - cosine | mean | median |\n| --- | ---: | ---: |")
    for name, v in rows.items():
        print(f"| {name} | {v.mean():.4f} | {np.median(v):.4f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
