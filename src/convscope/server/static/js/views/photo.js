// The photo workbench: a photo (file, drop, paste, sample, camera) through an image model: the photo with the CAM
// over the part the model saw, the exact model input, the top five classes, and any layer, method and target
// class; below, the model's graph, where clicking a layer shows its feature maps for this photo and its weights.

import { api } from "../api.js";
import { h, messageBox } from "../dom.js";
import { createLayerGraph } from "../layergraph.js";
import { layerPanel } from "../layerpanel.js";
import { photoInput } from "../photoinput.js";
import { savePanel } from "../savepanel.js";
import { CAM_ALPHA, heatPicture, loadImage, paintInput } from "../pictures.js";
import { GREY } from "../colors.js";
import { decodeTensor } from "../tensors.js";
import { mostLikely, topClasses } from "../topclasses.js";
import { isReady, modelLabel, weightsPanel } from "../weightsstate.js";

const METHODS = [["gradcam", "Grad-CAM"], ["gradcam++", "Grad-CAM++"], ["hirescam", "HiResCAM"],
  ["saliency", "Saliency (input gradient)"]];
const DISPLAY_WIDTH = 480;

// Image models first (3-channel input), then the rest: any model takes a photo, the digit ones as a digit.
function modelOrder(models) {
  return [...models].sort((a, b) => (b.input_shape[0] === 3) - (a.input_shape[0] === 3));
}

// The photo with the CAM laid over the rectangle of it that the model saw (framing.source); the rest dimmed.
async function photoWithCam(canvas, url, answer) {
  const photo = await loadImage(url);
  const scale = Math.min(1, DISPLAY_WIDTH / photo.naturalWidth);
  canvas.width = Math.round(photo.naturalWidth * scale);
  canvas.height = Math.round(photo.naturalHeight * scale);
  const context = canvas.getContext("2d");
  context.drawImage(photo, 0, 0, canvas.width, canvas.height);
  if (!answer?.cam) return;
  const [x0, y0, x1, y1] = answer.framing.source.map((v) => v * scale);
  const [left, top, width, height] = answer.framing.field;
  context.fillStyle = "rgba(0, 0, 0, 0.45)";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(photo, x0 / scale, y0 / scale, (x1 - x0) / scale, (y1 - y0) / scale, x0, y0, x1 - x0, y1 - y0);
  const heat = heatPicture(await decodeTensor(answer.cam.map), CAM_ALPHA);
  context.drawImage(heat, left, top, width, height, x0, y0, x1 - x0, y1 - y0);
}

