"""What the experiments' scripts share: one look for every figure, and a
markdown table written and shown.

Figures are drawn with matplotlib (Debian's python3-matplotlib:
`scripts/install-deps.sh --figures`) and written as PNG (for the READMEs)
and PDF (for papers) side by side. The colours per tactic and per
bit-width are the ones `qnas report` pages use (src/report/js/report.js),
so a figure and a report of the same runs read the same.

Scripts import it with the experiments folder on sys.path:
    sys.path.insert(0, EXPERIMENTS_DIR); import figures
"""
import os

# Okabe-Ito, colour-blind safe; the same as report.js.
TACTIC_COLORS = {"linas": "#0072B2", "linas_est": "#56B4E9", "linas_b10": "#CC79A7", "linas_b10_est": "#E69F00",
                 "linas_b10_est_i20": "#000000", "nsga2": "#D55E00", "ga": "#009E73", "random": "#999999"}
SERIES_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
BIT_COLORS = {"inactive": "#eeeeee", "W2": "#67001f", "W3": "#b2182b", "W4": "#ef8a62", "W6": "#fddbc7",
              "W8": "#92c5de", "W16": "#4393c3", "W32": "#2166ac"}
FRONT_COLOR, OTHER_COLOR = "#D55E00", "#0072B2"


def pyplot():
    """matplotlib's pyplot on the file-only backend, with the experiments' look."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("figures: matplotlib is missing; install it with scripts/install-deps.sh --figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({
        "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
        "legend.fontsize": 8, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.color": "#dddddd", "grid.linewidth": 0.6, "axes.axisbelow": True,
        "figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42,
        "svg.hashsalt": "qnas",
    })
    return plt


def color(name, index=0):
    """A tactic's colour, else the index-th of the series colours."""
    return TACTIC_COLORS.get(name, SERIES_COLORS[index % len(SERIES_COLORS)])


def save(fig, stem):
    """Writes stem.png and stem.pdf (no timestamps, so reruns are identical) and closes the figure."""
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    fig.savefig(stem + ".png", metadata={"Software": None})
    fig.savefig(stem + ".pdf", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    fig.clf()
    import matplotlib.pyplot as plt
    plt.close(fig)
    print(f"figures: wrote {stem}.png and {stem}.pdf")


def write_table(path, lines):
    """Writes the markdown `lines` to `path` and prints them."""
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
