// What the home page shows for one answer: the prediction, the probabilities, what the model saw (its 28x28
// input, the CAM on it, the saliency map), the CAM over the drawing, and every layer's activations.

import { h } from "../dom.js";
import { HEAT, VIRIDIS, legend, paint } from "../colors.js";
import { probabilityBars } from "../charts.js";
import { createLayerView, drawChannel } from "../featuremaps.js";
import { decodeLayers, decodeTensor } from "../tensors.js";

const CLASS_LABELS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const CAM_ALPHA = (level) => Math.round(40 + (level / 255) * 170); // hot parts opaque, cold parts faint

function small(label) {
  const canvas = h("canvas", { class: "tiny", width: 28, height: 28 });
  return { canvas, figure: h("figure", {}, canvas, h("figcaption", { text: label })) };
}

function paintMap(canvas, tensor, lut, alpha = 255) {
  const [height, width] = tensor.shape;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  paint(image, tensor.values, 0, width, height, 0, 0, 0, 1, lut, alpha);
  context.putImageData(image, 0, 0);
}

export function createResults(labels = CLASS_LABELS) {
  const digit = h("span", { class: "digit", text: "–" });
  const confidence = h("span", { class: "confidence", text: "draw a digit" });
  const versionLabel = h("span", { class: "muted" });
  const bars = probabilityBars(labels);
  const input = small("model input (28×28)");
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
    h("div", { class: "prediction", "aria-live": "polite" }, h("span", { class: "muted", text: "predicted" }), digit,
      confidence, versionLabel),
    bars.element,
    h("div", { class: "seen" }, input.figure, camOnInput.figure, saliency.figure),
    camLegend);
  let layerViews = new Map();

  function enlarge(name, index, channel) {
    dialogTitle.textContent = `${name}, channel ${index}`;
    drawChannel(dialogCanvas, channel);
    dialogRange.textContent = `values ${channel.min.toFixed(3)} to ${channel.max.toFixed(3)}`;
    dialog.showModal();
  }

  return {
    element,
    layersElement: h("div", {}, layersBox, dialog),
    // Lay out one view per layer (once per model), from the architecture.
    setLayers(layers) {
      layerViews = new Map(layers.map((layer) => [layer.name, createLayerView(layer.name, layer.kind,
        layer.output_shape, { labels: layer.kind === "softmax" ? labels : null, onEnlarge: enlarge })]));
      layersBox.replaceChildren(...[...layerViews.values()].map((view) => view.element));
    },
    reset() {
      digit.textContent = "–";
      confidence.textContent = "draw a digit";
    },
    // Decode and draw everything; `overlay(camTensor)` lays the CAM over the drawing.
    async show(answer, overlay) {
      const [modelInput, cam, sal, layers] = await Promise.all([
        decodeTensor(answer.input), answer.cam ? decodeTensor(answer.cam.map) : null,
        decodeTensor(answer.saliency), decodeLayers(answer.layers)]);
      digit.textContent = labels[answer.predicted];
      confidence.textContent = `${(answer.confidence * 100).toFixed(1)}%`;
      versionLabel.textContent = `${answer.model} v${answer.version}`;
      bars.update(answer.probabilities, answer.predicted);
      paintMap(input.canvas, modelInput, VIRIDIS);
      const map = cam || sal;
      paintMap(camOnInput.canvas, modelInput, VIRIDIS);
      const heat = document.createElement("canvas");
      paintMap(heat, map, HEAT, CAM_ALPHA);
      camOnInput.canvas.getContext("2d").drawImage(heat, 0, 0);
      paintMap(saliency.canvas, sal, HEAT);
      overlay(heat);
      for (const layer of layers) {
        layerViews.get(layer.name)?.update(layer.tensor, layer.kind === "softmax" ? answer.predicted : -1);
      }
      return { cam: map };
    },
  };
}

