#!/usr/bin/env python3
"""Compares two search folders row by row: same specs in the same order, same
metrics except those that time something (latency, throughput, memory
peaks, wall time), same front and final hypervolume. Exit status 1 on a
difference.

    kill_resume.py WHOLE_DIR KILLED_DIR
"""
import csv
import sys

TIMED = {"latency_ms", "latency_ms_p10", "latency_ms_p90", "latency_ms_std", "throughput_img_s",
         "peak_rss_bytes", "latency_ratio", "eval_s"}


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(whole, killed):
    a, b = read(whole + "/evaluations.csv"), read(killed + "/evaluations.csv")
    problems = []
    if len(a) != len(b):
        problems.append(f"{len(a)} rows uninterrupted, {len(b)} resumed")
    compared = [c for c in a[0] if c not in TIMED] if a else []
    for i, (x, y) in enumerate(zip(a, b)):
        for c in compared:
            if x.get(c) != y.get(c):
                problems.append(f"row {i}: {c} differs ({x.get(c)[:60]} vs {y.get(c, '')[:60]})")
                break
    ids = [sorted(r["id"] for r in read(d + "/pareto.csv")) for d in (whole, killed)]
    if ids[0] != ids[1]:
        problems.append("the fronts differ")
    hv = [read(d + "/hypervolume.csv")[-1]["hypervolume"] for d in (whole, killed)]
    if hv[0] != hv[1]:
        problems.append(f"final hypervolume {hv[0]} vs {hv[1]}")
    print(f"rows: {len(a)} uninterrupted, {len(b)} killed and resumed; columns compared: {', '.join(compared)}")
    print(f"front: {len(ids[0])} / {len(ids[1])} members; final hypervolume: {hv[0]} / {hv[1]}")
    for p in problems[:20]:
        print("DIFFERENT:", p)
    print("identical" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
