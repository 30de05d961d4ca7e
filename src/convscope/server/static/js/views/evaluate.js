// Evaluate: a model version scored on a dataset (POST /api/evaluations, followed until it ends), and the report:
// the headline figures, the reliability diagram, the confusion matrix (click a cell for its mistakes), per-class
// precision/recall/F1 and the most confident mistakes, each of which opens its explanation (CAMs for the predicted
// and the true class), and from there the explain view with every method.
// #/evaluate/<id> opens a report directly.

import { api, query } from "../api.js";
import { GREY } from "../colors.js";
import { h, messageBox, percent, readAsDataUrl, when } from "../dom.js";
import { paintCamOver } from "../pictures.js";
import { loadPlotly } from "../plotly.js";
import { decodeTensor } from "../tensors.js";
import { topClasses, mostLikely } from "../topclasses.js";
import { folderUpload } from "../folderupload.js";
import { isReady } from "../weightsstate.js";

const POLL_MS = 300;
const CONFUSION_UP_TO = 30; // classes; a bigger matrix is listed as its most frequent confusions
const PLOT_CONFIG = { displayModeBar: false, responsive: true };

const FIGURES = [
  ["top-1 accuracy", (m) => percent(m.accuracy, 2)],
  ["top-5 accuracy", (m) => percent(m.top5_accuracy, 2)],
  ["cross-entropy", (m) => m.loss.toFixed(4)],
  ["macro F1", (m) => m.macro_f1.toFixed(4)],
  ["calibration error (ECE)", (m) => m.ece.toFixed(4)],
  ["MSE vs one-hot", (m) => m.mse.toFixed(5)],
  ["R² vs one-hot", (m) => (m.r2 == null ? "undefined (one class)" : m.r2.toFixed(4))],
];

function figuresTable(report) {
  const m = report.metrics;
  return h("table", { class: "stats", "data-testid": "evaluation-figures" }, h("tbody", {},
    h("tr", {}, h("th", { scope: "row", text: "images" }), h("td", { text: m.count.toLocaleString() })),
    ...FIGURES.map(([name, value]) => h("tr", {}, h("th", { scope: "row", text: name }),
      h("td", { text: value(m) })))));
}

function perClassTable(report) {
  const m = report.metrics;
  const rows = m.classes.map((c, i) => ({ name: report.class_names[c], p: m.precision[i], r: m.recall[i],
    f: m.f1[i], n: m.support[i] })).filter((row) => row.n > 0);
  return h("table", { class: "stats per-class", "data-testid": "per-class" },
    h("thead", {}, h("tr", {}, ...["class", "precision", "recall", "F1", "images"].map((t) => h("th", { text: t })))),
    h("tbody", {}, ...rows.map((row) => h("tr", {}, h("td", { text: row.name }), h("td", { text: row.p.toFixed(3) }),
      h("td", { text: row.r.toFixed(3) }), h("td", { text: row.f.toFixed(3) }), h("td", { text: row.n })))));
}

async function reliabilityChart(element, report) {
  const Plotly = await loadPlotly();
  const bins = report.metrics.reliability.filter((b) => b.count > 0);
  await Plotly.newPlot(element, [
    { type: "bar", name: "accuracy", x: bins.map((b) => (b.low + b.high) / 2), y: bins.map((b) => b.accuracy),
      width: bins.map((b) => (b.high - b.low) * 0.9), customdata: bins.map((b) => [b.count, b.confidence]),
      hovertemplate: "confidence %{customdata[1]:.3f}: accuracy %{y:.3f} over %{customdata[0]} images<extra></extra>" },
    { type: "scatter", mode: "lines", name: "perfectly calibrated", x: [0, 1], y: [0, 1],
      line: { dash: "dot", color: "#888" } },
  ], { title: { text: `Reliability (ECE ${report.metrics.ece.toFixed(4)})` }, height: 300,
    margin: { l: 50, r: 10, t: 40, b: 45 }, xaxis: { title: { text: "confidence" }, range: [0, 1] },
    yaxis: { title: { text: "accuracy" }, range: [0, 1] }, showlegend: false }, PLOT_CONFIG);
}

