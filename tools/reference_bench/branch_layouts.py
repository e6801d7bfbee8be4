#!/usr/bin/python3
"""Times DMUE's C+1 layer4 branches, forward and backward, in four layouts of the same arithmetic.

Issue 13 (cheaper DMUE epochs) and 15 (training step) suggest fusing the branches. This measures
whether any layout beats the reference's (what dmue/dmue_model.cc does) through Debian's
python3-torch, the same oneDNN as ours:

  separate    auxiliary branch c on the samples outside class c, the main branch on all, then
              the latent passes (branch c on class c, no graph): 17 layer4 calls
  full        every branch once on the whole batch (the latent part rides along with a graph;
              its outputs get no gradient): 9 calls, 1/8 more backward arithmetic
  wide-first  'full' with the nine first convolutions (3x3 and the 1x1 shortcut), which share
              their input, run as one convolution with 9 x 512 outputs
  grouped     'full' as one layer4 of 9 x 512 channels whose later convolutions have groups=9

BatchNorm uses whole-batch statistics in the last three (a faithful version would split them per
subset, which only adds work), so each is a lower bound on its layout's cost.

    /usr/bin/python3 tools/reference_bench/branch_layouts.py --size 4 --batch 128   # FERPlus 64x64
    /usr/bin/python3 tools/reference_bench/branch_layouts.py --size 14 --batch 32   # 224x224
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride, groups=1):
        super().__init__()
        first_groups = 1 if cin == 256 else groups  # layer4's input is shared by every branch
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False, groups=first_groups)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False, groups=groups)
        self.b2 = nn.BatchNorm2d(cout)
        self.ds = None
        if stride != 1:
            self.ds = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False, groups=first_groups),
                                    nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(out + (self.ds(x) if self.ds is not None else x))


def layer4(groups=1):
    return nn.Sequential(Block(256, 512 * groups, 2, groups), Block(512 * groups, 512 * groups, 1, groups))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4, help="layer3's output side (4 for 64x64 input)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, C = args.batch, args.classes
    x = torch.randn(B, 256, args.size, args.size, requires_grad=True)
    labels = torch.arange(B) % C
    others = [(labels != c).nonzero()[:, 0] for c in range(C)]
    members = [(labels == c).nonzero()[:, 0] for c in range(C)]
    branches = nn.ModuleList([layer4() for _ in range(C + 1)])
    grouped_layer = layer4(groups=C + 1)

    def loss_of(outputs):  # outputs[c]: branch c on the whole batch
        return sum(outputs[c][others[c]].mean() for c in range(C)) + outputs[C].mean()

    def separate():
        outs = [branches[c](x[others[c]]) for c in range(C)] + [branches[C](x)]
        with torch.no_grad():
            for c in range(C):
                branches[c](x[members[c]])
        (sum(o.mean() for o in outs)).backward()

    def full():
        loss_of([branches[c](x) for c in range(C + 1)]).backward()

    def wide_first():
        w = torch.cat([b[0].c1.weight for b in branches])
        wd = torch.cat([b[0].ds[0].weight for b in branches])
        y, yd = F.conv2d(x, w, None, 2, 1), F.conv2d(x, wd, None, 2)
        outs = []
        for c, b in enumerate(branches):
            part = slice(c * 512, (c + 1) * 512)
            a = b[0].b2(b[0].c2(F.relu(b[0].b1(y[:, part]))))
            outs.append(b[1](F.relu(a + b[0].ds[1](yd[:, part]))))
        loss_of(outs).backward()

    def grouped():
        y = grouped_layer(x)
        loss_of(list(y.view(B, C + 1, 512, *y.shape[2:]).unbind(1))).backward()

    print(f"layer4 x {C + 1} branches, forward + backward, input [{B}, 256, {args.size}, {args.size}], "
          f"{args.threads} thread(s), median of {args.repeats}")
    for name, fn in (("separate", separate), ("full", full), ("wide-first", wide_first), ("grouped", grouped)):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"{name:11s} {sorted(times)[len(times) // 2] * 1000:8.1f} ms", flush=True)


if __name__ == "__main__":
    main()
