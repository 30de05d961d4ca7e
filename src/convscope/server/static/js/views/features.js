// What a layer sees: for a chosen layer of the model, a page of its channels, each with an image optimised to
// drive it and the dataset patches that drive it hardest; a first conv layer's filters beside them. Images made
// before (here, or ahead of time by `convscope features-overview`) show at once; "Visualize this page" makes the
// missing ones, one at a time, with progress and Cancel.

import { api, query, streamed } from "../api.js";
import { DIVERGING, levelOf, paint } from "../colors.js";
import { patchRow, visualization } from "../channelfeatures.js";
import { h, messageBox } from "../dom.js";
import { decodeTensor } from "../tensors.js";
import { isReady } from "../weightsstate.js";

const PAGE = 16;

// Filter `o` of (out, in, k, k) filter pictures (0.5 = zero weight): one channel on the diverging scale, three as
// colour.
function filterCanvas(tensor, o) {
  const [, inputs, kh, kw] = tensor.shape;
  const canvas = h("canvas", { class: "channel-filter", width: kw, height: kh, "aria-label": `filter ${o}` });
  const context = canvas.getContext("2d");
  const image = context.createImageData(kw, kh);
  if (inputs === 3) {
    for (let i = 0; i < kh * kw; i++) {
      for (let c = 0; c < 3; c++) image.data[i * 4 + c] = levelOf(tensor.values[(o * 3 + c) * kh * kw + i], 0, 1);
      image.data[i * 4 + 3] = 255;
    }
  } else {
    paint(image, tensor.values, o * inputs * kh * kw, kw, kh, 0, 0, 0, 1, DIVERGING);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

export function createFeaturesView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const layer = h("select", { "aria-label": "Layer" });
  const dataset = h("select", { "aria-label": "Images" }); // where the top patches come from
  const previous = h("button", { type: "button", text: "◂ Previous" });
  const next = h("button", { type: "button", text: "Next ▸" });
  const range = h("span", { class: "muted" });
  const steps = h("input", { type: "number", min: 1, max: 2048, value: 256, "aria-label": "Steps" });
  // a whole channel (its mean over the map) or the one neuron at its centre: a first layer's neuron shows its
  // filter's pattern in the patch it sees, the channel a texture of it (or, for a filter whose weights add up to
  // much more than zero, a flat image)
  const objective = h("select", { "aria-label": "Objective" },
    h("option", { value: "channel", text: "the whole channel" }),
    h("option", { value: "neuron", text: "one neuron (the centre)" }));
  const visualizeButton = h("button", { type: "button", text: "Visualize this page" });
  const cancelButton = h("button", { type: "button", text: "Cancel", hidden: true });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Progress" });
  const progressText = h("span", { class: "muted", "aria-live": "polite", "data-testid": "features-progress" });
  const grid = h("div", { class: "feature-grid", "data-testid": "feature-grid" });
  root.append(h("div", { class: "features-view" }, h("h2", { text: "What each channel looks for" }),
    h("p", { class: "muted", text: "Each channel with an image optimised to drive it (gradient ascent on a "
      + "Fourier-parameterised image, robust to small shifts, scalings and rotations: Olah et al., Distill 2017) "
      + "and the patches of the dataset's images that drive it hardest (what it sees of them: its receptive "
      + "field). Early layers look for edges and colours, later ones for textures, patterns and parts." }),
    h("div", { class: "toolbar" }, h("label", {}, "Layer ", layer), previous, next, range,
      h("label", {}, "Patches from ", dataset)),
    h("div", { class: "toolbar" }, h("label", {}, "Drive ", objective), h("label", {}, "Steps ", steps),
      visualizeButton, cancelButton, progress,
      progressText), message.element, grid));

  let layers = [];
  let offset = 0;
  let cards = []; // the page's channels: {channel, shown (visualization), element}
  let running = null; // the AbortController of "Visualize this page"
  let reading = new AbortController(); // the page's patch requests: aborted when another page is shown
  let turn = 0;

  const modelFields = () => ({ model: store.model, version: store.version ?? undefined });
  const chosen = () => layers.find((l) => l.name === layer.value);

  async function fillLayers() {
    const model = store.spec(store.model);
    grid.replaceChildren();
    if (!isReady(model)) {
      message.error(`${model.name} has no weights on this server yet: get them in the Photos view.`);
      return;
    }
    const [architecture, { items }] = await Promise.all([api(`/api/models/${model.name}/architecture`),
      api("/api/datasets")]);
    dataset.replaceChildren(h("option", { value: "", text: model.dataset === "mnist" ? "the MNIST test set"
      : "the sample photos" }), ...items.filter((d) => d.kind === "folder" && !d.problem)
      .map((d) => h("option", { value: d.name, text: `${d.name} (${d.count.toLocaleString()} images)` })));
    // maps (C, H, W) and dense layers (C,): a dense layer's channel is one unit, the logits' one a class
    layers = architecture.layers.filter((l) => (l.output_shape.length === 3 || l.output_shape.length === 1)
      && l.output_shape[0] > 1 && l.kind !== "softmax" && l.kind !== "flatten");
    layer.replaceChildren(...layers.map((l) => h("option", { value: l.name,
      text: `${l.name} (${l.kind}, ${l.output_shape.join("×")})` })));
    offset = 0;
    await showPage();
  }

  async function filtersOf(name) {
    const body = await api(`/api/models/${store.model}/weights${query({ version: store.version, layer: name })}`);
    const entry = body.layers[0];
    return entry?.filters && entry.filters.images.shape[1] <= 3 ? decodeTensor(entry.filters.images) : null;
  }

  async function showPage() {
    const mine = ++turn;
    running?.abort();
    reading.abort(); // a dataset pass for the page before would hold the server's one model thread
    reading = new AbortController();
    const { signal } = reading;
    message.clear();
    cards = []; // nothing to visualize until the new page is built
    grid.replaceChildren();
    const current = chosen();
    if (!current) return;
    const channels = current.output_shape[0];
    range.textContent = `channels ${offset}-${Math.min(offset + PAGE, channels) - 1} of ${channels}`;
    previous.disabled = offset === 0;
    next.disabled = offset + PAGE >= channels;
    const filters = current.kind === "conv" ? await filtersOf(current.name).catch(() => null) : null;
    // the logits (the last layer, one unit per class): each channel is named by its class too
    const classes = store.classes();
    const logits = current === layers.at(-1) && channels === classes.length ? classes : null;
    if (mine !== turn) return;
    cards = Array.from({ length: Math.min(PAGE, channels - offset) }, (_, i) => {
      const channel = offset + i;
      const pictures = h("div", { class: "feature-pictures" }, filters ? filterCanvas(filters, channel) : "");
      const patches = h("div", { class: "muted", text: "…" });
      const element = h("figure", { class: "feature-card", "data-channel": channel }, pictures, patches,
        h("figcaption", { text: logits ? `channel ${channel}: class “${logits[channel]}”` : `channel ${channel}` }));
      return { channel, layer: current.name, pictures, patches, element };
    });
    grid.replaceChildren(...cards.map((card) => card.element));
    showMade(); // what was made before shows at once; then the patches, one pass over the dataset for the layer
    for (const card of cards) {
      if (mine !== turn) return;
      try {
        const answer = await streamed("/api/features/top", { body: { ...modelFields(), layer: current.name,
          channel: card.channel, k: 5, dataset: dataset.value || undefined }, signal, onProgress: (done, total) => {
          card.patches.textContent = `reading the dataset: ${done} of ${total}`;
        } });
        card.patches.replaceChildren(patchRow(answer));
      } catch (error) {
        if (error.name === "AbortError") return;
        card.patches.textContent = error.message;
      }
    }
  }

  // Each card's visualization for the steps asked now: one made before shows at once, the others stay empty.
  function showMade() {
    for (const card of cards) {
      card.shown?.image.remove();
      const [, height, width] = chosen().output_shape;
      const neuron = objective.value === "neuron" && height !== undefined; // a dense layer's channel is one
      card.shown = visualization({ ...modelFields(), layer: card.layer, channel: card.channel,
        steps: Number(steps.value), position: neuron ? [Math.floor(height / 2), Math.floor(width / 2)] : undefined });
      card.made = false;
      card.pictures.append(card.shown.image);
      const shown = card.shown;
      shown.run({ onlyCached: true }).then((answer) => {
        if (card.shown === shown) card.made = answer.images.length > 0;
      }).catch(() => {});
    }
  }

  async function visualizePage() {
    const controller = new AbortController();
    running = controller;
    visualizeButton.disabled = true;
    cancelButton.hidden = progress.hidden = false;
    try {
      const missing = cards.filter((card) => !card.made);
      const page = turn;
      for (const [k, card] of missing.entries()) {
        if (page !== turn) return; // another page, layer or model was chosen: its own work starts afresh
        progressText.textContent = `channel ${card.channel} (${k + 1} of ${missing.length})`;
        await card.shown.run({ signal: controller.signal, onProgress: (done, total) => {
          progress.max = total;
          progress.value = done;
        } });
        card.made = true;
      }
      progressText.textContent = missing.length ? "" : "Every channel on this page has its image.";
    } catch (error) {
      if (error.name === "AbortError") progressText.textContent = "Cancelled: the images made so far are kept.";
      else message.error(error.message);
    } finally {
      if (running === controller) running = null;
      visualizeButton.disabled = false;
      cancelButton.hidden = progress.hidden = true;
    }
  }

  layer.addEventListener("change", () => { offset = 0; showPage().catch((e) => message.error(e.message)); });
  dataset.addEventListener("change", () => showPage().catch((e) => message.error(e.message)));
  previous.addEventListener("click", () => { offset -= PAGE; showPage().catch((e) => message.error(e.message)); });
  next.addEventListener("click", () => { offset += PAGE; showPage().catch((e) => message.error(e.message)); });
  for (const control of [steps, objective]) control.addEventListener("change", () => { running?.abort(); showMade(); });
  visualizeButton.addEventListener("click", visualizePage);
  cancelButton.addEventListener("click", () => running?.abort());
  const unsubscribe = store.onSelect(() => fillLayers().catch((error) => message.error(error.message)));
  fillLayers().catch((error) => message.error(error.message));

  return {
    dispose() {
      turn += 1;
      running?.abort();
      reading.abort();
      unsubscribe();
    },
  };
}