// `onCell(trueName, predictedName, count)` when a cell (or a listed confusion) is clicked.
async function confusionChart(element, report, onCell) {
  const m = report.metrics;
  const names = m.classes.map((c) => report.class_names[c]);
  if (names.length > CONFUSION_UP_TO) {
    const pairs = m.confusion.flatMap((row, i) => row.map((count, j) => ({ count, i, j })))
      .filter((p) => p.i !== p.j && p.count > 0).sort((a, b) => b.count - a.count).slice(0, 15);
    element.replaceChildren(h("h4", { text: "Most frequent confusions" }), h("ul", {}, ...pairs.map((p) =>
      h("li", {}, h("button", { type: "button", class: "link", text: `${names[p.i]} → ${names[p.j]}: ${p.count}`,
        onclick: () => onCell(names[p.i], names[p.j], p.count) })))));
    return;
  }
  const Plotly = await loadPlotly();
  // Coloured by each cell's share of its row (the square root, so that a few mistakes still show), labelled
  // with the counts.
  const shares = m.confusion.map((row) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return row.map((count) => Math.sqrt(count / total));
  });
  await Plotly.newPlot(element, [{ type: "heatmap", z: shares, x: names, y: names, zmin: 0, zmax: 1,
    colorscale: [[0, "#ffffff"], [1, "#1f4e9c"]], showscale: false, text: m.confusion, texttemplate: "%{text}",
    hovertemplate: "true %{y}, predicted %{x}: %{text}<extra></extra>" }],
  { title: { text: "Confusion" }, height: 320 + 8 * names.length, margin: { l: 90, r: 10, t: 40, b: 80 },
    xaxis: { title: { text: "predicted" }, type: "category" },
    yaxis: { title: { text: "true class" }, autorange: "reversed", type: "category" } }, PLOT_CONFIG);
  element.on("plotly_click", (event) => {
    const cell = event.points[0];
    onCell(cell.y, cell.x, m.confusion[names.indexOf(cell.y)][names.indexOf(cell.x)]);
  });
}

const MNIST_SOURCE = /^mnist:(\w+):(\d+)$/;

function mnistSample(source) {
  const [, split, index] = source.match(MNIST_SOURCE);
  return api(`/api/samples${query({ split, index })}`);
}

function folderImageUrl(source, dataset) {
  return `/api/datasets/${encodeURIComponent(dataset)}/image${query({ file: source })}`;
}

// A mistake's image as POST /api/predict takes it: an MNIST sample's pixels (fed as the evaluation fed them), or
// a folder file (then preprocessed by the model, as the evaluation did).
async function predictInput(source, dataset) {
  if (MNIST_SOURCE.test(source)) return { pixels: (await mnistSample(source)).pixels };
  const response = await fetch(folderImageUrl(source, dataset));
  if (!response.ok) throw new Error(`${source} could not be read (${response.status})`);
  return { image: await readAsDataUrl(await response.blob()) };
}

function camFigure(answer, caption) {
  const canvas = h("canvas", { class: "mistake-cam", "aria-label": caption });
  const ready = (async () => paintCamOver(canvas, await decodeTensor(answer.input),
    await decodeTensor(answer.cam.map), GREY))();
  return { element: h("figure", {}, canvas, h("figcaption", { class: "muted", text: caption })), ready };
}

// A mistake's explanation: what made the model say what it said, and where it looked for the true class. Only the
// last one clicked is shown, however the answers arrive.
let explaining = 0;
async function explainMistake(panel, mistake, evaluation, store) {
  const report = evaluation.report;
  const turn = ++explaining;
  panel.replaceChildren(h("p", { class: "muted", text: `Explaining ${mistake.source}…` }));
  const input = await predictInput(mistake.source, evaluation.dataset);
  const ask = (target) => api("/api/predict", { method: "POST", body: {
    ...input, model: evaluation.model, version: evaluation.version, layers: [], target } });
  const truth = report.class_names.indexOf(mistake.label);
  const [said, wanted] = await Promise.all([ask(null), ask(truth)]);
  const figures = [camFigure(said, `why “${said.predicted_class}” (${percent(said.confidence)})`),
    camFigure(wanted, `where it saw “${mistake.label}” (${percent(wanted.probabilities[truth])})`)];
  await Promise.all(figures.map((f) => f.ready));
  if (turn !== explaining) return;
  const openInExplain = () => {
    store.select(evaluation.model, evaluation.version);
    store.explain = { fields: input, name: `${mistake.source} (a ${mistake.label})`,
      targets: { first: String(said.predicted), second: String(truth) } };
    location.hash = "#/explain";
  };
  panel.replaceChildren(h("h4", { text: `${mistake.source}: ${mistake.label}, taken for ${mistake.predicted}` }),
    h("div", { class: "mistake-explained", "data-testid": "mistake-explained" }, ...figures.map((f) => f.element),
      topClasses(mostLikely(said.probabilities, report.class_names), truth)),
    h("button", { type: "button", text: "Open in Explain: every method, for both classes", onclick: openInExplain }));
  panel.scrollIntoView({ block: "nearest" });
}

