#!/usr/bin/python3
"""The reference face detector rebuilt in Debian's python3-torch, checked against the goldens and timed.

The official DMUE preprocessing (JDAI-CV/FaceX-Zoo addition_module/DMUE/preprocess, commit 16b793a) detects
faces with a vendored facenet-pytorch MTCNN: MTCNN(keep_all=True), then detect(pil_image, landmarks=True).
That code is not vendored here. This script re-implements that detect() call from what its source does
(the behaviour is also written down in ../shared/golden/mtcnn/README.md, "Quirks"): the float64 pyramid
(12/20 * 0.709^k), F.interpolate(mode="area") levels and crops, (v - 127.5) * 0.0078125, P-Net with cells
>= 0.6, IoU NMS per scale (0.5) and across scales (0.7), stage-1 regression (w = x2 - x1), squaring,
truncated 1-based crops clamped to the image, R-Net and O-Net in chunks of 512, strict > 0.7, IoU NMS 0.7,
regression with w = x2 - x1 + 1, landmarks from the stage-2 boxes, the numpy "Min" NMS 0.7, and faces sorted
by box area, largest first. The nets are the facenet-pytorch P-/R-/O-Net layouts (PReLU per channel,
ceil-mode max pools, W-H-C flattening before the dense layers) with the legacy state dicts of
../shared/models/mtcnn. Every torch operation that produces a number is the one the reference runs, on
tensors of the same dtype and memory layout (the image is an NHWC array permuted to NCHW, so the nets see
channels-last tensors as in the reference), so results are expected bit-equal; --check verifies it.

BLAS: the goldens and ../shared/reference-baseline.md were made with Debian's generic (netlib) BLAS, which
torch's convolutions and dense layers call here. The machine's libblas.so.3 alternative may point elsewhere
(OpenBLAS since 2026-12-02); --blas netlib (the default) re-runs the script with netlib's libblas and
liblapack first on LD_LIBRARY_PATH, and then every stage of test1.jpg is bit-equal to the reference's and all
outputs match exactly. --blas system keeps the alternative (outputs then move by ~1e-4 px, net outputs by
~1e-6). The library actually loaded is printed and written to the JSON.

What differs from the official code (the timed computation is the detector on an already-decoded image):
  - No PIL (python3-pil is not installed here): the photo is decoded by our C++ decoder
    (bazel-bin/tools/decode_rgb, OpenCV, alpha dropped, EXIF orientation ignored: what the goldens' PIL
    .convert("RGB") gave; --check compares test1.jpg's pixels with the reference's, and every photo's
    outputs come out bit-equal). detect() receives an HxWx3 uint8 array
    where the reference receives a PIL image; the reference's np.uint8(pil_image) is then one PIL tobytes()
    copy more than our np.uint8(array). That copy is not timed here (the reference looks slightly faster).
  - No torchvision (not installed): batched_nms is rebuilt with torchvision 0.14's CPU semantics (stable
    descending score sort, greedy, area (x2-x1)*(y2-y1) in float32, suppressed when IoU > t compared in
    double, the "vanilla" re-sort by score above 4000 box coordinates). The greedy loop runs in numpy, one
    vectorised step per kept box, where torchvision runs a C++ loop; the time spent in it is reported
    (nms_ms) so a reader can judge that share.
  - One image per call: the reference's per-image index bookkeeping (all zeros for one image; the
    coordinate offset it adds to the boxes before NMS is then 0) is left out, as is the split of the
    outputs by image.

--check passes when, on every photo of ../shared/golden/mtcnn, the stage counts and number of faces are
equal and boxes and landmarks are within 1e-3 px, probabilities within 1e-5 (the README's tolerances); on
test1.jpg the decoded pixels must be equal and every recorded stage (stages_test1.pt) within 1e-5 (net
tensors) or 1e-3 px (boxes). --time: one warm-up, then the median of --repeats detect() calls per photo.

    bazel build //tools:decode_rgb
    /usr/bin/python3 tools/reference_bench/reference_mtcnn.py --check
    /usr/bin/python3 tools/reference_bench/reference_mtcnn.py --time --repeats 5 --json ref_mtcnn.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from speed_table import cpu_description  # noqa: E402

SHARED = os.path.join(os.path.dirname(REPO), "shared")
# Debian's libblas3 and liblapack3 (the reference implementations), ahead of the libblas.so.3 alternative.
NETLIB_DIRS = ["/usr/lib/x86_64-linux-gnu/blas", "/usr/lib/x86_64-linux-gnu/lapack"]
GOLDEN = os.path.join(SHARED, "golden", "mtcnn")

# ---------------------------------------------------------------------------------------------------------
# The three nets. A trunk is a list of ("conv", name, in, out, kernel) and ("pool", kernel, stride); every
# conv is followed by the PReLU of the same number (conv3 -> prelu3). R-Net and O-Net then flatten in
# (W, H, C) order and run one dense layer + PReLU before their heads.


class CascadeNet(nn.Module):
    def __init__(self, trunk, dense, heads, softmax_head):
        super().__init__()
        self.plan = []
        for step in trunk:
            if step[0] == "conv":
                _, name, cin, cout, k = step
                setattr(self, name, nn.Conv2d(cin, cout, k))
                setattr(self, name.replace("conv", "prelu"), nn.PReLU(cout))
                self.plan.append(("conv", name, name.replace("conv", "prelu")))
            else:
                self.plan.append(step)
        self.dense = dense
        if dense:
            name, fin, fout = dense
            setattr(self, name, nn.Linear(fin, fout))
            setattr(self, name.replace("dense", "prelu"), nn.PReLU(fout))
        self.heads = [name for name, _ in heads]
        for name, make in heads:
            setattr(self, name, make())
        self.softmax_head = softmax_head

    def forward(self, x):
        for step in self.plan:
            if step[0] == "conv":
                x = getattr(self, step[2])(getattr(self, step[1])(x))
            else:
                x = F.max_pool2d(x, step[1], step[2], ceil_mode=True)
        if self.dense:
            x = x.permute(0, 3, 2, 1).contiguous()
            x = getattr(self, self.dense[0])(x.view(x.shape[0], -1))
            x = getattr(self, self.dense[0].replace("dense", "prelu"))(x)
        outs = [getattr(self, name)(x) for name in self.heads]
        outs = [F.softmax(o, dim=1) if name == self.softmax_head else o for name, o in zip(self.heads, outs)]
        # Regression first, probabilities last (O-Net: landmarks in between).
        return tuple(outs[1:] + outs[:1])


def pnet():
    trunk = [("conv", "conv1", 3, 10, 3), ("pool", 2, 2), ("conv", "conv2", 10, 16, 3), ("conv", "conv3", 16, 32, 3)]
    return CascadeNet(trunk, None, [("conv4_1", lambda: nn.Conv2d(32, 2, 1)), ("conv4_2", lambda: nn.Conv2d(32, 4, 1))],
                      "conv4_1")


def rnet():
    trunk = [("conv", "conv1", 3, 28, 3), ("pool", 3, 2), ("conv", "conv2", 28, 48, 3), ("pool", 3, 2),
             ("conv", "conv3", 48, 64, 2)]
    return CascadeNet(trunk, ("dense4", 576, 128),
                      [("dense5_1", lambda: nn.Linear(128, 2)), ("dense5_2", lambda: nn.Linear(128, 4))], "dense5_1")


def onet():
    trunk = [("conv", "conv1", 3, 32, 3), ("pool", 3, 2), ("conv", "conv2", 32, 64, 3), ("pool", 3, 2),
             ("conv", "conv3", 64, 64, 3), ("pool", 2, 2), ("conv", "conv4", 64, 128, 2)]
    return CascadeNet(trunk, ("dense5", 1152, 256),
                      [("dense6_1", lambda: nn.Linear(256, 2)), ("dense6_2", lambda: nn.Linear(256, 4)),
                       ("dense6_3", lambda: nn.Linear(256, 10))], "dense6_1")


def load_net(make, path):
    net = make()
    net.load_state_dict(torch.load(path))
    return net.eval()


# ---------------------------------------------------------------------------------------------------------
# Box helpers. Boxes are float32 [N, >=4] tensors x1, y1, x2, y2 (then score, ...).


class NmsClock:
    """Wall time spent in the NMS rebuilds (numpy here, torchvision's C++ in the reference)."""
    seconds = 0.0


def _greedy_iou(boxes, scores, threshold):
    """torchvision 0.14 nms() on CPU: indices kept, in descending score order."""
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64)
    order = scores.sort(stable=True, descending=True)[1].numpy()
    x1, y1, x2, y2 = boxes.numpy().T.copy()
    area = (x2 - x1) * (y2 - y1)
    zero = np.float32(0)
    keep = []
    alive = order
    while alive.size:
        i, rest = alive[0], alive[1:]
        keep.append(i)
        w = np.maximum(zero, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(zero, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        alive = rest[~(iou.astype(np.float64) > threshold)]  # NaN IoU does not suppress, as in C++
    return torch.as_tensor(np.array(keep, dtype=np.int64))


def iou_nms(boxes, scores, threshold):
    """torchvision.ops.batched_nms for a single image (one category)."""
    start = time.perf_counter()
    keep = _greedy_iou(boxes, scores, threshold)
    if boxes.numel() > 4000:  # torchvision's "vanilla" path: kept mask, then a (non-stable) score sort
        keep = keep.sort()[0]
        keep = keep[scores[keep].sort(descending=True)[1]]
    NmsClock.seconds += time.perf_counter() - start
    return keep


def min_nms(boxes, scores, threshold):
    """The reference's numpy NMS, method "Min": +1 areas, overlap = intersection / smaller area."""
    start = time.perf_counter()
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64)
    b, s = boxes.numpy(), scores.numpy()
    x1, y1, x2, y2 = (b[:, c].copy() for c in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    remaining = np.argsort(s)  # ascending; the best is last
    kept = []
    while remaining.size > 0:
        best, others = remaining[-1], remaining[:-1]
        kept.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[others]) - np.maximum(x1[best], x1[others]) + 1)
        h = np.maximum(0.0, np.minimum(y2[best], y2[others]) - np.maximum(y1[best], y1[others]) + 1)
        overlap = (w * h) / np.minimum(area[best], area[others])
        remaining = others[np.where(overlap <= threshold)]
    NmsClock.seconds += time.perf_counter() - start
    return torch.as_tensor(np.array(kept, dtype=np.int64))


