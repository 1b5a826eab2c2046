// The page of `qnas report`: reads the JSON that qnas wrote into
// <script id="qnas-data"> and draws it with Vega-Lite (inlined beside this
// file). Charts are Vega-Lite specs built here; tables are plain DOM. When
// everything has rendered, window.qnasReport holds what the browser test
// checks (ready, render time, points and heatmap rows drawn, errors).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("qnas-data").textContent);
  // scriptMs: when this script started (the libraries parsed before it);
  // chartMs: each chart's embed, from its call to its first render.
  const state = { ready: false, errors: [], renderMs: null, scriptMs: performance.now(), chartMs: {}, views: {} };
  window.qnasReport = state;

  // One colour per tactic, the same as experiments/figures.py (Okabe-Ito).
  const TACTIC_COLORS = { linas: "#0072B2", nsga2: "#D55E00", ga: "#009E73", random: "#999999" };
  const RUN_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"];
  const BIT_COLORS = { inactive: "#eeeeee", W2: "#67001f", W3: "#b2182b", W4: "#ef8a62", W6: "#fddbc7", W8: "#92c5de", W16: "#4393c3", W32: "#2166ac" };
  const embedOptions = { renderer: "svg", actions: false, tooltip: { theme: "light" } };
  const config = { font: "sans-serif", axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11 } };

  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const app = document.getElementById("app");
  const section = (id, title, ...intro) => {
    const s = el("section", { id }, el("h2", {}, title), ...intro.map((t) => el("p", {}, t)));
    app.append(s);
    return s;
  };
  const fmt = (v) => (typeof v !== "number" ? String(v ?? "") : Number.isInteger(v) ? String(v) : v.toPrecision(5));
  const objectiveNames = data.objectives.map((o) => o.name);
  const direction = (o) => (o.maximize ? "higher is better" : "lower is better");
  const severalRuns = data.runs.length > 1;
  const runColor = { field: "run", type: "nominal", title: "run", scale: { domain: data.runs.map((r) => r.name), range: RUN_COLORS } };

  const pending = [];
  function chart(parent, name, spec) {
    const holder = el("div", { class: "chart", id: "chart-" + name });
    parent.append(holder);
    spec.$schema = "https://vega.github.io/schema/vega-lite/v6.json";
    spec.config = config;
    const start = performance.now();
    pending.push(vegaEmbed(holder, spec, embedOptions).then((r) => {
      state.views[name] = r.view;
      state.chartMs[name] = Math.round(performance.now() - start);
    }));
  }

  function table(columns, rows, sortable) {
    const head = el("tr", {}, ...columns.map((c) => el("th", sortable ? { title: "sort" } : {}, c.title)));
    const body = el("tbody");
    const fill = (list) => body.replaceChildren(...list.map((r) => el("tr", {}, ...columns.map((c) => el("td", {}, fmt(c.value(r)))))));
    fill(rows);
    const t = el("table", sortable ? { class: "sortable" } : {}, el("thead", {}, head), body);
    if (sortable) {
      let key = -1, asc = true;
      head.childNodes.forEach((th, k) => th.addEventListener("click", () => {
        asc = key === k ? !asc : true;
        key = k;
        const v = columns[k].value;
        const sorted = [...rows].sort((a, b) => (v(a) < v(b) ? -1 : v(a) > v(b) ? 1 : 0) * (asc ? 1 : -1));
        fill(sorted);
        head.childNodes.forEach((h) => h.removeAttribute("data-sort"));
        th.setAttribute("data-sort", asc ? "ascending" : "descending");
      }));
    }
    return t;
  }

  // --- Header: the runs, their state, where they ran -------------------------------
  function header() {
    app.append(el("h1", {}, data.title));
    app.append(el("p", { class: "meta" }, `qnas ${data.qnas_version} · objectives: ` +
      data.objectives.map((o) => `${o.name} (${direction(o)})`).join(", ")));
    const s = section("runs", "Runs");
    s.append(table([
      { title: "run", value: (r) => r.name },
      { title: "tactic", value: (r) => r.tactic },
      { title: "seed", value: (r) => r.seed },
      { title: "validated", value: (r) => `${r.validated} of ${r.target}` },
      { title: "front", value: (r) => r.front_size },
      { title: "hypervolume", value: (r) => r.hv.length ? r.hv[r.hv.length - 1].hypervolume : "" },
      { title: "state", value: (r) => (r.complete ? "complete" : "incomplete") },
      { title: "folder", value: (r) => r.dir },
    ], data.runs));
    for (const r of data.runs)
      for (const n of r.notes) s.append(el("p", { class: "note" }, `${r.name}: ${n}`));
  }

  // --- Pareto front ----------------------------------------------------------------
  function tooltip() {
    return [{ field: "run" }, { field: "id" }, { field: "iteration" }, ...data.metrics.map((m) => ({ field: m, type: "quantitative", format: ".5~g" })),
      { field: "arch", title: "architecture" }, { field: "policy" }];
  }
  function axis(name) {
    const o = data.objectives.find((x) => x.name === name);
    return { field: name, type: "quantitative", scale: { zero: false }, title: o ? `${name} (${direction(o)})` : name };
  }
  function scatter(name, x, y) {
    const colour = severalRuns ? runColor : { field: "front", type: "nominal", title: "", scale: { domain: ["front", "other"], range: ["#D55E00", "#0072B2"] } };
    return {
      name, width: 340, height: 260,
      data: { name: "rows", values: data.rows.map((r) => ({ ...r, front: r.front ? "front" : "other" })) },
      mark: { type: "point", filled: true },
      encoding: {
        x, y, color: colour,
        opacity: { condition: { test: "datum.front === 'front'", value: 0.95 }, value: 0.3 },
        size: { condition: { test: "datum.front === 'front'", value: 60 }, value: 22 },
        stroke: { condition: { test: "datum.front === 'front'", value: "black" }, value: null },
        tooltip: tooltip(),
      },
    };
  }
  function pareto() {
    const s = section("pareto", "Pareto front",
      `Every validated candidate (${data.rows.length}); each run's non-dominated feasible members are highlighted. Hover a point for its metrics, architecture and policy.`);
    const pairs = [];
    for (let i = 0; i < objectiveNames.length; ++i)
      for (let j = i + 1; j < objectiveNames.length; ++j) pairs.push([objectiveNames[i], objectiveNames[j]]);
    const specs = pairs.length
      ? pairs.map(([a, b], k) => scatter("pareto" + k, axis(b), axis(a)))
      : [scatter("pareto0", { field: "id", type: "quantitative", title: "evaluation (row id)" }, axis(objectiveNames[0]))];
    chart(s, "pareto", { hconcat: specs });
    const front = data.rows.filter((r) => r.front);
    s.append(el("h3", {}, `Front members (${front.length}); click a column to sort`));
    // The objectives first, then the costs a reader compares; every metric is in the scatter's tooltip.
    const shown = [...objectiveNames, ...["top1", "latency_ms", "model_bytes", "params", "macs", "bops"].filter((m) => !objectiveNames.includes(m) && data.metrics.includes(m))];
    const scroll = el("div", { class: "scroll" });
    scroll.append(table([
      ...(severalRuns ? [{ title: "run", value: (r) => r.run }] : []), { title: "id", value: (r) => r.id }, { title: "iteration", value: (r) => r.iteration },
      ...shown.map((m) => ({ title: m, value: (r) => r[m] ?? "" })),
      { title: "architecture", value: (r) => r.arch }, { title: "policy", value: (r) => r.policy },
    ], front, true));
    s.append(scroll);
  }

  // --- Hypervolume -----------------------------------------------------------------
  function hypervolume() {
    const s = section("hypervolume", "Hypervolume", data.reference.note);
    const lines = data.runs.flatMap((r) => r.hv.map((p) => ({ run: r.name, tactic: r.tactic, ...p })));
    const tactics = [...new Set(data.runs.map((r) => r.tactic))];
    const tacticColor = { field: "tactic", type: "nominal", scale: { domain: tactics, range: tactics.map((t) => TACTIC_COLORS[t] || "#000000") } };
    const x = { field: "evaluations", type: "quantitative", title: "validated evaluations" };
    const layers = [];
    const grouped = data.hv_groups.filter((g) => g.runs > 1);
    if (grouped.length) {
      const band = grouped.flatMap((g) => g.points.map((p) => ({ tactic: g.tactic, ...p })));
      layers.push({ data: { values: band }, mark: { type: "area", opacity: 0.18 }, encoding: { x, y: { field: "lo", type: "quantitative", title: "hypervolume" }, y2: { field: "hi" }, color: tacticColor } });
      layers.push({ data: { values: band }, mark: { type: "line", strokeWidth: 2.5 }, encoding: { x, y: { field: "mean", type: "quantitative" }, color: tacticColor,
        tooltip: [{ field: "tactic" }, { field: "evaluations" }, { field: "mean", format: ".6~g" }, { field: "lo", format: ".6~g" }, { field: "hi", format: ".6~g" }, { field: "runs_here", title: "runs" }] } });
    }
    layers.push({ data: { values: lines }, mark: { type: "line", strokeWidth: grouped.length ? 1 : 2, opacity: grouped.length ? 0.45 : 1, point: !grouped.length && lines.length <= 60 },
      encoding: { x, y: { field: "hypervolume", type: "quantitative", title: "hypervolume", scale: { zero: false } }, color: tacticColor, detail: { field: "run" },
        tooltip: [{ field: "run" }, { field: "evaluations" }, { field: "hypervolume", format: ".6~g" }] } });
    chart(s, "hypervolume", { width: 620, height: 280, layer: layers });
    if (grouped.length) s.append(el("p", {}, "Thick lines: mean over the runs of a tactic; band: their minimum to maximum; thin lines: each run."));
  }

  // --- Policies of the front ---------------------------------------------------------
  function heatmaps() {
    const s = section("policies", "Per-layer policies of the front",
      `Rows: front members ordered by ${objectiveNames[0]} (best first); columns: compressible layers in network order. ` +
      "Colour: weight bits; the number: activation bits when below 32; grey: a layer the architecture does not use.");
    state.heatmapRows = 0;
    data.runs.forEach((r, k) => {
      if (!r.heatmap.length) return;
      const rows = new Set(r.heatmap.map((c) => c.member)).size;
      state.heatmapRows += rows;
      // The legend lists the bit-widths this run's front uses.
      const used = new Set(r.heatmap.map((c) => c.w));
      const bits = [...Object.keys(BIT_COLORS).filter((b) => used.has(b)), ...[...used].filter((b) => !(b in BIT_COLORS))];
      const range = bits.map((b) => BIT_COLORS[b] || "#777777");
      const enc = {
        x: { field: "layer", type: "ordinal", sort: r.layers, title: null, axis: { labelAngle: -60 } },
        y: { field: "member", type: "ordinal", sort: { field: "order" }, title: null },
      };
      const layers = [
        { mark: { type: "rect", stroke: "white", strokeWidth: 0.5 },
          encoding: { ...enc, color: { field: "w", type: "ordinal", title: "weights", scale: { domain: bits, range } },
            tooltip: [{ field: "member" }, { field: "layer" }, { field: "w", title: "weights" }, { field: "a", title: "activation bits" }, { field: "method" }] } },
        { mark: { type: "text", fontSize: 8 }, encoding: { ...enc, text: { field: "a_mark" }, color: { value: "black" } } },
      ];
      if (r.methods.length > 1)
        layers.push({ mark: { type: "point", size: 14, filled: true, dx: 6 },
          encoding: { ...enc, shape: { field: "method", type: "nominal", title: "method" }, color: { value: "#333" },
            opacity: { condition: { test: "datum.w === 'inactive'", value: 0 }, value: 0.8 } } });
      if (severalRuns) s.append(el("h3", {}, r.name));
      chart(s, "heatmap" + k, { name: "heatmap" + k, width: { step: 16 }, height: { step: 13 }, data: { values: r.heatmap.map((c) => ({ ...c, a_mark: c.a && c.a < 32 ? String(c.a) : "" })) }, layer: layers });
    });
    if (!state.heatmapRows) s.append(el("p", { class: "note" }, "No front member yet."));
  }

  // --- Predictors ------------------------------------------------------------------
  function predictors() {
    const fits = data.runs.flatMap((r) => r.predictor_fits.map((f) => ({ run: r.name, ...f })));
    if (!fits.length) return;
    const s = section("predictors", "Predictor quality",
      "Each refit's k-fold cross-validated MAPE and Kendall τ (predictors.csv), and, for the last refit, what it predicted for the candidates it chose against what they measured.");
    const color = { field: "metric", type: "nominal" };
    const x = { field: "iteration", type: "ordinal" };
    const detail = { field: "run" };
    chart(s, "predictor-fits", { data: { values: fits }, hconcat: [
      { width: 280, height: 200, mark: { type: "line", point: true }, encoding: { x, y: { field: "cv_mape", type: "quantitative", title: "CV MAPE (%)" }, color, detail, tooltip: [{ field: "run" }, { field: "iteration" }, { field: "metric" }, { field: "model" }, { field: "cv_mape" }] } },
      { width: 280, height: 200, mark: { type: "line", point: true }, encoding: { x, y: { field: "kendall_tau", type: "quantitative", title: "Kendall τ" }, color, detail, tooltip: [{ field: "run" }, { field: "iteration" }, { field: "metric" }, { field: "kendall_tau" }] } },
    ] });
    data.runs.forEach((r, k) => {
      const p = r.predictions;
      if (!p || !p.points.length) return;
      const metrics = [...new Set(p.points.map((q) => q.metric))];
      s.append(el("h3", {}, `${severalRuns ? r.name + ": " : ""}last refit (iteration ${p.iteration}), predicted vs measured on the ${p.rows} candidates it chose`));
      s.append(table([{ title: "metric", value: (m) => m.metric }, { title: "MAPE (%)", value: (m) => m.mape }, { title: "Kendall τ", value: (m) => m.kendall_tau }], p.summary));
      chart(s, "predicted" + k, { hconcat: metrics.map((m) => {
        const pts = p.points.filter((q) => q.metric === m);
        const lo = Math.min(...pts.map((q) => Math.min(q.predicted, q.measured))), hi = Math.max(...pts.map((q) => Math.max(q.predicted, q.measured)));
        return { width: 240, height: 220, title: m, layer: [
          { data: { values: [{ v: lo }, { v: hi }] }, mark: { type: "line", color: "#999", strokeDash: [4, 3] },
            encoding: { x: { field: "v", type: "quantitative", title: "measured" }, y: { field: "v", type: "quantitative", title: "predicted" } } },
          { data: { values: pts }, mark: { type: "point", filled: true }, encoding: {
            x: { field: "measured", type: "quantitative", title: "measured", scale: { zero: false } },
            y: { field: "predicted", type: "quantitative", title: "predicted", scale: { zero: false } },
            tooltip: [{ field: "id" }, { field: "measured", format: ".5~g" }, { field: "predicted", format: ".5~g" }] } },
        ] };
      }) });
    });
  }

  // --- Where and how long -------------------------------------------------------------
  function provenance() {
    const s = section("provenance", "Machine, time and configuration");
    s.append(table([
      { title: "run", value: (r) => r.name }, { title: "CPU", value: (r) => r.machine.cpu }, { title: "cores", value: (r) => r.machine.cores },
      { title: "threads per process", value: (r) => r.machine.threads }, { title: "processes", value: (r) => r.machine.processes },
      { title: "written by", value: (r) => "qnas " + r.machine.qnas }, { title: "sessions (starts and resumes)", value: (r) => r.machine.sessions },
    ], data.runs));
    const phases = data.runs.flatMap((r) => r.phases.map((p) => ({ run: r.name, ...p })));
    s.append(el("h3", {}, "Time per phase"));
    s.append(table([{ title: "run", value: (p) => p.run }, { title: "phase", value: (p) => p.phase }, { title: "seconds", value: (p) => p.seconds.toFixed(1) }, { title: "source", value: (p) => p.source }], phases));
    for (const r of data.runs) {
      const d = el("details", {}, el("summary", {}, `${r.name}: config.resolved.yaml`), el("pre", {}, r.config_yaml));
      s.append(d);
    }
  }

  try {
    header();
    pareto();
    hypervolume();
    heatmaps();
    predictors();
    provenance();
  } catch (e) {
    state.errors.push(String(e && e.stack || e));
  }
  Promise.all(pending).then(() => {
    state.renderMs = performance.now();
    state.ready = true;
    document.body.setAttribute("data-ready", "1");
  }, (e) => {
    state.errors.push(String(e && e.stack || e));
    app.prepend(el("p", { class: "error" }, "A chart failed to render: " + e));
    document.body.setAttribute("data-ready", "error");
  });
})();
