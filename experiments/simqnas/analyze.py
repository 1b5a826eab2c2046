#!/usr/bin/env python3
"""SimQ-NAS's headline table from experiments/simqnas/run.sh's four searches.

For each (space, supernet) run folder under OUT_DIR it reads front_test.csv
and front_test_baselines.json (experiments/simqnas/front_on_test.py) and
reports, among the front members whose test top-1 is at least the all-INT8
largest subnet's (that baseline itself excluded), the best latency and the
best size ratio against the all-INT8 and the fp32 largest subnets, beside
the paper's figures
(REFERENCES.md section 1), and the same ratios with a loss of up to LOSS
points allowed. Writes OUT_DIR/table.md, table.csv and front.svg
(test top-1 against the latency ratio to all-INT8, one colour per run).

  /usr/bin/python3 experiments/simqnas/analyze.py OUT_DIR
Standard library only.
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)

RUNS = [("simqnas", "fp32"), ("simqnas", "qat"), ("qnas", "fp32"), ("qnas", "qat")]
SPACE_NAMES = {"simqnas": "SimQ-NAS (each layer INT8 or FP32)", "qnas": "qnas (the config's space)"}
COLORS = {"simqnas_fp32": "#1f77b4", "simqnas_qat": "#17becf", "qnas_fp32": "#d62728", "qnas_qat": "#ff7f0e"}
PAPER = "SimQ-NAS paper (ViT, BERT, BEiT-3, ResNet50; arXiv 2312.13301)"


def load(run_dir):
    with open(os.path.join(run_dir, "front_test.csv")) as f:
        members = [{k: v if k in ("id", "baseline") else float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    with open(os.path.join(run_dir, "front_test_baselines.json")) as f:
        base = json.load(f)
    return members, base["int8_largest"], base["fp32_largest"]


LOSS = 0.5  # points of test top-1: the second pair of columns, a small loss allowed


def summary(members, int8, fp32):
    # The all-INT8 largest on the front is the reference itself, not a result.
    searched = [m for m in members if m["baseline"] != "int8 largest"]
    within = lambda loss: [m for m in searched if m["top1"] >= int8["top1"] - loss]
    best = lambda kept, key, ref: max((ref[key] / m[key] for m in kept), default=None)
    kept, near = within(0.0), within(LOSS)
    return {"members": len(members), "no_loss": len(kept), "best_test_top1": max(m["top1"] for m in members),
            "int8_top1": int8["top1"], "fp32_top1": fp32["top1"],
            "latency_vs_int8": best(kept, "latency_ms", int8), "size_vs_int8": best(kept, "model_bytes", int8),
            "latency_vs_fp32": best(kept, "latency_ms", fp32), "size_vs_fp32": best(kept, "model_bytes", fp32),
            "near": len(near), "near_latency_vs_int8": best(near, "latency_ms", int8),
            "near_size_vs_int8": best(near, "model_bytes", int8)}


def ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def svg(points, int8_top1, path):
    """points: run -> [(latency ratio vs INT8, test top-1)]."""
    w, h, pad = 640, 420, 60
    xs = [x for pts in points.values() for x, _ in pts] + [1.0]
    ys = [y for pts in points.values() for _, y in pts] + list(int8_top1.values())
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def xy(x, y):
        return (pad + (w - 2 * pad) * (x - x0) / (x1 - x0 or 1), h - pad - (h - 2 * pad) * (y - y0) / (y1 - y0 or 1))

    out = figures.svg_frame(w, h, pad, "latency ratio to the all-INT8 largest (higher = faster)", "test top-1 (%)")
    out += [f'<text x="{pad}" y="{h-pad+16}" text-anchor="middle">{x0:.2f}</text>',
           f'<text x="{w-pad}" y="{h-pad+16}" text-anchor="middle">{x1:.2f}</text>',
           f'<text x="{pad-5}" y="{h-pad}" text-anchor="end">{y0:.1f}</text>',
           f'<text x="{pad-5}" y="{pad}" text-anchor="end">{y1:.1f}</text>']
    for k, (run, pts) in enumerate(points.items()):
        color = COLORS[run]
        for x, y in pts:
            cx, cy = xy(x, y)
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}" fill-opacity="0.7"/>')
        bx0, by = xy(x0, int8_top1[run])
        bx1, _ = xy(x1, int8_top1[run])
        out.append(f'<line x1="{bx0:.1f}" y1="{by:.1f}" x2="{bx1:.1f}" y2="{by:.1f}" stroke="{color}" '
                   'stroke-dasharray="4 3"/>')
        out.append(f'<text x="{w-pad-150}" y="{pad+16*k}" fill="{color}">{run}</text>')
    out.append(f'<text x="{w-pad-150}" y="{pad+16*len(points)}">dashed: all-INT8 largest</text>')
    figures.write_svg(path, out)


def main():
    root = sys.argv[1]
    rows, points, int8_top1 = [], {}, {}
    for space, supernet in RUNS:
        run = f"{space}_{supernet}"
        if not os.path.exists(os.path.join(root, run, "front_test_baselines.json")):
            print(f"analyze: {root}/{run} has no front_test_baselines.json yet; skipped", file=sys.stderr)
            continue
        members, int8, fp32 = load(os.path.join(root, run))
        rows.append({"space": space, "supernet": supernet, **summary(members, int8, fp32)})
        points[run] = [(int8["latency_ms"] / m["latency_ms"], m["top1"]) for m in members]
        int8_top1[run] = int8["top1"]
    if not rows:
        sys.exit(f"analyze: no finished run under {root}")
    with open(os.path.join(root, "table.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| space | supernet | front | at no loss | best test top-1 | all-INT8 top-1 | fp32 top-1 | "
             f"latency vs INT8 | size vs INT8 | latency vs fp32 | size vs fp32 | within {LOSS} pt | "
             f"latency vs INT8, {LOSS} pt | size vs INT8, {LOSS} pt |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {SPACE_NAMES[r['space']]} | {r['supernet']} | {r['members']} | {r['no_loss']} | "
                     f"{r['best_test_top1']:.2f} | {r['int8_top1']:.2f} | {r['fp32_top1']:.2f} | "
                     f"{ratio(r['latency_vs_int8'])} | {ratio(r['size_vs_int8'])} | "
                     f"{ratio(r['latency_vs_fp32'])} | {ratio(r['size_vs_fp32'])} | {r['near']} | "
                     f"{ratio(r['near_latency_vs_int8'])} | {ratio(r['near_size_vs_int8'])} |")
    lines.append(f"| {PAPER} | | | | | | | up to 4.80x | up to 3.44x | | | | | |")
    svg(points, int8_top1, os.path.join(root, "front.svg"))
    figures.write_table(os.path.join(root, "table.md"), lines)


if __name__ == "__main__":
    main()
