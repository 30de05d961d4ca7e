// Train: start a run, watch it learn (progress, loss and accuracy curves extended in place, conv-1 filters, the
// predictions of ten fixed test digits), cancel it, and activate a finished run's model.

import { api, applySchema, query, requestSchema } from "../api.js";
import { h, messageBox, percent } from "../dom.js";
import { DIVERGING, legend, paint } from "../colors.js";
import { loadPlotly } from "../plotly.js";
import { finetuneForm } from "../finetuneform.js";
import { runComparison } from "../runcompare.js";

const ACTIVE = new Set(["queued", "running"]);

function field(label, input) {
  return h("label", { class: "field" }, h("span", { text: label }), input);
}

function seconds(s) {
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

// conv-1 weights (out, in, kh, kw) as nested lists -> tiles on one symmetric scale
function drawFilters(canvas, weights) {
  const flat = weights.flat(3);
  const scale = Math.max(...flat.map(Math.abs), 1e-12);
  const [outputs, kh, kw] = [weights.length, weights[0][0].length, weights[0][0][0].length];
  const columns = 8;
  canvas.width = columns * (kw + 1) - 1;
  canvas.height = Math.ceil(outputs / columns) * (kh + 1) - 1;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  weights.forEach((filter, o) => paint(image, filter[0].flat(), 0, kw, kh, (o % columns) * (kw + 1),
    Math.floor(o / columns) * (kh + 1), -scale, scale, DIVERGING));
  context.putImageData(image, 0, 0);
  return scale;
}

export function createTrainView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const inputs = {
    model: h("select", {}, ...store.models.filter((m) => m.trainable)
      .map((m) => h("option", { value: m.name, text: m.name }))),
    // defaults, limits and choices: the server's (JobRequest in /api/openapi.json); the defaults reach 99% test
    // accuracy in about 10 s on two cores
    epochs: h("input", { type: "number", step: "0.1" }),
    batch_size: h("input", { type: "number", step: "1" }),
    lr: h("input", { type: "number", step: "any" }),
    validation_split: h("input", { type: "number", step: "0.05" }),
    optimizer: h("select", {}),
    seed: h("input", { type: "number", step: "1" }),
    // a model that learned nothing from its labels: what the explain view's data randomisation check compares with
    shuffle_labels: h("input", { type: "checkbox",
      title: "Use learning rate 0.001: at the default, a model fed shuffled labels loses its ReLUs (flat maps)" }),
  };
  // (the model list itself comes from /api/models: the trainable ones; the schema gives its default)
  const formReady = requestSchema("JobRequest").then((schema) => applySchema(schema, inputs));
  const startButton = h("button", { type: "submit", text: "Start training" });
  const cancelButton = h("button", { type: "button", text: "Cancel", disabled: true, onclick: cancel });
  const progress = h("progress", { max: "1", value: "0", "aria-label": "Training progress" });
  const progressText = h("p", { class: "muted", "aria-live": "polite", text: "No run yet." });
  const lossChart = h("div", { class: "chart", "aria-label": "Loss by epoch" });
  const accuracyChart = h("div", { class: "chart", "aria-label": "Accuracy by epoch" });
  const filters = h("canvas", { class: "filters live-filters", "aria-label": "conv1 filters" });
  const filtersLegend = h("div");
  const filtersNote = h("p", { class: "muted filters-note", hidden: true });
  const probes = h("div", { class: "probes", "aria-label": "Ten test digits and their current predictions" });
  const runs = h("tbody");
  const comparison = runComparison();
  const compared = new Set(); // ids of the runs chosen for comparison; kept while the list reloads
  let listed = [];
  const form = h("form", { class: "train-form", onsubmit: start },
    ...Object.entries({ Model: "model", Epochs: "epochs", "Batch size": "batch_size", "Learning rate": "lr",
      "Validation split": "validation_split", Optimizer: "optimizer", Seed: "seed",
      "Shuffle the labels": "shuffle_labels" })
      .map(([label, key]) => field(label, inputs[key])),
    h("div", { class: "toolbar" }, startButton, cancelButton));
  const tuning = finetuneForm(store.models, startFinetune, message);
  tuning.ready.catch((error) => message.error(error.message));
  root.append(h("div", { class: "train-view" },
    h("section", { "aria-label": "New run" }, h("h3", { text: "Train a model" }), form,
      h("details", { class: "finetune" }, h("summary", { text: "… or fine-tune one on a folder of images" }),
        tuning.element), message.element, progress, progressText),
    h("section", { class: "train-charts", "aria-label": "Curves" }, lossChart, accuracyChart),
    h("section", { "aria-label": "Learning" }, h("h3", { text: "conv1 filters" }), filtersNote, filters,
      filtersLegend,
      h("h3", { text: "Ten test digits" }), probes),
    h("section", { class: "runs", "aria-label": "Past runs" }, h("h3", { text: "Runs" }),
      h("table", { class: "saved" }, h("thead", {}, h("tr", {}, ...["#", "status", "model", "configuration",
        "val. accuracy", "test accuracy", "version", ""].map((t) => h("th", { scope: "col", text: t })))), runs)),
    comparison.element));

  let Plotly = null;
  let plotted = null; // the charts being (re)made: one at a time
  let source = null;
  let job = null; // the run shown: followed live, or replayed from its stored events
  let lastSeq = 0;
  let stepsPerEpoch = 1;
  let alive = true;
  const probeImages = new Map();
  const statusCells = new Map(); // run id -> its status cell in the table
  // What arrived since the last frame: a replay of hundreds of events draws once, not once per event.
  let pending = null;

  function charts() {
    plotted = (plotted || Promise.resolve()).then(async () => {
      Plotly = await loadPlotly();
      const layout = (title, y) => ({ title: { text: title }, height: 260, margin: { l: 50, r: 10, t: 40, b: 40 },
        xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: y } }, legend: { orientation: "h" } });
      const traces = (name) => [{ x: [], y: [], name: `train ${name}`, mode: "lines" },
        { x: [], y: [], name: `validation ${name}`, mode: "lines+markers" }];
      const config = { displayModeBar: false, responsive: true };
      await Plotly.newPlot(lossChart, traces("loss"), layout("Loss", "cross-entropy"), config);
      await Plotly.newPlot(accuracyChart, traces("accuracy"), layout("Accuracy", "accuracy"), config);
    });
    return plotted;
  }

  function showFilters(weights, when) {
    const scale = drawFilters(filters, weights).toPrecision(3);
    filtersLegend.replaceChildren(legend(DIVERGING, `-${scale}`, scale, `weight at ${when}`));
  }

  function showProbes(list) {
    probes.replaceChildren(...list.map((p) => {
      let image = probeImages.get(p.index);
      if (!image) {
        image = h("img", { class: "thumb", width: "42", height: "42", alt: `test digit ${p.index}` });
        probeImages.set(p.index, image);
        api(`/api/samples${query({ index: p.index, split: "test" })}`).then((s) => { image.src = s.image; })
          .catch(() => {});
      }
      return h("figure", { class: `probe ${p.predicted === p.label ? "right" : "wrong"}` }, image,
        h("figcaption", { text: `${p.label} → ${p.predicted} (${Math.round(p.confidence * 100)}%)` }));
    }));
  }

  function later() {
    if (!pending) {
      pending = { train: [[], [], [], []], validation: [[], [], [], []], probes: null, filters: null };
      requestAnimationFrame(flush);
    }
    return pending;
  }

  // Draw what arrived: the new points appended to the traces in place, the latest probes and filters.
  function flush() {
    const drawn = pending;
    pending = null;
    if (!drawn || !alive || !Plotly) return;
    for (const [trace, [x, loss, xa, accuracy]] of [[0, drawn.train], [1, drawn.validation]]) {
      if (!x.length) continue;
      Plotly.extendTraces(lossChart, { x: [x], y: [loss] }, [trace]);
      Plotly.extendTraces(accuracyChart, { x: [xa], y: [accuracy] }, [trace]);
    }
    if (drawn.probes) showProbes(drawn.probes);
    if (drawn.filters) showFilters(...drawn.filters);
  }

  // A loss is null when it was NaN or infinite (JSON has neither): the run diverged.
  const number = (value, digits) => (value == null ? "NaN" : value.toFixed(digits));

  // A live run's status in the table as its events come (a replayed run's row already says how it ended).
  function setStatus(record, text) {
    const cell = statusCells.get(record.id);
    if (cell && ACTIVE.has(record.status)) cell.textContent = text;
  }

  function onEvent(type, data) {
    if (type === "started") {
      stepsPerEpoch = data.steps_per_epoch;
      progressText.textContent = `Run #${job.id} started on ${data.device} (${data.precision}): ` +
        `${data.total_steps} steps, ${data.train_size.toLocaleString()} training and ` +
        `${data.validation_size.toLocaleString()} validation images`;
      setStatus(job, "running");
    } else if (type === "progress") {
      progress.value = data.step / data.total_steps;
      progressText.textContent = `Run #${job.id}: step ${data.step}/${data.total_steps}, epoch ` +
        `${data.epoch.toFixed(2)}, loss ${number(data.loss, 3)}, ` +
        `${Math.round(data.images_per_s).toLocaleString()} images/s, ETA ${seconds(data.eta_s)}`;
      const points = later().train;
      points[0].push(data.epoch); points[1].push(data.loss); points[2].push(data.epoch); points[3].push(data.accuracy);
      if (data.probes) pending.probes = data.probes;
      if (data.first_conv_weight) pending.filters = [data.first_conv_weight, `step ${data.step}`];
      setStatus(job, `running, ${percent(progress.value, 0)}`);
    } else if (type === "epoch") {
      const next = later();
      if (data.val_loss !== null || data.val_accuracy !== null) {
        const at = data.step / stepsPerEpoch; // where the epoch ended: fractional for a run of 0.3 epochs
        next.validation[0].push(at); next.validation[1].push(data.val_loss);
        next.validation[2].push(at); next.validation[3].push(data.val_accuracy);
      }
      if (data.first_conv_weight) next.filters = [data.first_conv_weight, `epoch ${data.epoch}`];
      if (data.probes) next.probes = data.probes;
      if (job.config?.kind === "finetune") { // no batch progress: its training curve is per epoch
        next.train[0].push(data.epoch); next.train[1].push(data.train_loss);
        next.train[2].push(data.epoch); next.train[3].push(data.train_accuracy);
        progress.value = data.epoch / job.config.epochs;
        progressText.textContent = `Run #${job.id}: epoch ${data.epoch} (at most ${job.config.epochs}), `
          + `validation accuracy ${percent(data.val_accuracy, 1)}`;
      }
    } else if (type === "preparing") {
      progress.value = data.done / data.total;
      progressText.textContent = `Run #${job.id}: ${data.stage === "images" ? "reading images" : "computing the "
        + "base's features"} ${data.done.toLocaleString()}/${data.total.toLocaleString()}`;
      setStatus(job, `preparing, ${percent(progress.value, 0)}`);
    } else if (type === "failed") {
      message.error(`The run failed: ${data.error}`);
    }
    if (data.emitted_at) window.__convscope.eventLatencies.push(Date.now() - data.emitted_at * 1000);
  }

  function finished(record) {
    source?.close();
    source = null;
    flush();
    job = record;
    cancelButton.disabled = true;
    startButton.disabled = false;
    const steps = record.progress ? `, ${record.progress.step}/${record.progress.total_steps} steps` : "";
    progressText.textContent = `Run #${record.id} (${record.model}): ${record.status}${steps}.`;
    if (record.status === "failed") {
      message.error(`Run #${record.id} failed: ${record.error}`);
    } else if (record.status === "diverged") {
      message.error(`Run #${record.id} diverged: ${record.error}.`);
    } else if (record.status === "cancelled") {
      message.info(`Run #${record.id} was cancelled; the active model is unchanged.`);
    } else if (record.config?.kind === "finetune") {
      progress.value = 1;
      const best = record.history.reduce((a, b) => (b.val_loss < a.val_loss ? b : a), record.history[0]);
      message.info(`Run #${record.id} finished (${record.status.replace("_", " ")}): validation accuracy `
        + `${percent(best.val_accuracy, 2)} at its best epoch (${best.epoch}), saved as ${record.model} `
        + `v${record.version}. Choose it in the header to use it on the other views.`);
      store.reloadModels().catch((error) => message.error(error.message));
    } else {
      progress.value = 1;
      const active = store.models.find((m) => m.name === record.model)?.active_version === record.version;
      const accuracy = record.test_metrics ? percent(record.test_metrics.accuracy, 2) : "–";
      message.info(`Run #${record.id} finished: test accuracy ${accuracy}, ` +
        `saved as ${record.model} v${record.version}.` + (active ? " It is the active model."
        : " Activate it below to use it on the other views."));
    }
    loadRuns();
  }

  // Follow a job's events from the first: live while it runs (EventSource reconnects by itself after a dropped
  // connection and sends the last event id, from which the server replays what was missed), or its stored events
  // once it has ended (the curves, filters and probes as they were).
  function follow(record) {
    job = record;
    lastSeq = 0;
    source?.close();
    source = new EventSource(`/api/jobs/${record.id}/events`);
    for (const type of ["preparing", "started", "progress", "epoch", "finished", "failed"]) {
      source.addEventListener(type, (event) => {
        lastSeq = Number(event.lastEventId) || lastSeq;
        if (alive && job.id === record.id) onEvent(type, JSON.parse(event.data));
      });
    }
    source.addEventListener("end", (event) => alive && job.id === record.id && finished(JSON.parse(event.data)));
    source.onerror = () => {
      if (alive && source?.readyState === EventSource.CONNECTING) {
        progressText.textContent = `Connection lost after event ${lastSeq}; reconnecting…`;
      }
    };
    cancelButton.disabled = !ACTIVE.has(record.status);
    startButton.disabled = ACTIVE.has(record.status);
    for (const row of runs.children) row.classList.toggle("shown", Number(row.dataset.run) === record.id);
  }

  // Show a run: its curves, filters and probes from the start, then live if it still runs.
  async function show(record) {
    job = record;
    source?.close();
    source = null;
    pending = null;
    message.clear();
    await charts();
    if (!alive || job !== record) return;
    probes.replaceChildren();
    filters.width = 0;
    filtersLegend.replaceChildren();
    progress.value = record.progress ? record.progress.step / record.progress.total_steps : 0;
    progressText.textContent = record.status === "queued" ? `Run #${record.id} is queued: its training process ` +
      "is starting…" : `Run #${record.id} (${record.model}): ${record.status}.`;
    if (record.config?.kind === "finetune") { // its own panel text: nothing here moves for a fine-tuning run
      filters.hidden = true;
      filtersLegend.hidden = true;
      filtersNote.hidden = false;
      filtersNote.textContent = `Run #${record.id} fine-tunes ${record.config.base} on ${record.config.dataset}: `
        + `${record.config.train_blocks ? `its last ${record.config.train_blocks} block(s) and ` : ""}a new head `
        + "learn, with no fixed MNIST digits to watch. Its curves are per epoch.";
    } else {
      filtersFit();
    }
    follow(record);
  }

  async function start(event) {
    event.preventDefault();
    message.clear();
    await formReady;
    const body = {};
    for (const [key, input] of Object.entries(inputs)) {
      body[key] = input.tagName === "SELECT" ? input.value : input.type === "checkbox" ? input.checked
        : Number(input.value);
    }
    try {
      const record = await api("/api/jobs", { method: "POST", body });
      await show(record);
      loadRuns();
    } catch (error) {
      message.error(error.message);
    }
  }

  async function startFinetune(body) {
    message.clear();
    try {
      const record = await api("/api/jobs/finetune", { method: "POST", body });
      await show(record);
      loadRuns();
    } catch (error) {
      message.error(error.message);
    }
  }

  async function cancel() {
    try {
      await api(`/api/jobs/${job.id}/cancel`, { method: "POST" });
      progressText.textContent = "Cancelling…";
    } catch (error) {
      message.error(error.message);
    }
  }

  async function activate(record) {
    try {
      await api(`/api/models/${record.model}/active`, { method: "PUT", body: { version: record.version } });
      await store.reloadModels();
      store.select(record.model, null);
      message.info(`${record.model} v${record.version} is now active: the other views use it.`);
      loadRuns();
    } catch (error) {
      message.error(error.message);
    }
  }

  // Only a run that finished with finite numbers made a usable model (an older server kept a diverged one).
  function usable(record) {
    return record.version !== null && ["completed", "target_reached", "stopped_early"].includes(record.status) &&
      record.history.every((e) => e.train_loss !== null) && record.test_metrics?.loss !== null;
  }

  function statusText(record) {
    const p = record.progress;
    return record.status === "running" && p ? `running, ${percent(p.step / p.total_steps, 0)}` : record.status;
  }

  async function loadRuns() {
    try {
      const [list] = await Promise.all([api("/api/jobs?limit=20"), store.reloadModels()]);
      if (!alive) return;
      const active = new Map(store.models.map((m) => [m.name, m.active_version]));
      statusCells.clear();
      listed = list.items;
      runs.replaceChildren(...list.items.map((r) => {
        const isActive = r.version !== null && active.get(r.model) === r.version;
        const last = r.history[r.history.length - 1];
        const status = h("td", { "data-label": "status", text: statusText(r), title: r.error || "" });
        statusCells.set(r.id, status);
        let action = null;
        if (usable(r)) {
          action = isActive ? h("span", { class: "muted", text: "active" })
            : h("button", { type: "button", text: "Activate", onclick: () => activate(r) });
        } else if (r.version !== null) {
          action = h("span", { class: "muted", text: "diverged: not usable" });
        }
        // each cell carries its column's name: a phone shows a run as a block of "name: value" lines (style.css)
        const cell = (label, text) => h("td", { "data-label": label, text });
        const choose = h("input", { type: "checkbox", checked: compared.has(r.id), "aria-label": `Compare run ${r.id}`,
          onchange: () => {
            if (choose.checked) compared.add(r.id);
            else compared.delete(r.id);
            compare();
          } });
        return h("tr", { "data-run": r.id, class: r.id === job?.id ? "shown" : null },
          h("td", { class: "run-id" }, choose, h("button", { type: "button", class: "link", text: `#${r.id}`,
            title: "Show this run's curves", "aria-label": `Show run ${r.id}`, onclick: () => show(r) })), status,
          cell("model", r.model),
          cell("configuration", r.config.kind === "finetune" ? `fine-tuned from ${r.config.base} on `
            + `${r.config.dataset}, ${r.config.train_blocks} blocks learning, lr ${r.config.lr}, seed ${r.config.seed}`
            : `${r.config.epochs} epochs, batch ${r.config.batch_size}, ${r.config.optimizer} `
            + `lr ${r.config.lr}, val ${r.config.validation_split}, seed ${r.config.seed}`),
          cell("val. accuracy", last?.val_accuracy != null ? percent(last.val_accuracy, 2) : "–"),
          cell("test accuracy", r.test_metrics?.accuracy != null ? percent(r.test_metrics.accuracy, 2) : "–"),
          cell("version", r.version ? `v${r.version}` : "–"), h("td", {}, action));
      }));
      compare();
      // Opening the view: the running run (its events so far, then live), else the newest one as it ended.
      const running = list.items.find((r) => ACTIVE.has(r.status));
      if (running && running.id !== job?.id) show(running);
      else if (!job && list.items.length) show(list.items[0]);
    } catch (error) {
      if (alive) message.error(error.message);
    }
  }

  function compare() {
    comparison.show(listed.filter((r) => compared.has(r.id)).sort((a, b) => a.id - b.id))
      .catch((error) => message.error(error.message));
  }

  // A model without a conv layer (the MLP) has no filters to watch: say so instead of an empty panel.
  let fitting = 0;
  async function filtersFit(name = inputs.model.value) {
    const asked = ++fitting;
    try {
      const architecture = await api(`/api/models/${name}/architecture`);
      if (!alive || asked !== fitting) return;
      const conv = architecture.layers.some((layer) => layer.kind === "conv");
      filters.hidden = !conv;
      filtersLegend.hidden = !conv;
      filtersNote.hidden = conv;
      filtersNote.textContent = conv ? "" : `${name} has no conv layer: its first layer is dense, so there are no `
        + "filters to watch (its first layer's weights are in the Architecture view).";
    } catch (error) {
      if (alive) message.error(error.message);
    }
  }

  inputs.model.addEventListener("change", () => filtersFit());
  formReady.catch((error) => message.error(error.message));
  filtersFit();
  charts().catch((error) => message.error(error.message));
  loadRuns();
  return {
    dispose() {
      alive = false;
      source?.close();
      if (Plotly) for (const chart of [lossChart, accuracyChart]) Plotly.purge(chart);
      comparison.dispose();
    },
  };
}
