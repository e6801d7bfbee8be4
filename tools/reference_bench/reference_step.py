#!/usr/bin/python3
"""Times the reference DMUE training step in Python, for same-sitting ratios.

The official code is not vendored here; this script rebuilds its training
step from the behaviour documented in ../shared/golden/README.md (which the
C++ parity tests check): ResNet-18 trunk without the stem ReLU, C+1 layer4
copies, every auxiliary layer4 run on the samples outside its class and again,
with autograd graph, on the samples of its class; bnneck, SP-KD Gram
matrices, the pairwise-uncertainty head, train.py's losses; Adam over base
and classifiers. With --inference it times the reference's inference model instead (the
converted main branch: the same trunk, one layer4, bnneck and classifier, in
eval mode under no_grad), as its inference.py runs it. Needs Debian's
python3-torch:

    /usr/bin/python3 tools/reference_bench/reference_step.py --batch 32 --steps 3
    /usr/bin/python3 tools/reference_bench/reference_step.py --inference --batch 1 --steps 30
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


def layer(cin, cout, stride):
    return nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1))


class MultiBranch(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.C = num_classes
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.trunk = nn.Sequential(layer(64, 64, 1), layer(64, 128, 2), layer(128, 256, 2))
        self.layer4 = nn.ModuleList([layer(256, 512, 2) for _ in range(num_classes + 1)])
        self.classifiers = nn.ModuleList(
            [nn.Linear(512, num_classes - 1 if b < num_classes else num_classes, bias=False)
             for b in range(num_classes + 1)])
        self.project_w = nn.Sequential(nn.Linear(2 * num_classes, num_classes), nn.PReLU(), nn.Linear(num_classes, 1))
        self.bottleneck = nn.BatchNorm1d(512)
        self.bottleneck.bias.requires_grad_(False)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x, labels):
        C = self.C
        x = F.max_pool2d(self.bn1(self.conv1(x)), 2)
        x = self.trunk(x)
        inds = [(labels != c).nonzero() for c in range(C)]
        targets = []
        for c in range(C):
            t = labels[inds[c][:, 0]]
            targets.append(t.where(t < c, t - 1))
        x_list = [self.layer4[c](x[inds[c][:, 0]]) for c in range(C)]
        x_final = self.layer4[C](x)
        inds_soft = [(labels == c).nonzero() for c in range(C)]
        soft_list = [self.layer4[c](x[inds_soft[c][:, 0]]) for c in range(C)]  # with graph, as the reference

        gap = lambda t: F.adaptive_avg_pool2d(t, 1).squeeze(2).squeeze(2)
        x_list = [self.bottleneck(self.dropout(gap(t))) for t in x_list]
        x_list = [self.classifiers[c](x_list[c]) for c in range(C)]
        x_final = gap(x_final)
        norm = torch.norm(x_final, dim=1).unsqueeze(1)
        cos = x_final.mm(x_final.t()) / norm.mm(norm.t())
        x_final = self.bottleneck(self.dropout(x_final))
        soft_list = [self.bottleneck(gap(t)) for t in soft_list]
        G = [F.normalize(f.mm(f.t()), p=2, dim=1) for f in x_list]
        G_main = x_final.mm(x_final.t())
        G_main = [F.normalize(G_main[i[:, 0], :][:, i[:, 0]], p=2, dim=1) for i in inds]
        soft_list = [self.classifiers[c](soft_list[c]) for c in range(C)]
        x_final = self.classifiers[C](x_final)
        one_hot = torch.zeros(labels.shape[0], C).scatter_(1, labels.unsqueeze(1), 1)
        cos_mean = torch.cat([cos[:, i[:, 0]].mean(1, keepdim=True) for i in inds_soft], 1)
        mn, mx = cos_mean.min(1, keepdim=True)[0], cos_mean.max(1, keepdim=True)[0]
        cos_mean = (cos_mean - mn) / (mx - mn)
        score = torch.sigmoid(self.project_w(torch.cat((cos_mean, one_hot), 1)))
        return x_final, x_list, targets, soft_list, G, G_main, score, x_final * score


def step(model, optimizer, images, labels, C, T=1.2, w=0.5, gamma=1000.0, ramp_up=1.0, ramp_down=1.0):
    x_final, x_list, targets, soft_list, G, G_main, score, atten = model(images, labels)
    softlabel = torch.zeros_like(x_final)
    for c in range(C):
        px = torch.softmax(soft_list[c], 1)
        ptx = px ** (1 / T)
        tx = (ptx / ptx.sum(1, keepdim=True)).detach()
        spread = torch.zeros(tx.shape[0], C)
        spread[:, :c], spread[:, c + 1:] = tx[:, :c], tx[:, c:]
        softlabel[(labels == c).nonzero()[:, 0]] = spread
    probs = torch.softmax(x_final, 1) * torch.ones_like(x_final).scatter_(1, labels.view(-1, 1), 0)
    soft = torch.mean((probs - softlabel) ** 2)
    aux = sum(F.cross_entropy(p, t) for p, t in zip(x_list, targets)) / C
    ce = F.cross_entropy(atten, labels)
    sp = sum(F.mse_loss(a, b) for a, b in zip(G, G_main)) / C
    loss = ramp_up * ce + ramp_up * (w * soft + gamma * sp) + ramp_down * aux
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


class MainBranch(nn.Module):
    """The inference model the reference's conversion keeps: trunk, layer4 of the last branch, bnneck, classifier."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.trunk = nn.Sequential(layer(64, 64, 1), layer(64, 128, 2), layer(128, 256, 2), layer(256, 512, 2))
        self.bottleneck = nn.BatchNorm1d(512)
        self.classifier = nn.Linear(512, num_classes, bias=False)

    def forward(self, x):
        x = self.trunk(F.max_pool2d(self.bn1(self.conv1(x)), 2))
        return self.classifier(self.bottleneck(F.adaptive_avg_pool2d(x, 1).flatten(1)))


def median_seconds(fn, steps):
    fn()  # warm-up
    times = []
    for _ in range(steps):
        start = time.time()
        fn()
        times.append(time.time() - start)
    times.sort()
    return times[len(times) // 2]


def time_inference(args):
    model = MainBranch(args.classes).eval()
    images = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        median = median_seconds(lambda: model(images), args.steps)
    print(f"reference inference: batch {args.batch} size {args.size}: median {median * 1000:.2f} ms, "
          f"{args.batch / median:.2f} images/s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--inference", action="store_true", help="time the inference model, not a training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.inference:
        return time_inference(args)
    model = MultiBranch(args.classes).train()
    base = [p for n, p in model.named_parameters() if not n.startswith(("classifiers", "project_w", "bottleneck"))]
    optimizer = torch.optim.Adam([{"params": base, "lr": 1e-4},
                                  {"params": model.classifiers.parameters(), "lr": 1e-3}], weight_decay=1e-4)
    images = torch.randn(args.batch, 3, args.size, args.size)
    labels = torch.arange(args.batch) % args.classes
    median = median_seconds(lambda: step(model, optimizer, images, labels, args.classes), args.steps)
    print(f"reference-equivalent train step: batch {args.batch} size {args.size}: median {median:.3f} s, "
          f"{args.batch / median:.2f} images/s")


if __name__ == "__main__":
    main()
