// Architecture and weights: the model as a graph (layergraph.js: kinds, shapes, kernels, skips and branches as
// arrows, blocks that collapse), a clicked layer's details and weights, and for a small model every layer's weight
// and bias statistics, histograms and conv filters.

import { api, query } from "../api.js";
import { h, messageBox } from "../dom.js";
import { createLayerGraph } from "../layergraph.js";
import { layerPanel } from "../layerpanel.js";
import { filters, stats } from "../weightsview.js";

const count = (n) => n.toLocaleString("en-US");

function flops(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MFLOPs` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kFLOPs` : `${n} FLOPs`;
}

// Models above this many parameters list their weights one layer at a time (click a layer), not all at once.
const ALL_WEIGHTS_UP_TO = 2_000_000;

async function allWeights(suffix) {
  const weights = await api(`/api/models/${suffix}`);
  return Promise.all(weights.layers.map(async (layer) => h("section", { class: "layer-weights" },
    h("h4", {}, h("span", { class: `kind kind-${layer.kind}`, text: layer.kind }), ` ${layer.layer}`),
    h("div", { class: "weights-row" }, stats("weight", layer.weight), layer.bias ? stats("bias", layer.bias) : null,
      layer.filters ? await filters(layer) : null))));
}

export function createArchitectureView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const body = h("div", { class: "architecture" });
  root.append(h("div", { class: "architecture-view" }, h("h2", { text: "Architecture and weights" }),
    message.element, body));
  let alive = true;
  let graph = null;

  let loads = 0;

  async function load() {
    const loading = ++loads;
    const current = () => alive && loading === loads; // not replaced by a later choice of model
    try {
      const suffix = query({ version: store.version });
      const architecture = await api(`/api/models/${store.model}/architecture${suffix}`);
      if (!current()) return;
      graph?.dispose();
      const panel = h("div", { class: "panel-slot" }, h("p", { class: "muted",
        text: "Click a layer for its details and weights; click a block to open it." }));
      graph = createLayerGraph(architecture, { onSelect(layer) {
        const shown = layerPanel(layer, { model: store.model, version: store.version, request: null });
        panel.replaceChildren(shown.element);
        shown.ready.catch((error) => message.error(error.message));
      } });
      const small = architecture.parameters <= ALL_WEIGHTS_UP_TO;
      const weights = small ? await allWeights(`${store.model}/weights${suffix}`) : [];
      if (!current()) return;
      body.replaceChildren(
        h("p", {}, `${architecture.model} v${architecture.version}: ${count(architecture.parameters)} parameters, `,
          `${flops(architecture.flops)} per image`),
        architecture.traced ? "" : h("p", { class: "message info approximate", text: "Approximate graph: the model "
          + "could not be traced, so its edges were inferred from the order in which its modules ran." }),
        h("div", { class: "layers-split" }, graph.element, panel),
        small ? h("h3", { text: "Weights" }) : "", ...weights);
      await graph.ready;
      const first = architecture.layers.find((l) => l.parameters > 0); // start on the first layer with weights
      if (first && current()) graph.select(first.name);
      message.clear();
    } catch (error) {
      if (current()) message.error(error.message);
    }
  }

  const unsubscribe = store.onSelect(load);
  load();
  return {
    dispose() {
      alive = false;
      graph?.dispose();
      unsubscribe();
    },
  };
}
