// One layer in detail: what it is (kind, shape, parameters, MACs, kernel/stride), its feature maps for the current
// input (64 channels a page from POST /api/layers/activations, by index or mean, hover for a value, click to
// enlarge with a colour scale) and its weights (GET /api/models/{name}/weights?layer=: statistics, histograms,
// filters; a first layer's RGB filters in colour).

import { api, query } from "./api.js";
import { DIVERGING, VIRIDIS, legend, levelOf, paint } from "./colors.js";
import { h } from "./dom.js";
import { channelLooksFor } from "./channelfeatures.js";
import { compact, shapeText } from "./layergraph.js";
import { decodeTensor } from "./tensors.js";
import { filters, stats } from "./weightsview.js";

const PAGE = 64;
const THUMBNAIL = 64; // pixels: a page's maps are averaged down to this on the server; enlarged ones come whole
const STRIP_WIDTH = 512; // a dense layer's values per row

function facts(layer) {
  const rows = [["kind", `${layer.kind} (${layer.op})`], ["output", shapeText(layer.output_shape)],
    ["parameters", layer.parameters.toLocaleString("en-US")], ["MACs", compact(layer.macs)],
    ["inputs", layer.parents.join(", ")]];
  if (layer.kernel) {
    rows.push(["kernel", layer.kernel.join("×")], ["stride", layer.stride.join("×")],
      ["padding", layer.padding.join("×")], ["dilation", layer.dilation.join("×")]);
  }
  return h("table", { class: "stats layer-facts" }, h("tbody", {}, ...rows.map(([name, value]) =>
    h("tr", {}, h("th", { scope: "row", text: name }), h("td", { text: value })))));
}

// One channel's map (values for channel c of a decoded per-channel page) on a canvas.
function paintChannel(canvas, tensor, c) {
  const [, height, width] = tensor.shape;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  paint(image, tensor.values, c * height * width, width, height, 0, 0, tensor.min[c], tensor.max[c], VIRIDIS);
  context.putImageData(image, 0, 0);
}

function valueAt(event, canvas, tensor, c) {
  const [, height, width] = tensor.shape;
  const box = canvas.getBoundingClientRect();
  const x = Math.min(width - 1, Math.floor(((event.clientX - box.left) / box.width) * width));
  const y = Math.min(height - 1, Math.floor(((event.clientY - box.top) / box.height) * height));
  return { x, y, value: tensor.values[c * height * width + y * width + x] };
}

// `request(body)`: POSTs to /api/layers/activations with the current input and model added. `about` {model,
// version}: an enlarged channel of a spatial layer also shows what it looks for (channelfeatures.js).
export function featureMaps(layer, request, about = null) {
  const status = h("p", { class: "muted hover-value", "aria-live": "polite" });
  const grid = h("div", { class: "channel-grid", "data-testid": "channel-grid" });
  const sort = h("select", { "aria-label": "Channel order" }, h("option", { value: "index", text: "by index" }),
    h("option", { value: "mean", text: "by mean activation" }));
  const previous = h("button", { type: "button", text: "◂ Previous" });
  const next = h("button", { type: "button", text: "Next ▸" });
  const range = h("span", { class: "muted" });
  const dialog = h("dialog", { class: "channel-dialog" });
  const element = h("section", { class: "feature-maps" }, h("h4", { text: "Feature maps for this input" }),
    h("div", { class: "toolbar" }, sort, previous, next, range), status, grid, dialog);
  let offset = 0;
  let turn = 0;

  let enlarging = 0;
  let lookingFor = null; // the enlarged channel's top patches and visualization, stopped when the dialog closes
  dialog.addEventListener("close", () => lookingFor?.dispose());

  async function enlarge(channel) {
    const mine = ++enlarging;
    let body;
    let tensor;
    try {
      body = await request({ layer: layer.name, sort: "index", offset: channel, limit: 1 });
      tensor = await decodeTensor(body.activation);
    } catch (error) {
      status.textContent = error.message;
      return;
    }
    if (mine !== enlarging) return; // another channel was asked for meanwhile
    const canvas = h("canvas", { class: "enlarged", "aria-label": `channel ${channel} of ${layer.name}` });
    paintChannel(canvas, tensor, 0);
    canvas.addEventListener("mousemove", (event) => {
      const at = valueAt(event, canvas, tensor, 0);
      caption.textContent = `channel ${channel} at (${at.y}, ${at.x}): ${at.value.toPrecision(4)}`;
    });
    const caption = h("p", { class: "muted", text: `channel ${channel}: ${tensor.shape[1]}×${tensor.shape[2]}` });
    lookingFor?.dispose();
    lookingFor = about && layer.output_shape.length === 3 ? channelLooksFor({ ...about, layer: layer.name, channel })
      : null;
    dialog.replaceChildren(h("h4", { text: `${layer.name}, channel ${channel}` }), canvas, caption,
      legend(VIRIDIS, tensor.min[0].toPrecision(3), tensor.max[0].toPrecision(3), "activation"),
      lookingFor?.element ?? "", h("form", { method: "dialog" }, h("button", { text: "Close" })));
    dialog.showModal();
  }

  async function load() {
    const mine = ++turn;
    const started = performance.now();
    status.textContent = "Loading…";
    const body = await request({ layer: layer.name, sort: sort.value, offset, limit: PAGE, max_side: THUMBNAIL });
    if (mine !== turn) return;
    if (!body.order) { // a layer without channels (dense, flattened): its values as rows of a strip
      const tensor = await decodeTensor(body.activation);
      const count = tensor.values.length;
      const width = Math.min(count, STRIP_WIDTH);
      const rows = Math.ceil(count / width);
      const padded = new Float32Array(width * rows).fill(tensor.min);
      padded.set(tensor.values);
      const canvas = h("canvas", { class: "strip", width, height: rows, style: `height: ${Math.max(24, rows * 3)}px`,
        "aria-label": `${layer.name}: ${count} values` });
      const image = canvas.getContext("2d").createImageData(width, rows);
      paint(image, padded, 0, width, rows, 0, 0, tensor.min, tensor.max, VIRIDIS);
      canvas.getContext("2d").putImageData(image, 0, 0);
      let top = 0;
      for (let i = 1; i < count; i++) if (tensor.values[i] > tensor.values[top]) top = i;
      grid.replaceChildren(canvas, legend(VIRIDIS, tensor.min.toPrecision(3), tensor.max.toPrecision(3), "value"));
      status.textContent = `${count} values; the largest, ${tensor.values[top].toPrecision(4)}, at ${top}`;
      for (const control of [sort, previous, next]) control.disabled = true;
      return;
    }
    const tensor = await decodeTensor(body.activation);
    const cells = body.order.map((channel, i) => {
      const canvas = h("canvas", { tabindex: "0", role: "button", "data-channel": channel,
        "aria-label": `channel ${channel}, mean ${body.means[i].toPrecision(3)}: enlarge` });
      paintChannel(canvas, tensor, i);
      canvas.addEventListener("mousemove", (event) => {
        const at = valueAt(event, canvas, tensor, i);
        status.textContent = `channel ${channel} near (${at.y}, ${at.x}): ${at.value.toPrecision(4)}`
          + (body.shape[1] > tensor.shape[1] ? " (averaged thumbnail; click for every value)" : "");
      });
      canvas.addEventListener("click", () => enlarge(channel));
      canvas.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault(); // or the key's click would reach the dialog's button and close it at once
          enlarge(channel);
        }
      });
      return h("figure", {}, canvas, h("figcaption", { text: String(channel) }));
    });
    grid.replaceChildren(...cells);
    // Read by bench/ui_photo_latency.py: layer clicked -> its page of maps drawn (ms).
    window.__convscope.layerTimings = [...(window.__convscope.layerTimings || []), performance.now() - started];
    range.textContent = `channels ${offset + 1}-${offset + body.order.length} of ${body.channels}`;
    previous.disabled = offset === 0;
    next.disabled = offset + PAGE >= body.channels;
    status.textContent = "Hover a map for its values; click one to enlarge it.";
  }

  const reload = (change) => () => {
    change();
    load().catch((error) => { status.textContent = error.message; });
  };
  sort.addEventListener("change", reload(() => { offset = 0; }));
  previous.addEventListener("click", reload(() => { offset = Math.max(0, offset - PAGE); }));
  next.addEventListener("click", reload(() => { offset += PAGE; }));
  return { element, load };
}

