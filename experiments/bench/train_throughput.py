#!/usr/bin/python3
"""Training throughput: qnas's sandwich step against the same step in PyTorch.

Runs build/bench/bench_train_throughput (qnas, C++), which writes the
supernet structure and the subnets of every step; then times the same
steps on an equivalent PyTorch supernet written the way Once-for-All writes
dynamic layers (full-size weights, sliced in forward), with Debian's
python3-torch (same LibTorch version), the same threads, batch, subnets,
optimizer and losses. Prints one row per implementation and the ratio.

  /usr/bin/python3 experiments/bench/train_throughput.py configs/quickstart.yaml [--format md]

PyTorch is timed in channels-last (what qnas runs) and, for reference, in
PyTorch's default NCHW layout. The ratio is taken against the faster one.
Both sides get the same glibc allocator settings qnas applies to itself
(no mmap for large blocks; see src/core/runtime.cpp): the script re-runs
itself with GLIBC_TUNABLES set, unless that variable is already set.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v, divisor=8):
    r = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return r + divisor if r < 0.9 * v else r


def act(x, name):
    return F.relu(x) if name == "relu" else F.hardswish(x)


class DynamicBN(nn.Module):
    """Batch statistics only, as qnas trains (subnets get theirs by recalibration)."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c))
        self.beta = nn.Parameter(torch.zeros(c))

    def forward(self, x, c):
        return F.batch_norm(x, None, None, self.gamma[:c], self.beta[:c], True, 0.1, 1e-5)


class DynamicBlock(nn.Module):
    def __init__(self, cin, cout, stride, se, act_name, kernels, expands, transform):
        super().__init__()
        self.cin, self.cout, self.stride, self.se, self.act = cin, cout, stride, se, act_name
        self.kernels = sorted(kernels)
        mid = max(make_divisible(cin * e) for e in expands)
        kmax = self.kernels[-1]
        self.pw1 = nn.Parameter(torch.randn(mid, cin, 1, 1) * (2.0 / mid) ** 0.5)
        self.bn1 = DynamicBN(mid)
        self.dw = nn.Parameter(torch.randn(mid, 1, kmax, kmax) * (2.0 / (mid * kmax * kmax)) ** 0.5)
        self.bn2 = DynamicBN(mid)
        if se:
            s = make_divisible(mid / 4)
            self.se_rw = nn.Parameter(torch.randn(s, mid, 1, 1) * (2.0 / s) ** 0.5)
            self.se_rb = nn.Parameter(torch.zeros(s))
            self.se_ew = nn.Parameter(torch.randn(mid, s, 1, 1) * (2.0 / mid) ** 0.5)
            self.se_eb = nn.Parameter(torch.zeros(mid))
        self.pw2 = nn.Parameter(torch.randn(cout, mid, 1, 1) * (2.0 / cout) ** 0.5)
        self.bn3 = DynamicBN(cout)
        self.transform = nn.ParameterDict()
        if transform:
            for small, big in zip(self.kernels, self.kernels[1:]):
                self.transform[f"{big}to{small}"] = nn.Parameter(torch.eye(small * small))
        self.residual = stride == 1 and cin == cout

    def dw_kernel(self, mid, k):
        w = self.dw[:mid]
        if not len(self.transform):
            s = (w.size(-1) - k) // 2
            return w[:, :, s:s + k, s:s + k]
        for i in range(len(self.kernels) - 1, 0, -1):
            if self.kernels[i] <= k:
                break
            t = self.kernels[i - 1]
            s = (w.size(-1) - t) // 2
            crop = w[:, :, s:s + t, s:s + t].reshape(mid, t * t)
            w = F.linear(crop, self.transform[f"{self.kernels[i]}to{t}"]).reshape(mid, 1, t, t)
        return w

    def forward(self, x, k, e):
        mid = make_divisible(self.cin * e)
        y = act(self.bn1(F.conv2d(x, self.pw1[:mid]), mid), self.act)
        y = F.conv2d(y, self.dw_kernel(mid, k), None, self.stride, k // 2, 1, mid)
        y = act(self.bn2(y, mid), self.act)
        if self.se:
            s = make_divisible(mid / 4)
            p = y.mean((2, 3), keepdim=True)
            p = F.relu(F.conv2d(p, self.se_rw[:s, :mid], self.se_rb[:s]))
            y = y * F.hardsigmoid(F.conv2d(p, self.se_ew[:mid, :s], self.se_eb[:mid]))
        y = self.bn3(F.conv2d(y, self.pw2[:, :mid]), self.cout)
        return y + x if self.residual else y


class DynamicMBV3(nn.Module):
    def __init__(self, st, channels_last):
        super().__init__()
        self.channels_last = channels_last
        c_in, classes, stem = st["input"][0], st["classes"], st["stem_width"]
        self.stem = nn.Parameter(torch.randn(stem, c_in, 3, 3) * (2.0 / (stem * 9)) ** 0.5)
        self.stem_bn = DynamicBN(stem)
        self.stages = nn.ModuleList()
        cin = stem
        for s in st["stages"]:
            blocks = nn.ModuleList()
            for b in range(max(st["depth"])):
                blocks.append(DynamicBlock(cin, s["width"], s["stride"] if b == 0 else 1, s["se"], s["act"],
                                           st["kernel"], st["expand"], st["kernel_transform"]))
                cin = s["width"]
            self.stages.append(blocks)
        self.head = nn.Parameter(torch.randn(st["head_width"], cin, 1, 1) * (2.0 / st["head_width"]) ** 0.5)
        self.head_bn = DynamicBN(st["head_width"])
        self.mix = nn.Linear(st["head_width"], st["feature_width"])
        self.classifier = nn.Linear(st["feature_width"], classes)

    def forward(self, x, arch):
        y = F.hardswish(self.stem_bn(F.conv2d(x, self.stem, None, 1, 1), self.stem.size(0)))
        if self.channels_last:
            y = y.contiguous(memory_format=torch.channels_last)
        for i, blocks in enumerate(self.stages):
            for b in range(arch[f"s{i}.depth"]):
                y = blocks[b](y, arch[f"s{i}.b{b}.kernel"], arch[f"s{i}.b{b}.expand"])
        y = F.hardswish(self.head_bn(F.conv2d(y, self.head), self.head.size(0))).mean((2, 3))
        return self.classifier(F.hardswish(self.mix(y)))


def make_optimizer(net, t):
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        skip = any(s in name for s in ("gamma", "beta", "bias", "transform"))
        (no_decay if skip else decay).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": t["weight_decay"]},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=t["lr"], momentum=t["momentum"], nesterov=t["nesterov"])


def sandwich_step(net, opt, x, y, specs, t):
    opt.zero_grad(set_to_none=True)
    teacher = net(x, specs[0])
    F.cross_entropy(teacher, y, label_smoothing=t["label_smoothing"]).backward()
    soft = F.softmax(teacher.detach(), 1)
    for spec in specs[1:]:
        logits = net(x, spec)
        loss = -(soft * F.log_softmax(logits, 1)).sum(1).mean() * t["kd_ratio"]
        if t["kd_ratio"] < 1:
            loss = loss + F.cross_entropy(logits, y, label_smoothing=t["label_smoothing"]) * (1 - t["kd_ratio"])
        loss.backward()
    opt.step()


def time_pytorch(plan, channels_last):
    torch.manual_seed(0)
    torch.set_num_threads(plan["threads"])
    net = DynamicMBV3(plan["structure"], channels_last).train()
    opt = make_optimizer(net, plan["train"])
    x = torch.randn(plan["batch_size"], 1, 28, 28)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (plan["batch_size"],))
    seconds = 0.0
    for i, specs in enumerate(plan["steps"]):
        t0 = time.perf_counter()
        sandwich_step(net, opt, x, y, specs, plan["train"])
        if i >= plan["warmup"]:
            seconds += time.perf_counter() - t0
    return seconds / (len(plan["steps"]) - plan["warmup"])


