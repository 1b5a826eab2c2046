#!/usr/bin/env python3
"""A search's front re-evaluated on the test split, against its baselines.

Every member of RUN_DIR/pareto.csv and the all-INT8 largest and the fp32
largest subnets are scored with `qnas eval --split test` on the run folder's
checkpoint and latency anchor (so latency_ms is on the search's scale). The
table lists the members whose test top-1 is at least the all-INT8 largest's
(other than that baseline itself, when the search kept it on its front),
with their latency and size ratios against both baselines (SimQ-NAS's
headline: the best ratios at no accuracy loss).

  /usr/bin/python3 experiments/simqnas/front_on_test.py CONFIG RUN_DIR QNAS_BINARY [--set k=v ...]
Writes RUN_DIR/front_test.csv (every member), RUN_DIR/front_test_baselines.json
and RUN_DIR/front_test.md.
Standard library only.
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import figures  # noqa: E402  (experiments/figures.py)


def evaluate(qnas, config, run_dir, sets, subnet, bits=None):
    cmd = [qnas, "eval", config, "--set", f"output.dir={run_dir}", "--subnet", subnet, "--split", "test",
           "--format", "csv"] + sets
    if bits:
        cmd += ["--bits", bits]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    row = next(csv.DictReader(io.StringIO(out)))
    return {k: float(row[k]) for k in ("top1", "latency_ms", "model_bytes")}


def main():
    config, run_dir, qnas = sys.argv[1:4]
    sets = []
    for s in sys.argv[4:]:
        sets += ["--set", s] if s != "--set" else []
    with open(os.path.join(run_dir, "pareto.csv")) as f:
        members = list(csv.DictReader(f))
    baselines = {}  # id -> name, for members that are the search's seeded uniform baselines
    if os.path.exists(os.path.join(run_dir, "baselines.csv")):
        with open(os.path.join(run_dir, "baselines.csv")) as f:
            baselines = {r["id"]: r["baseline"] for r in csv.DictReader(f)}
    int8 = evaluate(qnas, config, run_dir, sets, "largest", "8/8")
    fp32 = evaluate(qnas, config, run_dir, sets, "largest", "32")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, m in enumerate(members):
            path = os.path.join(tmp, f"{m['id']}.json")
            with open(path, "w") as f:
                json.dump(json.loads(m["spec_json"]), f)
            r = evaluate(qnas, config, run_dir, sets, path)
            rows.append({"id": m["id"], "baseline": baselines.get(m["id"], ""), "val_top1": float(m["top1"]), **r})
            print(f"front_on_test: {k + 1}/{len(members)} id {m['id']} test top1 {r['top1']:.2f}", file=sys.stderr)
    with open(os.path.join(run_dir, "front_test_baselines.json"), "w") as f:
        json.dump({"int8_largest": int8, "fp32_largest": fp32}, f, indent=1)
    with open(os.path.join(run_dir, "front_test.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"Baselines (test): all-INT8 largest top-1 {int8['top1']:.2f}, {int8['latency_ms']:.3f} ms, "
             f"{int(int8['model_bytes']):,} bytes; fp32 largest {fp32['top1']:.2f}, {fp32['latency_ms']:.3f} ms, "
             f"{int(fp32['model_bytes']):,} bytes. Front: {len(rows)} members, best test top-1 "
             f"{max(r['top1'] for r in rows):.2f}.", "",
             "| id | val top-1 | test top-1 | latency_ms | model_bytes | latency vs INT8 | size vs INT8 | "
             "latency vs fp32 | size vs fp32 |", "|---|---|---|---|---|---|---|---|---|"]
    kept = sorted((r for r in rows if r["top1"] >= int8["top1"] and r["baseline"] != "int8 largest"),
                  key=lambda r: r["latency_ms"])
    for r in kept:
        lines.append(f"| {r['id']} | {r['val_top1']:.2f} | {r['top1']:.2f} | {r['latency_ms']:.3f} | "
                     f"{int(r['model_bytes']):,} | {int8['latency_ms'] / r['latency_ms']:.2f}x | "
                     f"{int8['model_bytes'] / r['model_bytes']:.2f}x | {fp32['latency_ms'] / r['latency_ms']:.2f}x | "
                     f"{fp32['model_bytes'] / r['model_bytes']:.2f}x |")
    if not kept:
        lines.append("| (no member other than the all-INT8 largest at or above its test top-1) | | | | | | | | |")
    figures.write_table(os.path.join(run_dir, "front_test.md"), lines)


if __name__ == "__main__":
    main()
