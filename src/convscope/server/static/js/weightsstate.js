// A model's pretrained weights on this server (GET /api/models: ready; missing, with size; downloading, with
// progress; failed, with why) and the download job (POST /api/models/{name}/download, followed by polling).

import { api } from "./api.js";
import { h } from "./dom.js";

const POLL_MS = 500;

export function weightsOf(spec) {
  return spec?.pretrained_weights?.[0] ?? null;
}

// Whether a model can answer now (its weights are here, or it needs none).
export function isReady(spec) {
  const weights = weightsOf(spec);
  return spec?.active_version != null && (!weights || weights.state === "ready");
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;

// The label a model gets in a list: its name and, unless ready, the state of its weights.
export function modelLabel(spec) {
  const weights = weightsOf(spec);
  if (!weights || weights.state === "ready") {
    return spec.active_version == null ? `${spec.name} (no version yet)` : spec.name;
  }
  if (weights.state === "downloading") return `${spec.name} (downloading…)`;
  if (weights.state === "failed") return `${spec.name} (download failed)`;
  return `${spec.name} (weights not downloaded, ${megabytes(weights.size)})`;
}

// A panel for a model whose weights are not ready: the state, a Download button, progress, or why it failed and
// how to place the file by hand. `onReady()` runs once the weights are in place.
export function weightsPanel(spec, onReady) {
  const element = h("section", { class: "weights-state", "data-testid": "weights-state", "aria-live": "polite" });
  let timer = null;
  let alive = true;

  function show(state) {
    const weights = { ...weightsOf(spec), ...state };
    const parts = [h("h3", { text: `${spec.name}: pretrained weights` })];
    if (weights.state === "missing") {
      parts.push(h("p", { text: `The weights (${weights.key}, ${megabytes(weights.size)}) are not on this server `
        + "yet." }), weights.url ? h("button", { type: "button", class: "primary",
        text: `Download ${megabytes(weights.size)}`, onclick: start }) : null);
    } else if (weights.state === "downloading") {
      const total = weights.total || weights.size;
      parts.push(h("p", { text: `Downloading ${weights.key}: ${megabytes(weights.received || 0)} of `
        + `${megabytes(total)}` }), h("progress", { max: total, value: weights.received || 0,
        "aria-label": "download progress" }));
    } else if (weights.state === "failed") {
      parts.push(h("p", { class: "message error", text: `The download failed: ${weights.error}` }),
        h("button", { type: "button", text: "Try again", onclick: start }));
    }
    if (weights.how_to_get && weights.state !== "downloading") {
      parts.push(h("p", { class: "muted how-to-get", text: `Offline? ${weights.how_to_get}` }));
    }
    parts.push(h("p", { class: "muted", text: `Licence: ${weights.licence}` }));
    element.replaceChildren(...parts);
  }

  async function follow() {
    if (!alive) return;
    try {
      const state = await api(`/api/models/${spec.name}/download`);
      if (!alive) return;
      show(state);
      if (state.state === "ready") await onReady();
      else if (state.state === "downloading") timer = setTimeout(follow, POLL_MS);
    } catch (error) {
      if (alive) element.replaceChildren(h("p", { class: "message error", text: error.message }));
    }
  }

  async function start() {
    try {
      show(await api(`/api/models/${spec.name}/download`, { method: "POST" }));
      timer = setTimeout(follow, POLL_MS);
    } catch (error) {
      show({ state: "failed", error: error.message });
    }
  }

  show({});
  if (weightsOf(spec)?.state === "downloading") follow();
  return { element, dispose() { alive = false; clearTimeout(timer); } };
}
