#!/usr/bin/env python3
"""SimQ-NAS's headline table from experiments/simqnas/run.sh's four searches.

For each (space, supernet) run folder under OUT_DIR it reads front_test.csv
and front_test_baselines.json (experiments/simqnas/front_on_test.py) and
reports, among the front members whose test top-1 is at least the all-INT8
largest subnet's (that baseline itself excluded), the best latency and the
best size ratio against the all-INT8 and the fp32 largest subnets, beside
the paper's figures
(REFERENCES.md section 1), and the same ratios with a loss of up to LOSS
points allowed. Writes OUT_DIR/table.md, table.csv and front.png / front.pdf
(test top-1 against the latency and the size ratio to all-INT8, one colour
per run, the paper's figures written beside; experiments/figures.py's look).

  /usr/bin/python3 experiments/simqnas/analyze.py OUT_DIR
matplotlib for the figure (scripts/install-deps.sh --figures).
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)

RUNS = [("simqnas", "fp32"), ("simqnas", "qat"), ("qnas", "fp32"), ("qnas", "qat")]
SPACE_NAMES = {"simqnas": "SimQ-NAS (each layer INT8 or FP32)", "qnas": "qnas (the config's space)"}
COLORS = {f"{space}_{supernet}": figures.SERIES_COLORS[k] for k, (space, supernet) in enumerate(RUNS)}
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


def plot(points, int8_top1, stem):
    """points: run -> [(latency ratio vs INT8, size ratio vs INT8, test top-1)]."""
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8), sharey=True)
    for ax, k, label in ((axes[0], 0, "latency"), (axes[1], 1, "size")):
        for run, pts in points.items():
            ax.scatter([p[k] for p in pts], [p[2] for p in pts], s=14, color=COLORS[run], alpha=0.75, label=run)
            ax.axhline(int8_top1[run], color=COLORS[run], linestyle="--", linewidth=0.9)
        ax.set_xlabel(f"{label} ratio to the all-INT8 largest (higher = better)")
    axes[0].plot([], [], "k--", linewidth=0.9, label="all-INT8 largest (its top-1)")
    axes[0].set_ylabel("test top-1 (%)")
    axes[0].legend(loc="lower left")
    axes[1].text(0.98, 0.98, "SimQ-NAS paper, no loss vs all-INT8:\nup to 4.80x latency, 3.44x size\n(ViT, BERT, BEiT-3, ResNet50)",
                 transform=axes[1].transAxes, ha="right", va="top", fontsize=8)
    figures.save(fig, stem)


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
        points[run] = [(int8["latency_ms"] / m["latency_ms"], int8["model_bytes"] / m["model_bytes"], m["top1"])
                       for m in members]
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
    plot(points, int8_top1, os.path.join(root, "front"))
    figures.write_table(os.path.join(root, "table.md"), lines)


if __name__ == "__main__":
    main()
