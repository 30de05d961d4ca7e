// MNIST test images to try a model on (GET /api/samples, which serves MNIST only): so the ten digits here are
// MNIST's own labels, not any model's classes.

import { api, query } from "./api.js";
import { h } from "./dom.js";

const MNIST_LABELS = [...Array(10).keys()];

// A select of the digit to sample ("" for any).
export function digitSelect() {
  return h("select", { "aria-label": "Digit to sample" }, h("option", { value: "", text: "any digit" }),
    ...MNIST_LABELS.map((d) => h("option", { value: String(d), text: `digit ${d}` })));
}

// -> {split, index, label, pixels: 28 rows of 28 grey levels}
export function fetchSample(select) {
  return api(`/api/samples${query({ digit: select.value })}`);
}

// MNIST pixels (light ink on dark) as a PNG of dark ink on white, like the pad.
export function pixelsToDataUrl(pixels) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  pixels.flat().forEach((v, i) => image.data.set([255 - v, 255 - v, 255 - v, 255], i * 4));
  context.putImageData(image, 0, 0);
  return canvas.toDataURL();
}