def square(b):
    """In place: each box becomes the square of side max(w, h) (w = x2 - x1) around the same centre."""
    bh = b[:, 3] - b[:, 1]
    bw = b[:, 2] - b[:, 0]
    side = torch.max(bw, bh)
    b[:, 0] = b[:, 0] + bw * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + bh * 0.5 - side * 0.5
    b[:, 2:4] = b[:, :2] + side.unsqueeze(1)
    return b


def regress(b, reg):
    """In place: R-/O-Net box regression, sides measured as inclusive pixel counts (x2 - x1 + 1)."""
    bw = b[:, 2] - b[:, 0] + 1
    bh = b[:, 3] - b[:, 1] + 1
    b[:, :4] = torch.stack([b[:, 0] + reg[:, 0] * bw, b[:, 1] + reg[:, 1] * bh,
                            b[:, 2] + reg[:, 2] * bw, b[:, 3] + reg[:, 3] * bh], dim=1)
    return b


def crop_bounds(boxes, w, h):
    """Truncated 1-based inclusive pixel bounds x1, y1, x2, y2, clamped to [1, W] x [1, H] (no padding)."""
    b = boxes[:, :4].trunc().int().numpy().copy()
    b[:, 0:2] = np.maximum(b[:, 0:2], 1)
    b[:, 2] = np.minimum(b[:, 2], w)
    b[:, 3] = np.minimum(b[:, 3], h)
    return b


