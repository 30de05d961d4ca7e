// What the home page shows for one answer: the predicted class, the probabilities, what the model saw (its input,
// the CAM on it, the saliency map), the CAM over the drawing, and every layer's activations. Class names come
// from the model (setModel), never from a list of digits.

import { h } from "../dom.js";
import { HEAT, VIRIDIS, legend } from "../colors.js";
import { probabilityBars } from "../charts.js";
import { createLayerView, drawChannel } from "../featuremaps.js";
import { paintCamOver, paintHeat, paintInput } from "../pictures.js";
import { decodeLayers, decodeTensor } from "../tensors.js";

function small(label) {
  const canvas = h("canvas", { class: "tiny", width: 28, height: 28 });
  const caption = h("figcaption", { text: label });
  return { canvas, caption, figure: h("figure", {}, canvas, caption) };
}

// The taps whose units are the classes: the model's output and its logits, when they have one unit per class.
function classLayers(architecture, classNames) {
  return new Set(architecture.layers.filter((layer) => [architecture.output, architecture.logits].includes(layer.name)
    && layer.output_shape.length === 1 && layer.output_shape[0] === classNames.length).map((layer) => layer.name));
}

// `methodTitles`: method name -> what to call it ("gradcam" -> "Grad-CAM").
export function createResults({ methodTitles = {} } = {}) {
  const predictedClass = h("span", { class: "predicted-class", text: "–" });
  const confidence = h("span", { class: "confidence", text: "draw or upload" });
  const versionLabel = h("span", { class: "muted" });
  const truth = h("span", { class: "truth", hidden: true });
  const unusual = h("p", { class: "unusual", role: "status", hidden: true });
  const camNote = h("p", { class: "cam-note muted", hidden: true });
  const barsSlot = h("div", { class: "bars-slot" });
  const input = small("model input");
  const camOnInput = small("CAM on the input");
  const saliency = small("saliency");
  const camLegend = h("div", { class: "cam-legend" }, legend(HEAT, "0", "1", "CAM / saliency"));
  const layersBox = h("div", { class: "layers" });
  const dialogCanvas = h("canvas", { class: "enlarged" });
  const dialogTitle = h("h3");
  const dialogRange = h("p");
  const dialog = h("dialog", { class: "enlarge", "aria-label": "Enlarged feature map" }, dialogTitle, dialogCanvas,
    dialogRange, h("form", { method: "dialog" }, h("button", { text: "Close" })));
  const element = h("div", { class: "results" },
    h("div", { class: "prediction", "aria-live": "polite" }, h("span", { class: "muted", text: "predicted" }),
      predictedClass, confidence, versionLabel, truth),
    unusual,
    barsSlot,
    h("div", { class: "seen" }, input.figure, camOnInput.figure, saliency.figure),
    camNote,
    camLegend);
  let bars = probabilityBars([]);
  let layerViews = new Map();
  let labelled = new Set(); // names of the layers whose units are the classes
  let classNames = [];
  let trueLabel = null; // the class index a test sample is labelled with; null when unknown
  let shownPrediction = null;

  function showTruth() {
    truth.hidden = trueLabel === null;
    if (trueLabel === null) return;
    const right = shownPrediction === trueLabel;
    truth.className = `truth ${shownPrediction === null ? "" : right ? "right" : "wrong"}`;
    truth.textContent = `true label ${classNames[trueLabel] ?? trueLabel}${shownPrediction === null ? ""
      : right ? " ✓" : " ✗"}`;
  }

  function enlarge(name, index, channel) {
    dialogTitle.textContent = `${name}, channel ${index}`;
    drawChannel(dialogCanvas, channel);
    dialogRange.textContent = `values ${channel.min.toFixed(3)} to ${channel.max.toFixed(3)}`;
    dialog.showModal();
  }

  return {
    element,
    layersElement: h("div", {}, layersBox, dialog),
    // Lay out the bars and one view per layer (once per model), from the architecture and the class names.
    setModel(architecture, names) {
      classNames = names;
      bars = probabilityBars(classNames);
      barsSlot.replaceChildren(bars.element);
      input.caption.textContent = `model input (${architecture.input_shape.slice(-2).join("×")})`;
      labelled = classLayers(architecture, classNames);
      layerViews = new Map(architecture.layers.map((layer) => [layer.name, createLayerView(layer.name, layer.kind,
        layer.output_shape, { labels: labelled.has(layer.name) ? classNames : null, onEnlarge: enlarge })]));
      layersBox.replaceChildren(...[...layerViews.values()].map((view) => view.element));
    },
    // Nothing shown: no prediction, no bars, no pictures, no layer maps (Clear, an empty pad, a failed request).
    reset() {
      predictedClass.textContent = "–";
      confidence.textContent = "draw or upload";
      versionLabel.textContent = "";
      shownPrediction = null;
      showTruth();
      unusual.hidden = camNote.hidden = true;
      bars.update(classNames.map(() => 0), -1);
      for (const { canvas } of [input, camOnInput, saliency]) {
        canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
      }
      for (const view of layerViews.values()) view.clear();
    },
    // The label of a test sample, shown beside the prediction (null: not a sample).
    setTruth(label) {
      trueLabel = label;
      showTruth();
    },
    // Decode and draw everything; `overlay(heatCanvas)` lays the CAM over the drawing.
    async show(answer, overlay) {
      const [modelInput, cam, sal, layers] = await Promise.all([
        decodeTensor(answer.input), answer.cam ? decodeTensor(answer.cam.map) : null,
        decodeTensor(answer.saliency), decodeLayers(answer.layers)]);
      predictedClass.textContent = answer.predicted_class;
      confidence.textContent = `${(answer.confidence * 100).toFixed(1)}%`;
      versionLabel.textContent = `${answer.model} v${answer.version}`;
      shownPrediction = answer.predicted;
      showTruth();
      unusual.hidden = !answer.unusual_input;
      unusual.textContent = answer.unusual_input ? `Unusual input: ${answer.unusual_input.reason}.` : "";
      const method = answer.cam?.method ?? "saliency";
      camOnInput.caption.textContent = answer.cam && method !== "saliency"
        ? `${methodTitles[method] ?? method} at ${answer.cam.layer}` : "saliency on the input";
      camNote.hidden = !answer.cam?.blank;
      camNote.textContent = answer.cam?.blank ? `${methodTitles[method] ?? method}: ${answer.cam.blank}.` : "";
      bars.update(answer.probabilities, answer.predicted);
      paintInput(input.canvas, modelInput, VIRIDIS);
      const map = cam || sal;
      const heat = paintCamOver(camOnInput.canvas, modelInput, map, VIRIDIS);
      paintHeat(saliency.canvas, sal);
      overlay(heat);
      for (const layer of layers) {
        layerViews.get(layer.name)?.update(layer.tensor, labelled.has(layer.name) ? answer.predicted : -1);
      }
      return { cam: map };
    },
  };
}
