#!/usr/bin/env python3
"""Search throughput for 1 to 256 workers, from costs measured on real runs.

A distributed search iterates: the coordinator proposes a batch (LINAS:
predictor refits and the inner evolution), the workers take its candidates
from the queue as each becomes free, the coordinator writes each result and
then the iteration's files. The model of one iteration:

    propose(rows) + makespan(batch on W workers, each task + dispatch) + finish(rows)

with the task times drawn from the measured ones, the dispatch cost per task
(queue round trips, polling) and the coordinator's per-result and
per-iteration costs measured on the 1-, 2- and 3-process runs that
search_throughput.sh leaves in OUT. It first replays those runs (predicted
against measured loop wall time), then extrapolates.

    experiments/scale/simulate.py [OUT=runs/scale_search] [--propose-run DIR] [--batch 50] [--evaluations 250]
                                  [--format md|csv|json]
"""
import argparse
import csv
import json
import os
import random
import statistics
import sys


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_run(folder):
    """Per-candidate eval_s and per-iteration timings of one search run."""
    rows = read_csv(os.path.join(folder, "evaluations.csv"))
    iters = read_csv(os.path.join(folder, "hypervolume.csv"))
    workers = 0
    dist = os.path.join(folder, "dist.json")
    if os.path.exists(dist):
        with open(dist) as f:
            workers = len(json.load(f)["workers"])
    by_iter = {}
    for r in rows:
        by_iter.setdefault(int(r["iteration"]), []).append(float(r["eval_s"]))
    its = []
    for it in iters:
        k = int(it["iteration"])
        its.append({"iteration": k, "rows": int(it["evaluations"]), "propose_s": float(it["propose_s"]),
                    "eval_s": float(it["eval_s"]), "wall_s": float(it["wall_s"]), "tasks": by_iter.get(k, [])})
    return {"folder": folder, "workers": workers, "iterations": its, "eval_s": [float(r["eval_s"]) for r in rows]}


def makespan(tasks, workers, dispatch_s):
    """Greedy list scheduling in task order: what a dynamic queue does."""
    free = [0.0] * workers
    for t in tasks:
        i = min(range(workers), key=free.__getitem__)
        free[i] += t + dispatch_s
    return max(free) if tasks else 0.0


def fit_costs(one, queued, propose_run):
    """Coordinator costs from the one-process run, the proposal's growth with
    rows from `propose_run` (iteration 0 proposes without refits: left out),
    dispatch from the queued runs."""
    # One process: wall = propose + sum(eval) + bookkeeping (CSV rows, files).
    book = [it["wall_s"] - it["propose_s"] - sum(it["tasks"]) for it in one["iterations"]]
    per_iteration = max(0.0, statistics.median(book))
    # Propose time against rows (linear: refits on all rows so far).
    refits = [it for it in propose_run["iterations"] if it["iteration"] > 0]
    xs = [it["rows"] - len(it["tasks"]) for it in refits]
    ys = [it["propose_s"] for it in refits]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    intercept = my - slope * mx
    # Dispatch per task: what the queued runs' validation took beyond the
    # schedule of their own measured task times.
    extra, tasks = 0.0, 0
    for run in queued:
        for it in run["iterations"]:
            validate = it["wall_s"] - it["propose_s"] - per_iteration
            extra += max(0.0, validate - makespan(it["tasks"], run["workers"], 0.0)) * run["workers"]
            tasks += len(it["tasks"])
    dispatch = extra / tasks if tasks else 0.0
    return {"per_iteration_s": per_iteration, "propose_intercept_s": max(0.0, intercept),
            "propose_per_row_s": max(0.0, slope), "dispatch_s": dispatch,
            "eval_s_median": statistics.median(one["eval_s"])}


def predict(costs, task_times, workers, batch, evaluations, rng, overlap=False):
    """Simulated loop wall time and the coordinator's share of it. `overlap`:
    asynchronous refits, the next batch proposed (on the rows one iteration
    older) while this one is validated."""
    wall = coord = 0.0
    rows = 0
    while rows < evaluations:
        n = min(batch, evaluations - rows)
        propose = costs["propose_intercept_s"] + costs["propose_per_row_s"] * rows
        tasks = [rng.choice(task_times) for _ in range(n)]
        span = makespan(tasks, workers, costs["dispatch_s"])
        wall += (max(propose, span) if overlap else propose + span) + costs["per_iteration_s"]
        coord += (max(0.0, propose - span) if overlap else propose) + costs["per_iteration_s"]
        rows += n
    return wall, coord