def crops(image, bounds, size):
    """Area-resized, normalised crops; an empty crop is skipped, as the reference does."""
    patches = []
    for x1, y1, x2, y2 in bounds.tolist():
        if y2 > y1 - 1 and x2 > x1 - 1:
            patches.append(F.interpolate(image[0, :, y1 - 1:y2, x1 - 1:x2].unsqueeze(0), size=(size, size),
                                         mode="area"))
    return (torch.cat(patches, dim=0) - 127.5) * 0.0078125


def run_chunked(net, x, chunk=512):
    outs = [net(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    return tuple(torch.cat(parts, dim=0) for parts in zip(*outs))


# ---------------------------------------------------------------------------------------------------------


class ReferenceMtcnn:
    """MTCNN(keep_all=True).detect(img, landmarks=True) of the reference, for one HxWx3 uint8 RGB image."""

    def __init__(self, model_dir, min_face_size=20, thresholds=(0.6, 0.7, 0.7), factor=0.709):
        self.pnet = load_net(pnet, os.path.join(model_dir, "pnet.pt"))
        self.rnet = load_net(rnet, os.path.join(model_dir, "rnet.pt"))
        self.onet = load_net(onet, os.path.join(model_dir, "onet.pt"))
        self.min_face_size, self.thresholds, self.factor = min_face_size, thresholds, factor

    def detect(self, rgb, counts=None, trace=None):
        """(boxes [N,4], probs [N], landmarks [N,5,2]) float32, largest box first; None x3 for no face."""
        with torch.no_grad():
            boxes, points = self._cascade(rgb, counts if counts is not None else {}, trace)
        if len(boxes) == 0:
            return None, None, None
        order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
        boxes, points = boxes[order], points[order]
        return boxes[:, :4], boxes[:, 4], points

    def pyramid(self, h, w):
        m = 12.0 / self.min_face_size
        side, scale, scales = min(h, w) * m, m, []
        while side >= 12:
            scales.append(scale)
            scale *= self.factor
            side *= self.factor
        return scales

    def _cascade(self, rgb, counts, trace):
        # The reference stacks the image into a batch and permutes NHWC to NCHW: channels-last strides.
        image = torch.as_tensor(np.stack([np.uint8(rgb)]).copy()).permute(0, 3, 1, 2).type(torch.float32)
        h, w = image.shape[2:4]
        record = trace.__setitem__ if trace is not None else (lambda k, v: None)

        scales = self.pyramid(h, w)
        counts["num_scales"] = len(scales)
        candidates, survivors, offset = [], [], 0
        for k, scale in enumerate(scales):
            level = (F.interpolate(image, size=(int(h * scale + 1), int(w * scale + 1)), mode="area") - 127.5) * 0.0078125
            reg, prob = self.pnet(level)
            record(f"pnet_input_{k}", level)
            record(f"pnet_reg_{k}", reg)
            record(f"pnet_prob_{k}", prob)
            c = self._cells(reg, prob[:, 1], scale)
            candidates.append(c)
            survivors.append(iou_nms(c[:, :4], c[:, 4], 0.5) + offset)
            offset += c.shape[0]
        boxes = torch.cat(candidates, dim=0)
        counts["pnet_candidates_over_threshold"] = boxes.shape[0]
        record("stage1_candidates", boxes)
        boxes = boxes[torch.cat(survivors, dim=0)]
        counts["after_per_scale_nms_0.5"] = boxes.shape[0]
        boxes = boxes[iou_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        counts["after_pnet_nms_0.7"] = boxes.shape[0]
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * bw, boxes[:, 1] + boxes[:, 6] * bh,
                             boxes[:, 2] + boxes[:, 7] * bw, boxes[:, 3] + boxes[:, 8] * bh, boxes[:, 4]]).permute(1, 0)
        boxes = square(boxes)
        record("stage1_boxes", boxes.clone())

        if len(boxes) > 0:
            x = crops(image, crop_bounds(boxes, w, h), 24)
            counts["rnet_inputs"] = x.shape[0]
            reg, prob = run_chunked(self.rnet, x)
            record("rnet_input", x)
            record("rnet_reg", reg)
            record("rnet_prob", prob)
            score = prob[:, 1]
            ok = score > self.thresholds[1]
            counts["rnet_over_threshold"] = int(ok.sum())
            boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
            reg = reg[ok]
            keep = iou_nms(boxes[:, :4], boxes[:, 4], 0.7)
            counts["after_rnet_nms_0.7"] = keep.shape[0]
            boxes = square(regress(boxes[keep], reg[keep]))
            record("stage2_boxes", boxes.clone())

        points = torch.zeros(0, 5, 2)
        if len(boxes) > 0:
            x = crops(image, crop_bounds(boxes, w, h), 48)
            counts["onet_inputs"] = x.shape[0]
            reg, marks, prob = run_chunked(self.onet, x)
            record("onet_input", x)
            record("onet_reg", reg)
            record("onet_landmarks", marks)
            record("onet_prob", prob)
            score = prob[:, 1]
            ok = score > self.thresholds[2]
            counts["onet_over_threshold"] = int(ok.sum())
            boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
            reg, marks = reg[ok], marks[ok].permute(1, 0)
            # Landmarks: relative to the stage-2 square (inclusive sides), converted to 0-based pixels.
            bw = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(0)
            bh = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(0)
            px = bw * marks[:5] + boxes[:, 0].unsqueeze(0) - 1
            py = bh * marks[5:10] + boxes[:, 1].unsqueeze(0) - 1
            points = torch.stack((px, py)).permute(2, 1, 0)
            boxes = regress(boxes, reg)
            keep = min_nms(boxes[:, :4], boxes[:, 4], 0.7)
            boxes, points = boxes[keep], points[keep]
            record("final_boxes", boxes.clone())
            record("final_landmarks", points.clone())
        counts["after_onet_min_nms_0.7"] = boxes.shape[0]
        return boxes.numpy(), points.numpy()

    def _cells(self, reg, face_prob, scale):
        """P-Net cells with face probability >= threshold as x1, y1, x2, y2, score, reg0..3 (row-major)."""
        hit = face_prob >= self.thresholds[0]
        where = hit.nonzero()
        score = face_prob[hit]
        offsets = reg.permute(1, 0, 2, 3)[:, hit].permute(1, 0)
        col_row = where[:, 1:].type(reg.dtype).flip(1)
        top_left = ((2 * col_row + 1) / scale).floor()
        bottom_right = ((2 * col_row + 12) / scale).floor()
        return torch.cat([top_left, bottom_right, score.unsqueeze(1), offsets], dim=1)


# ---------------------------------------------------------------------------------------------------------


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval, separated by single whitespace
        end = pos
        while data[end:end + 1] not in (b" ", b"\n", b"\t", b"\r"):
            end += 1
        fields.append(data[pos:end])
        pos = end + 1
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"{path}: not an 8-bit P6 PPM")
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data, dtype=np.uint8, count=w * h * 3, offset=pos).reshape(h, w, 3).copy()