// The kept mistakes (most confident first), or those of one confusion cell: `cell` {label, predicted}.
function mistakesGallery(evaluation, panel, message, store, cell = null) {
  const { report } = evaluation;
  const mistakes = report.misclassified.filter((m) => !cell || (m.label === cell.label
    && m.predicted === cell.predicted));
  if (!mistakes.length) return h("p", { class: "muted", text: "No mistakes." });
  return h("ol", { class: "mistakes", "data-testid": "mistakes" }, ...mistakes.map((mistake) => {
    const picture = h("img", { alt: mistake.source, loading: "lazy" });
    if (MNIST_SOURCE.test(mistake.source)) {
      mnistSample(mistake.source).then((sample) => { picture.src = sample.image; })
        .catch(() => { picture.alt = `${mistake.source} (not readable now)`; });
    } else {
      picture.src = folderImageUrl(mistake.source, evaluation.dataset);
    }
    return h("li", {}, h("button", { type: "button", class: "mistake", title: `${mistake.source}: explain`,
      onclick: () => explainMistake(panel, mistake, evaluation, store).catch((e) => message.error(e.message)) },
    picture, h("span", { text: `${mistake.label} → ${mistake.predicted}` }),
    h("span", { class: "muted", text: percent(mistake.confidence) })));
  }));
}

