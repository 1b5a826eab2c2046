#!/usr/bin/python3
"""Static figures for papers from the data of a `qnas report` page: the same
runs, fronts, reference point and curves as the HTML, drawn with matplotlib
in experiments/figures.py's look, as PNG and PDF.

  build/qnas report RUN_DIR [RUN_DIR ...] --out report.html --data report.json
  /usr/bin/python3 experiments/report_figures.py report.json OUT_DIR

Writes into OUT_DIR:
  pareto.{png,pdf}       every validated candidate for each pair of objectives
                         (one objective: against evaluation order), fronts highlighted
  hypervolume.{png,pdf}  hypervolume vs validated evaluations against the page's
                         reference; mean and min-max band per tactic with several runs
  policies.{png,pdf}     per-layer weight bits of the first run's front members
                         (best first by the first objective), activation bits below
                         32 written in the cell, grey where a layer is inactive
  predictors.{png,pdf}   CV MAPE and Kendall tau per LINAS refit (when the runs have them)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figures  # noqa: E402  (experiments/figures.py)


def label(data, name):
    for o in data["objectives"]:
        if o["name"] == name:
            return f"{name} ({'higher' if o['maximize'] else 'lower'} is better)"
    return name


def run_color(data, k):
    return figures.SERIES_COLORS[k % len(figures.SERIES_COLORS)] if len(data["runs"]) > 1 else None


def pareto(data, plt, stem):
    names = [o["name"] for o in data["objectives"]]
    # (x, y): the earlier objective on the vertical axis, as on the page.
    pairs = [(names[j], names[i]) for i in range(len(names)) for j in range(i + 1, len(names))] or [("id", names[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.4), squeeze=False)
    for ax, (x, y) in zip(axes[0], pairs):
        for k, run in enumerate(data["runs"]):
            rows = [r for r in data["rows"] if r["run"] == run["name"]]
            c = run_color(data, k)
            other = [r for r in rows if not r["front"]]
            front = [r for r in rows if r["front"]]
            ax.scatter([r[x] for r in other], [r[y] for r in other], s=8, alpha=0.35,
                       color=c or figures.OTHER_COLOR, linewidths=0)
            ax.scatter([r[x] for r in front], [r[y] for r in front], s=22, color=c or figures.FRONT_COLOR,
                       edgecolors="black", linewidths=0.6, label=run["name"] + " front" if c else "front")
        ax.set_xlabel("evaluation (row id)" if x == "id" else label(data, x))
        ax.set_ylabel(label(data, y))
    axes[0][0].legend(loc="best")
    fig.tight_layout()
    figures.save(fig, stem)


def hypervolume(data, plt, stem):
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    groups = {g["tactic"]: g for g in data["hv_groups"] if g["runs"] > 1}
    for k, run in enumerate(data["runs"]):
        if not run["hv"]:
            continue
        c = figures.color(run["tactic"], k)
        ax.plot([p["evaluations"] for p in run["hv"]], [p["hypervolume"] for p in run["hv"]], color=c,
                linewidth=0.8 if groups else 1.8, alpha=0.5 if groups else 1.0,
                label=None if run["tactic"] in groups else f"{run['name']} ({run['tactic']})")
    for k, (tactic, g) in enumerate(groups.items()):
        c = figures.color(tactic, k)
        n = [p["evaluations"] for p in g["points"]]
        ax.fill_between(n, [p["lo"] for p in g["points"]], [p["hi"] for p in g["points"]], color=c, alpha=0.18,
                        linewidth=0)
        ax.plot(n, [p["mean"] for p in g["points"]], color=c, linewidth=2, label=f"{tactic} (mean of {g['runs']})")
    ax.set_xlabel("validated evaluations")
    ax.set_ylabel("hypervolume")
    ax.legend(loc="lower right")
    ref = ", ".join(f"{o['name']} {v:.4g}" for o, v in zip(data["objectives"], data["reference"]["point"]))
    ax.set_title(f"reference point: {ref}", fontsize=8, loc="left")
    figures.save(fig, stem)


def policies(data, plt, stem):
    run = next((r for r in data["runs"] if r["heatmap"]), None)
    if run is None:
        print("report_figures: no front member yet; policies figure skipped", file=sys.stderr)
        return
    from matplotlib.colors import ListedColormap
    members = sorted({(c["order"], c["member"]) for c in run["heatmap"]})
    layers = list(dict.fromkeys(c["layer"] for c in run["heatmap"]))
    used = list(dict.fromkeys(c["w"] for c in sorted(run["heatmap"], key=lambda c: list(figures.BIT_COLORS).index(c["w"]) if c["w"] in figures.BIT_COLORS else 99)))
    index = {w: i for i, w in enumerate(used)}
    grid = [[0] * len(layers) for _ in members]
    row_of = {m: i for i, (_, m) in enumerate(members)}
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * len(layers) + 1.5), max(2.0, 0.2 * len(members) + 1.2)))
    for c in run["heatmap"]:
        i, j = row_of[c["member"]], layers.index(c["layer"])
        grid[i][j] = index[c["w"]]
        if c.get("a", 32) < 32:
            ax.text(j, i, str(c["a"]), ha="center", va="center", fontsize=5)
    cmap = ListedColormap([figures.BIT_COLORS.get(w, "#777777") for w in used])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(used) - 0.5, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(layers)), layers, rotation=70, ha="right", fontsize=6)
    ax.set_yticks(range(len(members)), [m for _, m in members], fontsize=6)
    ax.grid(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=figures.BIT_COLORS.get(w, "#777777")) for w in used]
    ax.legend(handles, used, title="weights", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{run['name']}: front members by {data['objectives'][0]['name']} (best first); "
                 "numbers: activation bits", fontsize=8, loc="left")
    figures.save(fig, stem)


def predictors(data, plt, stem):
    fits = [(run["name"], f) for run in data["runs"] for f in run["predictor_fits"]]
    if not fits:
        return
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.0))
    series = sorted({(name, f["metric"]) for name, f in fits})
    for k, (name, metric) in enumerate(series):
        pts = sorted((f["iteration"], f["cv_mape"], f["kendall_tau"]) for n, f in fits if n == name and f["metric"] == metric)
        c = figures.SERIES_COLORS[k % len(figures.SERIES_COLORS)]
        lab = metric if len(data["runs"]) == 1 else f"{name}: {metric}"
        axes[0].plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=c, markersize=3, label=lab)
        axes[1].plot([p[0] for p in pts], [p[2] for p in pts], "o-", color=c, markersize=3, label=lab)
    axes[0].set_ylabel("CV MAPE (%)")
    axes[1].set_ylabel("Kendall tau")
    for ax in axes:
        ax.set_xlabel("refit (iteration)")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    figures.save(fig, stem)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        data = json.load(f)
    out = sys.argv[2]
    plt = figures.pyplot()
    pareto(data, plt, os.path.join(out, "pareto"))
    hypervolume(data, plt, os.path.join(out, "hypervolume"))
    policies(data, plt, os.path.join(out, "policies"))
    predictors(data, plt, os.path.join(out, "predictors"))


if __name__ == "__main__":
    main()