def decode_photos(decoder, names):
    """{name: HxWx3 uint8 RGB} decoded by our C++ decoder (one process for all photos)."""
    if not os.access(decoder, os.X_OK):
        sys.exit(f"{decoder} is not built: bazel build //tools:decode_rgb")
    with tempfile.TemporaryDirectory() as tmp:
        args = [decoder]
        for i, name in enumerate(names):
            args += [os.path.join(GOLDEN, "images", name), os.path.join(tmp, f"{i}.ppm")]
        subprocess.run(args, check=True)
        return {name: read_ppm(os.path.join(tmp, f"{i}.ppm")) for i, name in enumerate(names)}


def photo_names():
    with open(os.path.join(GOLDEN, "images.json")) as f:
        return list(json.load(f)["images"])


def max_abs(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max()) if a.size else 0.0


def check_photo(detector, name, rgb, golden, meta):
    counts = {}
    boxes, probs, points = detector.detect(rgb, counts)
    problems = []
    if (rgb.shape[1], rgb.shape[0]) != (meta["width"], meta["height"]):
        problems.append(f"size {rgb.shape[1]}x{rgb.shape[0]}")
    want = {k: v for k, v in meta["stage_counts"].items()}
    got = {k: counts.get(k, 0) for k in want}
    if got != want:
        problems.append("stage counts " + ", ".join(f"{k} {got[k]} != {want[k]}" for k in want if got[k] != want[k]))
    n = 0 if boxes is None else len(boxes)
    errs = {"box_px": 0.0, "landmark_px": 0.0, "prob": 0.0}
    if n != len(golden):
        problems.append(f"{n} faces, golden {len(golden)}")
    elif n:
        errs["box_px"] = max_abs(boxes, [f["box"] for f in golden])
        errs["landmark_px"] = max_abs(points, [f["landmarks"] for f in golden])
        errs["prob"] = max_abs(probs, [f["prob"] for f in golden])
        for key, tol in (("box_px", 1e-3), ("landmark_px", 1e-3), ("prob", 1e-5)):
            if errs[key] > tol:
                problems.append(f"{key} off by {errs[key]:.3g} (> {tol:g})")
    detail = f"{n} faces, max |diff| box {errs['box_px']:.3g} px, landmarks {errs['landmark_px']:.3g} px, " \
             f"prob {errs['prob']:.3g}; stage counts {'equal' if got == want else 'DIFFER'}"
    return problems, detail


