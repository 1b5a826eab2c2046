#!/usr/bin/python3
"""Table and curve of top-1 against BOPs % for factorization/run.sh.

BOPs % = a run's BOPs / (the fp32 run's MACs * 32 * 32) * 100. Writes
OUT_DIR/table.md and OUT_DIR/curve.svg (plain SVG, no plotting library).

  /usr/bin/python3 experiments/compression/factorization/analyze.py [OUT_DIR]
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import figures  # noqa: E402  (experiments/figures.py)

FAMILIES = [("admm_cp", "ADMM-CP", "#d62728"), ("cp_rtn", "CP then quantize", "#1f77b4"),
            ("rtn", "PTQ RTN", "#7f7f7f"), ("gptq", "PTQ GPTQ", "#2ca02c")]


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


def svg(rows, ref, path):
    pts = [(family(n), r["bops"] / ref * 100, r["top1"]) for n, r in rows.items() if family(n)[0]]
    x0, x1 = 0.0, max(p[1] for p in pts) * 1.05
    y0, y1 = 0.0, 100.0
    w, h, m = 640, 420, 50
    sx = lambda x: m + (x - x0) / (x1 - x0) * (w - 2 * m)
    sy = lambda y: h - m - (y - y0) / (y1 - y0) * (h - 2 * m)
    out = figures.svg_frame(w, h, m, "BOPs, % of fp32 (MACs x 32 x 32)", "test top-1 (%)")
    for t in range(0, 101, 20):
        out.append(f'<text x="{m-6}" y="{sy(t)+4}" text-anchor="end">{t}</text>')
    step = 1 if x1 < 10 else 2
    for t in range(0, int(x1) + 1, step):
        out.append(f'<text x="{sx(t)}" y="{h-m+16}" text-anchor="middle">{t}</text>')
    for i, (key, label, color) in enumerate(FAMILIES):
        fam = sorted((x, y) for (k, _, _), x, y in pts if k == key)
        if not fam:
            continue
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in fam)
        out.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{color}"/>' for x, y in fam]
        out.append(f'<text x="{w-m-150}" y="{m+16*i}" fill="{color}">{label}</text>')
    figures.write_svg(path, out)


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
    svg(rows, ref, os.path.join(out, "curve.svg"))
    figures.write_table(os.path.join(out, "table.md"), lines)


if __name__ == "__main__":
    main()