// (out, 3, k, k) filters in colour: each filter one k×k RGB tile, on the layer's symmetric scale (grey = 0).
async function colourFilters(entry) {
  const tensor = await decodeTensor(entry.filters.images);
  const [outputs, , kh, kw] = tensor.shape;
  const perRow = 16;
  const canvas = h("canvas", { class: "filters rgb-filters", width: perRow * (kw + 1) - 1,
    height: Math.ceil(outputs / perRow) * (kh + 1) - 1,
    "aria-label": `${entry.layer}: ${outputs} colour filters of ${kh}×${kw}` });
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  for (let o = 0; o < outputs; o++) {
    const x0 = (o % perRow) * (kw + 1);
    const y0 = Math.floor(o / perRow) * (kh + 1);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        const p = ((y0 + y) * canvas.width + x0 + x) * 4;
        for (let c = 0; c < 3; c++) image.data[p + c] = levelOf(tensor.values[((o * 3 + c) * kh + y) * kw + x], 0, 1);
        image.data[p + 3] = 255;
      }
    }
  }
  context.putImageData(image, 0, 0);
  canvas.style.width = `${Math.min(480, canvas.width * 6)}px`;
  return h("figure", { class: "filter-figure" }, canvas,
    h("figcaption", { text: `${outputs} filters as colour pictures (grey: zero weight)` }));
}

export async function layerWeights(model, version, layer) {
  const body = await api(`/api/models/${model}/weights${query({ version, layer: layer.name })}`);
  const entry = body.layers[0];
  if (!entry) return h("p", { class: "muted", text: `${layer.name} has no weights of its own.` });
  const rgb = entry.filters && entry.filters.images.shape[1] === 3;
  return h("section", { class: "layer-weights" }, h("h4", { text: "Weights" }),
    h("div", { class: "weights-row" }, stats("weight", entry.weight), entry.bias ? stats("bias", entry.bias) : null,
      entry.filters ? await (rgb ? colourFilters(entry) : filters(entry)) : null),
    rgb ? legend(DIVERGING, `-${entry.filters.scale.toPrecision(3)}`, entry.filters.scale.toPrecision(3), "weight")
      : null);
}

// The whole panel for one layer; `request` as for featureMaps, or null when there is no input yet.
export function layerPanel(layer, { model, version, request }) {
  const maps = request ? featureMaps(layer, request, { model, version }) : null;
  const weights = h("div", { class: "muted", text: "Loading weights…" });
  const element = h("section", { class: "layer-panel", "data-testid": "layer-panel" },
    h("h3", { text: layer.name }), facts(layer),
    maps ? maps.element : h("p", { class: "muted", text: "Choose a photo to see this layer's feature maps." }),
    weights);
  const ready = Promise.all([
    maps?.load(),
    layerWeights(model, version, layer).then((part) => weights.replaceWith(part)),
  ]);
  return { element, ready };
}