def check_stages(detector, rgb):
    """test1.jpg: every recorded stage of the reference (stages_test1.pt) against the rebuild's."""
    golden = torch.load(os.path.join(GOLDEN, "stages_test1.pt"))
    problems = []
    if not torch.equal(torch.as_tensor(rgb), golden["image"]):
        problems.append("decoded pixels differ from the reference's")
    trace = {}
    detector.detect(rgb, trace=trace)
    worst = 0.0
    for key, value in trace.items():
        if key not in golden:
            continue
        diff = max_abs(value, golden[key])
        worst = max(worst, diff)
        tol = 1e-3 if key.startswith(("stage", "final")) else 1e-5  # pixel coordinates / net tensors
        if tuple(value.shape) != tuple(golden[key].shape) or diff > tol:
            problems.append(f"{key} off by {diff:.3g}")
    return problems, f"{len(trace)} stage tensors, max |diff| {worst:.3g}"


def run_check(detector, photos):
    with open(os.path.join(GOLDEN, "images.json")) as f:
        meta = json.load(f)["images"]
    with open(os.path.join(GOLDEN, "detections.json")) as f:
        golden = json.load(f)
    failed = 0
    for name, rgb in photos.items():
        problems, detail = check_photo(detector, name, rgb, golden[name], meta[name])
        if name == "test1.jpg":
            stage_problems, stage_detail = check_stages(detector, rgb)
            problems += stage_problems
            detail += f"; {stage_detail}"
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'OK  '} {name}: {detail}" + "".join(f"\n     {p}" for p in problems))
    print(f"{len(photos) - failed}/{len(photos)} photos match the reference's goldens")
    return failed == 0