def replay(costs, run, one, own_tasks):
    """The run's iterations through the model: its proposal times and either
    its own task times or the one-process run's of the same iteration (the
    same candidates in iteration 0; later ones differ when an objective is
    measured latency, which steers the tactic)."""
    wall = 0.0
    for it, ref in zip(run["iterations"], one["iterations"]):
        workers = max(1, run["workers"])
        dispatch = costs["dispatch_s"] if run["workers"] else 0.0
        tasks = it["tasks"] if own_tasks else ref["tasks"]
        wall += it["propose_s"] + makespan(tasks, workers, dispatch) + costs["per_iteration_s"]
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="runs/scale_search")
    ap.add_argument("--batch", type=int, default=50, help="candidates per iteration (search.population)")
    ap.add_argument("--evaluations", type=int, default=250)
    ap.add_argument("--format", choices=["md", "csv", "json"], default="md")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--propose-run", help="a longer search run to fit the proposal time against rows on "
                    "(default: OUT/one), e.g. runs/quickstart_new")
    a = ap.parse_args()
    one = load_run(os.path.join(a.out, "one"))
    queued = [load_run(os.path.join(a.out, n)) for n in ("workers1", "workers2")
              if os.path.exists(os.path.join(a.out, n, "hypervolume.csv"))]
    costs = fit_costs(one, queued, load_run(a.propose_run) if a.propose_run else one)
    checks = []
    for run in [one] + queued:
        measured = sum(it["wall_s"] for it in run["iterations"])
        first = run["iterations"][0]["wall_s"]
        checks.append({"run": os.path.basename(run["folder"]), "workers": run["workers"],
                       "measured_s": measured, "predicted_s": replay(costs, run, one, False),
                       "own_tasks_s": replay(costs, run, one, True), "first_measured_s": first,
                       "first_predicted_s": replay(costs, {**run, "iterations": run["iterations"][:1]}, one, False)})
    table = []
    mean_task = sum(one["eval_s"]) / len(one["eval_s"])
    for w in [1, 2, 3, 4, 8, 16, 32, 64, 128, 256]:
        for batch in sorted({a.batch, max(a.batch, 4 * w)}):
            # At least ten iterations, so that refits on many rows are in the figures.
            n = max(a.evaluations, 10 * batch)
            wall, coord = predict(costs, one["eval_s"], w, batch, n, random.Random(a.seed))
            alone, _ = predict(costs, one["eval_s"], 1, batch, n, random.Random(a.seed))
            overlapped, _ = predict(costs, one["eval_s"], w, batch, n, random.Random(a.seed), overlap=True)
            table.append({"workers": w, "batch": batch, "evaluations": n, "wall_s": wall,
                          "async_speedup": alone / overlapped,
                          "candidates_per_s": n / wall, "speedup": alone / wall, "coordinator_share": coord / wall,
                          "worker_busy": mean_task * n / (w * wall)})
    if a.format == "json":
        json.dump({"costs": costs, "checks": checks, "table": table}, sys.stdout, indent=1)
        print()
        return
    if a.format == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
        return
    print("costs: task median %.3f s; dispatch %.4f s/task; coordinator %.3f s + %.5f s/row per proposal, %.3f s per "
          "iteration's files\n" % (costs["eval_s_median"], costs["dispatch_s"], costs["propose_intercept_s"],
                                   costs["propose_per_row_s"], costs["per_iteration_s"]))
    print("Model against the runs (predicted from the one-process run's task times; iteration 0 validates the same "
          "candidates in every run):\n")
    print("| run | workers | iteration 0: measured / model (s) | error | whole loop: measured / model (s) | error "
          "| model on the run's own task times (s) |")
    print("|---|---|---|---|---|---|---|")
    pct = lambda p, m: 100 * (p / m - 1)
    for c in checks:
        print("| %s | %s | %.1f / %.1f | %+.1f%% | %.1f / %.1f | %+.1f%% | %.1f |" % (
            c["run"], c["workers"] or "none (1 process)", c["first_measured_s"], c["first_predicted_s"],
            pct(c["first_predicted_s"], c["first_measured_s"]), c["measured_s"], c["predicted_s"],
            pct(c["predicted_s"], c["measured_s"]), c["own_tasks_s"]))
    print("\nExtrapolated (at least %d evaluations, ten iterations or more):\n" % a.evaluations)
    print("| workers | batch | evaluations | loop (s) | candidates/s | speed-up | coordinator share | workers busy "
          "| speed-up, async refits |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print("| %d | %d | %d | %.1f | %.2f | %.1fx | %.1f%% | %.0f%% | %.1fx |" % (
            r["workers"], r["batch"], r["evaluations"], r["wall_s"], r["candidates_per_s"], r["speedup"],
            100 * r["coordinator_share"], 100 * r["worker_busy"], r["async_speedup"]))


if __name__ == "__main__":
    main()
