#!/usr/bin/python3
"""The weight_quant table from the JSON files of run.sh.

  /usr/bin/python3 experiments/compression/weight_quant/analyze.py OUT_DIR
Writes OUT_DIR/table.md: test top-1, drop vs fp32, model_bytes, BOPs,
latency, the method's time, and per-layer output errors: the mean ratio to
RTN's on the same grid and how many layers the method does not make worse;
decoupleQ's layers (stage one) against GPTQ's at 2 bits. SmoothQuant rows change
activations too, so they have no per-layer weight errors.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import figures  # noqa: E402  (experiments/figures.py)

ROWS = ["fp32", "w4_rtn", "w4_gptq", "w2_rtn", "w2_gptq", "w2_gptq_act_order", "w2_decoupleq", "w2_decoupleq_tuned", "w8a8_rtn",
        "w8a8_smoothquant_a0.5", "w8a8_smoothquant_a0.75", "w8a8_smoothquant_a1"]


def load(out, name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def main():
    out = sys.argv[1]
    runs = {name: load(out, name) for name in ROWS}
    fp32 = runs["fp32"]["metrics"]["top1"]
    lines = ["| run | top-1 | drop vs fp32 | model_bytes | BOPs | latency_ms | method s | mean error / RTN's | layers <= RTN |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        if r is None:
            continue
        m, comp = r["metrics"], r.get("compression", [])
        ratios = [c["error"] / c["rtn_error"] for c in comp if c["rtn_error"] > 0]
        not_worse = sum(c["error"] <= c["rtn_error"] for c in comp)
        lines.append(f"| {name} | {m['top1']:.2f} | {fp32 - m['top1']:+.2f} | {m['model_bytes']:.0f} | {m['bops']:.3g} | "
                     f"{m.get('latency_ms', float('nan')):.3f} | {r['phase_s'].get('compress', 0):.1f} | "
                     + (f"{sum(ratios) / len(ratios):.3f} | {not_worse}/{len(comp)} |" if comp else "| |"))
    gptq, dq = runs["w2_gptq"], runs["w2_decoupleq"]
    if gptq and dq:
        g = {c["layer"]: c["error"] for c in gptq["compression"]}
        d = {c["layer"]: c["error"] for c in dq["compression"]}
        better = sum(d[k] <= g[k] for k in d)
        lines += ["", f"W2: decoupleQ's output error <= GPTQ's on {better}/{len(d)} layers "
                      f"(mean ratio {sum(d[k] / g[k] for k in d) / len(d):.3f})."]
    figures.write_table(os.path.join(out, "table.md"), lines)


if __name__ == "__main__":
    main()