export function createEvaluateView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const modelSelect = h("select", { "aria-label": "Model to evaluate" });
  const datasetSelect = h("select", { "aria-label": "Dataset" });
  const button = h("button", { type: "submit", text: "Evaluate" });
  let runningId = null;
  const cancelButton = h("button", { type: "button", text: "Cancel", hidden: true, onclick: () => {
    api(`/api/evaluations/${runningId}/cancel`, { method: "POST" }).catch((error) => message.error(error.message));
  } });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Evaluation progress" });
  const progressText = h("span", { class: "muted", "data-testid": "evaluation-progress" });
  const history = h("tbody");
  const reportSlot = h("div", { class: "evaluation-report", "data-testid": "evaluation-report" });
  let alive = true;

  for (const model of store.models.filter(isReady)) {
    for (const version of model.versions) {
      modelSelect.append(h("option", { value: `${model.name}@${version.version}`,
        text: `${model.name} v${version.version}${version.active ? " (active)" : ""}` }));
    }
  }
  const current = store.models.find((m) => m.name === store.model);
  const currentVersion = store.version ?? current?.active_version;
  if (current && currentVersion) modelSelect.value = `${current.name}@${currentVersion}`;

  const form = h("form", { class: "evaluate-form", onsubmit: (event) => { event.preventDefault(); start(); } },
    h("label", {}, "Model ", modelSelect), h("label", {}, "Dataset ", datasetSelect), button, cancelButton, progress,
    progressText, folderUpload(async (name) => {
      await loadDatasets();
      datasetSelect.value = name;
    }, message).element);
  root.append(h("div", { class: "evaluate-view" }, h("h2", { text: "Evaluate a model" }), form, message.element,
    h("details", { class: "evaluation-history" }, h("summary", { text: "Earlier evaluations" }),
      h("table", { class: "stats" }, h("thead", {}, h("tr", {}, ...["", "model", "dataset", "status", "top-1", "when"]
        .map((t) => h("th", { text: t })))), history)), reportSlot));

  async function loadDatasets() {
    const { items } = await api("/api/datasets");
    datasetSelect.replaceChildren(...items.map((d) => h("option", { value: d.name, disabled: Boolean(d.problem),
      text: d.problem ? `${d.name}: ${d.problem}` : `${d.name} (${d.count.toLocaleString()} images)` })));
  }

  async function loadHistory() {
    const { items } = await api("/api/evaluations?limit=20");
    history.replaceChildren(...items.map((e) => h("tr", {},
      h("td", {}, h("button", { type: "button", text: "open",
        onclick: () => { location.hash = `#/evaluate/${e.id}`; } })),
      h("td", { text: `${e.model} v${e.version}` }), h("td", { text: e.dataset }), h("td", { text: e.status }),
      h("td", { text: e.accuracy == null ? "" : percent(e.accuracy, 2) }), h("td", { text: when(e.created_at) }))));
  }

  async function follow(id) {
    progress.hidden = false;
    runningId = id;
    cancelButton.hidden = false;
    for (;;) {
      const evaluation = await api(`/api/evaluations/${id}`);
      if (!alive) return;
      progress.max = Math.max(evaluation.total, 1);
      progress.value = evaluation.done;
      progressText.textContent = `${evaluation.done.toLocaleString()} of ${evaluation.total.toLocaleString()} images`;
      if (evaluation.status !== "running") {
        progress.hidden = true;
        cancelButton.hidden = true;
        progressText.textContent = evaluation.status === "cancelled" ? `Evaluation ${id} was cancelled.` : "";
        if (evaluation.status === "failed") message.error(`Evaluation ${id} failed: ${evaluation.error}`);
        else if (evaluation.report) await showReport(evaluation);
        loadHistory().catch(() => {});
        return;
      }
      await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    }
  }

  async function start() {
    const [model, version] = modelSelect.value.split("@");
    message.clear();
    button.disabled = true;
    try {
      const started = await api("/api/evaluations", { method: "POST",
        body: { model, version: Number(version), dataset: datasetSelect.value } });
      await follow(started.id);
    } catch (error) {
      message.error(error.message);
    } finally {
      button.disabled = false;
    }
  }

  async function showReport(evaluation) {
    const { report } = evaluation;
    const reliability = h("div", { class: "chart", "data-testid": "reliability" });
    const confusion = h("div", { class: "chart", "data-testid": "confusion" });
    const explanation = h("div", { class: "mistake-panel", "data-testid": "mistake-panel" });
    const mistakesTitle = h("h4", { "data-testid": "mistakes-title" });
    const gallery = h("div");
    const showMistakes = (cell = null) => {
      const kept = report.misclassified.length;
      mistakesTitle.replaceChildren(cell ? `${cell.count} image(s) of ${cell.label} taken for ${cell.predicted}, `
        + "most confident first (of the mistakes the report kept): click one for its explanation "
        : `Most confident mistakes (${kept}): click one for its explanation `,
      cell ? h("button", { type: "button", class: "link", text: "show all", onclick: () => showMistakes() }) : "");
      gallery.replaceChildren(mistakesGallery(evaluation, explanation, message, store, cell));
    };
    const onCell = (label, predicted, count) => {
      if (label === predicted) {
        mistakesTitle.textContent = `${count} image(s) of ${label} classified right: the report keeps mistakes `
          + "only. Click a cell off the diagonal.";
        gallery.replaceChildren();
      } else {
        showMistakes({ label, predicted, count });
      }
      mistakesTitle.scrollIntoView({ block: "nearest" });
    };
    showMistakes();
    const skipped = report.skipped.length ? [h("p", { class: "muted",
      text: `${report.skipped.length} unreadable file(s) skipped: ${report.skipped.slice(0, 5).map((s) => s.file)
        .join(", ")}` })] : [];
    reportSlot.replaceChildren(
      h("h3", { text: `${evaluation.model} v${evaluation.version} on ${evaluation.dataset}` }),
      h("div", { class: "evaluation-top" }, figuresTable(report), reliability),
      h("p", { class: "muted", text: "MSE and R² compare the probabilities with one-hot labels: MSE 0 and R² 1 are "
        + "perfect; R² 0 is no better than always answering each class's frequency. ECE: how far confidence is "
        + "from accuracy, averaged over 15 confidence bins." }), ...skipped,
      confusion, h("h4", { text: "Per class" }), perClassTable(report),
      mistakesTitle, gallery, explanation);
    await Promise.all([reliabilityChart(reliability, report), confusionChart(confusion, report, onCell)]);
  }

  const opened = Number(location.hash.split("/")[2]);
  Promise.all([loadDatasets(), loadHistory()]).then(() => (opened ? follow(opened) : null))
    .catch((error) => message.error(error.message));

  return {
    dispose() {
      alive = false;
      if (window.Plotly) for (const chart of root.querySelectorAll(".chart")) window.Plotly.purge(chart);
    },
  };
}
