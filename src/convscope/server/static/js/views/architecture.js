// Architecture and weights: the model as a graph diagram (kinds, shapes, parameters, FLOPs, each layer's inputs),
// each layer's weight and bias statistics and histograms, and every conv filter.

import { api, query } from "../api.js";
import { h, messageBox } from "../dom.js";
import { DIVERGING, legend, paint } from "../colors.js";
import { histogram } from "../charts.js";
import { decodeTensor } from "../tensors.js";

const count = (n) => n.toLocaleString("en-US");

function flops(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MFLOPs` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kFLOPs` : `${n} FLOPs`;
}

// Each tap's rank: 0 for the input, else one more than its deepest parent (the layers come in execution order).
function ranks(layers) {
  const rank = new Map([["input", 0]]);
  for (const layer of layers) rank.set(layer.name, 1 + Math.max(0, ...layer.parents.map((p) => rank.get(p) ?? 0)));
  return rank;
}

function node(layer, rank) {
  // A parent more than one rank back reaches past the layers between: a skip connection.
  const parents = layer.parents.flatMap((name, i) => {
    const skip = rank.get(name) < rank.get(layer.name) - 1;
    return [i ? ", " : "", h("span", { class: skip ? "parent skip" : "parent", text: name,
      title: skip ? `skip connection from ${name}` : null })];
  });
  return h("li", { class: `node node-${layer.kind}${layer.parents.length > 1 ? " node-merge" : ""}`,
    "data-layer": layer.name },
  h("strong", { text: layer.name }), h("span", { class: `kind kind-${layer.kind}`, text: layer.kind }),
  h("span", { text: layer.output_shape.join("×") }),
  h("span", { class: "muted", text: layer.parameters ? `${count(layer.parameters)} params` : "no params" }),
  layer.flops ? h("span", { class: "muted", text: flops(layer.flops) }) : null,
  h("span", { class: "parents" }, "← ", parents));
}

// The graph by rank, one column per rank: a branch's layers stand in the same column, and every node names the
// taps it reads (skip connections marked), so a residual add or a concat shows all its inputs.
function diagram(architecture) {
  const rank = ranks(architecture.layers);
  const columns = [[h("li", { class: "node node-input", "data-layer": "input" }, h("strong", { text: "input" }),
    h("span", { text: architecture.input_shape.join("×") }))]];
  for (const layer of architecture.layers) (columns[rank.get(layer.name)] ||= []).push(node(layer, rank));
  return h("div", { class: "graph" },
    architecture.traced ? null : h("p", { class: "message info approximate", text: "Approximate graph: the model " +
      "could not be traced, so its edges were inferred from the order in which its modules ran." }),
    h("ol", { class: "diagram", "aria-label": "Layers by depth" }, ...columns.filter(Boolean).map((column) =>
      h("li", { class: "rank" }, h("ol", { class: column.length > 1 ? "branches" : "" }, ...column)))));
}

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
  canvas.style.width = `${canvas.width * Math.max(2, Math.floor(360 / canvas.width))}px`;
  const scale = layer.filters.scale.toPrecision(3);
  return h("figure", { class: "filter-figure" }, canvas,
    h("figcaption", { text: inputs === 1 ? `${outputs} filters` : `${outputs} filters (rows) × ${inputs} input channels` }),
    legend(DIVERGING, `-${scale}`, scale, "weight"));
}

export function createArchitectureView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const body = h("div", { class: "architecture" });
  root.append(h("div", { class: "architecture-view" }, h("h2", { text: "Architecture and weights" }),
    message.element, body));
  let alive = true;

  async function load() {
    try {
      const suffix = query({ version: store.version });
      const [architecture, weights] = await Promise.all([
        api(`/api/models/${store.model}/architecture${suffix}`), api(`/api/models/${store.model}/weights${suffix}`)]);
      if (!alive) return;
      const layers = await Promise.all(weights.layers.map(async (layer) => h("section", { class: "layer-weights" },
        h("h4", {}, h("span", { class: `kind kind-${layer.kind}`, text: layer.kind }), ` ${layer.layer}`),
        h("div", { class: "weights-row" }, stats("weight", layer.weight), layer.bias ? stats("bias", layer.bias) : null,
          layer.filters ? await filters(layer) : null))));
      body.replaceChildren(
        h("p", {}, `${architecture.model} v${architecture.version}: ${count(architecture.parameters)} parameters, `,
          `${flops(architecture.flops)} per image`),
        diagram(architecture), h("h3", { text: "Weights" }), ...layers);
      message.clear();
    } catch (error) {
      if (alive) message.error(error.message);
    }
  }

  const unsubscribe = store.onSelect(load);
  load();
  return {
    dispose() {
      alive = false;
      unsubscribe();
    },
  };
}