def render(rows, fmt):
    head = list(rows[0].keys())
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return "\n".join([",".join(head)] + [",".join(str(r[h]) for h in head) for r in rows])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in head]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), line(["-" * w for w in widths])] if fmt == "md" else [" ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += [line([r[h] for h in head]) if fmt == "md" else " ".join(str(r[h]).ljust(w) for h, w in zip(head, widths)) for r in rows]
    return "\n".join(out)


FAIR_ALLOCATOR = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=536870912"


def main():
    if "GLIBC_TUNABLES" not in os.environ:
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, GLIBC_TUNABLES=FAIR_ALLOCATOR))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="qnas config override")
    ap.add_argument("--format", default="md", choices=["text", "csv", "md", "json"])
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "../../build/bench/bench_train_throughput"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        specs = os.path.join(tmp, "plan.json")
        cmd = [args.bench, args.config, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--specs-out", specs, "--format", "json"]
        for s in args.set:
            cmd += ["--set", s]
        qnas_row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)[0]
        plan = json.load(open(specs))
    rows = [{"impl": "qnas (channels-last)", "threads": plan["threads"], "batch": plan["batch_size"],
             "subnets_per_step": len(plan["steps"][0]), "s_per_step": round(qnas_row["s_per_step"], 4),
             "images_per_s": round(qnas_row["images_per_s"], 1)}]
    for cl in (True, False):
        s = time_pytorch(plan, cl)
        rows.append({"impl": "pytorch " + ("(channels-last)" if cl else "(NCHW)"), "threads": plan["threads"],
                     "batch": plan["batch_size"], "subnets_per_step": len(plan["steps"][0]),
                     "s_per_step": round(s, 4), "images_per_s": round(plan["batch_size"] / s, 1)})
    best = min(r["s_per_step"] for r in rows[1:])
    for r in rows:
        r["speedup_vs_best_pytorch"] = round(best / r["s_per_step"], 2)
    print(render(rows, args.format))


if __name__ == "__main__":
    sys.exit(main())
