#!/usr/bin/python3
"""Table and curve of top-1 against BOPs % for factorization/run.sh.

BOPs % = a run's BOPs / (the fp32 run's MACs * 32 * 32) * 100. Writes
OUT_DIR/table.md and OUT_DIR/curve.png / curve.pdf (experiments/figures.py's look).

  /usr/bin/python3 experiments/compression/factorization/analyze.py [OUT_DIR]
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import figures  # noqa: E402  (experiments/figures.py)

FAMILIES = [("admm_cp", "ADMM-CP", figures.SERIES_COLORS[0]), ("cp_rtn", "CP then quantize", figures.SERIES_COLORS[1]),
            ("rtn", "PTQ RTN", figures.SERIES_COLORS[2]), ("gptq", "PTQ GPTQ", figures.SERIES_COLORS[3])]


def load(out):
    rows = {}
    for path in glob.glob(os.path.join(out, "*.json")):
        with open(path) as f:
            d = json.load(f)
        name = os.path.basename(path)[:-5]
        m = d["metrics"]
        cp = [c for c in d.get("compression", []) if c.get("rank", 0) > 0]
        method_s = sum(c["seconds"] for c in d.get("compression", []))
        rows[name] = dict(top1=m["top1"], bops=m["bops"], macs=m["macs"], bytes=m["model_bytes"],
                          params=m["params"], method_s=method_s, layers=len(cp),
                          errors={c["layer"]: c["error"] for c in cp})
    return rows


def family(name):
    for key, label, color in FAMILIES:
        if name.startswith(key + "_"):
            return key, label, color
    return None, None, None


def factor_bits(name):
    """'w4' of admm_cp_w4a8_r1.5; None for the PTQ rows (their bits vary along one line)."""
    m = re.search(r"_(w\d+)a\d+_r", name)
    return m.group(1) if m else None


def plot(rows, ref, stem):
    """One line per method and, for the factorized runs, per factor bit-width
    (solid 4-bit, dashed 8-bit): ranks vary along a line, bits do not."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    pts = [(family(n), factor_bits(n), r["bops"] / ref * 100, r["top1"]) for n, r in rows.items() if family(n)[0]]
    for key, label, color in FAMILIES:
        for bits in sorted({b for (k, _, _), b, _, _ in pts if k == key}, key=str):
            line = sorted((x, y) for (k, _, _), b, x, y in pts if k == key and b == bits)
            style = "--" if bits == "w8" else "-"
            ax.plot(*zip(*line), "o" + style, color=color, markersize=4, linewidth=1.3,
                    label=label if bits is None else f"{label}, {bits.upper()} factors")
    ax.set_xlabel("BOPs, % of fp32 (MACs x 32 x 32)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(left=0)
    ax.legend(loc="lower right")
    figures.save(fig, stem)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/compression/fmnist_full/factorization"
    rows = load(out)
    ref = rows["fp32"]["macs"] * 32 * 32
    lines = ["| run | top-1 | BOPs % of fp32 | MACs | model_bytes | factorized layers | method s |",
             "|---|---|---|---|---|---|---|"]
    order = sorted(rows, key=lambda n: (family(n)[0] or "", -rows[n]["bops"]))
    for n in ["fp32"] + [n for n in order if n != "fp32"]:
        r = rows[n]
        lines.append(f"| {n} | {r['top1']:.2f} | {r['bops'] / ref * 100:.2f} | {r['macs']:,.0f} | {r['bytes']:,.0f} | "
                     f"{r['layers']} | {r['method_s']:.1f} |")
    lines += ["", "| ADMM-CP vs CP then quantize | layers with lower output error | median error ratio |",
              "|---|---|---|"]
    for n in order:
        twin = "cp_rtn_" + n[len("admm_cp_"):]
        if not n.startswith("admm_cp_") or twin not in rows:
            continue
        a, b = rows[n]["errors"], rows[twin]["errors"]
        ratios = sorted(a[k] / b[k] for k in a if k in b and b[k] > 0)
        lower = sum(a[k] < b[k] for k in a if k in b)
        median = ratios[len(ratios) // 2] if ratios else float("nan")
        lines.append(f"| {n[len('admm_cp_'):]} | {lower} / {len(a)} | {median:.2f} |")
    plot(rows, ref, os.path.join(out, "curve"))
    figures.write_table(os.path.join(out, "table.md"), lines)


if __name__ == "__main__":
    main()
