// A layer's weights as the API gives them (GET /api/models/{name}/weights): statistics with a histogram, and conv
// filters as pictures on the layer's symmetric scale.

import { histogram } from "./charts.js";
import { DIVERGING, legend, paint } from "./colors.js";
import { h } from "./dom.js";
import { decodeTensor } from "./tensors.js";

export function stats(role, entry) {
  const s = entry.stats;
  return h("div", { class: "weights-block" },
    h("h5", { text: `${role} ${entry.shape.join("×")}` }),
    h("table", { class: "stats" }, h("tbody", {},
      ...[["mean", s.mean], ["std", s.std], ["min", s.min], ["max", s.max], ["|mean|", s.abs_mean],
        ["L2 norm", s.l2_norm]].map(([name, value]) =>
        h("tr", {}, h("th", { scope: "row", text: name }), h("td", { text: value.toPrecision(4) }))))),
    histogram(entry.histogram, role));
}

// Conv filters as one canvas: a row per output channel, a 3x3 (or kxk) tile per input channel.
export async function filters(layer) {
  const tensor = await decodeTensor(layer.filters.images);
  const [outputs, inputs, kh, kw] = tensor.shape;
  const perRow = inputs === 1 ? 8 : inputs;
  const rows = inputs === 1 ? Math.ceil(outputs / perRow) : outputs;
  const canvas = h("canvas", { class: "filters", width: perRow * (kw + 1) - 1, height: rows * (kh + 1) - 1,
    "aria-label": `${layer.layer}: ${outputs} filters of ${inputs}×${kh}×${kw}` });
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  for (let o = 0; o < outputs; o++) {
    for (let i = 0; i < inputs; i++) {
      const tile = inputs === 1 ? o : o * inputs + i;
      const x0 = (inputs === 1 ? o % perRow : i) * (kw + 1);
      const y0 = (inputs === 1 ? Math.floor(o / perRow) : o) * (kh + 1);
      paint(image, tensor.values, tile * kh * kw, kw, kh, x0, y0, 0, 1, DIVERGING);
    }
  }
  context.putImageData(image, 0, 0);
  canvas.style.width = `${canvas.width * Math.max(4, Math.floor(360 / canvas.width))}px`; // 3x3 tiles stay readable
  const scale = layer.filters.scale.toPrecision(3);
  return h("figure", { class: "filter-figure" }, canvas,
    h("figcaption", { text: inputs === 1 ? `${outputs} filters`
      : `${outputs} filters (rows) × ${inputs} input channels` }),
    legend(DIVERGING, `-${scale}`, scale, "weight"));
}
