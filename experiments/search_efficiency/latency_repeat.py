#!/usr/bin/env python3
"""latency_ms measured twice per way of timing it (latency_repeat.sh): how
well the two measurements agree (Kendall tau-b, median relative difference),
how well the latency model's latency_est_ms matches each (median |error|,
tau), and the 5-fold CV tau of the latency predictor with and without the
latency model as a feature (`qnas predict`).

  /usr/bin/python3 experiments/search_efficiency/latency_repeat.py OUT_DIR QNAS_BINARY
Writes OUT_DIR/latency_repeat.md. numpy only.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from predictors import kendall_tau, predict, rows_of  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)

WAYS = {"int8_largest": "interleaved with the all-INT8 largest, ratio x anchor",
        "none": "timed alone"}


def by_spec(path):
    return {r["spec_json"]: r for r in rows_of(path)}


def column(rows, specs, name):
    return np.array([float(rows[s][name]) for s in specs])


def main():
    out_dir, qnas = sys.argv[1], sys.argv[2]
    lines = ["| latency.reference | rows | tau(1, 2) | median rel. diff % (latency_ms / latency_ratio) | model median abs err % (1 / 2) | "
             "model tau (1 / 2) | ridge tau one-hot / + model | svr tau one-hot / + model |",
             "|---|---|---|---|---|---|---|---|"]
    for way, what in WAYS.items():
        paths = [os.path.join(out_dir, f"{way}_{k}", "evaluations.csv") for k in (1, 2)]
        first, second = by_spec(paths[0]), by_spec(paths[1])
        specs = sorted(set(first) & set(second))
        lat = [column(r, specs, "latency_ms") for r in (first, second)]
        est = [column(r, specs, "latency_est_ms") for r in (first, second)]
        rel = 100 * np.abs(lat[0] - lat[1]) / lat[0]
        ratio_rel = "-"
        if first[specs[0]].get("latency_ratio"):
            ratio = [column(r, specs, "latency_ratio") for r in (first, second)]
            ratio_rel = f"{np.median(100 * np.abs(ratio[0] - ratio[1]) / ratio[0]):.1f}"
        err = [100 * np.median(np.abs(e - m) / m) for e, m in zip(est, lat)]
        model_tau = [kendall_tau(e, m) for e, m in zip(est, lat)]
        fits = {m: [predict(qnas, paths[0], "latency_ms", m, extra)[0] for extra in ([], ["--with", "latency_est_ms"])]
                for m in ("ridge", "svr")}
        lines.append(f"| {way} ({what}) | {len(specs)} | {kendall_tau(lat[0], lat[1]):.3f} | {np.median(rel):.1f} / {ratio_rel} | "
                     f"{err[0]:.1f} / {err[1]:.1f} | {model_tau[0]:.3f} / {model_tau[1]:.3f} | "
                     f"{fits['ridge'][0]:.3f} / {fits['ridge'][1]:.3f} | {fits['svr'][0]:.3f} / {fits['svr'][1]:.3f} |")
    figures.write_table(os.path.join(out_dir, "latency_repeat.md"), lines)


if __name__ == "__main__":
    main()