export function createPhotoView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const modelSelect = h("select", { "aria-label": "Image model", "data-testid": "photo-model" });
  const method = h("select", { "aria-label": "Explanation method" },
    ...METHODS.map(([value, text]) => h("option", { value, text })));
  const layer = h("select", { "aria-label": "CAM layer" });
  const target = h("input", { type: "search", list: "photo-classes", placeholder: "the predicted class",
    "aria-label": "Class to explain" });
  const classList = h("datalist", { id: "photo-classes" });
  const weightsSlot = h("div");
  const photoCanvas = h("canvas", { class: "photo-cam", "aria-label": "The photo with the CAM over it" });
  const inputCanvas = h("canvas", { class: "model-input", "aria-label": "The model input" });
  const top = h("div", { class: "top-slot" });
  const caption = h("p", { class: "muted cam-caption" });
  const keeping = savePanel(() => ({ current, answer, classes: classes() }), "photo-classes");
  const results = h("div", { class: "photo-results", hidden: true },
    h("figure", {}, photoCanvas, caption),
    h("figure", {}, inputCanvas, h("figcaption", { class: "muted", text: "The model input, after preprocessing" })),
    h("div", {}, h("h3", { text: "Top 5" }), top, keeping.element));
  const graphSlot = h("div", { class: "graph-slot" });
  const panelSlot = h("div", { class: "panel-slot" });
  const input = photoInput((photo) => {
    current = photo;
    store.input = { kind: "photo", dataUrl: photo.url, name: photo.name }; // the 3D view shows it too
    rerun();
  }, (text) => message.error(text));
  root.append(h("div", { class: "photo-view" },
    h("h2", { text: "Photos through image models" }),
    h("div", { class: "toolbar" }, h("label", {}, "Model ", modelSelect)),
    weightsSlot, input.element, message.element,
    h("div", { class: "toolbar explain-controls" }, h("label", {}, "Method ", method),
      h("label", {}, "Layer ", layer), h("label", {}, "Explain class ", target), classList),
    results, h("h3", { text: "Layers" }),
    h("p", { class: "muted", text: "Click a layer for its feature maps and weights; click a block to open it." }),
    h("div", { class: "layers-split" }, graphSlot, panelSlot)));

  let current = null; // {url, name}
  let answer = null;
  let architecture = null;
  let graph = null;
  let weights = null;
  let turn = 0; // predictions: only the latest one's answer is drawn
  let loads = 0; // models: only the latest one chosen is shown
  let alive = true;
  let loadedName = null;

  const spec = () => store.spec(modelSelect.value);
  const classes = () => spec()?.class_names ?? [];

  function fillModels() {
    const models = modelOrder(store.models);
    modelSelect.replaceChildren(...models.map((m) => h("option", { value: m.name, text: modelLabel(m) })));
    const ready = models.find((m) => m.input_shape[0] === 3 && isReady(m));
    modelSelect.value = store.spec(store.model)?.input_shape[0] === 3 ? store.model : (ready ?? models[0]).name;
    if (modelSelect.value !== store.model) store.select(modelSelect.value, null);
  }

  function targetIndex() {
    const text = target.value.trim();
    if (!text) return undefined;
    const index = classes().indexOf(text);
    if (index >= 0) return index;
    const number = Number(text.split(":")[0]);
    return Number.isInteger(number) && number >= 0 && number < classes().length ? number : null;
  }

  async function predict() {
    if (!current || !isReady(spec())) return;
    const chosen = targetIndex();
    if (chosen === null) {
      message.error(`"${target.value}" is not one of ${spec().name}'s classes: pick one from the list.`);
      return;
    }
    const mine = ++turn;
    message.info("Running the model…");
    try {
      const body = await api("/api/predict", { method: "POST", body: {
        image: current.url, model: spec().name, version: store.model === spec().name ? store.version : null,
        cam_method: method.value, cam_layer: method.value === "saliency" ? undefined : layer.value || undefined,
        target: chosen, layers: [] } });
      if (mine !== turn || !alive) return;
      answer = body;
      await draw();
      message.clear();
      if (panelSlot.firstChild) showLayer(panelSlot.dataset.layer); // the open layer follows the new photo
    } catch (error) {
      if (mine !== turn || !alive) return;
      answer = null;
      results.hidden = true;
      message.error(error.message);
    }
  }

  async function draw() {
    const cam = !answer.cam ? "no CAM (this model has no spatial layer)"
      : answer.cam.method === "saliency" ? "saliency" : `${answer.cam.method} at ${answer.cam.layer}`;
    caption.textContent = `${current.name}: ${cam}, for “${answer.target_class}”`
      + (answer.cam?.blank ? `. ${answer.cam.blank}` : "");
    await photoWithCam(photoCanvas, current.url, answer);
    paintInput(inputCanvas, await decodeTensor(answer.input), GREY);
    top.replaceChildren(topClasses(mostLikely(answer.probabilities, classes()), answer.target));
    keeping.reset();
    results.hidden = false;
    window.__convscope.timings.push(performance.now() - startedAt);
  }

  // Time from a photo chosen (or a setting changed) to its top-5 and CAM drawn: window.__convscope.timings.
  let startedAt = 0;
  function rerun() {
    startedAt = performance.now();
    return predict();
  }

  // Only the layers a CAM can be laid over: spatial (C, H, W) outputs bigger than 1×1.
  function fillLayers() {
    const spatial = architecture.layers.filter((l) => l.output_shape.length === 3
      && l.output_shape[1] * l.output_shape[2] > 1);
    layer.replaceChildren(h("option", { value: "", text: `default (${architecture.default_cam_layer ?? "none"})` }),
      ...spatial.map((l) => h("option", { value: l.name, text: `${l.name} ${l.output_shape.join("×")}` })));
    layer.disabled = !spatial.length;
  }

  function showLayer(name) {
    const chosen = architecture.layers.find((l) => l.name === name);
    if (!chosen) return;
    const request = current && answer ? (extra) => api("/api/layers/activations", { method: "POST", body: {
      image: current.url, model: spec().name, version: answer.version, ...extra } }) : null;
    const panel = layerPanel(chosen, { model: spec().name, version: answer?.version ?? null, request });
    panelSlot.dataset.layer = name;
    panelSlot.replaceChildren(panel.element);
    panel.ready.catch((error) => message.error(error.message));
  }

  async function loadModel() {
    loadedName = modelSelect.value;
    weights?.dispose();
    weights = null;
    weightsSlot.replaceChildren();
    graph?.dispose();
    graphSlot.replaceChildren();
    panelSlot.replaceChildren();
    results.hidden = true;
    answer = null;
    turn += 1; // an answer still on its way is for the model before
    classList.replaceChildren(...classes().map((name, i) => h("option", { value: name, label: `${i}` })));
    target.value = "";
    if (!isReady(spec())) {
      weights = weightsPanel(spec(), async () => {
        await store.reloadModels();
        fillModels();
        loadModel();
      });
      weightsSlot.append(weights.element);
      return;
    }
    const loading = ++loads;
    try {
      const fetched = await api(`/api/models/${spec().name}/architecture`);
      if (!alive || loading !== loads) return; // another model was chosen meanwhile
      architecture = fetched;
      fillLayers();
      graph = createLayerGraph(architecture, { onSelect: (l) => showLayer(l.name) });
      graphSlot.append(graph.element);
      graph.ready.catch((error) => message.error(error.message));
      await rerun();
    } catch (error) {
      if (alive && loading === loads) message.error(error.message);
    }
  }

  // The header's model picker and this one show the same model.
  modelSelect.addEventListener("change", () => store.select(modelSelect.value, null));
  const unsubscribe = store.onSelect(() => {
    if (!store.spec(store.model) || store.model === loadedName) return;
    modelSelect.value = store.model;
    loadModel();
  });
  for (const control of [method, layer, target]) control.addEventListener("change", rerun);
  method.addEventListener("change", () => { layer.disabled = method.value === "saliency"; });

  fillModels();
  if (loadedName !== modelSelect.value) loadModel();
  return {
    dispose() {
      alive = false;
      unsubscribe();
      input.dispose();
      weights?.dispose();
      graph?.dispose();
    },
  };
}
