// The network in 3D for the current input (drawn here or on the home page, sampled, uploaded, or a photo from the
// photo view). A small model shows every activation as cells (three/cells.js): hover a cell for its value and the
// lines to the cells it depends on, and Plotly 3D surfaces of chosen channels. A big one (ImageNet) shows one
// layer per spatial size as pictures of chosen channels (three/planes.js), the top classes after them. Layers are
// labelled; the camera frames the whole network; everything is freed on close.

import { api, query } from "../api.js";
import { VIRIDIS, legend } from "../colors.js";
import { h, messageBox } from "../dom.js";
import { createDrawpad } from "../drawpad.js";
import { tapsOf } from "../graph.js";
import { loadPlotly } from "../plotly.js";
import { inputFields, predict } from "../predict.js";
import { digitSelect, fetchSample } from "../samples.js";
import { decodeLayers, decodeTensor } from "../tensors.js";
import { createCells } from "../three/cells.js";
import { CHANNELS_SHOWN, createPlanes, stageLayers } from "../three/planes.js";
import { createStage } from "../three/stage.js";

// Activations, after each layer's non-linearity (the model's output is shown too, whatever its kind).
const SHOWN = new Set(["relu", "sigmoid", "activation", "pool", "softmax"]);
const MOST_CELLS = 250_000; // above: pictures of chosen channels instead of every cell
const LIVE_EVERY_MS = 120; // while drawing on this view's pad

function everyCell(architecture) {
  return [{ name: "input", kind: "input", shape: architecture.input_shape },
    ...architecture.layers.filter((l) => SHOWN.has(l.kind) || l.name === architecture.output)
      .map((l) => ({ name: l.name, kind: l.kind, shape: l.output_shape }))];
}

const cellCount = (layers) => layers.reduce((sum, l) => sum + l.shape.reduce((a, b) => a * b, 1), 0);

// "0-3, 7" -> [0, 1, 2, 3, 7] within 0..count-1, at most `most`.
export function channelList(text, count, most = 16) {
  const picked = new Set();
  for (const part of text.split(",")) {
    const [a, b = a] = part.split("-").map((v) => Number.parseInt(v, 10)); // "7" is 7-7
    if (Number.isNaN(a)) continue;
    const last = Math.min(Number.isNaN(b) ? a : b, count - 1); // "0-999999999" stops at the last channel
    for (let c = Math.max(0, a); c <= last && picked.size < most; c++) picked.add(c);
  }
  return [...picked];
}

// Plotly 3D surfaces of chosen channels of one spatial layer (x, y = the map, z = channel depth).
function createSurfaces() {
  const layerChoice = h("select", { "aria-label": "Layer for the surfaces" });
  const channels = h("input", { type: "text", value: "0-3", size: "8", "aria-label": "Channels" });
  const chart = h("div", { class: "surfaces", "aria-label": "Activation surfaces" });
  const note = h("p", { class: "muted" });
  const element = h("section", { "aria-label": "Activation surfaces" },
    h("div", { class: "toolbar" }, h("strong", { text: "Activation surfaces" }),
      h("label", {}, "layer ", layerChoice), h("label", {}, "channels ", channels)), note, chart);
  let layers = [];

  async function draw() {
    const layer = layers.find((l) => l.name === layerChoice.value);
    if (!layer?.tensor) return;
    const Plotly = await loadPlotly();
    const { channels: count, height, width } = layer.place;
    const traces = channelList(channels.value, count).map((c, i) => {
      const rows = [];
      for (let y = 0; y < height; y++) {
        rows.push(Array.from(layer.tensor.values.subarray((c * height + y) * width, (c * height + y + 1) * width)));
      }
      return { type: "surface", name: `channel ${c}`, x: [...Array(width).keys()], y: [...Array(height).keys()],
        z: rows.map((row) => row.map(() => i)), surfacecolor: rows, cmin: layer.tensor.min, cmax: layer.tensor.max,
        colorscale: "Viridis", showscale: i === 0,
        hovertemplate: `channel ${c}<br>x %{x}, y %{y}<br>%{surfacecolor:.3f}<extra></extra>` };
    });
    Plotly.react(chart, traces, { height: 420, margin: { l: 0, r: 0, t: 10, b: 0 },
      scene: { xaxis: { title: { text: "width" } }, yaxis: { title: { text: "height" }, autorange: "reversed" },
        zaxis: { title: { text: "depth (channel)" } } } }, { displayModeBar: false, responsive: true });
  }

  layerChoice.addEventListener("change", draw);
  channels.addEventListener("change", draw);
  return {
    element,
    // The cell layers of a small model (their tensors filled in), or [] for a big one.
    use(cellLayers, modelName) {
      layers = cellLayers.filter((l) => l.place.spatial && l.kind !== "input");
      layerChoice.replaceChildren(...layers.map((l) => h("option", { value: l.name, text: l.name })));
      note.textContent = layers.length ? "" : cellLayers.length
        ? `${modelName} has no layer with a spatial map: nothing to draw as surfaces.`
        : "Surfaces are drawn for the small models; pick channels of a big one in the 3D view above.";
      chart.hidden = !layers.length;
      if (!layers.length && window.Plotly) window.Plotly.purge(chart);
    },
    draw,
    dispose() { if (window.Plotly) window.Plotly.purge(chart); },
  };
}

