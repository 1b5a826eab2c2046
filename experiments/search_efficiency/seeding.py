#!/usr/bin/python3
"""Hypervolume (top1, model_bytes) vs validated evaluations for seeding.sh.

Per seed, one reference point for both runs (the worst top1 and model_bytes
over their rows plus 10% of the range); exact 2-D hypervolume after every
validated candidate. Reports each run's final hypervolume and the first
evaluation count at which the seeded run reaches the unseeded run's final
value. Writes OUT_DIR/table.md. numpy only.

  /usr/bin/python3 experiments/search_efficiency/seeding.py [OUT_DIR]
"""
import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)


def load(path):
    with open(path) as f:
        return np.array([[-float(r["top1"]), float(r["model_bytes"])] for r in csv.DictReader(f)])


def hv2(points, ref):
    pts = sorted(map(tuple, (p for p in points if np.all(p < ref))))
    vol, best = 0.0, ref[1]
    for i, (x, y) in enumerate(pts):
        best = min(best, y)
        right = pts[i + 1][0] if i + 1 < len(pts) else ref[0]
        vol += (right - x) * (ref[1] - best)
    return vol


def curve(rows, ref):
    return [hv2(rows[: n + 1], ref) for n in range(len(rows))]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/search_seeding"
    lines = ["| seed | unseeded final HV | seeded final HV | seeded HV at 50 | unseeded HV at 50 | "
             "evaluations for the seeded run to reach the unseeded final HV |", "|---|---|---|---|---|---|"]
    for seed in range(3):
        runs = {f: load(os.path.join(out, f"seeded{f}_s{seed}", "evaluations.csv")) for f in ("0", "0.5")}
        both = np.vstack(list(runs.values()))
        worst, best = both.max(0), both.min(0)
        ref = worst + 0.1 * (worst - best)
        c = {f: curve(r, ref) for f, r in runs.items()}
        target = c["0"][-1]
        reach = next((n + 1 for n, v in enumerate(c["0.5"]) if v >= target), None)
        lines.append(f"| {seed} | {target:.5g} | {c['0.5'][-1]:.5g} | {c['0.5'][49]:.5g} | {c['0'][49]:.5g} | "
                     f"{reach if reach else 'not reached'} of {len(c['0.5'])} |")
    figures.write_table(os.path.join(out, "table.md"), lines)


if __name__ == "__main__":
    main()