def run_time(detector, photos, repeats):
    rows = {}
    for name, rgb in photos.items():
        boxes, _, _ = detector.detect(rgb)  # warm-up
        times, nms = [], []
        for _ in range(repeats):
            NmsClock.seconds = 0.0
            start = time.perf_counter()
            detector.detect(rgb)
            times.append(time.perf_counter() - start)
            nms.append(NmsClock.seconds)
        middle = sorted(range(repeats), key=lambda i: times[i])[repeats // 2]
        rows[name] = {"width": rgb.shape[1], "height": rgb.shape[0], "faces": 0 if boxes is None else len(boxes),
                      "median_ms": times[middle] * 1e3, "nms_ms": nms[middle] * 1e3,
                      "times_ms": [t * 1e3 for t in times]}
        print(f"{name}: {rgb.shape[1]}x{rgb.shape[0]}, {rows[name]['faces']} faces, median "
              f"{rows[name]['median_ms']:.1f} ms (NMS {rows[name]['nms_ms']:.1f} ms)", file=sys.stderr, flush=True)
    return rows


def loaded_blas():
    """The BLAS shared objects mapped into this process."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if os.path.basename(line.split()[-1]).startswith(("libblas", "libopenblas"))}
    return ", ".join(sorted(os.path.realpath(p) for p in libs)) or "?"


def use_netlib_blas():
    """Re-executes this script with netlib's libblas.so.3 ahead of the system alternative (once)."""
    path = os.environ.get("LD_LIBRARY_PATH", "")
    if path.split(":")[:len(NETLIB_DIRS)] == NETLIB_DIRS:
        return
    if not os.path.exists(os.path.join(NETLIB_DIRS[0], "libblas.so.3")):
        sys.exit(f"no {NETLIB_DIRS[0]}/libblas.so.3 (Debian's libblas3); run with --blas system")
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(filter(None, NETLIB_DIRS + [path])))
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with ../shared/golden/mtcnn (per photo OK/FAIL)")
    parser.add_argument("--time", action="store_true", help="time detect() per photo: one warm-up, median of N")
    parser.add_argument("--repeats", type=int, default=5, help="timed detect() calls per photo")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--photos", nargs="*", help="golden photo names (default: all of images.json)")
    parser.add_argument("--decoder", default=os.path.join(REPO, "bazel-bin", "tools", "decode_rgb"))
    parser.add_argument("--models", default=os.path.join(SHARED, "models", "mtcnn"))
    parser.add_argument("--blas", choices=["netlib", "system"], default="netlib",
                        help="netlib: the reference's BLAS (as the goldens and baseline); system: libblas.so.3 as set")
    parser.add_argument("--json", help="write the timings here (with --time)")
    args = parser.parse_args()
    if not (args.check or args.time):
        parser.error("give --check and/or --time")
    if args.blas == "netlib":
        use_netlib_blas()
    blas = loaded_blas()
    print(f"BLAS: {blas}", file=sys.stderr)
    torch.set_num_threads(args.threads)
    detector = ReferenceMtcnn(args.models)
    photos = decode_photos(args.decoder, args.photos or photo_names())
    ok = run_check(detector, photos) if args.check else True
    if args.time:
        rows = run_time(detector, photos, args.repeats)
        report = {"cpu": cpu_description(), "threads": args.threads, "repeats": args.repeats,
                  "torch": torch.__version__, "blas": blas, "photos": rows}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
        else:
            print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