export function createNetworkView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const container = h("div", { class: "stage" });
  const tooltip = h("p", { class: "readout tooltip", "aria-live": "polite", text: "Hover a cell to read it." });
  const stats = h("p", { class: "muted" });
  const digitChoice = digitSelect();
  const pad = createDrawpad({ onStroke: drawn, onStrokeEnd: () => drawn(true) });
  const drawing = h("div", { class: "mini-pad", title: "Draw here: the network follows" }, pad.canvas,
    h("button", { type: "button", text: "Clear", onclick: () => pad.clear() }));
  const planeLayer = h("select", { "aria-label": "Layer whose channels to choose" });
  const planeChannels = h("input", { type: "text", size: "10", placeholder: "strongest",
    "aria-label": "Channels to show" });
  const planeControls = h("div", { class: "toolbar", hidden: true }, h("label", {}, "channels of ", planeLayer),
    planeChannels, h("button", { type: "button", text: "Show", onclick: () => choose() }));
  const surfaces = createSurfaces();
  root.append(h("div", { class: "network-view" },
    h("section", { "aria-label": "The network in 3D" },
      h("div", { class: "toolbar" }, h("strong", { text: "Network in 3D" }), stats, digitChoice,
        h("button", { type: "button", text: "Random sample", onclick: sample })),
      drawing, planeControls, message.element, container, tooltip,
      legend(VIRIDIS, "low", "high", "activation, per layer (per channel for pictures)")),
    surfaces.element));

  const stage = createStage(container);
  let shown = null; // the cells or the planes of the current model
  let architecture = null;
  const chosen = new Map(); // layer -> the channels asked for (planes)
  let alive = true;
  let turn = 0;

  // -- input --------------------------------------------------------------------------------------------------
  let lastLive = 0;
  function drawn(ended = false) {
    const now = performance.now();
    if (!ended && now - lastLive < LIVE_EVERY_MS) return;
    lastLive = now;
    store.input = { kind: "drawing", dataUrl: pad.dataUrl() };
    show();
  }

  async function sample() {
    try {
      const found = await fetchSample(digitChoice);
      store.input = { kind: "sample", pixels: found.pixels, label: found.label };
      await show();
    } catch (error) {
      message.error(error.message);
    }
  }

  // -- the two ways of showing a model --------------------------------------------------------------------
  async function showCells(answer) {
    const [input, decoded] = await Promise.all([decodeTensor(answer.input), decodeLayers(answer.layers)]);
    const tensors = new Map(decoded.map((l) => [l.name, l.tensor]));
    tensors.set("input", input);
    shown.paint(tensors);
    shown.markWinner(answer.predicted);
    stats.textContent = `${shown.count.toLocaleString()} cells in ${shown.layers.length} instanced meshes`;
    surfaces.use(shown.layers, answer.model);
    surfaces.draw();
  }

  async function showPlanes(answer, mine) {
    shown.paintInput(await decodeTensor(answer.input));
    const fields = await inputFields(store.input);
    for (const layer of stageLayers(architecture, SHOWN)) {
      const asked = chosen.get(layer.name);
      const page = await api("/api/layers/activations", { method: "POST", body: { ...fields,
        model: answer.model, version: answer.version, layer: layer.name, max_side: 56,
        ...(asked ? { channels: asked } : { sort: "mean", limit: CHANNELS_SHOWN }) } });
      if (mine !== turn || !alive) return;
      shown.paint(layer.name, page, await decodeTensor(page.activation), Boolean(asked));
    }
    shown.showClasses(answer.probabilities, store.classes(answer.model));
    stats.textContent = `${stageLayers(architecture, SHOWN).length} layers, ${CHANNELS_SHOWN} channels each`;
    surfaces.use([], answer.model);
  }

  async function show() {
    if (!store.input || !shown) {
      message.info("No input yet: draw a digit here or on the home page, take a random sample, or choose a photo "
        + "in the photo view.");
      return;
    }
    const mine = ++turn;
    try {
      const big = Boolean(shown.paintInput);
      const answer = await predict(store.input, { model: store.model, version: store.version ?? undefined,
        ...(big ? { layers: [] } : {}) });
      if (mine !== turn || !alive) return;
      if (shown.paintInput) await showPlanes(answer, mine);
      else await showCells(answer);
      if (mine !== turn || !alive) return;
      message.info(`${answer.model} v${answer.version} predicts ${answer.predicted_class} `
        + `(${(answer.confidence * 100).toFixed(1)}%)`);
      window.__convscope.network3d.updates = (window.__convscope.network3d.updates || 0) + 1;
    } catch (error) {
      if (alive && mine === turn) message.error(error.message);
    }
  }

  function choose() {
    const layer = architecture.layers.find((l) => l.name === planeLayer.value);
    const picked = channelList(planeChannels.value, layer.output_shape[0], CHANNELS_SHOWN);
    if (picked.length) chosen.set(layer.name, picked);
    else chosen.delete(layer.name); // empty: the strongest again
    show();
  }

  let loads = 0;

  async function load() {
    const loading = ++loads;
    try {
      const fetched = await api(`/api/models/${store.model}/architecture${query({ version: store.version })}`);
      if (!alive || loading !== loads) return; // another model was chosen meanwhile
      architecture = fetched;
      turn += 1; // an answer on its way is for the model before
      shown?.dispose();
      chosen.clear();
      const cells = everyCell(architecture);
      const small = cellCount(cells) <= MOST_CELLS;
      shown = small
        ? createCells(stage, cells, tapsOf(architecture), { output: architecture.output,
          classNames: store.classes(architecture.model) })
        : createPlanes(stage, architecture.input_shape, stageLayers(architecture, SHOWN));
      stage.frame(shown.extent);
      drawing.hidden = architecture.input_shape[0] !== 1; // drawing is for the one-channel (digit) models
      planeControls.hidden = small;
      planeLayer.replaceChildren(...stageLayers(architecture, SHOWN).map((l) =>
        h("option", { value: l.name, text: `${l.name} (${l.shape[0]} channels)` })));
      await show();
    } catch (error) {
      if (alive && loading === loads) message.error(error.message);
    }
  }

  let hoverPending = null;
  stage.renderer.domElement.addEventListener("pointermove", (event) => {
    if (hoverPending || !shown) return;
    hoverPending = requestAnimationFrame(() => {
      hoverPending = null;
      const reading = shown.hover(stage.pick(event, shown.objects));
      if (reading.text) tooltip.textContent = reading.text;
      if (reading.links) window.__convscope.network3d.links = reading.links; // read by the browser tests
    });
  });

  // Read by the browser tests and bench/ui_3d_and_training.py.
  window.__convscope.network3d = {
    async measureFps(count = 20) {
      const measured = await stage.measureFps(count);
      const cells = shown?.count ?? 0;
      stats.textContent = `${cells.toLocaleString()} cells, ${measured.drawCalls} draw calls, `
        + `${measured.fps.toFixed(1)} fps here`;
      return { ...measured, cells };
    },
    screenPosition: (layer, c, y = 0, x = 0) => stage.pagePosition(shown.position(layer, c, y, x)),
  };

  stage.start();
  const unsubscribe = store.onSelect(load);
  load();

  return {
    dispose() {
      alive = false;
      unsubscribe();
      if (hoverPending) cancelAnimationFrame(hoverPending);
      shown?.dispose();
      stage.dispose();
      surfaces.dispose();
      window.__convscope.network3d = { ...window.__convscope.network3d, disposed: true };
    },
  };
}
