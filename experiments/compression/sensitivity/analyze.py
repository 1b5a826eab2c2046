#!/usr/bin/python3
"""The sensitivity table from the files of run.sh.

  /usr/bin/python3 experiments/compression/sensitivity/analyze.py OUT_DIR
Writes OUT_DIR/table.md: Spearman of each metric with the measured drop of
quantizing each layer alone (check_w2.json), the cost of the two passes, and
uniform vs mixed-precision rows (test top-1, model_bytes, bits used).
"""
import collections
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import figures  # noqa: E402  (experiments/figures.py)


def row(name, r):
    m = r["metrics"]
    bits = collections.Counter(p["weight_bits"] for p in r["spec"]["policy"].values())
    used = ", ".join(f"w{b}: {n}" for b, n in sorted(bits.items()))
    return f"| {name} | {m['top1']:.2f} | {m['model_bytes']:.0f} | {m['bops']:.4g} | {m.get('latency_ms', float('nan')):.3f} | {used} |"


def main():
    out = sys.argv[1]
    check = json.load(open(os.path.join(out, "check_w2.json")))
    p = check["passes"][0]
    lines = [f"Check at w{p['weight_bits']}a{p['act_bits']}: fp32 test top-1 {check['check']['fp32_top1']:.2f}; "
             f"two passes over {check['images']} calibration images {p['seconds']:.2f} s "
             f"(after {check['prepare_s']:.2f} s extraction, BN recalibration, fp32 graph).", "",
             "| metric | Spearman with the drop of the layer alone |", "|---|---|"]
    for metric, rho in check["check"]["spearman"].items():
        lines.append(f"| {metric} | {rho:.3f} |")
    lines += ["", "| run | top-1 | model_bytes | BOPs | latency_ms | weight bits |", "|---|---|---|---|---|---|"]
    runs = []
    for path in glob.glob(os.path.join(out, "uniform_*.json")) + glob.glob(os.path.join(out, "mixed_*.json")):
        r = json.load(open(path))
        runs.append((r["metrics"]["model_bytes"], os.path.basename(path)[:-5], r))
    for _, name, r in sorted(runs):
        lines.append(row(name, r))
    figures.write_table(os.path.join(out, "table.md"), lines)


if __name__ == "__main__":
    main()
