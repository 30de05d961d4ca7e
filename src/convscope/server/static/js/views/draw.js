// Draw and explain (the home page): draw, sample or upload an image; everything updates while you draw. The
// class selects list the current model's class names.

import { api, query } from "../api.js";
import { h, messageBox } from "../dom.js";
import { PAD_SIZE, createDrawpad, padToolbar } from "../drawpad.js";
import { predict as requestPrediction } from "../predict.js";
import { loadImage } from "../pictures.js";
import { digitSelect, fetchSample, pixelsToDataUrl } from "../samples.js";
import { METHODS, createExplainControls } from "../explaincontrols.js";
import { createReportForm } from "../reportform.js";
import { createResults } from "./results.js";

const THROTTLE_MS = 75; // at most one prediction per 75 ms while a stroke goes on (and one at its end)

export function createDrawView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const results = createResults({ methodTitles: Object.fromEntries(METHODS) });
  const pad = createDrawpad({ onStroke: strokeMoved, onStrokeEnd: strokeEnded });
  const overlayContext = pad.overlay.getContext("2d");
  const keeping = createReportForm(store, () => current(), (text) => message.error(text));

  // --- controls ------------------------------------------------------------------------------------------
  const digitChoice = digitSelect();
  const upload = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp",
    "aria-label": "Upload an image", onchange: uploadChosen });
  const showOverlay = h("input", { type: "checkbox", checked: true, "aria-label": "Show the CAM over the drawing",
    onchange: () => { pad.overlay.hidden = !showOverlay.checked; } });
  const explain = createExplainControls(() => refresh(), h("label", {}, showOverlay, " overlay"));
  // The pad and the other input controls are two sections in one column; on a phone the column dissolves and the
  // prediction comes right under the pad (style.css).
  root.append(h("div", { class: "draw-view" },
    h("div", { class: "input-column" },
      h("section", { class: "input-panel", "aria-label": "Input" },
        h("div", { class: "pad-wrap", style: `--pad-size:${PAD_SIZE}px` }, pad.canvas, pad.overlay),
        padToolbar(pad, { onUndo: inputChanged, onClear: clearPad }),
        message.element),
      h("section", { class: "input-options", "aria-label": "Samples, uploads and explanations" },
        h("div", { class: "toolbar" }, digitChoice, h("button", { type: "button", text: "Random sample",
          onclick: sample }), h("label", { class: "upload" }, "Upload ", upload)),
        explain.element)),
    h("section", { class: "result-panel", "aria-label": "Prediction" }, results.element, keeping.element),
    h("section", { class: "layers-panel", "aria-label": "Every layer" }, h("h3", { text: "Inside the network" }),
      results.layersElement)));

  // --- the current input ----------------------------------------------------------------------------------
  // {kind: "drawing"} (the pad), {kind: "sample", pixels}, or {kind: "upload", file}; `placement` maps input
  // pixels onto the pad, so the CAM can be laid over what is shown.
  let input = null;
  let placement = { scale: 1, dx: 0, dy: 0 };
  let inflight = false;
  let again = false;
  let lastSent = 0;
  let strokeEndedAt = null;
  let keepInput = false;
  let alive = true;

  function strokeMoved() {
    if (input?.kind !== "drawing") { // what was said about a sample or an upload no longer holds
      message.clear();
      results.setTruth(null);
    }
    input = { kind: "drawing" };
    placement = { scale: 1, dx: 0, dy: 0 };
    if (performance.now() - lastSent >= THROTTLE_MS) predict();
  }

  function strokeEnded() {
    strokeEndedAt = performance.now();
    inputChanged();
  }

  function inputChanged() {
    keeping.reset();
    keepInput = true; // the next request's input becomes the one other views show
    predict();
  }

  function clearPad() {
    message.clear();
    input = null;
    store.input = null;
    clearResults();
  }

  // Nothing is shown that no longer belongs to the input: no prediction, no CAM, nothing to save or report.
  function clearResults() {
    overlayContext.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
    results.reset();
    keeping.reset();
    keeping.enable(false);
  }

  function refresh() {
    if (input) predict();
  }

  function options() {
    return { model: store.model, version: store.version ?? undefined, ...explain.values() };
  }

  // The input as it is now (a drawing is read off the pad at the moment of asking).
  function current() {
    return input.kind === "drawing" ? { ...input, dataUrl: pad.dataUrl() } : input;
  }

  // One request at a time; a change made meanwhile is sent as soon as the answer is in (latest wins).
  async function predict() {
    if (!input) return;
    if (input.kind === "drawing" && pad.blank()) { // erased (or undone) down to nothing
      store.input = null;
      keepInput = false;
      if (inflight) again = true; // cleared once the answer in flight is in
      else clearResults();
      return;
    }
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    lastSent = performance.now();
    const measuring = strokeEndedAt;
    strokeEndedAt = null;
    const sent = current(); // a drawing is encoded as PNG once per request
    if (keepInput) {
      store.input = { ...sent, placement };
      keepInput = false;
    }
    try {
      const answer = await requestPrediction(sent, options());
      if (!alive) return;
      await results.show(answer, (heat) => overlay(heat, answer.framing));
      message.clearError(); // the sample's description stays
      keeping.enable(true);
      if (measuring !== null) {
        await new Promise((resolve) => requestAnimationFrame(resolve)); // until the update is painted
        window.__convscope.timings.push(performance.now() - measuring);
      }
    } catch (error) {
      if (alive) {
        clearResults(); // what was shown answered another input
        message.error(error.message);
      }
    } finally {
      inflight = false;
      if (again && alive) {
        again = false;
        predict();
      }
    }
  }

  // The CAM (the size of the model input) laid over the drawing through the preprocessing's framing.
  function overlay(heat, framing) {
    overlayContext.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
    const [x0, y0, x1, y1] = framing.source;
    const [left, top, fieldWidth, fieldHeight] = framing.field;
    const { scale, dx, dy } = placement;
    overlayContext.imageSmoothingEnabled = true;
    overlayContext.drawImage(heat, left, top, fieldWidth, fieldHeight,
      dx + x0 * scale, dy + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
  }

  async function sample() {
    try {
      const found = await fetchSample(digitChoice);
      placement = pad.show(await loadImage(pixelsToDataUrl(found.pixels)));
      input = { kind: "sample", pixels: found.pixels, label: found.label };
      results.setTruth(found.label);
      message.info(`MNIST test image ${found.index}, labelled ${found.label}`);
      inputChanged();
    } catch (error) {
      message.error(error.message);
    }
  }

  function uploadChosen() {
    const file = upload.files[0];
    upload.value = ""; // choosing the same file again is a change too
    if (file) useUpload(file);
  }

  async function useUpload(file) {
    message.clear();
    results.setTruth(null);
    try {
      placement = pad.show(await createImageBitmap(file));
    } catch {
      pad.clear(); // the browser cannot show it either; the server's answer says what is wrong with it
      placement = { scale: 1, dx: 0, dy: 0 };
    }
    overlayContext.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
    input = { kind: "upload", file };
    inputChanged();
  }

  // --- the model: its layers decide the layer views and the CAM layers, its classes the class selects ----------
  async function loadModel() {
    try {
      const architecture = await api(`/api/models/${store.model}/architecture${query({ version: store.version })}`);
      if (!alive) return;
      results.setModel(architecture, store.classes());
      explain.setModel(architecture, store.classes());
      refresh();
    } catch (error) {
      message.error(error.message);
    }
  }

  // Restore the input kept from another view.
  async function restore(kept) {
    if (kept.kind === "drawing" && kept.dataUrl) {
      pad.show(await loadImage(kept.dataUrl));
      placement = { scale: 1, dx: 0, dy: 0 };
    } else if (kept.kind === "sample") {
      placement = pad.show(await loadImage(pixelsToDataUrl(kept.pixels)));
    } else if (kept.kind === "upload") {
      placement = pad.show(await createImageBitmap(kept.file));
    } else if (kept.kind === "photo") { // from the photo view
      placement = pad.show(await loadImage(kept.dataUrl));
    }
    input = { kind: kept.kind, pixels: kept.pixels, file: kept.file, label: kept.label,
      dataUrl: kept.kind === "photo" ? kept.dataUrl : undefined };
    results.setTruth(kept.kind === "sample" ? kept.label : null);
  }

  // Another model: what was saved or reported was about the previous one's answer.
  function modelChanged() {
    keeping.reset();
    loadModel();
  }

  const unsubscribe = store.onSelect(modelChanged);
  (async () => {
    if (store.input) await restore(store.input).catch(() => {});
    await loadModel();
  })();

  return {
    dispose() {
      alive = false;
      unsubscribe();
    },
  };
}
