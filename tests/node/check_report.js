// Opens a qnas report in Debian's Chromium (headless, through Playwright) and
// checks what a reader would see: the page renders with no console error and
// no network request, the Pareto scatter holds one point per validated
// candidate and the policy heatmap one row per front member. Prints a JSON
// line of what it measured and writes a screenshot.
//
//   node check_report.js REPORT.html SCREENSHOT.png [--points N] [--heatmap-rows M] [--chromium PATH]
// Exit 0 when every check holds, 1 with the failures on stderr otherwise.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

function parseArgs(argv) {
  const a = { report: argv[2], screenshot: argv[3], points: null, heatmapRows: null, chromium: "/usr/bin/chromium" };
  for (let i = 4; i < argv.length; i += 2) {
    const key = argv[i], value = argv[i + 1];
    if (key === "--points") a.points = Number(value);
    else if (key === "--heatmap-rows") a.heatmapRows = Number(value);
    else if (key === "--chromium") a.chromium = value;
    else throw new Error(`unknown option ${key}; expected --points, --heatmap-rows or --chromium`);
  }
  if (!a.report || !a.screenshot) throw new Error("usage: check_report.js REPORT.html SCREENSHOT.png [--points N] [--heatmap-rows M]");
  return a;
}

async function main() {
  const args = parseArgs(process.argv);
  const url = "file://" + path.resolve(args.report);
  // The flags keep Chromium from reaching out on its own (updates, sync,
  // metrics), so every request seen is the page's.
  const browser = await chromium.launch({
    executablePath: args.chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const failures = [], consoleErrors = [], requests = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    page.on("request", (r) => { if (r.url() !== url) requests.push(r.url()); });
    await page.goto(url, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready]", { timeout: 30000 });
    const seen = await page.evaluate(() => {
      const r = window.qnasReport;
      const count = (sel) => document.querySelectorAll(sel).length;
      return {
        ready: r.ready, errors: r.errors, renderMs: r.renderMs, scriptMs: r.scriptMs, chartMs: r.chartMs,
        heatmapRowsClaimed: r.heatmapRows,
        // The first scatter's drawn symbols (Vega's SVG renderer: one path per datum).
        points: document.querySelector("#chart-pareto g.mark-symbol.role-mark")?.querySelectorAll("path").length ?? 0,
        // Distinct rows of the heatmaps' rectangles, by their y position.
        heatmapRows: [...document.querySelectorAll("[id^=chart-heatmap]")].reduce((n, chart) => {
          const g = chart.querySelector("g.mark-rect.role-mark");
          if (!g) return n;
          const ys = new Set([...g.querySelectorAll("path")].map((p) => (p.getAttribute("transform") || p.getAttribute("d") || "").match(/[-\d.]+/g)?.[1]));
          return n + ys.size;
        }, 0),
        frontRows: count("#pareto table.sortable tbody tr"),
        bytes: document.documentElement.outerHTML.length,
      };
    });
    await page.screenshot({ path: args.screenshot, fullPage: true });
    if (!seen.ready) failures.push("the report did not finish rendering: " + seen.errors.join("; "));
    if (consoleErrors.length) failures.push("console errors: " + consoleErrors.join(" | "));
    if (requests.length) failures.push("network requests: " + requests.join(", "));
    if (args.points !== null && seen.points !== args.points) failures.push(`scatter holds ${seen.points} points, expected ${args.points}`);
    if (args.heatmapRows !== null && seen.heatmapRows !== args.heatmapRows)
      failures.push(`heatmap holds ${seen.heatmapRows} rows, expected ${args.heatmapRows}`);
    console.log(JSON.stringify({ renderMs: Math.round(seen.renderMs), scriptMs: Math.round(seen.scriptMs), chartMs: seen.chartMs, points: seen.points, heatmapRows: seen.heatmapRows,
      frontRows: seen.frontRows, consoleErrors: consoleErrors.length, requests: requests.length }));
  } finally {
    await browser.close();
  }
  if (failures.length) {
    for (const f of failures) console.error("check_report: " + f);
    process.exit(1);
  }
}

main().catch((e) => { console.error("check_report: " + (e && e.stack || e)); process.exit(1); });
