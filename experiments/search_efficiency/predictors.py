#!/usr/bin/python3
"""Predictor quality (5-fold CV Kendall tau, `qnas predict`) on the random
rows of run.sh, next to the label noise that bounds it.

Noise ceilings from the seed-0 rows measured twice (predictors.sh):
- top1: images 0-4,999 (the 5k run) against images 5,000-9,999, the latter
  recovered exactly as 2 * top1(10k) - top1(5k);
- latency_ms: the two independent measurements of the same subnet.
A predictor cannot rank held-out rows better than the labels rank
themselves, so tau(measurement 1, measurement 2) is the attainable scale.

  /usr/bin/python3 experiments/search_efficiency/predictors.py OUT_DIR QNAS_BINARY
Writes OUT_DIR/predictors.md. numpy only.
"""
import csv
import io
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)

OBJECTIVES = ["top1", "latency_ms", "model_bytes"]
FEATURES = {"one-hot": [], "one-hot + params,macs": ["--with", "params,macs"]}


def kendall_tau(a, b):
    """tau-b, O(n^2)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    iu = np.triu_indices(len(a), 1)
    da = np.sign(a[:, None] - a[None, :])[iu]
    db = np.sign(b[:, None] - b[None, :])[iu]
    return float((da * db).sum() / np.sqrt((da != 0).sum() * (db != 0).sum()))


def rows_of(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def predict(qnas, path, objective, method, extra):
    cmd = [qnas, "predict", path, "--objective", objective, "--predictor", method, "--format", "csv"] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    row = next(csv.DictReader(io.StringIO(out)))
    return float(row["kendall_tau"]), float(row["cv_mape"])


def main():
    out_dir, qnas = sys.argv[1], sys.argv[2]
    runs = {f"random_s{s} (5k images)": os.path.join(out_dir, f"random_s{s}", "evaluations.csv") for s in range(3)}
    runs["random_s0 (10k images)"] = os.path.join(out_dir, "random_s0_val10k", "evaluations.csv")
    runs = {k: v for k, v in runs.items() if os.path.exists(v) and len(rows_of(v)) >= 250}
    lines = ["| rows | objective | features | ridge tau | svr tau | ridge MAPE % | svr MAPE % |",
             "|---|---|---|---|---|---|---|"]
    for name, path in runs.items():
        for objective in OBJECTIVES:
            for feat, extra in FEATURES.items():
                (rt, rm), (st, sm) = (predict(qnas, path, objective, m, extra) for m in ("ridge", "svr"))
                lines.append(f"| {name} | {objective} | {feat} | {rt:.3f} | {st:.3f} | {rm:.3f} | {sm:.3f} |")
                print(lines[-1], file=sys.stderr)

    a = rows_of(os.path.join(out_dir, "random_s0", "evaluations.csv"))
    b = rows_of(os.path.join(out_dir, "random_s0_val10k", "evaluations.csv"))
    assert [r["spec_json"] for r in a] == [r["spec_json"] for r in b], "the two random_s0 runs validated other subnets"
    first = np.array([float(r["top1"]) for r in a])
    second = 2 * np.array([float(r["top1"]) for r in b]) - first
    lat1 = np.array([float(r["latency_ms"]) for r in a])
    lat2 = np.array([float(r["latency_ms"]) for r in b])
    lines += ["", "Label noise on the same 250 subnets (random_s0):", "",
              "| label | measurement 1 | measurement 2 | tau(1, 2) | spread (std) of label 1 | mean abs difference |",
              "|---|---|---|---|---|---|",
              f"| top1 | images 0-4,999 | images 5,000-9,999 | {kendall_tau(first, second):.3f} | "
              f"{first.std():.3f} | {np.abs(first - second).mean():.3f} |",
              f"| latency_ms | run.sh | predictors.sh | {kendall_tau(lat1, lat2):.3f} | {lat1.std():.4f} | "
              f"{np.abs(lat1 - lat2).mean():.4f} |"]
    figures.write_table(os.path.join(out_dir, "predictors.md"), lines)


if __name__ == "__main__":
    main()
