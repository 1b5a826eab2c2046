#!/usr/bin/python3
"""Hypervolume vs validated evaluations for the runs of run.sh.

One reference point for every run and seed (the worst value of each
objective over all rows of all runs plus 10% of its range, in minimisation
form), exact 3-D hypervolume after every 10 validated candidates. Writes
hypervolume.csv, table.md and hypervolume.png / hypervolume.pdf (mean of the
seeds per tactic, band from their minimum to maximum; experiments/figures.py's
look) into OUT_DIR. numpy, and matplotlib for the figure.

  /usr/bin/python3 experiments/search_efficiency/analyze.py [OUT_DIR]
"""
import csv
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)

# sign: to minimisation. Latency enters as latency_ratio (the candidate's time
# over the all-INT8 largest subnet's, timed interleaved) where the rows have it:
# a search ranks by latency_ms = ratio x its folder's anchor, so the ratio
# orders each run the same way and compares runs whose anchors differ.
OBJECTIVES = [("top1", -1.0), ("latency_ratio", 1.0), ("model_bytes", 1.0)]
TACTICS = ["linas", "linas_est", "linas_b10", "linas_b10_est", "linas_b10_est_i20", "nsga2", "random"]  # table order; other <name>_s<seed> folders follow


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    names = [n if n != "latency_ratio" or "latency_ratio" in rows[0] else "latency_ms" for n, _ in OBJECTIVES]
    return np.array([[s * float(r[n]) for n, (_, s) in zip(names, OBJECTIVES)] for r in rows])


def find_runs(root):
    """(tactic, seed) -> rows for every <tactic>_s<seed>/evaluations.csv under root."""
    runs = {}
    for name in sorted(os.listdir(root)):
        m = re.fullmatch(r"(.+)_s(\d+)", name)
        p = os.path.join(root, name, "evaluations.csv")
        if m and os.path.exists(p):
            rows = load(p)
            if len(rows) >= 100:  # runs cut before their second iteration are left out
                runs[(m.group(1), int(m.group(2)))] = rows
    return runs


def area2(pts, rx, ry):
    pts = sorted(map(tuple, pts))
    vol, best = 0.0, ry
    for i, (x, y) in enumerate(pts):
        best = min(best, y)
        right = pts[i + 1][0] if i + 1 < len(pts) else rx
        vol += (right - x) * (ry - best)
    return vol


def hv3(points, ref):
    pts = [p for p in points if np.all(p < ref)]
    pts.sort(key=lambda p: p[2])
    vol, below = 0.0, []
    for i, p in enumerate(pts):
        below.append(p[:2])
        top = pts[i + 1][2] if i + 1 < len(pts) else ref[2]
        if top > p[2]:
            vol += (top - p[2]) * area2(below, ref[0], ref[1])
    return vol


def plot(per_run, tactics, stem):
    """per_run: (tactic, seed) -> {evaluations: hypervolume}."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for k, tactic in enumerate(tactics):
        seeds = [c for (t, _), c in per_run.items() if t == tactic]
        steps = sorted({n for c in seeds for n in c})
        values = [[c[n] for c in seeds if n in c] for n in steps]
        ax.plot(steps, [np.mean(v) for v in values], color=figures.color(tactic, k), linewidth=1.8,
                label=f"{tactic} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")
        if len(seeds) > 1:
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=figures.color(tactic, k),
                            alpha=0.18, linewidth=0)
    ax.set_xlabel("validated evaluations")
    ax.set_ylabel("hypervolume (mean of seeds; band: min to max)")
    ax.legend(loc="lower right")
    figures.save(fig, stem)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../runs/search_efficiency")
    runs = find_runs(root)
    tactics = [t for t in TACTICS if any(k[0] == t for k in runs)]
    tactics += sorted({t for t, _ in runs} - set(tactics))
    allpts = np.vstack(list(runs.values()))
    worst, best = allpts.max(0), allpts.min(0)
    ref = worst + 0.1 * (worst - best)
    budget = max(len(v) for v in runs.values())
    steps = list(range(10, budget + 1, 10))
    per_run = {k: {n: hv3(list(v[:n]), ref) for n in steps if n <= len(v)} for k, v in runs.items()}
    mean = {}
    with open(os.path.join(root, "hypervolume.csv"), "w") as f:
        f.write("tactic,seed,evaluations,hypervolume\n")
        for (tactic, seed), curve in sorted(per_run.items()):
            for n, v in curve.items():
                f.write(f"{tactic},{seed},{n},{v:.6g}\n")
    for tactic in tactics:
        seeds = [c for (t, _), c in per_run.items() if t == tactic]
        if not seeds:
            continue
        # Mean over the seeds that reached n evaluations.
        mean[tactic] = {n: float(np.mean([c[n] for c in seeds if n in c])) for n in steps if any(n in c for c in seeds)}
    plot(per_run, [t for t in tactics if t in mean], os.path.join(root, "hypervolume"))
    lines = ["| tactic | seeds | HV@50 | HV@100 | HV@150 | HV@250 |", "|---|---|---|---|---|---|"]
    for tactic, curve in mean.items():
        seeds = sum(1 for (t, _) in per_run if t == tactic)
        cells = [f"{curve[n]:.4g}" if n in curve else "" for n in (50, 100, 150, 250)]
        lines.append(f"| {tactic} | {seeds} | " + " | ".join(cells) + " |")
    ref_text = ", ".join(f"{name} {s * r:.4g}" for (name, s), r in zip(OBJECTIVES, ref))
    lines.append(f"\nreference point: {ref_text} (worst over all rows + 10% of the range)")
    for linas in (t for t in mean if t.startswith("linas")):
        if linas in mean and "nsga2" in mean and 100 in mean[linas] and 250 in mean["nsga2"]:
            a, b = mean[linas][100], mean["nsga2"][250]
            per_seed = [per_run[(linas, s)][100] / per_run[("nsga2", s)][250] for s in range(10)
                        if 100 in per_run.get((linas, s), {}) and 250 in per_run.get(("nsga2", s), {})]
            lines.append(f"\n{linas}@100 / nsga2@250 = {a / b:.4f} (target >= 1; per seed "
                         + ", ".join(f"{r:.3f}" for r in per_seed) + ")")
    figures.write_table(os.path.join(root, "table.md"), lines)


if __name__ == "__main__":
    main()
