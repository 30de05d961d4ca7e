// Comparing training runs: the chosen runs' validation curves overlaid (one colour per run) and a table of their
// hyperparameters against their final metrics, the best value of each metric marked. The runs are the API's
// job records (GET /api/jobs): config, per-epoch history and test metrics.

import { h, percent } from "./dom.js";
import { loadPlotly } from "./plotly.js";

const HYPERPARAMETERS = [["epochs", "epochs"], ["batch", "batch_size"], ["lr", "lr"], ["optimizer", "optimizer"],
  ["schedule", "schedule"], ["weight decay", "weight_decay"], ["val. split", "validation_split"],
  ["augment", "augment"], ["seed", "seed"]];
// [column, value of a run, whether higher is better]
const METRICS = [
  ["val. accuracy", (r) => last(r)?.val_accuracy, true],
  ["val. loss", (r) => last(r)?.val_loss, false],
  ["test accuracy", (r) => r.test_metrics?.accuracy, true],
  ["test loss", (r) => r.test_metrics?.loss, false],
  ["time (s)", (r) => last(r)?.elapsed_s, false],
];
const PLOT_CONFIG = { displayModeBar: false, responsive: true };

function last(run) {
  return run.history[run.history.length - 1];
}

function measured(value) {
  return value == null ? "–" : value.toFixed(4);
}

function table(runs) {
  const best = METRICS.map(([, value, higher]) => {
    const values = runs.map(value).filter((v) => v != null);
    return values.length > 1 ? (higher ? Math.max(...values) : Math.min(...values)) : null;
  });
  return h("table", { class: "stats hparams", "data-testid": "hparams" },
    h("thead", {}, h("tr", {}, h("th", { text: "run" }), ...HYPERPARAMETERS.map(([name]) => h("th", { text: name })),
      ...METRICS.map(([name]) => h("th", { class: "metric", text: name })))),
    h("tbody", {}, ...runs.map((run) => h("tr", { "data-run": run.id }, h("td", { text: `#${run.id} ${run.model}` }),
      ...HYPERPARAMETERS.map(([, key]) => h("td", { text: String(run.config[key] ?? "–") })), // as they were given
      ...METRICS.map(([name, value], i) => {
        const v = value(run);
        const text = v != null && name.includes("accuracy") ? percent(v, 2) : measured(v);
        return h("td", { class: v != null && v === best[i] ? "best" : null, text });
      })))));
}

// {element, show(runs)}: `runs` are the chosen job records, oldest first.
export function runComparison() {
  const lossChart = h("div", { class: "chart", "data-testid": "compare-loss" });
  const accuracyChart = h("div", { class: "chart", "data-testid": "compare-accuracy" });
  const tableSlot = h("div", { class: "hparams-slot" });
  const element = h("section", { class: "run-comparison", "aria-label": "Compare runs", hidden: true },
    h("h3", { text: "Compare runs" }), h("div", { class: "train-charts" }, lossChart, accuracyChart), tableSlot);

  async function show(runs) {
    element.hidden = runs.length === 0;
    if (!runs.length) return;
    tableSlot.replaceChildren(table(runs));
    const Plotly = await loadPlotly();
    const curves = (key) => runs.map((run) => ({ x: run.history.map((e) => e.epoch), y: run.history.map((e) => e[key]),
      name: `#${run.id} (lr ${run.config.lr}, batch ${run.config.batch_size})`, mode: "lines+markers" }));
    const layout = (title, y) => ({ title: { text: title }, height: 260, margin: { l: 50, r: 10, t: 40, b: 40 },
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: y } }, legend: { orientation: "h" } });
    await Plotly.react(lossChart, curves("val_loss"), layout("Validation loss", "cross-entropy"), PLOT_CONFIG);
    await Plotly.react(accuracyChart, curves("val_accuracy"), layout("Validation accuracy", "accuracy"),
      PLOT_CONFIG);
  }

  return { element, show, dispose: () => window.Plotly && [lossChart, accuracyChart].forEach(window.Plotly.purge) };
}
